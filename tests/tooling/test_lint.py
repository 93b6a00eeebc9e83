"""The code style is part of the build: ruff, configured in pyproject.toml."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.tooling
ROOT = pathlib.Path(__file__).parents[2]


def test_ruff_is_clean():
    """Lint fails the suite. ruff comes with the test extra; under CI a missing ruff is a failure,
    elsewhere (a bare checkout) a skip that says how to get it."""
    ruff = shutil.which("ruff")
    if ruff is None:
        if os.environ.get("CI"):
            pytest.fail("ruff is not installed: the test extra installs it (pip install -e '.[test]')")
        pytest.skip("ruff not installed (pip install -e '.[test]')")
    result = subprocess.run([ruff, "check", "devgrad", "tests"], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr

"""README is the front door: short, its first command trains the triangle, its second is the
test command CI runs, and it leads to the rest of the documentation."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from devgrad.cli import build_parser
from tests.support.run_helpers import HAVE_MATPLOTLIB, ROOT, cli, only_run_dir

README = ROOT / "README.md"
NEWCOMER = "pip install '.[plot,progress]' && devgrad run experiments/triangle.yaml"
TESTS = "pip install -e '.[test]' && python -m pytest -q"


def _bash_blocks() -> list[str]:
    return [b.strip() for b in re.findall(r"^```bash\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)]


def test_readme_is_short():
    assert README.stat().st_size <= 10 * 1024, "README.md is over 10 KB: move the detail to a page under docs/"


def test_readme_opens_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert _bash_blocks()[:2] == [NEWCOMER, TESTS]
    assert text.index("```bash") < text.index("```python"), "the two commands come before the tour"


def test_ci_runs_the_test_command_readme_shows():
    """.ci/run installs devgrad as README's test command does, then runs its pytest command."""
    install, run = (part.strip() for part in TESTS.split("&&"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("python -m pip install") and line.endswith(install.split(" ", 2)[2]) for line in ci)
    assert run in ci, f".ci/run does not run README's test command {run!r}"


@pytest.mark.slow
def test_readme_newcomer_command_runs_the_triangle(tmp_path):
    assert _bash_blocks()[0] == NEWCOMER
    result = cli("run", ROOT / "experiments" / "triangle.yaml", "--out", tmp_path, "-q", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path, "triangle")
    assert (run_dir / "plots" / "decision_boundary.png").exists() or not HAVE_MATPLOTLIB
    assert json.loads((run_dir / "summary.json").read_text())["test"]["test_accuracy"] >= 0.97


def test_readme_commands_name_only_what_exists():
    """Every spec file and devgrad command README shows is real."""
    text = README.read_text(encoding="utf-8")
    for path in re.findall(r"experiments/\w+\.yaml", text):
        assert (ROOT / path).is_file(), path
    commands = set(re.findall(r"^\s*devgrad (\w+)", "\n".join(_bash_blocks()), re.M))
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert commands and commands <= set(subparsers.choices), commands

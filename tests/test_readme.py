"""README is the front door: its first command runs the triangle, and its spec reference lists every key."""

from __future__ import annotations

import json


from tests.run_helpers import HAVE_MATPLOTLIB, ROOT, cli, only_run_dir


def _schema_paths(schema: dict, prefix: str = "") -> list[str]:
    paths = []
    for key, value in schema.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in ("train.early_stopping", "train.checkpoint", "data.split"):
            paths += _schema_paths(value, path + ".")
        else:
            paths.append(path)
    return paths


def test_readme_documents_every_spec_key():
    from devgrad.experiment.spec import SCHEMA

    readme = (ROOT / "README.md").read_text()
    missing = [p for p in _schema_paths(SCHEMA) if f"`{p}`" not in readme]
    assert not missing, f"README's spec reference lacks: {missing}"


def test_readme_newcomer_command_runs_the_triangle(tmp_path):
    readme = (ROOT / "README.md").read_text()
    first = readme.split("```bash\n", 1)[1].split("\n", 1)[0]
    assert first == "pip install '.[plot,progress]' && devgrad run experiments/triangle.yaml"
    result = cli("run", ROOT / "experiments" / "triangle.yaml", "--out", tmp_path, "-q", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path, "triangle")
    assert (run_dir / "plots" / "decision_boundary.png").exists() or not HAVE_MATPLOTLIB
    assert json.loads((run_dir / "summary.json").read_text())["test"]["test_accuracy"] >= 0.97

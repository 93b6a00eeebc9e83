"""devgrad.experiment.report: the plots of a run, and runs without matplotlib."""

from __future__ import annotations



from devgrad.experiment import run
from tests.helpers import block_import
from tests.run_helpers import SMALL, cli, needs_matplotlib


@needs_matplotlib
def test_plot_command_redraws(tmp_path):
    result = run(SMALL, out=tmp_path, quiet=True)
    for png in (result.run_dir / "plots").iterdir():
        png.unlink()
    redraw = cli("plot", result.run_dir)
    assert redraw.returncode == 0, redraw.stderr
    assert (result.run_dir / "plots" / "decision_boundary.png").stat().st_size > 1000


def test_runs_without_matplotlib_say_plots_were_skipped(tmp_path, monkeypatch):
    block_import(monkeypatch, "matplotlib")
    result = run({**SMALL, "train": {"epochs": 1}}, out=tmp_path, quiet=True)
    assert result.status == "completed" and result.summary["plots"] == []
    assert "plots skipped" in (result.run_dir / "train.log").read_text()

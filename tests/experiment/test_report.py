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
    (result.run_dir / "report.html").unlink()
    redraw = cli("plot", result.run_dir)
    assert redraw.returncode == 0, redraw.stderr
    assert (result.run_dir / "plots" / "decision_boundary.png").stat().st_size > 1000
    for name in ("neurons.png", "hidden_units.png"):  # the hidden units' pictures come back too
        assert (result.run_dir / "plots" / name).stat().st_size > 1000
    assert (result.run_dir / "report.html").read_text().count("data:image/png;base64,") == 4


def test_runs_without_matplotlib_say_plots_were_skipped(tmp_path, monkeypatch):
    block_import(monkeypatch, "matplotlib")
    result = run({**SMALL, "train": {"epochs": 1}}, out=tmp_path, quiet=True)
    assert result.status == "completed" and result.summary["plots"] == []
    assert "plots skipped" in (result.run_dir / "train.log").read_text()


@needs_matplotlib
def test_plots_mark_the_best_epoch_an_early_stop_and_name_the_classes(tmp_path, monkeypatch):
    from devgrad.experiment import figures, report

    monkeypatch.setattr(figures, "_cores", lambda: 1)  # drawn in this process, where ``drawn`` is seen
    drawn = {}
    real_curves, real_boundary = report.learning_curves, report.decision_boundary

    def curves(plt, history, path, title, best_epoch=None, stopped_at=None):
        drawn["curves"] = (len(history), best_epoch, stopped_at)
        return real_curves(plt, history, path, title, best_epoch, stopped_at)

    def boundary(plt, X, y, proba, path, name, class_names=None, **options):
        drawn["classes"] = list(class_names)
        return real_boundary(plt, X, y, proba, path, name, class_names, **options)

    monkeypatch.setattr(report, "learning_curves", curves)
    monkeypatch.setattr(report, "decision_boundary", boundary)
    spec = {**SMALL, "data": {"source": "blobs", "n_samples": 300, "n_classes": 3},
            "train": {"epochs": 60, "batch_size": 32, "early_stopping": {"patience": 2, "min_delta": 0.5}}}
    result = run(spec, out=tmp_path, quiet=True)
    history_len, best, stopped = drawn["curves"]
    assert stopped == result.summary["epochs_run"] == history_len < 60 and best == result.summary["best_epoch"]
    assert drawn["classes"] == ["0", "1", "2"]
    assert (result.run_dir / "plots" / "learning_curves.png").stat().st_size > 0

"""devgrad.experiment.report: the plots of a run, and runs without matplotlib."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from devgrad.experiment import run
from tests.support.helpers import block_import
from tests.support.run_helpers import SMALL, cli, cli_process, needs_matplotlib, write_spec


@pytest.mark.slow
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


@pytest.mark.slow
@needs_matplotlib
def test_redrawing_a_tracked_run_neither_needs_nor_calls_mlflow(tmp_path, monkeypatch):
    from devgrad.experiment import commands, tracking, tracking_service

    result = run({**SMALL, "train": {"epochs": 1}, "plots": {"enabled": False}}, out=tmp_path, quiet=True)
    config = result.run_dir / "config.yaml"
    spec = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**spec, "tracking": {"mlflow": {"uri": "http://127.0.0.1:9"}}}))

    def no_mlflow():
        raise AssertionError("redrawing a run imported MLflow")

    for module, name in ((tracking, "import_mlflow"), (tracking, "available"), (tracking_service, "prepare")):
        monkeypatch.setattr(module, name, no_mlflow)
    assert "decision_boundary.png" in " ".join(commands.redraw(result.run_dir, quiet=True))


def test_runs_without_matplotlib_say_plots_were_skipped(tmp_path, monkeypatch):
    block_import(monkeypatch, "matplotlib")
    result = run({**SMALL, "train": {"epochs": 1}}, out=tmp_path, quiet=True)
    assert result.status == "completed" and result.summary["plots"] == []
    assert "plots skipped" in (result.run_dir / "train.log").read_text()


@pytest.mark.slow
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


class Drawn(dict):
    """The figures a run drew, by file name; ``repeated[name]``: a figure's ``figures.Repeated``
    panels, if it has any."""

    def __init__(self):
        super().__init__()
        self.repeated: dict = {}

    def panels(self, name: str):
        """Each repeated panel of figure ``name`` in turn, as drawn: its Axes set up and drawn
        again for each (a renderer of the figure drawn)."""
        repeated = self.repeated[name]
        renderer = _renderer(self[name])
        for set_up in repeated.set_ups:
            set_up(repeated.axes)
            repeated.axes.draw(renderer)
            yield repeated.axes, renderer


@pytest.fixture
def drawn_figures(monkeypatch):
    """Every figure a run draws, by file name, drawn in this process (no forked drawing) and kept
    open for inspection."""
    from devgrad.experiment import figures, plane_plots, plot_worker, report

    monkeypatch.setattr(figures, "_cores", lambda: 1)
    monkeypatch.setattr(plot_worker, "wanted", lambda: False)
    monkeypatch.setattr(figures.reused, "kept", {})  # this run's figures, none another test inspects
    kept = Drawn()

    def keep(fig, path, dpi=110, repeated=None):
        kept[Path(path).name] = fig
        if repeated is not None:
            kept.repeated[Path(path).name] = repeated
        figures.save(fig, path, dpi, repeated)

    for module, name in ((report, "save"), (report, "_save"), (plane_plots, "save")):
        monkeypatch.setattr(module, name, keep)
    return kept


def _renderer(fig):
    """A renderer of ``fig`` as drawn (a closed figure has lost its pyplot canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _cut_off(fig, axes=None, renderer=None) -> list[str]:
    """The titles, axis labels (of the axes drawn), colour-bar and legend texts of ``fig`` (or of
    ``axes`` alone, drawn by ``renderer``) that do not lie inside it."""
    from matplotlib.legend import Legend

    renderer = renderer or _renderer(fig)
    texts = [fig._suptitle] if fig._suptitle is not None and axes is None else []
    for ax in fig.axes if axes is None else [axes]:
        texts += [ax.title] + [axis.label for axis in (ax.xaxis, ax.yaxis) if axis.get_visible()]
        texts += [t for legend in ax.findobj(Legend) for t in legend.get_texts()]
    texts += [t for legend in fig.legends for t in legend.get_texts()] if axes is None else []
    box = fig.bbox
    cut = []
    for text in texts:
        if not text.get_visible() or not text.get_text().strip():
            continue
        bb = text.get_window_extent(renderer)
        if bb.x0 < box.x0 - 1 or bb.x1 > box.x1 + 1 or bb.y0 < box.y0 - 1 or bb.y1 > box.y1 + 1:
            cut.append(text.get_text())
    return cut


@pytest.mark.slow
@needs_matplotlib
def test_every_picture_has_its_axis_names_and_nothing_cut_off(tmp_path, drawn_figures):
    spec = {**SMALL, "name": "ünïcode 螺旋", "model": {"hidden": [3], "activation": "sigmoid"},
            "train": {"epochs": 8, "batch_size": 32, "early_stopping": {"patience": 2, "min_delta": 0.5}}}
    result = run(spec, out=tmp_path, quiet=True)
    assert set(drawn_figures) == {"learning_curves.png", "decision_boundary.png", "neurons.png", "hidden_units.png"}
    for name, fig in drawn_figures.items():
        assert not _cut_off(fig), (name, _cut_off(fig))
    for panel, renderer in drawn_figures.panels("neurons.png"):  # each unit's panel: one Axes drawn again
        assert not _cut_off(panel.figure, panel, renderer), (panel.get_title(), _cut_off(panel.figure, panel, renderer))
    curves = drawn_figures["learning_curves.png"].axes
    assert [ax.get_ylabel() for ax in curves] == ["loss (log scale)", "accuracy"]
    assert all(ax.get_xlabel() == "epoch" for ax in curves)
    # one legend above the panels: none inside them, over the curves
    assert not any(ax.get_legend() for ax in curves) and len(drawn_figures["learning_curves.png"].legends) == 1
    stopped = result.summary["epochs_run"]
    assert any(f"early stop (epoch {stopped})" == t.get_text()
               for t in drawn_figures["learning_curves.png"].legends[0].get_texts())


@pytest.mark.slow
@needs_matplotlib
def test_units_keep_one_colour_and_one_coordinate_system_across_pictures(tmp_path, drawn_figures):
    import re

    spec = {**SMALL, "model": {"hidden": [3], "activation": "sigmoid"}, "train": {"epochs": 6, "batch_size": 32}}
    run(spec, out=tmp_path, quiet=True)
    history_lines = drawn_figures["hidden_units.png"].axes[0].get_lines()
    boundary = {line.get_label(): line for line in drawn_figures["decision_boundary.png"].axes[0].get_lines()}
    seen = 0
    for i, (panel, _) in enumerate(drawn_figures.panels("neurons.png")):
        seen += 1
        colour = panel.spines["left"].get_edgecolor()
        assert history_lines[i].get_color() == colour and boundary[f"unit {i + 1}"].get_color() == colour
        # the unit's line in neurons.png's title is the last epoch of hidden_units.png: one convention
        a1, a2, c = map(float, re.search(r"\(([-+\d.e]+)·x₁ ([-+\d.e]+)·x₂ ([-+\d.e]+)\)", panel.get_title()).groups())
        w1, w2, b = (ax.get_lines()[i].get_ydata()[-1] for ax in drawn_figures["hidden_units.png"].axes)
        assert (a1, a2, c) == pytest.approx((w1, w2, b), rel=0.06, abs=0.006), (panel.get_title(), w1, w2, b)
    assert seen == 3
    title = drawn_figures["neurons.png"]._suptitle.get_text()
    assert "the data's own" in title and "the data's own" in drawn_figures["hidden_units.png"]._suptitle.get_text()


@pytest.mark.slow
@needs_matplotlib
def test_neurons_title_sits_on_its_panels(tmp_path, drawn_figures):
    spec = {**SMALL, "model": {"hidden": [16], "activation": "relu"}, "train": {"epochs": 2, "batch_size": 32}}
    run(spec, out=tmp_path, quiet=True)
    fig = drawn_figures["neurons.png"]
    renderer = _renderer(fig)
    title_bottom = fig._suptitle.get_window_extent(renderer).y0
    tops = [ax.title.get_window_extent(drawn).y1 for ax, drawn in drawn_figures.panels("neurons.png")]
    assert len(tops) == 16
    panels_top = max(tops)
    assert 0 <= title_bottom - panels_top < 0.3 * fig.dpi, (title_bottom, panels_top)  # no empty band


@pytest.mark.slow
@needs_matplotlib
def test_a_hinge_loss_classifier_is_drawn_with_its_score_and_margin(tmp_path, drawn_figures):
    spec = {**SMALL, "data": {"source": "linear", "n_samples": 300}, "model": {"hidden": []}, "loss": "hinge",
            "train": {"epochs": 3, "batch_size": 32}}
    run(spec, out=tmp_path, quiet=True)
    fig = drawn_figures["decision_boundary.png"]
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert not any("P(class" in label for label in labels) and any(label.startswith("score d(x)") for label in labels)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "margin d(x) = ±1" in legend and "the learned line w·x + b = 0" in legend
    assert not any("composed" in text for text in legend)  # no hidden layer: nothing was composed


@pytest.mark.slow
@needs_matplotlib
def test_a_unicode_run_name_prints_no_glyph_warnings(tmp_path):
    spec = write_spec(tmp_path, {**SMALL, "name": "螺旋 ünïcode 🚀", "train": {"epochs": 2}})
    # a process of its own: the warnings of the processes drawing its figures reach the same stderr
    result = cli_process("run", spec, "--out", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    assert "Glyph" not in result.stderr and "missing from" not in result.stderr, result.stderr


@needs_matplotlib
def test_one_axes_drawn_once_per_panel_gives_the_pixels_of_an_axes_per_panel():
    import functools

    import numpy as np

    from devgrad.experiment import figures

    plt = figures.pyplot()
    images = [np.arange(6.0).reshape(2, 3) ** (i + 1) for i in range(3)]

    def panel(grid, i, ax):
        ax.set_position(grid[i].get_position(ax.figure))
        for image in ax.images:
            image.remove()
        ax.imshow(images[i], cmap="viridis")
        ax.set_title(f"panel {i + 1}")
        ax.yaxis.set_visible(i == 0)

    pictures = []
    for repeat in (False, True):
        fig = plt.figure(figsize=(4, 1.6))
        fig.suptitle("three panels")
        grid = fig.add_gridspec(1, 3, wspace=0.3)
        if repeat:
            drawn = figures.Repeated(fig.add_subplot(grid[0]), [functools.partial(panel, grid, i) for i in range(3)])
            pictures.append(figures.png_bytes(fig, dpi=40, repeated=drawn))
        else:
            for i in range(3):
                panel(grid, i, fig.add_subplot(grid[i]))
            pictures.append(figures.png_bytes(fig, dpi=40))
        plt.close(fig)
    assert pictures[0] == pictures[1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="figures are drawn in forked processes on Linux")
def test_figures_drawn_side_by_side_and_again_here_when_a_drawing_process_fails_or_hangs(tmp_path, monkeypatch):
    import os
    import time

    from devgrad.experiment import figures

    monkeypatch.setattr(figures, "_cores", lambda: 3)
    monkeypatch.setattr(figures, "CHILD_TIMEOUT", 1.0)
    monkeypatch.setattr(figures, "fork_is_safe", lambda: True)  # pytest-xdist's own threads aside
    parent = os.getpid()

    def job(name, trouble=None):
        def draw():
            if os.getpid() != parent and trouble == "fails":
                raise RuntimeError("a drawing process failed")
            if os.getpid() != parent and trouble == "hangs":
                (tmp_path / f".{name}.k2j4x.tmp").write_text("half")  # killed while atomic_write writes
                time.sleep(60)
            (tmp_path / name).write_text(f"drawn by {'this process' if os.getpid() == parent else 'a child'}")
        return draw

    jobs = [(3.0, tmp_path / "a", job("a")), (2.0, tmp_path / "b", job("b", "fails")),
            (1.0, tmp_path / "c", job("c", "hangs"))]
    assert figures.render(jobs) == [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    drawn = {name: (tmp_path / name).read_text() for name in "abc"}
    assert drawn["a"] == "drawn by this process"  # the heaviest group is this process's own
    # a failed or hung child's group is drawn again here (a child not ended would write "a child" after 60 s)
    assert drawn["b"] == drawn["c"] == "drawn by this process"
    assert not list(tmp_path.glob(".*.tmp")), "the killed child's half-written file is removed"
    monkeypatch.setattr(figures, "_cores", lambda: 1)
    (tmp_path / "a").unlink()
    figures.render(jobs[:1])
    assert (tmp_path / "a").read_text() == "drawn by this process"  # one core: no fork at all


def _pids_of_render(figures, count: int) -> list[int]:
    """The process that drew each of ``count`` figures through ``figures.render``."""
    import os

    pids = []

    def draw():
        pids.append(os.getpid())

    figures.render([(1.0, Path(f"figure{i}"), draw) for i in range(count)])
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="figures are drawn in forked processes on Linux")
def test_figures_are_drawn_here_while_another_thread_runs_or_cuda_is_started(monkeypatch):
    """A fork copies only the forking thread: a lock another thread holds stays held in the
    child, and a CUDA context cannot be used there; such a process draws one figure after another."""
    import os
    import threading

    from devgrad.experiment import figures

    monkeypatch.setattr(figures, "_cores", lambda: 3)
    monkeypatch.setattr(figures.threading, "active_count", lambda: 1)
    assert figures.fork_is_safe()
    assert len(_pids_of_render(figures, 3)) == 1  # forked: two figures drawn in children
    monkeypatch.undo()
    monkeypatch.setattr(figures, "_cores", lambda: 3)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not figures.fork_is_safe()
        assert _pids_of_render(figures, 3) == [os.getpid()] * 3
    finally:
        release.set()
        other.join()
    monkeypatch.setattr(figures.threading, "active_count", lambda: 1)
    monkeypatch.setattr(figures, "cuda_started", lambda: True)
    assert _pids_of_render(figures, 3) == [os.getpid()] * 3


@pytest.mark.slow
@needs_matplotlib
def test_a_run_has_ended_its_checkpoint_writer_when_it_draws(tmp_path, monkeypatch):
    import threading

    from devgrad.experiment import plot_worker, report

    monkeypatch.setattr(plot_worker, "wanted", lambda: False)  # drawn by this process, which forks to draw
    seen = []
    real = report.render

    def render(jobs):
        seen.append([t.name for t in threading.enumerate() if t.name.startswith("devgrad-checkpoint")])
        return real(jobs)

    monkeypatch.setattr(report, "render", render)
    run({**SMALL, "train": {**SMALL["train"], "epochs": 2}}, out=tmp_path, quiet=True)
    assert seen == [[]], "a thread alive at the fork would keep the figures from being drawn side by side"

"""A figure drawn again in one process reuses the last one of its kind: the same bytes as a new one."""

from __future__ import annotations

import numpy as np
import pytest

from devgrad.experiment import figures, plane_plots, report
from tests.support.run_helpers import needs_matplotlib


def _history(epochs: int, negative_loss: bool, val: bool) -> list[dict]:
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "train_loss": -0.05 if negative_loss and e == epochs else 2.0 * 0.3 ** e,
               "train_accuracy": min(1.0, 0.5 + 0.1 * e)}
        if val:
            row.update(val_loss=2.5 * 0.4 ** e, val_accuracy=0.45 + 0.08 * e)
        rows.append(row)
    return rows


def _units(epochs: int, k: int) -> list[dict]:
    rng = np.random.default_rng(k)
    return [{"epoch": e, "weight": rng.normal(size=(k, 2)) * e, "bias": rng.normal(size=k)} for e in range(epochs)]


def _plane(classes: int, n: int = 30):
    rng = np.random.default_rng(classes)
    X = rng.normal(size=(n, 2)) * (1 + classes)
    y = np.arange(n) % max(classes, 2) if classes else X[:, 0] * 0.5

    def proba(points):
        if classes == 0:
            return np.tanh(points[:, :1])
        z = np.stack([points[:, 0] * (j + 1) - points[:, 1] * j for j in range(max(classes, 2))], axis=1)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return X, y, proba


def _neurons(k: int, classes: int):
    X, y, proba = _plane(classes)
    lines = [(np.array([1.0 + i, -0.5 * i]), 0.3 * i) for i in range(k)]
    return X, y, (lambda p: np.tanh(p @ np.array([a for a, _ in lines]).T)), lines, proba


# Each kind's drawings, in the order drawn: the later ones of a skeleton reuse the earlier's figure.
DRAWINGS = {
    "learning_curves": (report.learning_curves, [
        ((_history(5, False, True), "ünïcode 螺旋"), {"best_epoch": 3, "stopped_at": 5}),
        ((_history(35, True, False), "b"), {}),
        ((_history(2, False, False), "c"), {"best_epoch": 1})]),
    "hidden_units": (report.hidden_units, [((_units(4, 3), "a"), {}), ((_units(35, 5), "β run"), {})]),
    "decision_boundary": (plane_plots.decision_boundary, [
        ((*_plane(2), "a"), {"lines": [((np.array([1.0, 1.0]), 0.2), "unit 1")], "resolution": 20}),
        ((*_plane(3), "c"), {"resolution": 20}),
        ((*_plane(2), "b"), {"margin": True, "resolution": 20}),
        ((*_plane(4), "d"), {"class_names": ["w", "x", "y", "z"], "resolution": 20})]),
    "neurons": (plane_plots.neurons, [
        ((*_neurons(3, 2), "a"), {"activation_name": "tanh", "resolution": 12}),
        ((*_neurons(3, 0), "b"), {"activation_name": "relu", "resolution": 12, "total_units": 9})]),
}


@needs_matplotlib
@pytest.mark.slow  # about 1 s each: every drawing twice, new and reused
@pytest.mark.parametrize("kind", DRAWINGS)
def test_a_figure_drawn_again_on_its_kinds_last_figure_has_the_bytes_of_a_new_one(kind, tmp_path, monkeypatch):
    monkeypatch.setattr(figures.reused, "kept", {})
    def small(fig, path, dpi=110, repeated=None):  # the same drawing, fewer pixels to rasterise
        figures.save(fig, path, 40, repeated)

    for module in (report, plane_plots):
        monkeypatch.setattr(module, "save", small)
    function, drawings = DRAWINGS[kind]
    pictures = {}
    for again in (False, True):
        for i, (args, kwargs) in enumerate(drawings):
            if not again:
                figures.reused.kept.clear()
            path = tmp_path / f"{again}{i}.png"
            figures.Drawing(function, *args[:-1], path, args[-1], **kwargs)()
            pictures[again, i] = path.read_bytes()
    assert figures.reused.kept, "the figures are kept for the next drawing"
    assert all(pictures[True, i] == pictures[False, i] for i in range(len(drawings)))


def test_a_process_among_as_many_busy_ones_as_cores_draws_its_figures_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "_cores", lambda: 4)
    monkeypatch.setattr(figures, "_busy", False)
    figures.cores_busy()

    def no_fork():
        raise AssertionError("a drawing process was forked")

    monkeypatch.setattr(figures.os, "fork", no_fork)
    drawn = []
    jobs = [(1.0, tmp_path / f"{i}.png", lambda i=i: drawn.append(i)) for i in range(3)]
    assert figures.render(jobs) == [tmp_path / f"{i}.png" for i in range(3)]
    assert drawn == [0, 1, 2]


@needs_matplotlib
def test_a_figure_that_cannot_be_cleared_or_was_drawn_in_other_rc_params_is_made_again(monkeypatch):
    monkeypatch.setattr(figures.reused, "kept", {})
    plt = figures.pyplot()
    made = []

    def make():
        made.append(plt.figure(figsize=(1, 1)))
        return made[-1], made[-1].add_subplot()

    def draw():
        with figures.reused(plt, ("test",), make) as (_, ax):
            ax.plot([0, 1], [1, 0])

    draw()
    draw()
    assert len(made) == 1
    with plt.rc_context({"lines.linewidth": 3}):
        draw()
    assert len(made) == 2

    def refuse(fig, axes):
        raise NotImplementedError("cannot remove artist")

    monkeypatch.setattr(figures, "_cleared", refuse)
    draw()
    assert len(made) == 3


@needs_matplotlib
def test_the_runs_figures_are_drawn_in_their_fonts_with_unhinted_text():
    """DejaVu Sans first (with the installed fallbacks after it), and glyphs drawn without
    FreeType's hinting (text then takes about 60% of the time to draw; the same text at the
    same size), inside the style only."""
    plt = figures.pyplot()
    before = dict(plt.rcParams)
    with figures.style(plt):
        assert plt.rcParams["font.family"][0] == "DejaVu Sans"
        assert plt.rcParams["text.hinting"] == "no_hinting"
    assert dict(plt.rcParams) == before

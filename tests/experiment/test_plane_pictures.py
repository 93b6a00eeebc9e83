"""What the pictures over the input plane say: the class a colour scale names, the lines and
titles of first-layer units (with a normalisation layer too), the contours a hinge-loss model's
boundary is drawn with; checked against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from devgrad.experiment import figures, plane_plots
from tests.support.run_helpers import needs_matplotlib


@pytest.fixture
def kept(monkeypatch):
    """The figures plane_plots draws, by file name, kept for inspection."""
    drawn: dict = {}
    monkeypatch.setattr(figures.reused, "kept", {})

    def keep(fig, path, *args, **kwargs):
        drawn[path.name] = fig
        figures.save(fig, path, *args, **kwargs)

    monkeypatch.setattr(plane_plots, "save", keep)
    return drawn


def _two_labels():
    """Labels 1 and 2 (a CSV's), label 2 in the upper right; the model's class index 1 is label 2."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (80, 2))
    index = (X.sum(axis=1) > 0).astype(int)

    def proba(points):
        p = 1 / (1 + np.exp(-8 * points.sum(axis=1)))  # P(index 1) = P(label 2)
        return np.stack([1 - p, p], axis=1)

    return X, index, proba


@needs_matplotlib
def test_two_classes_are_named_by_their_labels(tmp_path, kept):
    X, index, proba = _two_labels()
    plane_plots.decision_boundary(figures.pyplot(), X, index, proba, tmp_path / "decision_boundary.png", "run",
                                  class_names=np.array([1, 2]), resolution=20)
    fig = kept["decision_boundary.png"]
    colour_bar = fig.axes[1].get_ylabel()
    assert colour_bar == "P(class 2)"
    image = fig.axes[0].get_images()[0].get_array()
    assert image[-1, -1] > 0.99 and proba(np.array([[1.1, 1.1]]))[0, 1] > 0.99  # upper right: label 2
    legends = [[t.get_text() for t in legend.get_texts()] for legend in fig.axes[0].findobj(
        lambda a: type(a).__name__ == "Legend")]
    assert ["1", "2"] in legends
    plane_plots.decision_boundary(figures.pyplot(), X, index, proba, tmp_path / "hinge.png", "run",
                                  class_names=np.array([1, 2]), resolution=20, margin=True)
    assert kept["hinge.png"].axes[1].get_ylabel() == "score d(x) (class 2 where d > 0)"


def _batch_norm_mlp(norm: str):
    import devgrad as dg

    model = dg.nn.MLP([2, 3, 1], activation="sigmoid", norm=norm, generator=0, dtype="float64")
    bn = next(m for m in model.modules() if isinstance(m, dg.nn.BatchNorm1d | dg.nn.LayerNorm))
    rng = np.random.default_rng(1)
    if norm == "batch":
        bn.running_mean.data[...] = rng.normal(size=3)
        bn.running_var.data[...] = rng.uniform(0.2, 3.0, size=3)
    bn.weight.data[...] = rng.uniform(0.5, 2.0, size=3)
    bn.bias.data[...] = rng.normal(size=3)
    model.eval()
    return model, bn


def test_a_unit_line_folds_in_the_batch_norm_it_goes_through():
    """With model.norm: batch, a unit computes σ(γ(Wz + b − mean)/√(var + eps) + β): its line and
    title are that affine map, which gives the unit's activation (NumPy, from the weights)."""
    from devgrad.experiment import neurons

    model, bn = _batch_norm_mlp("batch")
    W, b = (np.asarray(p.numpy(), dtype=float) for p in (model.net[0].weight, model.net[0].bias))
    mean, std = np.array([0.3, -1.0]), np.array([2.0, 0.5])  # the run's standardisation
    x = np.random.default_rng(2).normal(size=(50, 2)) * 3
    h = ((x - mean) / std) @ W.T + b
    g, beta, rm, rv = (np.asarray(t.numpy(), dtype=float) for t in (bn.weight, bn.bias, bn.running_mean,
                                                                       bn.running_var))
    real = 1 / (1 + np.exp(-(g * (h - rm) / np.sqrt(rv + bn.eps) + beta)))
    lines = neurons.raw_lines(*neurons.first_units(model), mean, std)
    drawn = np.stack([1 / (1 + np.exp(-(x @ a + c))) for a, c in lines], axis=1)
    np.testing.assert_allclose(drawn, real, rtol=1e-10)
    np.testing.assert_allclose(neurons.hidden_activations(model, "sigmoid", (x - mean) / std), real, rtol=1e-6)
    layer, _ = _batch_norm_mlp("layer")
    assert neurons.first_units(layer) is None  # each unit depends on all three: no line of its own


@needs_matplotlib
def test_units_normalised_together_are_drawn_without_a_line_or_formula(tmp_path, monkeypatch, kept):
    X, index, proba = _two_labels()
    units = lambda p: np.tanh(p @ np.array([[1.0, 0.5], [-1.0, 2.0]]).T)  # noqa: E731
    titles = []
    unit_panel = plane_plots._unit_panel

    def panel(plt, place, i, a_i, line, gx, gy, activation_name, ax, bottom, left):
        unit_panel(plt, place, i, a_i, line, gx, gy, activation_name, ax, bottom, left)
        titles.append((ax.get_title(), len(ax.get_lines())))

    monkeypatch.setattr(plane_plots, "_unit_panel", panel)
    plane_plots.neurons(figures.pyplot(), X, index, units, [None, None], proba, tmp_path / "neurons.png", "run",
                        "tanh", resolution=20)
    assert [n for _, n in titles] == [0, 0]
    assert all("·x₁" not in t and "LayerNorm" in t for t, _ in titles), titles
    output = kept["neurons.png"].axes[-1]
    assert not output.get_lines() and "no lines" in output.get_title()


@needs_matplotlib
def test_a_hinge_loss_boundary_is_drawn_under_the_units_lines(tmp_path, kept):
    """d(x) = 0 is drawn unless the lines drawn are the boundary itself: the hidden units' lines
    are not."""
    from matplotlib.contour import ContourSet

    X, index, proba = _two_labels()
    units = [((np.array([1.0, -0.5]), 0.2), "unit 1"), ((np.array([0.3, 1.0]), -0.1), "unit 2")]
    levels, legends = {}, {}
    for file, lines_are_boundary in (("units.png", False), ("line.png", True)):  # one figure, drawn again
        plane_plots.decision_boundary(figures.pyplot(), X, index, proba, tmp_path / file, "run", resolution=20,
                                      lines=units, margin=True, lines_are_boundary=lines_are_boundary)
        ax = kept[file].axes[0]
        levels[file] = sorted(float(v) for c in ax.collections if isinstance(c, ContourSet) for v in c.levels)
        legends[file] = [t.get_text() for t in ax.get_legend().get_texts()]
    assert levels == {"units.png": [-1.0, 0.0, 1.0], "line.png": [-1.0, 1.0]}
    assert "boundary d(x) = 0" in legends["units.png"] and "boundary d(x) = 0" not in legends["line.png"]

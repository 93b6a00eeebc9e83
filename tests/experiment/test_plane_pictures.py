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

"""neurons.png's panels shared by two drawing processes: the pixels of one process's drawing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from devgrad.experiment import figures, panel_split, plane_plots, report
from tests.support.run_helpers import needs_matplotlib


def _drawing(path: Path, k: int = 6):
    """neurons.png of a k-unit layer, as ``report.draw`` hands it to ``figures.render``."""
    rng = np.random.default_rng(k)
    X = rng.normal(size=(40, 2))
    y = np.arange(40) % 2
    lines = [(np.array([1.0 + i, -0.5 * i]), 0.3 * i) for i in range(k)]

    def proba(points):
        p1 = 1 / (1 + np.exp(-points[:, 0] + points[:, 1]))
        return np.stack([1 - p1, p1], axis=1)

    drawing = figures.Drawing(plane_plots.neurons, X, y, lambda p: np.tanh(p @ np.array([a for a, _ in lines]).T),
                              lines, proba, path, "split", activation_name="tanh", resolution=12)
    weight = report.NEURONS_WEIGHT + report.PANEL_WEIGHT * k
    return weight, path, panel_split.PanelDrawing(drawing, panels=k, panel_weight=report.PANEL_WEIGHT)


def test_split_gives_the_lighter_group_enough_panels_to_even_the_two_out():
    draw = panel_split.PanelDrawing(figures.Drawing(print), panels=10, panel_weight=0.2)
    jobs = [(3.0, Path("heavy"), draw), (0.5, Path("light"), print)]
    drawn, groups, pipes = panel_split.split(jobs, [[0], [1]], [3.0, 0.5])
    try:
        assert len(pipes) == 1 and groups == [[2], [1, 3]]  # each part ends its group
        main, helper = drawn[2], drawn[3]
        moved = 5  # (3.0 - 0.5 - HELPER_COST * 0.2) / (2 * 0.2) = 5.5 panels: loads 2.0 and 1.8
        assert main[2].kwargs["part"].main and main[2].kwargs["part"].first == 10 - moved and main[3] is draw
        assert not helper[2].kwargs["part"].main and helper[3] is None  # nothing to draw again if it fails
        assert main[0] == pytest.approx(3.0 - moved * 0.2)
    finally:
        panel_split.keep(pipes, -1)
    assert pipes[0][0].ends == [None, None]
    # groups already even, or a single process: nothing split
    assert panel_split.split(jobs, [[0], [1]], [3.0, 2.9])[2] == []
    assert panel_split.split(jobs[:1], [[0]], [3.0])[2] == []


@needs_matplotlib
@pytest.mark.slow  # about 2 s: the figure drawn four times
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="figures are drawn in forked processes on Linux")
def test_a_figure_split_over_two_processes_has_the_pixels_of_one_drawn_here(tmp_path, monkeypatch):
    """The helper draws the last panels in a forked process; where it fails, or its pixels would
    cover something drawn here, this process draws them itself: the same file each time."""
    monkeypatch.setattr(figures, "_cores", lambda: 1)
    alone = figures.render([_drawing(tmp_path / "alone.png")])[0].read_bytes()

    monkeypatch.setattr(figures, "_cores", lambda: 2)
    monkeypatch.setattr(figures, "fork_is_safe", lambda: True)  # pytest-xdist's own threads aside
    parent, paste, helper = os.getpid(), panel_split._pasted, panel_split.Part._helper
    for trouble in (None, "pixels do not fit", "helper fails"):
        pasted = []

        def spy(*args, trouble=trouble, pasted=pasted):
            pasted.append(paste(*args) and trouble is None)
            return pasted[-1]

        def failing(self, fig, repeated):
            raise RuntimeError("the helper's process failed")

        monkeypatch.setattr(panel_split, "_pasted", spy)
        monkeypatch.setattr(panel_split.Part, "_helper", failing if trouble == "helper fails" else helper)
        light = (0.1, tmp_path / "light", lambda: (tmp_path / "light").write_text(str(os.getpid() == parent)))
        written = figures.render([_drawing(tmp_path / "split.png"), light])
        assert written == [tmp_path / "split.png", tmp_path / "light"]
        assert written[0].read_bytes() == alone, trouble
        assert pasted == ([] if trouble == "helper fails" else [trouble is None])  # the helper's pixels used or not
        assert (tmp_path / "light").read_text() == str(trouble == "helper fails")  # a failed group: drawn again here
        assert not list(tmp_path.glob(".*.tmp"))

"""One figure's repeated panels drawn by two processes: the heaviest figure of a run (neurons.png,
a panel per hidden unit) would keep one core busy long after the other has drawn the rest.

``split`` hands the last panels of a figure (a ``PanelDrawing``) to the least loaded other
drawing process of ``figures.render``. That process (the helper) draws them on a canvas of the
figure's size that holds nothing else, and sends the pixels they changed and those within
``PAD`` pixels of them (their antialiased edges); the figure's own process (the main part) draws
everything else, then copies those pixels in before it writes the PNG. Panels do not overlap:
where the main part's picture is plain background under all of them, the result is the picture
drawn in one process. Where it is not (or the helper died, or sent nothing in time), the main
part draws the panels itself.
"""

from __future__ import annotations

import math
import os
from multiprocessing.connection import Connection

import numpy as np

from devgrad.io import atomic_write, png_rgb

__all__ = ["PanelDrawing", "Part", "Pipe", "keep", "split"]

HELPER_COST = 1.5  # the helper's own work, in panels: the figure set up again, its background, the pixels sent
PAD = 3  # pixels around a panel's tight box: its antialiased edges
WAIT = 120.0  # seconds the main part waits for the helper (as long as ``figures.render`` waits for a process)


class PanelDrawing:
    """A figure to draw, ``function(plt, *args, part=None, **kwargs)`` (a ``figures.Drawing``),
    whose last ``panels`` panels another process may draw (``Part``); ``weight``: about how
    long the whole figure takes, ``panel_weight`` each panel of it."""

    def __init__(self, drawing, panels: int, panel_weight: float):
        self.drawing, self.panels, self.panel_weight = drawing, panels, panel_weight

    def __call__(self):
        return self.drawing()

    def part(self, part: Part):
        """The drawing of ``part`` of the figure."""
        drawing = self.drawing
        return type(drawing)(drawing.function, *drawing.args, part=part, **drawing.kwargs)


class Pipe:
    """A pipe's two ends (0: read, 1: write), each closed once: by ``close``, or by the
    ``Connection`` it was ``take``n for."""

    def __init__(self):
        self.ends: list[int | None] = list(os.pipe())

    def take(self, end: int) -> int | None:
        """The file descriptor of ``end``, now the caller's to close; None where it was closed."""
        fd, self.ends[end] = self.ends[end], None
        return fd

    def close(self, end: int) -> None:
        """Close ``end`` unless it was closed or taken already."""
        fd = self.take(end)
        if fd is not None:
            os.close(fd)


class Part:
    """Which process draws what of a split figure: the ``main`` part (all but the panels from
    ``first`` on; it writes the file) or the helper (those panels), and the ``Pipe`` between them."""

    def __init__(self, main: bool, first: int, pipe: Pipe):
        self.main, self.first, self.pipe = main, first, pipe

    def finish(self, fig, path, repeated, dpi: int = 110) -> None:
        """Draw this part of ``fig`` (``figures.Repeated`` panels) and write ``path`` (main part),
        or send the helper's panels."""
        fig.set_dpi(dpi)
        if self.main:
            self._main(fig, path, repeated, dpi)
        else:
            self._helper(fig, repeated)

    def _main(self, fig, path, repeated, dpi: int) -> None:
        canvas = fig.canvas
        repeated.draw(canvas, stop=self.first)
        sent = _received(self.pipe.take(0))
        pixels = np.array(canvas.buffer_rgba())
        if sent is not None and _pasted(pixels, *sent):
            atomic_write(path, png_rgb(pixels, dpi))
            return
        repeated.draw_more(canvas, self.first)  # no help: these panels drawn here, after the others as always
        atomic_write(path, png_rgb(np.asarray(canvas.buffer_rgba()), dpi))

    def _helper(self, fig, repeated) -> None:
        canvas = fig.canvas
        shown = [artist for artist in fig.get_children() if artist is not fig.patch and artist.get_visible()]
        for artist in shown:
            artist.set_visible(False)
        try:
            canvas.draw()  # the figure's background alone
            repeated.axes.set_visible(True)
            repeated.draw_more(canvas, self.first)
        finally:
            for artist in shown:
                artist.set_visible(True)
        words = _words(np.asarray(canvas.buffer_rgba()))
        background = words[0, 0]
        reach = _grown(words != background)
        rows = np.flatnonzero(reach.any(axis=1))
        top, bottom = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)
        _send(self.pipe.take(1), (background, top, words[top:bottom].copy(), reach[top:bottom].copy()))


def _words(pixels: np.ndarray) -> np.ndarray:
    """(height, width, 4) uint8 RGBA pixels as (height, width) uint32 words (a view)."""
    return pixels.view(np.uint32)[:, :, 0]


def _grown(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every pixel within ``PAD`` pixels (rows and columns) of one set also set."""
    tall = mask.copy()
    for d in range(1, PAD + 1):
        tall[d:] |= mask[:-d]
        tall[:-d] |= mask[d:]
    wide = tall.copy()
    for d in range(1, PAD + 1):
        wide[:, d:] |= tall[:, :-d]
        wide[:, :-d] |= tall[:, d:]
    return wide


def _pasted(pixels: np.ndarray, background, top: int, band: np.ndarray, reach: np.ndarray) -> bool:
    """Copy the helper's pixels (``band``, rows from ``top``) into ``pixels`` where they are
    within its ``reach``, if ``pixels`` is plain ``background`` there."""
    target = _words(pixels)[top:top + len(band)]
    if target.shape != band.shape or (target[reach] != background).any():
        return False
    np.copyto(target, band, where=reach)
    return True


def _send(fd: int | None, message) -> None:
    """The helper's panels to the main part; nothing where it is gone (it draws them itself)."""
    if fd is None:
        return
    try:
        with Connection(fd) as connection:
            connection.send(message)
    except OSError:
        pass


def _received(fd: int | None):
    """The helper's message, or None where it died or sent nothing within ``WAIT``."""
    if fd is None:
        return None
    with Connection(fd) as connection:
        try:
            return connection.recv() if connection.poll(WAIT) else None
        except (EOFError, OSError):
            return None


def split(jobs: list, groups: list[list[int]], loads: list[float]) -> tuple[list, list, list]:
    """``figures.render``'s ``jobs`` and ``groups`` (indices, one list per process, with their
    ``loads``) where each ``PanelDrawing`` gives the least loaded other group as many of its
    panels as evens the two out: its main part ends its group, the helper part ends the other.
    Returns the jobs (the split ones' parts appended, each with a fourth item: what to draw
    instead if its process fails, None for a helper), the groups, and the pipes as (``Pipe``,
    the main part's group, the helper's group)."""
    jobs, groups, pipes = list(jobs), [list(g) for g in groups], []
    for index, (weight, path, draw) in enumerate(list(jobs)):
        if not isinstance(draw, PanelDrawing) or len(groups) < 2:
            continue
        here = next(g for g, group in enumerate(groups) if index in group)
        there = min((g for g in range(len(groups)) if g != here), key=lambda g: loads[g])
        unit = draw.panel_weight
        moved = min(draw.panels, math.floor((loads[here] - loads[there] - HELPER_COST * unit) / (2 * unit)))
        if moved < 1:
            continue
        pipe = Pipe()
        pipes.append((pipe, here, there))
        first = draw.panels - moved
        groups[here].remove(index)
        groups[here].append(len(jobs))
        jobs.append((weight - moved * unit, path, draw.part(Part(True, first, pipe)), draw))
        groups[there].append(len(jobs))
        jobs.append(((moved + HELPER_COST) * unit, path, draw.part(Part(False, first, pipe)), None))
        loads[here] -= moved * unit
        loads[there] += (moved + HELPER_COST) * unit
    return jobs, groups, pipes


def keep(pipes: list, group: int) -> None:
    """In the process drawing ``group``: close the ends of ``split``'s pipes that it does not use,
    so that a dead partner is seen (end of file, a broken pipe) instead of waited for."""
    for pipe, main, helper in pipes:
        if group != main:
            pipe.close(0)
        if group != helper:
            pipe.close(1)

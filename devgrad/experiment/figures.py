"""The plumbing under a run's pictures: matplotlib (optional, imported on first use), the fonts,
the colours shared by every picture, PNG writing, and drawing independent figures side by side
on the machine's cores.

Nothing here knows what a picture shows; ``report`` draws them.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np

from devgrad.backend import cuda_started
from devgrad.experiment import panel_split
from devgrad.io import atomic_write, png_rgb
from devgrad.version import extra_hint

PLOT_HINT = f"to get plots, {extra_hint('plot', 'matplotlib')}"

# Fonts tried after DejaVu Sans (matplotlib's own) for characters it lacks, such as a run named in
# Chinese; matplotlib's "Last Resort" font ends the list: a glyph it draws as a labelled box is
# better than a "Glyph missing" warning per character and an empty square.
_FALLBACK_FONTS = ("Noto Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Droid Sans Fallback",
                   "Arial Unicode MS", "Noto Color Emoji", "Noto Emoji", "Symbola", "Last Resort High-Efficiency")


def pyplot():
    """matplotlib's pyplot on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency (the plot extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415 - optional dependency
    except ImportError:
        return None
    return plt


@functools.cache
def font_family() -> tuple[str, ...]:
    """DejaVu Sans, then the installed fonts of ``_FALLBACK_FONTS`` (matplotlib's font fallback)."""
    from matplotlib import font_manager  # noqa: PLC0415 - optional dependency

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ("DejaVu Sans", *(name for name in _FALLBACK_FONTS if name in installed))


@contextlib.contextmanager
def style(plt):
    """The settings every picture of a run is drawn with: the font fallback list, glyphs drawn
    without FreeType's hinting (matplotlib renders text glyph by glyph; unhinted, text takes
    about 60% of the time, docs/performance.md), and no "Glyph missing" warning where no
    installed font has a character (older matplotlib without its Last Resort font): the box
    drawn in its place says as much."""
    settings = {"font.family": list(font_family()), "text.hinting": "no_hinting"}
    with plt.rc_context(settings), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        yield


def unit_colour(plt, i: int):
    """Hidden unit ``i``'s colour, the same in every picture of a run (units Dark2, classes tab10)."""
    return _dark2(plt)[i % 8]


@functools.cache
def _dark2(plt) -> tuple:
    return tuple(plt.get_cmap("Dark2")(j) for j in range(8))  # get_cmap copies the colour map each call


def save(fig, path: Path, dpi: int = 110, repeated: Repeated | None = None) -> None:
    """Write the figure as an RGB PNG (``png_bytes``), whole or not at all."""
    atomic_write(path, png_bytes(fig, dpi, repeated))


def png_bytes(fig, dpi: int = 110, repeated: Repeated | None = None) -> bytes:
    """The figure drawn (with its ``repeated`` panels) as an RGB PNG (``io.png_rgb``: the
    figures are opaque, and unfiltered rows compress them as well as adaptive filters, in a
    third of the time)."""
    fig.set_dpi(dpi)
    canvas = fig.canvas
    if repeated is None:
        canvas.draw()
    else:
        repeated.draw(canvas)
    return png_rgb(np.asarray(canvas.buffer_rgba()), dpi)


class Repeated:
    """One Axes drawn as many panels of a kind: each of ``set_ups`` makes ``axes`` one panel (its
    place, image, lines, title), and the axes is drawn after each, over the rest of the figure.
    Building an Axes with its ticks costs more than drawing it; the pixels are those of an Axes
    per panel, as long as no panel overlaps another."""

    def __init__(self, axes, set_ups: list):
        self.axes, self.set_ups = axes, set_ups

    def draw(self, canvas, stop: int | None = None) -> None:
        """The figure on ``canvas``, then every panel (those before ``stop``) on it."""
        self.axes.set_visible(False)
        canvas.draw()
        self.axes.set_visible(True)
        self.draw_more(canvas, 0, stop)

    def draw_more(self, canvas, start: int, stop: int | None = None) -> None:
        """Panels ``start`` to ``stop`` on what ``canvas`` holds."""
        renderer = canvas.get_renderer()
        for set_up in self.set_ups[start:stop]:
            set_up(self.axes)
            self.axes.draw(renderer)


class reused:  # noqa: N801 - used as a function: a context manager
    """``make()``'s (figure, axes) — or, in a process that drew a figure of the same ``key``
    before (its kind and all that shapes its skeleton: panels, size) with the same rcParams,
    that figure again: its Axes, Axis and Tick objects kept, all drawn on it removed and its
    Axes set back as new (``_cleared``), or a new figure where that fails. Building the Axes and
    their ticks costs up to a quarter of drawing such a figure (docs/performance.md); the pixels
    are those of a new one. A drawing that goes through without an error leaves its figure for
    the next one (pyplot never holds it); one that fails leaves nothing.
    ``with reused(plt, key, make) as (fig, axes): ...``"""

    kept: ClassVar[dict] = {}  # key -> (figure, axes, its Axes as made, its canvas, the rcParams it had)
    LIMIT = 8  # kinds of figure kept at most (a few MiB each)

    def __init__(self, plt, key: tuple, make):
        self.plt, self.key, self.make = plt, key, make

    def __enter__(self):
        rc = dict(self.plt.rcParams)
        entry = reused.kept.pop(self.key, None)
        if entry is not None and entry[4] == rc and _cleared_or_not(entry[0], entry[2]):
            entry[0].set_canvas(entry[3])  # pyplot's close left it a bare canvas
            self.entry = entry
        else:
            fig, axes = self.make()
            self.entry = (fig, axes, tuple(fig.axes), fig.canvas, rc)
        return self.entry[0], self.entry[1]

    def __exit__(self, kind, error, trace) -> None:
        self.plt.close(self.entry[0])
        if kind is None and len(reused.kept) < reused.LIMIT:
            reused.kept[self.key] = self.entry


def _cleared_or_not(fig, axes: tuple) -> bool:
    """``_cleared``, False where matplotlib refuses to remove something drawn on it."""
    try:
        return _cleared(fig, axes)
    except (NotImplementedError, ValueError, AttributeError):  # an artist with no way to be removed
        return False


def _cleared(fig, axes: tuple) -> bool:
    """Remove what was drawn on ``fig`` (its colour bars, legends, lines, images, collections,
    patches, texts; the suptitle emptied) and set its Axes back as new: linear scales with their
    default locators and formatters, no titles or axis labels, data limits empty, view limits
    (0, 1) autoscaled, the colour cycle from its start. What a kind of figure sets the same way
    at every drawing (tick parameters, grid, label sizes, subplot margins) stays. False where the
    figure has Axes other than ``axes`` left: it is not to be reused."""
    for artist in [*fig.legends, *fig.lines, *fig.patches, *fig.images, *fig.artists,
                   *(t for t in fig.texts if t is not getattr(fig, "_suptitle", None))]:
        artist.remove()
    if getattr(fig, "_suptitle", None) is not None:
        fig.suptitle("")
    for ax in axes:
        for mappable in [*ax.images, *ax.collections]:
            if getattr(mappable, "colorbar", None) is not None:
                mappable.colorbar.remove()
    if tuple(fig.axes) != axes:
        return False
    for ax in axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        for artist in [*ax.lines, *ax.images, *ax.collections, *ax.patches, *ax.texts, *ax.tables, *ax.artists]:
            artist.remove()
        ax.set_prop_cycle(None)
        for loc in ("left", "center", "right"):
            ax.set_title("", loc=loc)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_xscale("linear")
        ax.set_yscale("linear")
        ax.relim()
        ax.set_xlim(0, 1, auto=True)
        ax.set_ylim(0, 1, auto=True)
    return True


class Drawing:
    """One figure to draw: ``function(plt, *args, **kwargs)`` in the run's style, called with no
    arguments (``render``'s jobs). Plain data and a module-level function: it can be sent to a
    ``plot_worker``."""

    def __init__(self, function, *args, **kwargs):
        self.function, self.args, self.kwargs = function, args, kwargs

    def __call__(self):
        plt = pyplot()
        with style(plt):
            return self.function(plt, *self.args, **self.kwargs)


class precomputed:  # noqa: N801 - used as a function: it stands for ``fn``
    """``fn`` evaluated once on ``points``, here: calling it gives that result for the same
    points (and calls ``fn`` for others). A drawing process must not run the model, which may
    live on a GPU; it gets the values computed before. Sent to another process, it keeps only
    the values."""

    def __init__(self, fn, points: np.ndarray):
        self.fn, self.points, self.values = fn, points, fn(points)

    def __call__(self, query: np.ndarray) -> np.ndarray:
        if query.shape == self.points.shape and np.array_equal(query, self.points):
            return self.values
        if self.fn is None:
            raise ValueError("these values were computed for other points (the model stayed in the run's process)")
        return self.fn(query)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "fn": None}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def fork_is_safe() -> bool:
    """May this process fork workers that only compute on the host? Only on Linux, with no other
    thread (a lock another thread holds — matplotlib's renderer, an import, a Dask worker's
    queues — stays held forever in the child) and no CUDA context (a child cannot use it)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1 and not cuda_started()


_busy = False  # set by ``cores_busy``


def cores_busy() -> None:
    """Say that this process is one of as many busy processes as cores (a lecture's worker):
    ``render`` draws its figures here, one by one. A forked drawing process would only take turns
    with the others, and the figures it drew could not be ``reused`` by this process's next run."""
    global _busy
    _busy = True


def render(jobs: list) -> list[Path]:
    """Draw independent figures: ``jobs`` are (weight, path, draw: () -> None writing path). With
    several cores, where ``fork_is_safe`` and the cores are not all busy (``cores_busy``), they
    are split over forked processes (the heaviest first, each to the least loaded group; this
    process draws one group; a ``panel_split.PanelDrawing`` shares its panels with another
    group), which share everything already imported and computed; elsewhere one by one. A group
    whose process failed is drawn again here, so that its error is raised as usual. Returns the
    paths in the order of ``jobs``."""
    workers = min(_cores(), len(jobs))
    if workers < 2 or _busy or not fork_is_safe():
        for _, _, draw in jobs:
            draw()
        return [path for _, path, _ in jobs]
    groups: list[list[int]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for i in sorted(range(len(jobs)), key=lambda i: -jobs[i][0]):
        least = loads.index(min(loads))
        groups[least].append(i)
        loads[least] += jobs[i][0]
    drawn, groups, pipes = panel_split.split(jobs, groups, loads)
    failed = _forked(drawn, groups, pipes)
    for group in failed:
        for i in group:
            remove_partial_writes(Path(drawn[i][1]))
            again = drawn[i][3] if len(drawn[i]) > 3 else drawn[i][2]  # a split figure: all of it, or none
            if again is not None:
                again()
    return [path for _, path, _ in jobs]


def _forked(jobs: list, groups: list[list[int]], pipes: list) -> list:
    """Draw ``groups[0]`` here and the others in forked processes; the groups that failed."""
    children = {}
    try:
        for g, group in enumerate(groups[1:], start=1):
            children[spawn(functools.partial(_draw_group, jobs, group, pipes, g))] = group
        _draw_group(jobs, groups[0], pipes, 0)
    finally:
        panel_split.keep(pipes, -1)  # this process's ends, whatever happened: a helper blocked on one is freed
        failed = _reap(children)
    return failed


def _draw_group(jobs: list, group: list[int], pipes: list, g: int) -> None:
    panel_split.keep(pipes, g)
    for i in group:
        jobs[i][2]()


def spawn(work) -> int:
    """A forked process that runs ``work()`` and leaves without this process's exit handlers, with
    exit status 0 where it returned and 1 where it raised; its process id."""
    sys.stdout.flush()  # a child must not inherit (and print again) buffered output
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return pid


def remove_partial_writes(path: Path) -> None:
    """The temporary file ``atomic_write`` (or the animation's writer) was writing for ``path``
    when its process was killed."""
    for pattern in (f".{glob.escape(path.name)}.*.tmp", f"{glob.escape(path.name)}.partial.*"):
        for tmp in path.parent.glob(pattern):
            tmp.unlink(missing_ok=True)


CHILD_TIMEOUT = 120.0  # seconds: far beyond any figure; a child stuck on a lock is ended, not waited for


def _reap(children: dict) -> list:
    """Wait for the drawing processes; the groups of those that failed, or hung past
    ``CHILD_TIMEOUT`` (killed), to be drawn again here."""
    failed, pending = [], dict(children)
    deadline = time.monotonic() + CHILD_TIMEOUT
    while pending:
        for pid in list(pending):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                group = pending.pop(pid)
                if status != 0:
                    failed.append(group)
        if pending and time.monotonic() > deadline:
            for pid, group in pending.items():
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                failed.append(group)
            pending = {}
        if pending:
            time.sleep(0.005)
    return failed

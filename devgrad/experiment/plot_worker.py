"""A process that imports matplotlib while a run trains, then draws the run's figures.

A tiny network trains on one core; importing matplotlib takes about half a second, and the first
figure of a process loads its fonts. Forked when the training starts, or earlier where
``devgrad run`` starts (``start_early``: before the run imports its modules and makes its data),
the worker does both on another core meanwhile; at the end the run sends it the figures' data
(``figures.Drawing`` jobs) and it draws them side by side (``figures.render``), as the run's own
process would have. Those sent first (``begin``: the learning curves, which need no model) are
drawn by a process the worker forks at once, so that the worker is free for the others the
moment their data arrives.

Only where that helps and is safe: matplotlib installed, two cores or more, forking safe
(``figures.fork_is_safe``: Linux, no other thread, no CUDA context), matplotlib's pyplot not
imported yet (a process that has it gains nothing), this process no pool's worker (the pool's
other runs keep the cores busy), and a core idle when the training starts (``idle_core``): with
every core busy the worker only takes turns with the training, and its copied pages and pipe
only add CPU time (docs/performance.md). Everywhere else, and whenever the worker cannot draw (a
broken matplotlib, a figure failed, it died), the run draws its figures itself, so that an error
is raised there as usual.

The worker never outlives the run: Ctrl-C is the run's (the worker ignores it), and the run ends
the worker with its own drawing processes (one process group) however the run ends; a worker
whose run died sees its pipe close and leaves.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib.util
import multiprocessing
import os
import pickle
import signal
import sys
import weakref
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from devgrad.experiment import figures

__all__ = ["PlotWorker", "discard_early", "idle_core", "start_early", "wanted"]


def wanted() -> bool:
    """Would a worker forked now draw this process's figures sooner (see the module's docstring)?"""
    return (figures._cores() >= 2 and "matplotlib.pyplot" not in sys.modules and figures.fork_is_safe()
            and multiprocessing.parent_process() is None and importlib.util.find_spec("matplotlib") is not None
            and idle_core())


def idle_core(loadavg: Path = Path("/proc/loadavg"), threads: Path = Path("/proc/self/task")) -> bool:
    """Is a core idle beside this process now? Fewer runnable tasks than cores, this process
    counted once: ``loadavg``'s fourth field counts each of its running ``threads``, and NumPy's
    BLAS threads, just started when ``devgrad run`` forks its worker, are often running then.
    True where that cannot be read."""
    try:
        runnable = int(loadavg.read_text().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return True
    return runnable - max(_running(threads), 1) + 1 < figures._cores()


def _running(threads: Path) -> int:
    """How many of this process's ``threads`` are running or runnable now (0 where unreadable)."""
    count = 0
    for stat in threads.glob("*/stat"):
        with contextlib.suppress(OSError, IndexError):
            count += stat.read_text().rpartition(")")[2].split()[0] == "R"
    return count


WORKER_TIMEOUT = 300.0  # seconds from the run's last epoch: far beyond its figures; a hung worker is ended


_early: PlotWorker | None = None  # forked by ``start_early``, for the next ``PlotWorker.start``


def start_early(overrides: Sequence[str] = ()) -> None:
    """Fork the worker now, where ``devgrad run`` starts (the spec's ``overrides`` not turning
    the plots off): before the run imports its modules and makes its data and model, so that
    matplotlib is imported, and warmed up, by the time the training ends. ``PlotWorker.start``
    takes it; a run without plots ends it (``discard_early``), and so does the process's exit."""
    global _early
    off = {f"plots.enabled={word}" for word in ("false", "no", "off", "0")}
    if _early is None and not off & {o.replace(" ", "").lower() for o in overrides}:
        _early = PlotWorker.fork()


def discard_early() -> None:
    """End the worker ``start_early`` forked, where the run draws no plots."""
    global _early
    if _early is not None:
        _early.close()
        _early = None


class PlotWorker:
    """The forked worker: ``start`` it when the training starts, ``begin`` with the figures that
    need no model evaluated and ``render`` them all at the end (None: draw them here), ``close``
    it whatever happened."""

    def __init__(self, process, connection: Connection):
        self.process = process
        self.connection = connection
        self.begun: list = []  # the jobs ``begin`` sent
        self._finalizer = weakref.finalize(self, _end, process, connection)

    @classmethod
    def start(cls) -> PlotWorker | None:
        """The worker ``start_early`` forked, else one importing matplotlib from now on; None
        where one is not ``wanted``."""
        global _early
        early, _early = _early, None
        if early is not None and early.process.is_alive():
            return early
        if early is not None:
            early.close()
        return cls.fork()

    @classmethod
    def fork(cls) -> PlotWorker | None:
        """A new worker, or None where one is not ``wanted``."""
        if not wanted():
            return None
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs, ours), name="devgrad-plots", daemon=True)
        # A Ctrl-C between the fork and the worker's own handler would give the worker a traceback:
        # the signal waits (blocked) until the worker ignores it, and is delivered here after the fork.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        gc.freeze()  # the worker's garbage collections leave the run's objects, and their pages, alone
        try:
            process.start()
            pid = process.pid
            assert pid is not None, "a started process has an id"
            with contextlib.suppress(OSError):  # also set by the worker: whichever runs first
                os.setpgid(pid, pid)
        finally:
            gc.unfreeze()
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        theirs.close()
        return cls(process, ours)

    def begin(self, jobs: list) -> None:
        """Send ``jobs`` (as ``figures.render`` takes them) whose data is ready while the run
        computes the others' (the model evaluated over the plane): a process the worker forks
        draws them now, one by one. ``render`` is given them again, first."""
        try:
            self.connection.send(("begin", jobs))
        except (OSError, ValueError, TypeError, AttributeError, pickle.PicklingError):
            return  # not sent: ``render`` sends them with the others
        self.begun = list(jobs)

    def render(self, jobs: list) -> list[Path] | None:
        """Draw ``jobs`` (as ``figures.render`` takes them; those ``begin`` sent first) in the
        worker; their paths, or None where the worker could not draw them all. Interrupted
        (Ctrl-C), the worker is ended and its half-written files are removed."""
        try:
            self.connection.send(("render", jobs[len(self.begun):]))
            reply = self.connection.recv() if self.connection.poll(WORKER_TIMEOUT) else None
        except (OSError, EOFError, ValueError, TypeError, AttributeError, pickle.PicklingError):
            reply = None  # died, or a job that cannot be sent: drawn here
        except BaseException:
            self._abandon(jobs)
            raise
        if reply is None:
            self._abandon(jobs)  # hung, it would go on drawing while the run draws the same files
        return reply

    def _abandon(self, jobs: list) -> None:
        """End the worker, and remove the files it was writing when it was ended."""
        self.close()
        for _, path, _ in jobs:
            figures.remove_partial_writes(Path(path))

    def close(self) -> None:
        """End the worker and its drawing processes (at once: what they draw is no longer wanted),
        and remove what it was writing of the jobs ``begin`` sent."""
        self._finalizer()
        for _, path, _ in self.begun:
            figures.remove_partial_writes(Path(path))


def _end(process, connection: Connection) -> None:
    connection.close()
    if process.exitcode is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:  # its group not made yet (or gone): the worker alone
            with contextlib.suppress(OSError):
                process.kill()
    process.join()


def _serve(connection: Connection, ours: Connection) -> None:
    """The worker's life: import matplotlib, warm it up, draw what it is sent, reply, leave."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run handles Ctrl-C, and ends this process
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # its drawing processes in its group: ended together with it
    ours.close()  # the run's end of the pipe: when the run dies, the worker sees the pipe close
    plt = figures.pyplot()
    if plt is not None and not connection.poll(0):  # the figures are not there yet: time to warm up
        _warm_up(plt)
    begun: list = []
    beside = None
    try:
        kind, jobs = connection.recv()
        begun = jobs if kind == "begin" else []
        if begun and connection.poll(0):  # the others came meanwhile: all drawn side by side
            kind, others = connection.recv()
            begun, jobs = [], [*begun, *others]
        beside = _fork_drawing(begun) if plt is not None and kind == "begin" else None
        drawn = plt is not None and (beside is not None or _drawn(begun))  # while the run computes the others' data
        if kind == "begin":
            kind, jobs = connection.recv()
    except (EOFError, OSError):
        _stop(beside, begun)  # the run ended without plots
        return
    reply = None
    if drawn:
        reply = _render(jobs, begun, beside)
    else:
        _stop(beside, begun)
    with contextlib.suppress(OSError):
        connection.send(reply)


def _render(jobs: list, begun: list, beside: int | None) -> list | None:
    """Draw ``jobs`` (``figures.render``), then wait for the process ``beside`` drawing the ``begun``
    ones (those of a process that failed drawn again here); every path, or None where a figure
    failed (the run draws them all again, and raises the error there)."""
    try:
        others = figures.render(jobs)
    except Exception:
        _stop(beside, begun)
        return None
    if beside is not None and figures._reap({beside: begun}):
        for _, path, _ in begun:
            figures.remove_partial_writes(Path(path))
        if not _drawn(begun):
            return None
    return [path for _, path, _ in begun] + others


def _stop(beside: int | None, begun: list) -> None:
    """End the process drawing the ``begun`` jobs, and remove what it was writing: the run draws
    them again, or wants none."""
    if beside is not None:
        with contextlib.suppress(OSError):
            os.kill(beside, signal.SIGKILL)
            os.waitpid(beside, 0)
        for _, path, _ in begun:
            figures.remove_partial_writes(Path(path))


def _fork_drawing(jobs: list) -> int | None:
    """A process forked to draw ``jobs`` (those ``begin`` sent) while this one waits for the others,
    so that their data reaching the worker finds a process free to draw them at once; its id, or
    None where forking is not safe (the worker then draws them itself first)."""
    if not jobs or figures._cores() < 2 or not figures.fork_is_safe():
        return None
    return figures.spawn(functools.partial(_draw_all, jobs))


def _draw_all(jobs: list) -> None:
    for _, _, draw in jobs:
        draw()


def _drawn(jobs: list) -> bool:
    """Draw ``jobs`` here, one by one; False where one failed (the run draws them again)."""
    try:
        for _, _, draw in jobs:
            draw()
    except Exception:
        return False
    return True


def _warm_up(plt) -> None:
    """Draw a small figure with what the run's figures use (text in the run's fonts, an image,
    points, lines, a legend, a colour bar, a PNG), so that the real ones find it all loaded."""
    with figures.style(plt):
        fig, ax = plt.subplots(figsize=(2, 2))
        image = ax.imshow([[0.0, 1.0], [1.0, 0.0]], cmap="RdBu_r", interpolation="bilinear")
        ax.scatter([0, 1], [0, 1], c=[0, 1], cmap="tab10", edgecolors="w", linewidths=0.3)
        ax.plot([0, 1], [1, 0], color=figures.unit_colour(plt, 0), label="x₁ −0.5·x₂")
        ax.legend(fontsize=8)
        ax.set_title("x₁, x₂: (0.5) σ", fontsize=10)
        fig.colorbar(image, ax=ax, label="P(class 1)")
        figures.png_bytes(fig, dpi=30)
        plt.close(fig)

"""The lecture's runs side by side in forked worker processes, and how they stop.

A Ctrl-C or a failed run ends the lecture promptly: no queued run starts (the pool hands its
workers runs ahead of time, so each checks the lecture's stop flag first), a run in flight stops
as ``devgrad run`` does (status "stopped", its files written), and the error or the interruption
is raised in the lecture's process once the workers are done.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from devgrad.experiment.errors import RunError
from devgrad.experiment.local_pool import LocalPool

__all__ = ["train_side_by_side"]

# The lecture's stop flag, set by its process when it stops; created before the workers are
# forked, so every worker holds it.
_stop = None


def train_side_by_side(run, jobs: list[tuple[str, Path, dict]], workers: int, quiet: bool, meanwhile=None) -> dict:
    """``run(path, **kwargs)`` for each (name, path, kwargs) of ``jobs``, started in that order on
    ``workers`` forked processes (the caller has checked that forking is safe), while this process
    calls ``meanwhile``; returns {name: result}. A failed run's error is raised as it is, a worker
    that died as a ``RunError``, a Ctrl-C as ``KeyboardInterrupt``: after the runs in flight have
    stopped, and before any queued one starts."""
    global _stop
    _stop = multiprocessing.get_context("fork").Event()
    # fork here (no other thread), one BLAS thread per worker, Ctrl-C ignored when idle, and with a
    # worker per core each draws its runs' figures itself (LocalPool: figures.cores_busy)
    pool = LocalPool(workers)
    futures: dict = {}
    try:
        futures = {pool.submit({"run": run, "path": path, "kwargs": kwargs}, None, fn=_train): name
                   for name, path, kwargs in jobs}
        if meanwhile is not None:
            meanwhile()
        results = {}
        for future in pool.as_completed(futures):
            results[futures[future]] = future.result()
            if not quiet:
                print(f"lecture: {futures[future]} done", flush=True)
    except BaseException as exc:
        _stop.set()
        if isinstance(exc, KeyboardInterrupt):
            pool.interrupt(futures)  # SIGINT to each worker: a run in flight stops, at most once
        pool.close(wait=True)
        if isinstance(exc, BrokenProcessPool):
            raise RunError("a worker process of devgrad lecture died before its runs were done (killed from "
                           "outside, or out of memory): run devgrad lecture again") from None
        raise
    pool.close(wait=True)
    return results


def _train(job: dict):
    """One run in a worker (``job``: its run function, spec path and keyword arguments), unless the
    lecture is stopping; the first Ctrl-C during it stops it and later ones are ignored, so that it
    can write its files. A run that fails or stops stops the lecture."""
    run, path, kwargs = job["run"], job["path"], job["kwargs"]
    signal.signal(signal.SIGINT, _stop_once)
    sys.unraisablehook = _raise_interrupt_again
    try:
        if _stop is not None and _stop.is_set():
            return None
        return run(path, **kwargs)
    except BaseException:
        if _stop is not None:  # at once, here: this worker's next run must not start before the lecture hears
            _stop.set()
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.unraisablehook = sys.__unraisablehook__
        _no_interrupt_pending()


def _stop_once(signum, frame) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _raise_interrupt_again(unraisable) -> None:
    """The Ctrl-C that landed where Python cannot raise it (a weakref's callback or a ``__del__``,
    which matplotlib's drawing runs often): it would be printed and lost, and the run would go on;
    it is raised again in the run a millisecond later (a timer: a signal sent now would land in this
    hook). Anything else is printed as Python prints it."""
    if (unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt)
            and threading.current_thread() is threading.main_thread()):
        signal.signal(signal.SIGALRM, _interrupt_now)
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        return
    sys.__unraisablehook__(unraisable)


def _interrupt_now(signum, frame) -> None:
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    raise KeyboardInterrupt


def _no_interrupt_pending() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)

"""A sweep's local executor: a ``concurrent.futures`` process pool of worker processes (fork on
Linux when that is safe, spawn elsewhere), and how a Ctrl-C reaches the runs in it."""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import sys

from devgrad.experiment import figures
from devgrad.experiment.figures import fork_is_safe
from devgrad.experiment.sweep_point import run_point

try:  # optional (the progress extra): BLAS threads limited in a process where BLAS is already loaded
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

__all__ = ["LocalPool"]


def _worker_init(blas_threads: int, busy: bool = False) -> None:
    """A local pool worker: ``blas_threads`` BLAS threads, ignores Ctrl-C between runs, dies with
    the sweep (Linux); one of as many workers as cores (``busy``) draws its runs' figures itself
    (``figures.cores_busy``: a forked drawing process would only take turns with the other
    workers, and its figures could not be reused by the worker's next run)."""
    if busy:
        figures.cores_busy()
    # OMP_NUM_THREADS would come too late: a forked worker has its parent's BLAS, already started.
    # The limit holds for the worker's life; a run's train.threads sets its own while it trains.
    if threadpool_limits is not None:
        threadpool_limits(limits=blas_threads, user_api="blas")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # see sweep_point: a run takes Ctrl-C, an idle worker not
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes  # noqa: PLC0415 - Linux only

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no orphan keeps training


class LocalPool:
    """A process pool of ``jobs`` workers (fork on Linux: no re-import; spawn elsewhere), each with
    ``blas_threads`` BLAS threads (several runs share the cores)."""

    def __init__(self, jobs: int, blas_threads: int = 1):
        method = "fork" if fork_is_safe() else "spawn"  # Linux, no other thread, no CUDA context
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context(method), initializer=_worker_init,
            initargs=(blas_threads, jobs >= figures._cores()))
        self.description = f"local process pool, {jobs} workers ({method})"

    def submit(self, point: dict, gpus: int | None, fn=run_point):
        """Run ``fn(point)`` on a worker; a future of its result line."""
        return self.pool.submit(fn, point)

    def as_completed(self, futures):
        """The futures as they finish."""
        return concurrent.futures.as_completed(futures)

    def cancel(self, futures) -> None:
        """Cancel the futures that have not started."""
        for f in futures:
            f.cancel()

    def interrupt(self, futures) -> None:
        """Ctrl-C: queued runs are cancelled; every worker is sent SIGINT, so a run in flight stops
        and checkpoints (an idle worker ignores it)."""
        self.cancel(futures)
        # The pool has no public list of its processes; without it, the stop file still stops each run
        for process in self._processes():
            with contextlib.suppress(OSError, AttributeError):
                os.kill(process.pid, signal.SIGINT)

    def collect(self, futures, timeout: float) -> list:
        """The result lines of ``futures`` that finish within ``timeout`` seconds."""
        concurrent.futures.wait(futures, timeout=timeout)
        return [f.result() for f in futures if f.done() and not f.cancelled() and f.exception() is None]

    def close(self, wait: bool = True) -> None:
        """Shut the pool down; when not waiting (an interrupted sweep), a worker still busy is ended
        (its run resumes later from its checkpoint)."""
        processes = self._processes()
        self.pool.shutdown(wait=wait, cancel_futures=True)
        if not wait:
            for process in processes:
                with contextlib.suppress(Exception):
                    process.terminate()

    def _processes(self) -> list:
        return list((getattr(self.pool, "_processes", None) or {}).values())

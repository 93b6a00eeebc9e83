"""A sweep's Dask executor (the dask extra): a running scheduler at ``--address``, a Client the
user gives, or a ``LocalCluster`` on 127.0.0.1 with single-threaded worker processes."""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import os
import signal
import time

from devgrad.experiment.errors import RunError
from devgrad.experiment.sweep_point import run_point
from devgrad.version import extra_hint

try:  # optional (the progress extra): BLAS threads limited in a process where BLAS is already loaded
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

__all__ = ["DASK_HINT", "DaskPool", "check_address", "import_distributed"]

DASK_HINT = extra_hint("dask", "'dask[distributed]'")
CLOSE_SECONDS = 0.3  # how long an interrupted sweep gives Dask to close its client, then its cluster


def import_distributed():
    """dask.distributed, or a RunError naming the extra that installs it."""
    try:
        distributed = importlib.import_module("dask.distributed")  # optional (the dask extra)
    except ImportError:
        raise RunError(f"--executor dask needs Dask distributed, which is not installed: {DASK_HINT}") from None
    return distributed


def check_address(address: str) -> None:
    """A Dask scheduler address Dask can dial (tcp://HOST:PORT, tls://, ...), not a web address."""
    from distributed.comm import parse_address  # noqa: PLC0415 - optional (the dask extra)
    from distributed.comm.registry import backends  # noqa: PLC0415

    try:
        scheme, _ = parse_address(address)
    except ValueError as exc:
        scheme, reason = None, str(exc)
    else:
        reason = f"Dask does not speak {scheme}://"
    if scheme not in backends:
        raise RunError(f"--address {address}: {reason}; give the scheduler's address as 'dask scheduler' prints it, "
                       f"e.g. tcp://HOST:8786 (schemes: {', '.join(sorted(backends))})")


def prepare_worker(blas_threads: int) -> int:
    """On a worker of the sweep's own LocalCluster (in its main thread): a terminal's Ctrl-C, which
    reaches every process of the sweep, is left to the sweep's process, which stops the runs
    through its stop file (a worker killed by it would lose its run's line and its last epochs);
    ``blas_threads`` BLAS threads. Returns the worker's process id."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threadpool_limits is not None:
        threadpool_limits(limits=blas_threads, user_api="blas")
    return os.getpid()


class DaskPool:
    """Dask distributed: a running scheduler at ``address``, a Client given by the user, or a
    LocalCluster on 127.0.0.1 with ``jobs`` single-threaded worker processes."""

    def __init__(self, jobs: int, address: str | None, client=None):
        distributed = import_distributed()
        self.distributed = distributed
        self.cluster = None
        self.worker_pids: list[int] = []  # the processes of the sweep's own LocalCluster
        self.own_client = client is None
        if client is not None:
            self.client = client
            where = f"Dask client {getattr(client, 'scheduler', None) and client.scheduler.address}"
        elif address:
            try:
                self.client = distributed.Client(address, timeout="20s")
            except (OSError, ValueError, TimeoutError) as exc:
                raise RunError(f"--address {address}: no Dask scheduler answered ({exc}); start one with "
                               f"'dask scheduler' and workers with 'dask worker {address}'") from None
            where = f"Dask scheduler {address}"
        else:
            self.cluster = distributed.LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                                    host="127.0.0.1", dashboard_address=None,
                                                    env={"OMP_NUM_THREADS": "1"})
            self.client = distributed.Client(self.cluster)
            self.worker_pids = sorted(self.client.run(prepare_worker, 1).values())
            where = f"Dask LocalCluster on 127.0.0.1, {jobs} single-threaded workers"
        self.description = where

    def submit(self, point: dict, gpus: int | None, fn=run_point):
        """Run ``fn(point)`` on a worker (with ``gpus`` GPU resources when given); a future of its line."""
        resources = {"GPU": gpus} if gpus else None
        return self.client.submit(fn, point, pure=False, resources=resources,
                                  key=f"devgrad-{point['name']}-{os.getpid()}-{time.time_ns()}")

    def as_completed(self, futures):
        """The futures as they finish."""
        return self.distributed.as_completed(futures)

    def cancel(self, futures) -> None:
        """Cancel the futures that have not finished."""
        self.client.cancel([f for f in futures if f.status == "pending"])

    def interrupt(self, futures) -> None:
        """Ctrl-C: no signal reaches a run on a Dask worker (the sweep's own workers ignore the
        terminal's), and a Dask future does not tell a queued task from a running one, so nothing is
        cancelled here: a run in flight sees the sweep's stop file after its epoch and stops with a
        checkpoint, a queued one sees it and does not start."""

    def collect(self, futures, timeout: float) -> list:
        """The result lines of ``futures`` that finish within ``timeout`` seconds."""
        try:
            self.distributed.wait(futures, timeout=timeout)
        except TimeoutError:  # runs still stopping: their lines are not waited for
            pass
        except concurrent.futures.CancelledError:  # a cancelled run has no line
            pass
        except OSError as exc:  # the scheduler's connection closed under the sweep
            raise RunError(f"the Dask scheduler stopped answering while the sweep was stopping "
                           f"({type(exc).__name__}: {exc}); the runs that did not report resume with "
                           "devgrad sweep --resume") from None
        return [f.result() for f in futures if f.status == "finished"]

    def close(self, wait: bool = True) -> None:
        """Close the client this sweep opened, and its LocalCluster. When not waiting (an interrupted
        sweep: its runs have stopped with a checkpoint, or had their time), the cluster's workers
        are ended at once rather than shut down one by one, and Dask gets CLOSE_SECONDS to close."""
        if wait:
            if self.own_client:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()
            return
        for pid in self.worker_pids:
            with contextlib.suppress(OSError):  # already gone
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):  # what is left of it ends with this process
            if self.own_client:
                self.client.close(timeout=CLOSE_SECONDS)
            if self.cluster is not None:
                self.cluster.close(timeout=CLOSE_SECONDS)

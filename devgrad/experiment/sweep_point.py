"""One point of a sweep on a worker: ``run_point`` trains (or resumes, or records) one run in its
folder and returns its result line; it is what the local pool and Dask ship, importable on any
worker, and it never raises (a failure is data for the sweep)."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import threading
import time
import traceback
from pathlib import Path

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.commands import resume, run
from devgrad.experiment.rundir import why_not_completed
from devgrad.io import atomic_write_text

__all__ = ["NOT_STARTED", "STOP_FILE", "clear_unstarted", "run_point"]

STOP_FILE = ".stop"  # in a sweep folder while a Ctrl-C stops it: a queued run that sees it does not start
NOT_STARTED = "not started"


def run_point(point: dict, callbacks=()) -> dict:
    """Train one grid point in ``point["run_dir"]`` (or resume it there) and return its result
    line. Runs on a worker: a local pool process or a Dask worker. Never raises: a failure is
    recorded (status, error; the traceback in the run folder's error.txt)."""
    started = time.perf_counter()
    run_dir = Path(point["run_dir"])
    line = {"index": point["index"], "overrides": point["overrides"], "seed": point["seed"], "status": "failed",
            "final": None, "best": None, "test": None, "run_dir": str(run_dir),
            "worker": f"{socket.gethostname()}:{os.getpid()}", "wall_seconds": None, "error": None}
    if point.get("stop_file") and Path(point["stop_file"]).exists():
        return {**line, "status": NOT_STARTED}  # the sweep was interrupted before this run began
    with _interruptible():
        _run_point(point, run_dir, line, functools.partial(run, callbacks=callbacks),
                   functools.partial(resume, callbacks=callbacks))
    try:
        summary = ckpt.read_json(run_dir / "summary.json") if (run_dir / "summary.json").exists() else {}
    except (OSError, ValueError):  # unreadable: the line keeps what the run returned
        summary = {}
    line["wall_seconds"] = summary.get("wall_seconds")  # the run's own total over its segments, when it has one
    if line["status"] == "stopped":  # how far it got
        line.update(final=summary.get("final"), best=summary.get("best"))
    if line["wall_seconds"] is None:
        line["wall_seconds"] = round(time.perf_counter() - started, 3)
    return line


def _run_point(point: dict, run_dir: Path, line: dict, run, resume) -> None:
    """Train, resume or record one point, filling in ``line``; a failure is recorded, never raised."""
    try:
        meta = ckpt.read_json(run_dir / "meta.json") if (run_dir / "meta.json").exists() else None
        ended = meta is not None and meta.get("status") in ("completed", "failed", "pruned")
        if ended and (run_dir / "summary.json").exists():
            summary = ckpt.read_json(run_dir / "summary.json")  # ended after its sweep died: record it
        elif meta is not None:
            summary = resume(run_dir, quiet=True, stop_file=point.get("stop_file")).summary
        else:
            clear_unstarted(run_dir)
            summary = run(point["spec"], quiet=True, run_dir=run_dir, stop_file=point.get("stop_file")).summary
        line.update(status=summary.get("status", "failed"), final=summary.get("final"), best=summary.get("best"),
                    test=summary.get("test"))
        if line["status"] != "completed":
            line["error"] = why_not_completed(run_dir)
    except BaseException as exc:  # a run's failure is data for the sweep, never its end
        line["error"] = f"{type(exc).__name__}: {exc}".strip()
        with contextlib.suppress(OSError):
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / "error.txt", traceback.format_exc())
        if isinstance(exc, KeyboardInterrupt):
            line["status"] = "stopped"
            line["error"] = "interrupted (Ctrl-C); devgrad sweep --resume continues it from its checkpoint"


@contextlib.contextmanager
def _interruptible():
    """A local pool's worker ignores Ctrl-C between runs (an idle worker killed by it would break
    the pool); during a run the first Ctrl-C stops the run, which checkpoints, and later ones
    are ignored so that it can. Elsewhere (a Dask worker's thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        yield
        return

    def stop_once(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop_once)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def clear_unstarted(run_dir: Path) -> None:
    """A run folder killed before its run started (config.yaml, perhaps half written: a leftover
    ``.config.yaml.*.tmp`` of an atomic write; no meta.json yet) holds nothing trained: empty it
    so the run can start there. Anything else is never deleted."""
    if not run_dir.is_dir():
        return
    entries = list(run_dir.iterdir())

    def unstarted(path: Path) -> bool:
        if path.is_dir():
            return path.name in ("checkpoints", "plots") and not any(path.iterdir())
        return path.name == "config.yaml" or (path.name.startswith(".") and path.name.endswith(".tmp"))

    if all(unstarted(p) for p in entries):
        for path in entries:
            path.rmdir() if path.is_dir() else path.unlink()

"""Sweeps: a grid of runs of one spec, in parallel on a local process pool or a Dask cluster.

A sweep is the cartesian product of a grid (``{optimizer.lr: [0.1, 0.01], model.hidden: [[16],
[64, 64]]}``) times ``seeds`` repeats of every point. Every point is validated before anything
starts. The unit shipped to a worker is ``run_point``: ``devgrad.experiment.run`` on a plain spec
dict (importable on any worker), returning a small picklable dict. Scheduling is never devgrad's
own: the local executor is ``concurrent.futures.ProcessPoolExecutor``, the cluster executor is
Dask distributed (the ``dask`` extra), GPU-aware through Dask worker resources.

The sweep folder ``sweeps/<name>/<date-time>-<id>/`` holds ``sweep.yaml`` (the resolved grid
and every point), ``results.jsonl`` (one line per finished run, appended as it finishes),
``results.csv`` (sorted by the monitored metric), ``runs/<index>-<overrides>/`` and ``plots/``.
``resume_sweep`` runs only the points without a line in results.jsonl, resuming interrupted
runs from their checkpoints and recording runs that completed after the sweep died.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import csv
import functools
import io
import itertools
import json
import math
import multiprocessing
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment import tracking
from devgrad.experiment.choices import EXECUTORS
from devgrad.experiment.commands import resume, run
from devgrad.experiment.errors import RunError
from devgrad.experiment.examples import spec_file
from devgrad.experiment.figures import fork_is_safe
from devgrad.experiment.html_report import write_sweep_report
from devgrad.experiment.report import _pyplot, _save
from devgrad.experiment.rundir import missing_parents, new_run_dir, now, remove_half_made, why_not_completed
from devgrad.experiment.schema import Loaded, apply_overrides, did_you_mean, load_yaml, parse_value
from devgrad.experiment.spec import NAME_BLOCKS, SCHEMA, SpecError, resolve, to_yaml
from devgrad.experiment.sweepdir import read_results, read_sweep_yaml
from devgrad.io import atomic_write_text

__all__ = ["EXECUTORS", "SweepResult", "parse_grid_option", "parse_grid_options", "resume_sweep", "run_point",
           "sweep"]

STOP_FILE = ".stop"  # in a sweep folder while a Ctrl-C stops it: a queued run that sees it does not start
NOT_STARTED = "not started"
DASK_HINT = "pip install '.[dask]' from the devgrad folder (Dask distributed)"


@dataclass
class SweepResult:
    """What a sweep produced: its folder and one dict per finished run (as in results.jsonl)."""

    sweep_dir: Path
    results: list = field(default_factory=list)
    status: str = "completed"  # completed | stopped (fail-fast) | failed (every run failed)

    @property
    def best(self) -> dict | None:
        """The completed run with the best monitored value."""
        ranked = _ranked(self.results, *_monitor_of(self.sweep_dir))
        return ranked[0] if ranked and ranked[0]["status"] == "completed" else None


# -- the grid ----------------------------------------------------------------------------------

def parse_grid_option(text: str) -> tuple[str, list]:
    """``key.path=v1,v2,...`` (as ``--grid`` takes it) -> (key, [values]); values are YAML, split at
    commas outside brackets and quotes: ``model.hidden=[16],[64,64]`` is two values."""
    if "=" not in text:
        raise SpecError([f"--grid {text!r}: expected key.path=value1,value2,... e.g. --grid optimizer.lr=0.1,0.01"])
    key, values = text.split("=", 1)
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(values):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(values[start:i])
            start = i + 1
    parts.append(values[start:])
    out = []
    for part in parts:
        try:
            out.append(parse_value(part.strip()))
        except yaml.YAMLError as exc:
            raise SpecError([f"--grid {key}: {part.strip()!r} is not valid YAML ({exc})"]) from None
    if not key.strip() or not parts or any(p.strip() == "" for p in parts):
        raise SpecError([f"--grid {text!r}: every value must be non-empty, e.g. --grid optimizer.lr=0.1,0.01"])
    return key.strip(), out


def parse_grid_options(texts) -> dict:
    """Every ``--grid`` option as one grid {key: [values]}. A key given twice is refused: which
    of its value lists was meant cannot be guessed."""
    grid: dict = {}
    problems = []
    for text in texts:
        key, values = parse_grid_option(text)
        if key in grid:
            joined = ",".join(json.dumps(v) for v in [*grid[key], *values])
            problems.append(f"--grid {key} is given twice ({text!r} repeats it); give a key once with all its "
                            f"values, e.g. --grid {key}={joined}")
            continue
        grid[key] = values
    if problems:
        raise SpecError(problems, "--grid")
    return grid


def _short(overrides: dict) -> str:
    """A folder-name-safe summary of a point's overrides: lr=0.01_hidden=64-64."""
    parts = []
    for key, value in overrides.items():
        text = json.dumps(value, separators=(",", ":")).strip('"')
        text = re.sub(r"[\[\]{}\"' ]", "", text).replace(",", "-")
        parts.append(f"{key.split('.')[-1]}={text}")
    name = re.sub(r"[^A-Za-z0-9=._+-]", "_", "_".join(parts)) or "base"
    return name[:80]


def _points(grid: dict, seeds: int, base_seed: int) -> list[dict]:
    """Every (grid point, seed): index, overrides {key: value} and seed."""
    keys = list(grid)
    points: list[dict] = []
    for combo in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        overrides = dict(zip(keys, combo))
        for repeat in range(seeds):
            seed = base_seed + repeat
            points.append({"index": len(points), "overrides": overrides, "seed": seed, "repeat": repeat,
                           "name": f"{len(points):03d}-{_short(overrides)}" + (f"-seed{seed}" if seeds > 1 else "")})
    return points


def _override_strings(point: dict) -> list:
    """The point as ``(origin, "key=value")`` overrides (values written as JSON, which is YAML)."""
    out = [("--grid", f"{k}={json.dumps(v)}") for k, v in point["overrides"].items()]
    return [*out, ("--seeds", f"seed={point['seed']}")]


def _resolve_points(base: Loaded, points: list, threads_given: bool) -> list[dict]:
    """Validate every point (all problems at once, SpecError); each point gets its resolved
    spec as a plain dict. BLAS runs single-threaded in each worker unless the spec says."""
    problems, failed = [], set()
    for point in points:
        label = ", ".join(f"{k}={json.dumps(v)}" for k, v in point["overrides"].items()) or "the base spec"
        if label in failed:  # another seed of a point already reported
            continue
        try:
            spec = resolve(base, _override_strings(point), check_files=True)
        except SpecError as exc:
            failed.add(label)
            problems += [f"grid point {label}: {p}" for p in exc.problems]
            continue
        spec_dict = spec.to_dict()
        if not threads_given:
            spec_dict["train"]["threads"] = 1  # several runs share the cores: one BLAS thread each
        point["spec"] = spec_dict
    if problems:
        raise SpecError(problems, "sweep")
    return points


def _load_base(spec_or_path) -> tuple[Loaded, dict, Path | None]:
    """The base spec (its ``sweep:`` block taken out) and that block."""
    if isinstance(spec_or_path, dict):
        data = copy.deepcopy(spec_or_path)
        loaded = Loaded(data)
        path = None
    else:
        path = spec_file(spec_or_path)  # a path, else a spec devgrad ships, by name
        loaded = load_yaml(path)
        data = loaded.data
    block = data.pop("sweep", None) or {}
    if not isinstance(block, dict):
        raise SpecError([f"sweep: must be a block like {{grid: {{optimizer.lr: [0.1, 0.01]}}, seeds: 3}}, "
                         f"got {block!r}"], str(path or "spec"))
    unknown = set(block) - {"grid", "seeds"}
    if unknown:
        raise SpecError([f"sweep.{k}: unknown key; a sweep block takes grid and seeds" for k in sorted(unknown)],
                        str(path or "spec"))
    return loaded, block, path


# -- one run on a worker ---------------------------------------------------------------------------

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
            _clear_unstarted(run_dir)
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


def _clear_unstarted(run_dir: Path) -> None:
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


# -- executors -------------------------------------------------------------------------------------

def _worker_init() -> None:
    """A local pool worker: die with the sweep (Linux), one BLAS thread unless told otherwise."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # see _interruptible: a run takes Ctrl-C, an idle worker not
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes  # noqa: PLC0415

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no orphan keeps training


class _Local:
    """A process pool of ``jobs`` workers (fork on Linux: no re-import; spawn elsewhere)."""

    def __init__(self, jobs: int):
        method = "fork" if fork_is_safe() else "spawn"  # Linux, no other thread, no CUDA context
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context(method), initializer=_worker_init)
        self.description = f"local process pool, {jobs} workers ({method})"

    def submit(self, point: dict, gpus: int | None, fn=run_point):
        return self.pool.submit(fn, point)

    def as_completed(self, futures):
        return concurrent.futures.as_completed(futures)

    def cancel(self, futures) -> None:
        for f in futures:
            f.cancel()

    def interrupt(self, futures) -> None:
        """Ctrl-C: queued runs are cancelled; every worker is sent SIGINT, so a run in flight stops
        and checkpoints (an idle worker ignores it)."""
        self.cancel(futures)
        # The pool has no public list of its processes; without it, the stop file still stops each run
        for process in list((getattr(self.pool, "_processes", None) or {}).values()):
            with contextlib.suppress(OSError, AttributeError):
                os.kill(process.pid, signal.SIGINT)

    def collect(self, futures, timeout: float) -> list:
        """The result lines of ``futures`` that finish within ``timeout`` seconds."""
        concurrent.futures.wait(futures, timeout=timeout)
        return [f.result() for f in futures if f.done() and not f.cancelled() and f.exception() is None]

    def close(self, wait: bool = True) -> None:
        processes = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=wait, cancel_futures=True)
        if not wait:  # interrupted: a worker that did not stop in time is ended (its run resumes later)
            for process in processes:
                with contextlib.suppress(Exception):
                    process.terminate()


class _Dask:
    """Dask distributed: a running scheduler at ``address``, a Client given by the user, or a
    LocalCluster on 127.0.0.1 with ``jobs`` single-threaded worker processes."""

    def __init__(self, jobs: int, address: str | None, client=None):
        try:
            from dask.distributed import Client, LocalCluster  # noqa: PLC0415 - optional (the dask extra)
        except ImportError:
            raise RunError(f"--executor dask needs Dask distributed, which is not installed: {DASK_HINT}") from None
        self.cluster = None
        self.own_client = client is None
        if client is not None:
            self.client = client
            where = f"Dask client {getattr(client, 'scheduler', None) and client.scheduler.address}"
        elif address:
            try:
                self.client = Client(address, timeout="20s")
            except (OSError, ValueError, TimeoutError) as exc:
                raise RunError(f"--address {address}: no Dask scheduler answered ({exc}); start one with "
                               f"'dask scheduler' and workers with 'dask worker {address}'") from None
            where = f"Dask scheduler {address}"
        else:
            self.cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address=None, env={"OMP_NUM_THREADS": "1"})
            self.client = Client(self.cluster)
            where = f"Dask LocalCluster on 127.0.0.1, {jobs} single-threaded workers"
        self.description = where

    def submit(self, point: dict, gpus: int | None, fn=run_point):
        resources = {"GPU": gpus} if gpus else None
        return self.client.submit(fn, point, pure=False, resources=resources,
                                  key=f"devgrad-{point['name']}-{os.getpid()}-{time.time_ns()}")

    def as_completed(self, futures):
        from dask.distributed import as_completed  # noqa: PLC0415

        return as_completed(futures)

    def cancel(self, futures) -> None:
        self.client.cancel([f for f in futures if f.status == "pending"])

    def interrupt(self, futures) -> None:
        """Ctrl-C: no signal reaches a run on a Dask worker, and a Dask future does not tell a queued
        task from a running one, so nothing is cancelled here: a run in flight sees the sweep's stop
        file after its epoch and stops with a checkpoint, a queued one sees it and does not start."""

    def collect(self, futures, timeout: float) -> list:
        from dask.distributed import wait  # noqa: PLC0415 - optional (the dask extra)

        with contextlib.suppress(Exception):  # a timeout: take what has finished
            wait(futures, timeout=timeout)
        return [f.result() for f in futures if f.status == "finished"]

    def close(self, wait: bool = True) -> None:
        if self.own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _check_executor(executor, address: str | None, gpus: int | None) -> None:
    """The executor's mistakes, before any folder exists."""
    if executor == "local" or executor is None:
        if address:
            raise RunError("--address is for --executor dask (the address of a Dask scheduler)")
        if gpus:
            raise RunError("--gpus-per-run needs --executor dask: start one Dask worker per GPU "
                           "(CUDA_VISIBLE_DEVICES=i dask worker ADDRESS --resources GPU=1)")
    elif executor == "dask":
        try:
            import dask.distributed  # noqa: F401, PLC0415 - optional (the dask extra)
        except ImportError:
            raise RunError(f"--executor dask needs Dask distributed, which is not installed: {DASK_HINT}") from None
        if address:
            _check_address(address)
    elif not (hasattr(executor, "submit") and hasattr(executor, "scheduler")):
        raise RunError(f"executor must be one of {', '.join(EXECUTORS)} or a dask.distributed.Client, "
                       f"got {executor!r}")


def _check_address(address: str) -> None:
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


def _executor(executor, jobs: int, address: str | None, gpus: int | None):
    _check_executor(executor, address, gpus)
    if executor == "local" or executor is None:
        return _Local(jobs)
    if executor == "dask":
        return _Dask(jobs, address)
    if hasattr(executor, "submit") and hasattr(executor, "scheduler"):  # a dask.distributed.Client
        return _Dask(jobs, None, client=executor)
    raise RunError(f"executor must be one of {', '.join(EXECUTORS)} or a dask.distributed.Client, got {executor!r}")


# -- the sweep -------------------------------------------------------------------------------------

def sweep(spec_or_path, grid: dict | None = None, seeds: int | None = None, jobs: int | None = None,
          executor="local", address: str | None = None, out=None, quiet: bool = False, fail_fast: bool = False,
          gpus_per_run: int | None = None, overrides=(), device: str | None = None) -> SweepResult:
    """Run every point of a grid (times ``seeds`` repeats) of ``spec_or_path``.

    ``grid`` ({key.path: [values]}) and ``seeds`` add to / replace the spec's ``sweep:`` block;
    ``overrides`` (``key.path=value``) and ``device`` change the base spec, as ``run``'s do.
    ``executor``: ``local`` (a process pool of ``jobs`` workers, default = cores), ``dask``
    (``address`` of a running scheduler, else a LocalCluster of ``jobs`` single-threaded
    workers), or a ``dask.distributed.Client``. Returns a SweepResult (results as in
    results.jsonl). Invalid points raise SpecError, listing every problem, before anything runs;
    an executor that cannot start raises RunError before the sweep folder exists.
    """
    _check_executor(executor, address, gpus_per_run)
    base, block, path = _load_base(spec_or_path)
    base = apply_overrides(base, [*overrides, *([("--device", f"device={device}")] if device is not None else [])],
                           SCHEMA, NAME_BLOCKS)
    full_grid = dict(block.get("grid") or {})
    full_grid.update(grid or {})
    seeds = seeds if seeds is not None else block.get("seeds", 1)
    problems = _check_grid(full_grid, seeds)
    if problems:
        raise SpecError(problems, str(path or "sweep"))
    base_seed = base.data.get("seed", 0) if isinstance(base.data.get("seed", 0), int) else 0
    points = _points(full_grid, seeds, base_seed)
    threads_given = isinstance(base.data.get("train"), dict) and "threads" in base.data["train"]
    points = _resolve_points(base, points, threads_given)
    name = points[0]["spec"]["name"]
    jobs = jobs or os.cpu_count() or 1
    runner = _executor(executor, min(jobs, len(points)) if executor in ("local", None) else jobs, address,
                       gpus_per_run)  # a scheduler that does not answer fails here, before any folder
    try:
        sweep_dir = _make_sweep_dir(Path(out) if out is not None else Path("sweeps"), name, path, full_grid, seeds,
                                    points)
    except BaseException:
        runner.close()
        raise
    return _execute(sweep_dir, points, [], runner, quiet, fail_fast, gpus_per_run)


def _make_sweep_dir(root: Path, name: str, path: Path | None, grid: dict, seeds: int, points: list) -> Path:
    """The sweep folder with sweep.yaml, points.json and an empty results.jsonl; nothing is left
    of it (or of the parents made for it) when one of them cannot be written."""
    parents = missing_parents(root / name)
    sweep_dir = new_run_dir(root, name)
    try:
        parent = tracking.start_parent(sweep_dir, points[0]["spec"])  # tracked: the runs nest in the sweep's run
        for point in points:
            tracking.nest(point["spec"], parent)
            point["run_dir"] = str(sweep_dir / "runs" / point["name"])
            point["stop_file"] = str(sweep_dir / STOP_FILE)
        resolved = {"name": name, "spec": str(path.resolve()) if path else None, "grid": grid, "seeds": seeds,
                    "created": now(), "monitor": list(_monitor(points[0]["spec"])),
                    "points": [{k: p[k] for k in ("index", "name", "overrides", "seed", "run_dir")} for p in points]}
        atomic_write_text(sweep_dir / "sweep.yaml", to_yaml(resolved))
        # every point's resolved spec, for the workers and for --resume (paths in them are absolute)
        ckpt.write_json(sweep_dir / "points.json", [{"index": p["index"], "spec": p["spec"]} for p in points])
        atomic_write_text(sweep_dir / "results.jsonl", "")
    except BaseException:
        remove_half_made(sweep_dir, parents)
        raise
    return sweep_dir


def resume_sweep(sweep_dir, jobs: int | None = None, executor="local", address: str | None = None,
                 quiet: bool = False, fail_fast: bool = False, gpus_per_run: int | None = None) -> SweepResult:
    """Run the points of ``sweep_dir`` that have not finished: never started, or stopped by a
    Ctrl-C or a kill (those resume from their checkpoints); runs that finished after the sweep
    died are only recorded."""
    sweep_dir = Path(sweep_dir)
    _check_executor(executor, address, gpus_per_run)
    resolved = read_sweep_yaml(sweep_dir)
    specs = {p["index"]: p["spec"] for p in ckpt.read_json(sweep_dir / "points.json")}
    done = [r for r in read_results(sweep_dir) if r["status"] != "stopped"]
    finished = {r["index"] for r in done}
    points = [{**p, "spec": specs[p["index"]], "stop_file": str(sweep_dir / STOP_FILE)}
              for p in resolved["points"] if p["index"] not in finished]
    runner = None
    if points:
        jobs = jobs or os.cpu_count() or 1
        runner = _executor(executor, min(jobs, len(points)) if executor in ("local", None) else jobs, address,
                           gpus_per_run)
        (sweep_dir / STOP_FILE).unlink(missing_ok=True)  # left by the Ctrl-C that stopped it
    return _execute(sweep_dir, points, done, runner, quiet, fail_fast, gpus_per_run, resumed=True)


def _check_grid(grid: dict, seeds) -> list[str]:
    problems = []
    if not isinstance(grid, dict):
        return [f"sweep.grid must map key.path to a list of values, got {grid!r}"]
    for key, values in grid.items():
        if not isinstance(key, str) or not key:
            problems.append(f"sweep.grid: {key!r} is not a key.path like optimizer.lr")
        elif key.split(".")[0] not in SCHEMA or key.split(".")[0] == "name":
            problems.append(f"grid axis {key}: unknown spec key '{key.split('.')[0]}'"
                            f"{did_you_mean(key.split('.')[0], SCHEMA)} (a grid varies keys of the spec, "
                            "e.g. optimizer.lr or model.hidden)")
        elif not isinstance(values, list) or not values:
            problems.append(f"sweep.grid.{key}: must be a non-empty list of values, got {values!r}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        problems.append(f"sweep.seeds: must be a whole number >= 1, got {seeds!r}")
    return problems


def _execute(sweep_dir: Path, points: list, done: list, runner, quiet: bool, fail_fast: bool,
             gpus: int | None, resumed: bool = False) -> SweepResult:
    results = list(done)
    total = len(points) + len(done)
    monitor = _monitor_of(sweep_dir)
    status = "completed"
    if points:
        progress = _Progress(total, len(done), quiet, monitor, runner.description, resumed)
        for r in done:
            progress.record(r, new=False)
        futures: list = []
        interrupted = False
        try:
            futures = [runner.submit(p, gpus) for p in points]
            for future in runner.as_completed(futures):
                line = future.result()
                _append(sweep_dir / "results.jsonl", line)
                results.append(line)
                progress.record(line)
                if fail_fast and line["status"] != "completed":
                    status = "stopped"
                    progress.say(f"--fail-fast: run {line['index']} {line['status']} ({line['error']}); stopping")
                    runner.cancel(futures)
                    break
        except KeyboardInterrupt:
            interrupted = True
            _interrupt(sweep_dir, runner, futures, results)
        finally:
            runner.close(wait=not interrupted)
            progress.close()
        if interrupted:
            _write_tables(sweep_dir, results, total, monitor, "interrupted")
            raise KeyboardInterrupt(_interrupted_message(sweep_dir, results, points, total))
    if status == "completed" and results and all(r["status"] != "completed" for r in results):
        status = "failed"
    summary = _write_tables(sweep_dir, results, total, monitor, status, _plots(sweep_dir, results, monitor))

    write_sweep_report(sweep_dir)
    tracking.finish_parent(sweep_dir, ckpt.read_json(sweep_dir / "points.json")[0]["spec"])
    print(summary, flush=True)
    if not quiet:  # --quiet: the summary table only
        print(f"sweep {status}: {len(results)}/{total} runs finished, "
              f"{sum(r['status'] == 'completed' for r in results)} completed: {sweep_dir}", flush=True)
    return SweepResult(sweep_dir, sorted(results, key=lambda r: r["index"]), status)


# How long a Ctrl-C'd sweep waits for its runs in flight to checkpoint and report.
INTERRUPT_GRACE_SECONDS = 1.5


def _interrupt(sweep_dir: Path, runner, futures: list, results: list) -> None:
    """Ctrl-C: no queued run starts (cancelled, and the stop file turns away any a worker already
    holds), runs in flight are stopped (they checkpoint), and the lines of those that report
    within the grace period are written, with their real wall time."""
    with contextlib.suppress(OSError):
        (sweep_dir / STOP_FILE).touch()
    runner.interrupt(futures)
    recorded = {r["index"] for r in results}
    for line in runner.collect(futures, INTERRUPT_GRACE_SECONDS):
        if line["status"] == NOT_STARTED or line["index"] in recorded:
            continue
        _append(sweep_dir / "results.jsonl", line)
        results.append(line)


def _interrupted_message(sweep_dir: Path, results: list, points: list, total: int) -> str:
    """What an interrupted sweep says: what finished, what stopped, what never started, and the
    command that continues it."""
    stopped = sum(r["status"] == "stopped" for r in results)
    recorded = {r["index"] for r in results}
    unrecorded = [p for p in points if p["index"] not in recorded]
    started = sum(Path(p["run_dir"]).exists() for p in unrecorded)  # still stopping: no line yet
    cut = f", {started} cut short without a line (they resume from their last checkpoint)" if started else ""
    return (f"sweep interrupted: {len(results) - stopped}/{total} runs finished, {stopped} stopped with a checkpoint"
            f"{cut}, {len(unrecorded) - started} not started; continue with: devgrad sweep --resume {sweep_dir}")


def _write_tables(sweep_dir: Path, results: list, total: int, monitor: tuple, status: str,
                  plots: list | None = None) -> str:
    """results.csv, summary.txt and sweep.json for ``results`` (the newest line of each run)."""
    _write_csv(sweep_dir, results, monitor)
    summary = _summary_table(results, monitor)
    atomic_write_text(sweep_dir / "summary.txt", summary + "\n")
    ckpt.write_json(sweep_dir / "sweep.json", {"status": status, "runs": total, "finished": len(results),
                                               "completed": sum(r["status"] == "completed" for r in results),
                                               "ended": now(), "plots": plots or []})
    return summary


def _append(path: Path, line: dict) -> None:
    """Append one JSON line and make it durable before the sweep goes on."""
    data = (json.dumps(line, default=str) + "\n").encode()
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as fh:  # a line cut short by a kill: start on a line of our own
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                data = b"\n" + data
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reporting -------------------------------------------------------------------------------------

def _monitor(spec: dict) -> tuple[str, str]:
    es = spec["train"]["early_stopping"]
    monitor = es["monitor"]
    mode = es["mode"] if es["mode"] != "auto" else ("max" if monitor.endswith(("accuracy", "r2")) else "min")
    return monitor, mode


def _monitor_of(sweep_dir: Path) -> tuple[str, str]:
    resolved = yaml.safe_load((Path(sweep_dir) / "sweep.yaml").read_text())
    return tuple(resolved["monitor"])


def _value(line: dict, monitor: str):
    """The run's monitored value at its best epoch (its final epoch when none was best)."""
    row = line.get("best") or line.get("final") or {}
    value = row.get(monitor)
    if value is None and monitor.startswith("val_"):
        value = row.get("train_" + monitor[4:])
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _ranked(results: list, monitor: str, mode: str) -> list:
    def key(r):
        v = _value(r, monitor)
        return (r["status"] != "completed", v is None, (-v if mode == "max" else v) if v is not None else 0)

    return sorted(results, key=key)


def _write_csv(sweep_dir: Path, results: list, monitor: tuple) -> None:
    name, mode = monitor
    keys = sorted({k for r in results for k in r["overrides"]})
    test_keys = sorted({k for r in results for k in (r.get("test") or {})})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["index", *keys, "seed", "status", f"best_{name}", "final_train_loss", *test_keys,
                     "wall_seconds", "worker", "run_dir", "error"])
    for r in _ranked(results, name, mode):
        writer.writerow([r["index"], *(json.dumps(r["overrides"].get(k)) for k in keys), r["seed"], r["status"],
                         _value(r, name), (r.get("final") or {}).get("train_loss"),
                         *((r.get("test") or {}).get(k) for k in test_keys), r["wall_seconds"], r["worker"],
                         r["run_dir"], r["error"] or ""])
    atomic_write_text(sweep_dir / "results.csv", buffer.getvalue())


def _summary_table(results: list, monitor: tuple) -> str:
    name, mode = monitor
    lines = [f"{'#':>4}  {'status':<9} {name:>12}  {'seconds':>7}  overrides (seed)"]
    for r in _ranked(results, name, mode):
        v = _value(r, name)
        overrides = ", ".join(f"{k}={json.dumps(x)}" for k, x in r["overrides"].items()) or "(base)"
        lines.append(f"{r['index']:>4}  {r['status']:<9} {'-' if v is None else f'{v:.4f}':>12}  "
                     f"{r['wall_seconds'] or 0:>7.2f}  {overrides} (seed {r['seed']})")
    return "\n".join(lines)


class _Progress:
    """One bar over the runs with the best monitored value so far (tqdm when installed)."""

    def __init__(self, total: int, initial: int, quiet: bool, monitor: tuple, where: str, resumed: bool = False):
        self.quiet, self.monitor = quiet, monitor
        self.best: tuple[float, int] | None = None  # (best monitored value, its run's index)
        self.bar = None
        if quiet:
            return
        if resumed:  # what it will run now, not the whole grid again
            print(f"sweep --resume: {total - initial} of {total} runs to run ({initial} finished before) on {where}",
                  flush=True)
        else:
            print(f"sweep: {total} runs on {where}", flush=True)
        try:
            from tqdm import tqdm  # noqa: PLC0415 - optional (the progress extra)
        except ImportError:
            return
        if sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=initial, unit="run", dynamic_ncols=True)

    def record(self, line: dict, new: bool = True) -> None:
        """A run's result line: counted towards the best so far, and shown when ``new`` (a line
        written before a resume only counts)."""
        name, mode = self.monitor
        v = _value(line, name) if line["status"] == "completed" else None
        if v is not None and (self.best is None or (v > self.best[0] if mode == "max" else v < self.best[0])):
            self.best = (v, line["index"])
        if self.quiet or not new:
            return
        best = (f"best so far {self.best[0]:.4f}, run {self.best[1]}" if self.best is not None
                else "no completed run yet")
        if self.bar is not None:
            self.bar.set_postfix_str(f"{name} {best}")
            self.bar.update(1)
        else:
            own = f": {name} {v:.4f}" if v is not None else ""
            print(f"run {line['index']} {line['status']} in {line['wall_seconds'] or 0:.1f}s{own} ({best})", flush=True)

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _plots(sweep_dir: Path, results: list, monitor: tuple) -> list[str]:
    """plots/metric_by_<key>.png (the monitored metric per grid value, mean and seed spread)
    and plots/best_runs.png (the learning curves of the three best runs)."""

    plt = _pyplot()
    done = [r for r in results if r["status"] == "completed" and _value(r, monitor[0]) is not None]
    if plt is None or not done:
        return []
    name, mode = monitor
    folder = sweep_dir / "plots"
    folder.mkdir(exist_ok=True)
    written = []
    for key in sorted({k for r in done for k in r["overrides"]}):
        labels = []
        for r in done:
            label = json.dumps(r["overrides"].get(key))
            if label not in labels:
                labels.append(label)
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, label in enumerate(labels):
            values = [_value(r, name) for r in done if json.dumps(r["overrides"].get(key)) == label]
            ax.scatter([i] * len(values), values, color="tab:blue", alpha=0.5, s=18)
            mean = sum(values) / len(values)
            spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
            ax.errorbar([i], [mean], yerr=[spread], color="k", capsize=4, marker="_", markersize=14)
        ax.set_xticks(range(len(labels)), labels, rotation=20)
        ax.set_xlabel(key)
        ax.set_ylabel(f"{name} ({'higher' if mode == 'max' else 'lower'} is better)")
        ax.set_title(f"{name} by {key}\n(every run; mean ± std over the rest of the grid and seeds)", fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = folder / f"metric_by_{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.png"
        _save(fig, path)
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in _ranked(done, name, mode)[:3]:
        rows = ckpt.MetricsLog(Path(r["run_dir"])).rows()
        series = [(row["epoch"], row.get(name, row.get("train_" + name[4:]))) for row in rows]
        series = [(e, v) for e, v in series if v is not None]
        if series:
            overrides = ", ".join(f"{k.split('.')[-1]}={json.dumps(x)}" for k, x in r["overrides"].items())
            ax.plot(*zip(*series), marker="o" if len(series) <= 30 else None, markersize=3,
                    label=f"#{r['index']} {overrides} (seed {r['seed']})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(name)
    ax.set_title("learning curves of the best runs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, folder / "best_runs.png")
    plt.close(fig)
    written.append(folder / "best_runs.png")
    return [str(p.relative_to(sweep_dir)) for p in written]


"""Sweeps: a grid of runs of one spec, in parallel on a local process pool or a Dask cluster.

A sweep is the cartesian product of a grid (``{optimizer.lr: [0.1, 0.01], model.hidden: [[16],
[64, 64]]}``) times ``seeds`` repeats of every point (``grid``). Every point is validated before
anything starts. The unit shipped to a worker is ``run_point`` (``sweep_point``):
``devgrad.experiment.run`` on a plain spec dict, returning a small picklable dict. Scheduling is
never devgrad's own: the local executor is ``concurrent.futures.ProcessPoolExecutor``
(``local_pool``), the cluster executor is Dask distributed (``dask_pool``, the ``dask`` extra),
GPU-aware through Dask worker resources. A Ctrl-C stops a sweep as ``sweep_stop`` says.

The sweep folder ``sweeps/<name>/<date-time>-<id>/`` holds ``sweep.yaml`` (the resolved grid
and every point), ``results.jsonl`` (one line per finished run, appended as it finishes),
``results.csv`` (sorted by the monitored metric, ``ranking``), ``runs/<index>-<overrides>/`` and
``plots/``. ``resume_sweep`` runs only the points without a line in results.jsonl, resuming
interrupted runs from their checkpoints and recording runs that completed after the sweep died.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment import tracking
from devgrad.experiment.choices import EXECUTORS
from devgrad.experiment.executors import check_devices, check_executor, make_executor
from devgrad.experiment.grid import check_grid, expand, load_base, parse_grid_option, parse_grid_options, \
    resolve_points
from devgrad.experiment.html_report import write_sweep_report
from devgrad.experiment.ranking import monitor_of, monitor_of_spec, ranked, write_tables
from devgrad.experiment.rundir import missing_parents, new_run_dir, now, remove_half_made
from devgrad.experiment.schema import apply_overrides
from devgrad.experiment.spec import NAME_BLOCKS, SCHEMA, SpecError, to_yaml
from devgrad.experiment.sweep_plots import draw
from devgrad.experiment.sweep_point import STOP_FILE, run_point
from devgrad.experiment.sweep_progress import Progress
from devgrad.experiment.sweep_stop import interrupt, interrupted_message
from devgrad.experiment.sweepdir import append_line, read_results, read_sweep_yaml
from devgrad.io import atomic_write_text

__all__ = ["EXECUTORS", "SweepResult", "grid_points", "parse_grid_option", "parse_grid_options", "resume_sweep",
           "run_point", "sweep"]


@dataclass
class SweepResult:
    """What a sweep produced: its folder and one dict per finished run (as in results.jsonl)."""

    sweep_dir: Path
    results: list = field(default_factory=list)
    status: str = "completed"  # completed | stopped (fail-fast) | failed (every run failed)

    @property
    def best(self) -> dict | None:
        """The completed run with the best monitored value."""
        ordered = ranked(self.results, *monitor_of(self.sweep_dir))
        return ordered[0] if ordered and ordered[0]["status"] == "completed" else None


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
    check_executor(executor, address, gpus_per_run)
    points, full_grid, seeds, path = grid_points(spec_or_path, grid, seeds, overrides, device)
    check_devices(executor, address, (point["spec"]["device"] for point in points))
    # a scheduler that does not answer fails here, before any folder
    runner = make_executor(executor, jobs or os.cpu_count() or 1, len(points), address, gpus_per_run)
    try:
        sweep_dir = _make_sweep_dir(Path(out) if out is not None else Path("sweeps"), path, full_grid, seeds,
                                    points)
    except BaseException:
        runner.close()
        raise
    return _execute(sweep_dir, points, [], runner, quiet, fail_fast, gpus_per_run)


def grid_points(spec_or_path, grid: dict | None = None, seeds: int | None = None, overrides=(),
                device: str | None = None) -> tuple[list, dict, int, Path | None]:
    """Every point of a grid sweep, each validated and resolved (SpecError listing every problem),
    with the grid, the seed count and the spec's file: what ``sweep`` checks before it starts."""
    base, block, path = load_base(spec_or_path)
    base = apply_overrides(base, [*overrides, *([("--device", f"device={device}")] if device is not None else [])],
                           SCHEMA, NAME_BLOCKS)
    full_grid = dict(block.get("grid") or {})
    full_grid.update(grid or {})
    seeds = seeds if seeds is not None else block.get("seeds", 1)
    problems = check_grid(full_grid, seeds)
    if problems:
        raise SpecError(problems, str(path or "sweep"))
    base_seed = base.data.get("seed", 0) if isinstance(base.data.get("seed", 0), int) else 0
    threads_given = isinstance(base.data.get("train"), dict) and "threads" in base.data["train"]
    return resolve_points(base, expand(full_grid, seeds, base_seed), threads_given), full_grid, seeds, path


def _make_sweep_dir(root: Path, path: Path | None, grid: dict, seeds: int, points: list) -> Path:
    """The sweep folder with sweep.yaml, points.json and an empty results.jsonl; nothing is left
    of it (or of the parents made for it) when one of them cannot be written."""
    name = points[0]["spec"]["name"]
    parents = missing_parents(root / name)
    sweep_dir = new_run_dir(root, name)
    try:
        parent = tracking.start_parent(sweep_dir, points[0]["spec"])  # tracked: the runs nest in the sweep's run
        for point in points:
            tracking.nest(point["spec"], parent)
            point["run_dir"] = str(sweep_dir / "runs" / point["name"])
            point["stop_file"] = str(sweep_dir / STOP_FILE)
        resolved = {"name": name, "spec": str(path.resolve()) if path else None, "grid": grid, "seeds": seeds,
                    "created": now(), "monitor": list(monitor_of_spec(points[0]["spec"])),
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
    check_executor(executor, address, gpus_per_run)
    resolved = read_sweep_yaml(sweep_dir)
    specs = {p["index"]: p["spec"] for p in ckpt.read_json(sweep_dir / "points.json")}
    done = [r for r in read_results(sweep_dir) if r["status"] != "stopped"]
    finished = {r["index"] for r in done}
    points = [{**p, "spec": specs[p["index"]], "stop_file": str(sweep_dir / STOP_FILE)}
              for p in resolved["points"] if p["index"] not in finished]
    check_devices(executor, address, (point["spec"]["device"] for point in points))
    runner = None
    if points:
        runner = make_executor(executor, jobs or os.cpu_count() or 1, len(points), address, gpus_per_run)
        (sweep_dir / STOP_FILE).unlink(missing_ok=True)  # left by the Ctrl-C that stopped it
    return _execute(sweep_dir, points, done, runner, quiet, fail_fast, gpus_per_run, resumed=True)


def _execute(sweep_dir: Path, points: list, done: list, runner, quiet: bool, fail_fast: bool,
             gpus: int | None, resumed: bool = False) -> SweepResult:
    """Run ``points`` on ``runner`` (``done``: the lines of runs that finished before a resume),
    then write the tables, plots and page."""
    results = list(done)
    total = len(points) + len(done)
    monitor = monitor_of(sweep_dir)
    status = "completed"
    if points:
        status = _run_all(sweep_dir, points, results, total, runner, monitor, quiet, fail_fast, gpus, resumed)
    if status == "completed" and results and all(r["status"] != "completed" for r in results):
        status = "failed"
    summary = write_tables(sweep_dir, results, total, monitor, status, draw(sweep_dir, results, monitor))
    write_sweep_report(sweep_dir)
    tracking.finish_parent(sweep_dir, ckpt.read_json(sweep_dir / "points.json")[0]["spec"])
    print(summary, flush=True)
    if not quiet:  # --quiet: the summary table only
        print(f"sweep {status}: {len(results)}/{total} runs finished, "
              f"{sum(r['status'] == 'completed' for r in results)} completed: {sweep_dir}", flush=True)
    return SweepResult(sweep_dir, sorted(results, key=lambda r: r["index"]), status)


def _run_all(sweep_dir: Path, points: list, results: list, total: int, runner, monitor: tuple, quiet: bool,
             fail_fast: bool, gpus: int | None, resumed: bool) -> str:
    """Submit every point and record each line as its run finishes; ``stopped`` when --fail-fast
    stopped the sweep. A Ctrl-C stops the runs and ends in a KeyboardInterrupt that says how to
    continue."""
    progress = Progress(total, len(results), quiet, monitor, runner.description, resumed)
    for r in results:
        progress.record(r, new=False)
    futures: list = []
    status, interrupted = "completed", False
    try:
        futures = [runner.submit(p, gpus) for p in points]
        for future in runner.as_completed(futures):
            line = future.result()
            append_line(sweep_dir / "results.jsonl", line)
            results.append(line)
            progress.record(line)
            if fail_fast and line["status"] != "completed":
                status = "stopped"
                progress.say(f"--fail-fast: run {line['index']} {line['status']} ({line['error']}); stopping")
                runner.cancel(futures)
                break
    except KeyboardInterrupt:
        interrupted = True
        interrupt(sweep_dir, runner, futures, results)
    finally:
        runner.close(wait=not interrupted)
        progress.close()
    if interrupted:
        write_tables(sweep_dir, results, total, monitor, "interrupted")
        raise KeyboardInterrupt(interrupted_message(sweep_dir, results, points, total))
    return status

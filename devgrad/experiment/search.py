"""Hyperparameter search: an Optuna study whose trials are runs on the sweep's executors.

The sweep's own process owns the study (Optuna's ask-and-tell): it asks for a trial, turns its
parameters into ``key.path=value`` overrides of the base spec, ships the run to the local pool
or Dask like a grid point, and tells the study the run's monitored value (or ``pruned`` /
``fail``). With a pruner, each trial's run reports its monitored value after every epoch through
a small file channel in its run folder (``.pruning/report-<epoch>.json``); the sweep's process
reports it to the study, asks the pruner, and answers ``.pruning/decision-<epoch>``; a run told
to prune stops there with status ``pruned`` and keeps its checkpoint.

The study lives in the sweep folder (``study.journal``: Optuna's JournalStorage on a file) or at
``--storage URL``. ``results.jsonl`` holds one line per finished trial (``trial``, ``params``
added to a grid's line). ``resume_search`` continues a study to its trial count: trials asked
but never told (a kill -9) are finished from results.jsonl or run again from their checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import yaml

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.pruning import POLL_SECONDS, Running, run_trial
from devgrad.experiment import search_plots
from devgrad.experiment import sweeps, tracking
from devgrad.experiment.executors import check_devices, check_executor, make_executor
from devgrad.experiment.ranking import monitor_of_spec, write_tables
from devgrad.experiment.sweep_plots import draw
from devgrad.experiment.sweep_point import NOT_STARTED, STOP_FILE
from devgrad.experiment.sweep_progress import Progress
from devgrad.experiment.sweep_stop import interrupt, interrupted_message
from devgrad.experiment.choices import PRUNERS, SAMPLERS
from devgrad.experiment.errors import RunError
from devgrad.experiment.examples import spec_file
from devgrad.experiment.html_report import write_sweep_report
from devgrad.experiment.rundir import missing_parents, new_run_dir, now, remove_half_made
from devgrad.experiment.schema import Loaded, apply_overrides, load_yaml
from devgrad.experiment.space import Dimension, check_grid_space, check_space
from devgrad.experiment.study import check_storage, dims_of, import_optuna, open_study, resume_study, tell
from devgrad.experiment.sweepdir import append_line, read_results, read_sweep_yaml
from devgrad.experiment.spec import NAME_BLOCKS, SCHEMA, SpecError, resolve, to_yaml
from devgrad.io import atomic_write_text

__all__ = ["PRUNERS", "SAMPLERS", "check_sweep", "resume_search", "resume_sweep", "run_search", "sweep"]

# -- the sweep's side ------------------------------------------------------------------------------

def _load(spec_or_path) -> tuple[Loaded, dict, Path | None]:
    """The base spec without its ``sweep:`` block, and that block."""
    if isinstance(spec_or_path, dict):
        loaded, path = Loaded(json.loads(json.dumps(spec_or_path))), None
    else:
        path = spec_file(spec_or_path)
        loaded = load_yaml(path)
    block = loaded.data.pop("sweep", None) or {}
    if not isinstance(block, dict):
        raise SpecError([f"sweep: must be a block like {{search: {{trials: 20, space: {{...}}}}}}, got {block!r}"],
                        str(path or "spec"))
    return loaded, block, path


def _settings(block: dict, search, trials, space, pruner, source: str) -> dict:
    """The search's settings: the spec's ``sweep.search`` block, with the arguments over it."""
    given = block.get("search") or {}
    problems = []
    if not isinstance(given, dict):
        raise SpecError([f"sweep.search: must be a block {{trials, sampler, pruner, space}}, got {given!r}"], source)
    problems += [f"sweep.search.{k}: unknown key; a search takes trials, sampler, pruner and space"
                 for k in given if k not in ("trials", "sampler", "pruner", "space")]
    problems += [f"sweep.{k}: a search does not combine with a grid sweep's {k} (one sweep is a grid or a search)"
                 for k in ("grid", "seeds") if k in block]
    problems += [f"sweep.{k}: unknown key; a sweep block takes grid and seeds, or search"
                 for k in block if k not in ("grid", "seeds", "search")]
    settings = {"sampler": search or given.get("sampler", "tpe"), "pruner": pruner or given.get("pruner", "median"),
                "trials": trials if trials is not None else given.get("trials"),
                "space": {**(given.get("space") or {}), **(space or {})}}
    if settings["sampler"] not in SAMPLERS:
        problems.append(f"sweep.search.sampler: unknown sampler {settings['sampler']!r}; choose one of "
                        f"{', '.join(SAMPLERS)}")
    if settings["pruner"] not in PRUNERS:
        problems.append(f"sweep.search.pruner: unknown pruner {settings['pruner']!r}; choose one of "
                        f"{', '.join(PRUNERS)}")
    count = settings["trials"]
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        problems.append(f"sweep.search.trials: must be a whole number >= 1, got {count!r}")
    if problems:
        raise SpecError(problems, source)
    return settings


def run_search(spec_or_path, search: str | None = None, trials: int | None = None, space: dict | None = None,
           pruner: str | None = None, storage: str | None = None, jobs: int | None = None, executor="local",
           address: str | None = None, out=None, quiet: bool = False, fail_fast: bool = False,
           gpus_per_run: int | None = None, overrides=(), device: str | None = None) -> sweeps.SweepResult:
    """Run an Optuna study over ``spec_or_path``: ``trials`` runs of the spec with parameters from
    ``space`` ({key.path: {loguniform: [a, b]} ...}), sampled by ``search`` (tpe | random | cmaes |
    grid) and pruned by ``pruner`` (median | hyperband | none); these add to the spec's
    ``sweep.search`` block. Executors as in ``sweeps.sweep``. Every problem is a SpecError or
    RunError before the sweep folder exists."""
    check_executor(executor, address, gpus_per_run)
    optuna = import_optuna()
    storage = check_storage(storage)  # a relative SQLite path made absolute: a resume opens the same file
    spec, settings, dims, path = search_plan(spec_or_path, search, trials, space, pruner, overrides, device)
    check_devices(executor, address, [spec["device"]])
    jobs = jobs or os.cpu_count() or 1
    runner = make_executor(executor, jobs, settings["trials"], address, gpus_per_run)
    try:
        sweep_dir, config, study = _make_search_dir(Path(out) if out is not None else Path("sweeps"), spec, path,
                                                    settings, dims, storage, optuna)
        parent = tracking.start_parent(sweep_dir, spec)  # tracked: the trials nest in the sweep's MLflow run
        if parent is not None:
            ckpt.write_json(sweep_dir / "base.json", tracking.nest(spec, parent))
    except BaseException:
        runner.close()
        raise
    return _execute(optuna, study, sweep_dir, config, spec, [], [], runner, jobs, quiet, fail_fast, gpus_per_run)


def search_plan(spec_or_path, search: str | None = None, trials: int | None = None, space: dict | None = None,
                pruner: str | None = None, overrides=(),
                device: str | None = None) -> tuple[dict, dict, list, Path | None]:
    """A search's base spec (resolved, as a dict), settings and space, each checked (SpecError
    listing the problems), and the spec's file: what ``run_search`` checks before it starts."""
    base, block, path = _load(spec_or_path)
    source = str(path or "sweep")
    settings = _settings(block, search, trials, space, pruner, source)
    base = apply_overrides(base, [*overrides, *([("--device", f"device={device}")] if device is not None else [])],
                           SCHEMA, NAME_BLOCKS)
    spec = resolve(base).to_dict()  # the base spec's own problems, with their lines
    dims = check_space(settings["space"], base, given=set(space or {}), source=source)
    if settings["sampler"] == "grid":
        size = check_grid_space(dims, settings["trials"], "--trials" if trials is not None else "sweep.search.trials")
        settings["trials"] = settings["trials"] or size
    if settings["trials"] is None:
        raise SpecError(["sweep.search.trials: how many trials to run is required (e.g. --trials 20)"], source)
    if not (isinstance(base.data.get("train"), dict) and "threads" in base.data["train"]):
        spec["train"]["threads"] = 1  # several runs share the cores: one BLAS thread each
    return spec, settings, dims, path


def _make_search_dir(root: Path, spec: dict, path: Path | None, settings: dict, dims: list, storage, optuna
                     ) -> tuple:
    """The sweep folder with sweep.yaml (the search's settings), base.json, an empty results.jsonl and
    the study; nothing is left of it (or of the parents made for it) when one of them cannot be made."""
    name = spec["name"]
    parents = missing_parents(root / name)
    sweep_dir = new_run_dir(root, name)
    try:
        config = {"name": name, "spec": str(path.resolve()) if path else None, "created": now(),
                  "search": {k: settings[k] for k in ("sampler", "pruner", "trials")},
                  "sampler": settings["sampler"], "pruner": settings["pruner"], "trials": settings["trials"],
                  "seed": spec["seed"], "epochs": spec["train"]["epochs"], "storage": storage,
                  "study": f"{name}-{sweep_dir.name}",
                  "monitor": list(monitor_of_spec(spec)),
                  "dimensions": [{"key": d.key, "kind": d.kind, "low": d.low, "high": d.high, "log": d.log,
                                  "choices": list(d.choices)} for d in dims],
                  # what the sweep page shows: the space as the grid, one planned run per trial
                  "grid": {d.key: d.describe() for d in dims}, "seeds": 1,
                  "points": [{"index": i} for i in range(settings["trials"])]}
        atomic_write_text(sweep_dir / "sweep.yaml", to_yaml(config))
        ckpt.write_json(sweep_dir / "base.json", spec)
        atomic_write_text(sweep_dir / "results.jsonl", "")
        study = open_study(optuna, sweep_dir, config, dims)
    except BaseException:
        remove_half_made(sweep_dir, parents)
        raise
    return sweep_dir, config, study


def _point(trial, dims: list[Dimension], spec: dict, sweep_dir: Path, pruning: bool) -> dict:
    """A trial as a sweep point: its number, parameters as overrides, its run folder."""
    params = {d.key: d.value(trial.params[d.key]) for d in dims if d.key in trial.params}
    name = f"trial-{trial.number:03d}"
    run_dir = sweep_dir / "runs" / name
    point = {"index": trial.number, "name": name, "overrides": params, "run_dir": str(run_dir),
             "stop_file": str(sweep_dir / STOP_FILE), "pruning": str(run_dir / ".pruning") if pruning else None}
    point["spec"] = resolve(spec, [("--space", f"{k}={json.dumps(v)}") for k, v in params.items()]).to_dict()
    point["seed"] = point["spec"]["seed"]  # the spec's, or the one the space gave this trial
    return point


def _refused(trial, dims: list[Dimension], spec: dict, sweep_dir: Path, exc: SpecError) -> dict:
    """The result line of a trial whose parameters together make a spec that is refused."""
    params = {d.key: d.value(trial.params[d.key]) for d in dims if d.key in trial.params}
    return {"index": trial.number, "overrides": params, "seed": params.get("seed", spec["seed"]), "status": "failed",
            "final": None, "best": None, "test": None,
            "run_dir": str(sweep_dir / "runs" / f"trial-{trial.number:03d}"),
            "worker": None, "wall_seconds": 0.0, "error": "; ".join(exc.problems), "trial": trial.number,
            "params": params}


def _execute(optuna, study, sweep_dir: Path, config: dict, spec: dict, waiting: list, done: list, runner,
             jobs: int, quiet: bool, fail_fast: bool, gpus, resumed: bool = False) -> sweeps.SweepResult:
    """Ask, run and tell until the study has its trial count; then the tables, plots and page."""
    dims, monitor, total = dims_of(config), tuple(config["monitor"]), config["trials"]
    pruning = config["pruner"] != "none"
    distributions = {d.key: d.distribution(optuna) for d in dims}
    results = list(done)
    progress = Progress(total, len(done), quiet, monitor, runner.description, resumed)
    for line in done:
        progress.record(line, new=False)
    inflight: dict = {}  # future -> _Running
    submitted: list[dict] = []  # every point handed to the runner, for an interruption's message
    status, interrupted, stopping = "completed", False, False
    asked = len(study.get_trials(deepcopy=False))  # every trial the study has given out, finished or not

    def record(line: dict) -> dict:
        return _record(optuna, study, sweep_dir, monitor, results, progress, line)

    try:
        while True:
            while not stopping and len(inflight) < jobs and (waiting or asked < total):
                if waiting:
                    trial = waiting.pop(0)
                else:
                    trial = study.ask(distributions)
                    asked += 1
                try:
                    point = _point(trial, dims, spec, sweep_dir, pruning)
                except SpecError as exc:  # a combination of values the spec refuses: a failed trial
                    record(_refused(trial, dims, spec, sweep_dir, exc))
                    continue
                running = Running(optuna, study, trial, Path(point["run_dir"]) / ".pruning")
                inflight[runner.submit(point, gpus, run_trial)] = running
                submitted.append(point)
            if not inflight:
                break
            for future, running in list(inflight.items()):
                if pruning:
                    running.answer()
                if future.done():
                    del inflight[future]
                    line = record(future.result())
                    shutil.rmtree(running.folder, ignore_errors=True)  # the channel is done with
                    if fail_fast and line["status"] not in ("completed", "pruned"):
                        status, stopping = "stopped", True
                        progress.say(f"--fail-fast: trial {line['index']} {line['status']} ({line['error']})")
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        interrupted = True
        _stop(optuna, study, sweep_dir, runner, list(inflight), results, monitor)
    finally:
        runner.close(wait=not interrupted)
        progress.close()
    if interrupted:
        write_tables(sweep_dir, results, total, monitor, "interrupted")
        raise KeyboardInterrupt(interrupted_message(sweep_dir, results, submitted, total))
    return _finish(optuna, study, sweep_dir, results, total, monitor, status, quiet, pruning, spec)


def _record(optuna, study, sweep_dir: Path, monitor: tuple, results: list, progress, line: dict) -> dict:
    """A finished trial: its line in results.jsonl, then the study told (a kill between loses nothing)."""
    append_line(sweep_dir / "results.jsonl", line)
    tell(optuna, study, line, monitor)
    results.append(line)
    progress.record(line)
    return line


def _stop(optuna, study, sweep_dir: Path, runner, futures: list, results: list, monitor: tuple) -> None:
    """Ctrl-C: the trials in flight stop (they checkpoint); those that report in time are told."""
    told = {r["index"] for r in results}
    interrupt(sweep_dir, runner, futures, results)
    for line in results:
        if line["index"] not in told:
            tell(optuna, study, line, monitor)


def _finish(optuna, study, sweep_dir: Path, results: list, total: int, monitor: tuple, status: str,
            quiet: bool, pruning: bool, spec: dict) -> sweeps.SweepResult:
    if status == "completed" and results and all(r["status"] not in ("completed", "pruned") for r in results):
        status = "failed"
    # best_runs.png (a grid's per-value plots would put every sampled value on its own tick)
    plots = draw(sweep_dir, [{**r, "overrides": {}} for r in results], monitor)
    plots += search_plots.draw(optuna, study, sweep_dir, monitor, pruning)
    summary = write_tables(sweep_dir, results, total, monitor, status, plots)
    write_sweep_report(sweep_dir)
    tracking.finish_parent(sweep_dir, spec)  # the tables, page and plots to the sweep's MLflow run
    print(summary, flush=True)
    if not quiet:
        counts = {s: sum(r["status"] == s for r in results) for s in ("completed", "pruned")}
        print(f"search {status}: {len(results)}/{total} trials finished, {counts['completed']} completed, "
              f"{counts['pruned']} pruned: {sweep_dir}", flush=True)
    return sweeps.SweepResult(sweep_dir, sorted(results, key=lambda r: r["index"]), status)


def resume_search(sweep_dir, jobs: int | None = None, executor="local", address: str | None = None,
                  quiet: bool = False, fail_fast: bool = False, gpus_per_run: int | None = None) -> sweeps.SweepResult:
    """Continue a search to its trial count: trials the study gave out but never heard back from
    are recorded from results.jsonl, or run again from their checkpoints; then new ones are asked."""
    sweep_dir = Path(sweep_dir)
    check_executor(executor, address, gpus_per_run)
    optuna = import_optuna()
    if not (sweep_dir / "sweep.yaml").exists():
        raise RunError(f"{sweep_dir} is not a sweep folder (no sweep.yaml); pass the folder 'devgrad sweep' printed")
    config = read_sweep_yaml(sweep_dir)
    spec = ckpt.read_json(sweep_dir / "base.json")
    check_devices(executor, address, [spec["device"]])
    lines = {r["index"]: r for r in read_results(sweep_dir)}
    study = resume_study(optuna, sweep_dir, config, dims_of(config), set(lines))
    monitor = tuple(config["monitor"])
    running = optuna.trial.TrialState.RUNNING
    for trial in study.get_trials(deepcopy=False, states=(running,)):
        if trial.number in lines:  # it ended and was written down, but the study never heard
            tell(optuna, study, lines[trial.number], monitor)
    waiting = [t for t in study.get_trials(deepcopy=False, states=(running,))]
    done = [r for r in lines.values() if r["status"] not in ("stopped", NOT_STARTED)]
    jobs = jobs or os.cpu_count() or 1
    runner = make_executor(executor, jobs, max(1, config["trials"] - len(done)), address, gpus_per_run)
    (sweep_dir / STOP_FILE).unlink(missing_ok=True)
    return _execute(optuna, study, sweep_dir, config, spec, waiting, done, runner, jobs, quiet, fail_fast,
                    gpus_per_run, resumed=True)


def _read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def is_search(sweep_dir) -> bool:
    """Whether a sweep folder holds a search (its sweep.yaml has the search's settings); a folder
    that is not a sweep, or whose sweep.yaml is damaged, is a RunError, not a grid sweep."""
    return "search" in read_sweep_yaml(Path(sweep_dir))


def sweep(spec_or_path, grid: dict | None = None, seeds: int | None = None, jobs: int | None = None,
          executor="local", address: str | None = None, out=None, quiet: bool = False, search=None,
          trials: int | None = None, space: dict | None = None, pruner: str | None = None, storage: str | None = None,
          **options) -> sweeps.SweepResult:
    """``devgrad.experiment.sweep``: a grid sweep (``sweeps.sweep``), or a search when ``search``,
    ``trials`` or ``space`` is given or the spec's ``sweep:`` block holds ``search:`` (``pruner``
    and ``storage`` go with a search only)."""
    block = _load(spec_or_path)[1]
    if search is None and trials is None and space is None and "search" not in block:
        _no_search_options(pruner=pruner, storage=storage)
        return sweeps.sweep(spec_or_path, grid=grid, seeds=seeds, jobs=jobs, executor=executor, address=address,
                            out=out, quiet=quiet, **options)
    if grid or seeds is not None:
        raise SpecError(["--grid/--seeds do not combine with a search: one sweep is a grid or a search"], "sweep")
    return run_search(spec_or_path, search=search, trials=trials, space=space, pruner=pruner, storage=storage,
                      jobs=jobs, executor=executor, address=address, out=out, quiet=quiet, **options)


def _no_search_options(**given) -> None:
    """A SpecError for each option of a search given to a grid sweep."""
    what = {"pruner": "a pruner stops a search's hopeless trials", "storage": "a storage holds a search's study"}
    problems = [f"--{name} {value}: {what[name]}, and this sweep is a grid (no --search, --trials or --space, and "
                f"no sweep.search block in the spec); leave --{name} out, or make the sweep a search, e.g. --search "
                "grid --space 'optimizer.lr=choice(0.1,0.01)' for a grid's points as trials"
                for name, value in given.items() if value is not None]
    if problems:
        raise SpecError(problems, "sweep")


def check_sweep(spec_or_path, overrides=()) -> tuple[str, list[dict]] | None:
    """What ``devgrad validate`` checks of a spec with a ``sweep:`` block: every grid point, or a
    search's settings, space and base spec, as ``sweep`` checks them before it starts (SpecError).
    None for a spec without one; else a line saying what the sweep runs, and the resolved specs
    (dicts) of its distinct runs: each grid point's first seed, or a search's base spec."""
    block = _load(spec_or_path)[1]
    if not block:
        return None
    if "search" in block:
        spec, settings, dims, _ = search_plan(spec_or_path, overrides=overrides)
        return (f"a search of {settings['trials']} trials ({settings['sampler']} sampler, {settings['pruner']} "
                f"pruner) over {', '.join(d.key for d in dims)}", [spec])
    points, grid, seeds, _ = sweeps.grid_points(spec_or_path, overrides=overrides)
    over = f" over {', '.join(grid)}" if grid else ""
    return (f"a grid sweep of {len(points)} runs{over}" + (f", {seeds} seeds each" if seeds > 1 else ""),
            [p["spec"] for p in points if p["repeat"] == 0])


def resume_sweep(sweep_dir, **options) -> sweeps.SweepResult:
    """``devgrad.experiment.resume_sweep``: continue a grid sweep or a search."""
    if is_search(sweep_dir):
        return resume_search(sweep_dir, **options)
    return sweeps.resume_sweep(sweep_dir, **options)

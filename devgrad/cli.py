"""The ``devgrad`` command line: a thin layer over the library.

User mistakes (bad spec, missing file, unavailable device) print one clear message and
exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import platform
import sys
from pathlib import Path

import numpy as np

from devgrad import bench, lecture
from devgrad.backend import cupy_import
from devgrad.bench.checkpoint_bench import checkpoint_bench, format_checkpoints
from devgrad.bench.sweep_bench import format_sweep, sweep_bench
from devgrad.backend import (
    DeviceError, cuda_available, cuda_unavailable_reason, cupy_version, default_device, device, devices,
)
from devgrad.data import describe
from devgrad.data.files import DataError
from devgrad.experiment import commands, examples, memory, search, space, spec, sweeps, tracking
from devgrad.experiment.export import FORMATS, export_run
from devgrad.experiment.html_report import write_report
from devgrad.experiment.predict import predict_file
from devgrad.experiment.rundir import why_not_completed
from devgrad.experiment.errors import RunError
from devgrad.experiment.spec import SpecError
from devgrad.experiment.task import Task
from devgrad.io import UnsafeFileError
from devgrad import warmup
from devgrad.version import __version__

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake the user can fix; the CLI prints it without a traceback and exits 2."""


def _info(args) -> int:
    lines = [
        f"devgrad {__version__}",
        f"python  {platform.python_version()} ({sys.executable})",
        f"numpy   {np.__version__}",
        f"cupy    {cupy_version() or 'not installed'}",
        "devices:",
    ]
    for dev in devices():
        lines.append(f"  {dev.description()}")
    if not cuda_available():
        lines.append(f"CUDA unavailable: {cuda_unavailable_reason()}")
    try:
        default = default_device()
    except DeviceError as exc:
        raise UserError(str(exc)) from None
    lines.append(f"default device: {default}  (set DEVGRAD_DEVICE=cpu|cuda|cuda:N to change)")
    lines.append(f"kernel cache: {warmup.cache_state()}")
    if cuda_available():
        lines.append(f"CuPy reduction accelerators: {cupy_import.state().get('accelerators')}")
    auto = device("auto")
    lines.append(f"'auto' resolves to: {auto}")
    print("\n".join(lines))
    return 0


def _run(args) -> int:
    if args.print_config:
        overrides = [*args.set, ("--device", f"device={args.device}")] if args.device else args.set
        print(spec.to_yaml(spec.resolve(args.spec, overrides).to_dict()), end="")
        return 0
    result = commands.run(args.spec, overrides=[*args.set, *_track(args)], out=args.out, device=args.device,
                          quiet=args.quiet)
    return _ended(result, args.quiet)


def _track(args) -> list:
    """``--track mlflow[=URI]`` as the override it stands for: ``tracking.mlflow.uri=URI`` (null: the default)."""
    if not getattr(args, "track", None):
        return []
    uri = tracking.parse_track_option(args.track)["mlflow"]["uri"]
    return [("--track", f"tracking.mlflow.uri={json.dumps(uri)}")]


def _track_command(args) -> int:
    run_id = tracking.track(args.folder, uri=args.uri)
    print(f"logged {args.folder} to MLflow: run {run_id}")
    return 0


def _resume(args) -> int:
    result = commands.resume(args.run_dir, device=args.device, quiet=args.quiet, overrides=_track(args))
    return _ended(result, args.quiet)


def _ended(result, quiet: bool) -> int:
    """0 for a completed run, else 1; --quiet hides a run's progress, never why it failed."""
    if result.status == "completed":
        return 0
    if quiet:
        why = why_not_completed(result.run_dir) or "see its train.log"
        print(f"devgrad: {result.run_dir}: {result.status}: {why}", file=sys.stderr)
    return 1


def _validate(args) -> int:
    resolved = spec.resolve(args.spec, args.set)
    # "valid" means the run will start: it fits in memory, the data loads and fits the loss, as run
    # checks before its folder; a large synthetic set is checked from its spec, never generated
    memory.check_fits(resolved)
    splits = describe(resolved.data.to_dict(), resolved.seed, resolved.task, resolved.loss.name)
    task = Task.from_spec(resolved, splits)
    for warning in splits.warnings:
        print(f"devgrad: warning: {warning}", file=sys.stderr)
    print(f"{args.spec}: valid ({resolved.name}: {resolved.data.source} data, {task.kind} with loss {task.loss}, "
          f"hidden {resolved.model.hidden}, {resolved.optimizer.name}, {resolved.train.epochs} epochs)")
    return 0


def _sweep(args) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    if args.gpus_per_run is not None and args.gpus_per_run < 1:
        raise UserError(f"--gpus-per-run must be >= 1, got {args.gpus_per_run}")
    common = {"jobs": args.jobs, "executor": args.executor, "address": args.address, "quiet": args.quiet,
              "fail_fast": args.fail_fast, "gpus_per_run": args.gpus_per_run}
    searching = {"search": args.search, "trials": args.trials, "space": args.space, "pruner": args.pruner,
                 "storage": args.storage}
    if args.trials is not None and args.trials < 1:
        raise UserError(f"--trials must be >= 1, got {args.trials}")
    if args.resume:
        if args.spec or args.grid or args.seeds is not None or args.out or args.set or args.device or \
                args.track or any(v for v in searching.values()):
            raise UserError("--resume continues a sweep folder as it was defined: give no SPEC, --grid, --seeds, "
                            "--set, --device, --out, --track, --search, --trials, --space, --pruner or --storage "
                            "with it")
        result = search.resume_sweep(args.resume, **common)
    else:
        if not args.spec:
            raise UserError("devgrad sweep needs a SPEC (or --resume SWEEP_DIR); see devgrad sweep --help")
        grid = sweeps.parse_grid_options(args.grid)
        extra = {}
        if any(v for v in searching.values()):
            extra = {**searching, "space": space.parse_space_options(args.space) or None}
            if args.pruner is None:
                del extra["pruner"]  # the spec's, else median
        result = search.sweep(args.spec, grid=grid, seeds=args.seeds, out=args.out,
                              overrides=[*args.set, *_track(args)], device=args.device, **extra, **common)
    return 0 if result.status == "completed" else 1


def _report(args) -> int:
    print(write_report(args.folder))
    return 0


def _examples(args) -> int:
    if args.copy:
        written = examples.copy_to(args.copy)
        print(f"copied {len(written)} specs into {args.copy}: run one with devgrad run {Path(args.copy) / 'NAME.yaml'}")
        return 0
    rows = examples.describe()
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name:<{width}}  {text}" for name, text in rows))
    print("\nrun one with: devgrad run NAME (e.g. devgrad run triangle); "
          "copy them to edit: devgrad examples --copy DIR")
    return 0


def _lecture(args) -> int:
    lecture.build(args.out, device=args.device, quiet=args.quiet)
    return 0


def _plot(args) -> int:
    commands.redraw(args.run_dir)
    return 0


def _warmup(args) -> int:
    if args.arch is not None:
        try:
            arches = warmup.parse_arches(args.arch)
            result = warmup.build_modules(arches)
        except (ValueError, RuntimeError) as exc:
            raise UserError(str(exc)) from None
        print(f"devgrad warmup: built devgrad's kernels for {', '.join(f'sm_{a}' for a in arches)} (no GPU needed) "
              f"in {result['seconds']} s into {result['cache']}; a GPU of that architecture loads them instead of "
              "compiling")
        return 0
    result = warmup.warmup(args.device)
    if not result["compiled"]:
        print(f"devgrad warmup: {result['why']}")
        return 0
    print(f"devgrad warmup: compiled devgrad's kernels on {result['device']} in {result['seconds']} s into "
          f"{result['cache']}")
    return 0


def _say_bench(line: str) -> None:
    """What a long bench mode is timing now, on stderr (stdout keeps the table)."""
    print(f"devgrad bench: {line}", file=sys.stderr, flush=True)


def _bench_command(args) -> str:
    """The bench's command line, as a user would retype it (for the results page)."""
    parts = ["devgrad bench", f"--configs {args.configs}"]
    if args.device != "cpu":
        parts.append(f"--device {args.device}")
    if args.repeat is not None:
        parts.append(f"--repeat {args.repeat}")
    parts += [flag for flag, on in (("--no-torch", args.no_torch), ("--no-jax", args.no_jax),
                                     ("--torch-compile", args.torch_compile)) if on]
    if args.pause != 0.2:
        parts.append(f"--pause {args.pause}")
    return " ".join(parts + [f"--write {args.write}"])


def _bench(args) -> int:
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in bench.CONFIGS]
    if unknown:
        raise UserError(f"unknown --configs {', '.join(unknown)}; choose from {', '.join(bench.CONFIGS)}")
    if args.repeat is not None and args.repeat < 1:
        raise UserError(f"--repeat {args.repeat}: give a positive number of timed blocks (rounds with --checkpoints)")
    repeat = 15 if args.repeat is None else args.repeat
    if args.pause < 0:
        raise UserError(f"--pause {args.pause}: give the seconds to sleep before each timed block (0 or more)")
    if args.write and not Path(args.write).resolve().parent.is_dir():
        raise UserError(f"--write {args.write}: the folder {Path(args.write).resolve().parent} does not exist; "
                        "create it or write elsewhere")
    if args.sweep:
        rows = sweep_bench(say=_say_bench)
        print(format_sweep(rows))
        if args.json:
            bench.write_json({"sweep": rows}, args.json)
        return 0
    if args.checkpoints:
        rows = checkpoint_bench(rounds=5 if args.repeat is None else args.repeat, device=args.device, say=_say_bench)
        print(format_checkpoints(rows))
        if args.json:
            bench.write_json({"checkpoints": rows}, args.json)
        return 0
    if args.e2e:
        row = bench.e2e(args.e2e, args.device, None if args.no_torch else bench.import_torch())
        print(bench.format_e2e(row))
        if args.json:
            bench.write_json({"e2e": row}, args.json)
        return 0
    if args.overhead:
        o = bench.op_overhead(args.device, repeat)
        print(f"(a * b + c).sum().backward() on 2x2 float32 ({o['device']}): devgrad {o['devgrad_us']:.1f} us, "
              f"same arithmetic by hand {o['handwritten_us']:.1f} us, ratio {o['ratio']:.2f}x")
        return 0
    try:
        results = bench.run(args.device, configs, repeat=repeat, use_torch=not args.no_torch, use_jax=not args.no_jax,
                            torch_compile=args.torch_compile, pause_s=args.pause)
    except bench.BenchError as exc:  # a wrong step: a bug to report, not a user mistake
        print(f"devgrad bench: {exc}", file=sys.stderr)
        return 1
    print(bench.format_table(results))
    if args.json:
        bench.write_json(results, args.json)
        print(f"wrote {args.json}")
    if args.write:
        bench.write_markdown(results, args.write, _bench_command(args))
        print(f"wrote {args.write}")
    return 0


def _predict(args) -> int:
    out, metrics = predict_file(args.run_dir, args.data, out=args.out, proba=args.proba,
                                checkpoint=args.checkpoint, device=args.device, quiet=args.quiet)
    if metrics is not None:
        shown = "  ".join(f"{k} {v:.6g}" if v is not None else f"{k} undefined" for k, v in metrics.items()
                          if k != "rows")
        print(f"{metrics['rows']} rows with their target: {shown}  ({out.with_name(out.stem + '.metrics.json')})")
    print(out)
    return 0


def _export(args) -> int:
    print(export_run(args.run_dir, args.format, out=args.out, checkpoint=args.checkpoint, opset=args.opset,
                     quiet=args.quiet))
    return 0


def _use_parsers(sub) -> None:
    """``predict`` and ``export``: use a run's trained model."""
    pred = sub.add_parser("predict", help="predict with a run's model: a CSV of predictions (and metrics when the "
                                          "data holds the target)")
    pred.add_argument("run_dir", help="a run folder (runs/<name>/<date-time>-<id>)")
    pred.add_argument("data", help="a CSV with a header row (columns matched by name) or an NPZ (X, optional y)")
    pred.add_argument("--out", help="the CSV to write (default: RUN_DIR/predictions/<data-stem>.csv; never "
                                    "overwritten)")
    pred.add_argument("--proba", action="store_true", help="also one probability column per class (classification)")
    pred.add_argument("--checkpoint", choices=("best", "last"), default="best",
                      help="which weights: best (default; last when the run has no best) or last")
    pred.add_argument("--device", help="cpu | cuda | cuda:N (default: devgrad's default device)")
    pred.add_argument("--quiet", "-q", action="store_true", help="no notices")
    pred.set_defaults(func=_predict)

    exp = sub.add_parser("export", help="write a run's model as ONNX (standardisation and head included) or its "
                                        "weights as safetensors")
    exp.add_argument("run_dir", help="a run folder (runs/<name>/<date-time>-<id>)")
    exp.add_argument("--format", choices=tuple(FORMATS), default="onnx", help="onnx (default) | safetensors")
    exp.add_argument("--out", help="the file to write (default: RUN_DIR/export/model.onnx or model.safetensors; "
                                   "never overwritten)")
    exp.add_argument("--checkpoint", choices=("best", "last"), default="best",
                     help="which weights: best (default; last when the run has no best) or last")
    exp.add_argument("--opset", type=int, help="the ONNX opset (default 17)")
    exp.add_argument("--quiet", "-q", action="store_true", help="no notices")
    exp.set_defaults(func=_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devgrad", description="devgrad: reverse-mode autodiff on NumPy/CuPy, and an MLP experiment runner.")
    parser.add_argument("--version", action="version", version=f"devgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="versions, devices found, and why CUDA is unavailable if it is")
    info.set_defaults(func=_info)

    run = sub.add_parser(
        "run", help="train the MLP a YAML spec describes, into a new run folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  devgrad run triangle                       # a spec devgrad ships (devgrad examples)\n"
               "  devgrad run experiments/triangle.yaml\n"
               "  devgrad run experiments/spirals.yaml --device cuda --set train.epochs=20 --set optimizer.lr=3e-3\n"
               "  devgrad run my_spec.yaml --print-config        # the spec with every default filled in\n"
               "  DEVGRAD_DEVICE=cpu devgrad run experiments/digits.yaml --quiet --out /tmp/runs")
    run.add_argument("spec", help="path to a YAML spec, or the name of one devgrad ships (devgrad examples)")
    run.add_argument("--device", help="auto | cpu | cuda | cuda:N (overrides the spec)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a spec key, value parsed as YAML: --set optimizer.lr=0.1 (repeatable)")
    run.add_argument("--out", help="root folder for run folders (default: ./runs)")
    run.add_argument("--print-config", action="store_true", help="print the resolved spec and exit")
    run.add_argument("--quiet", "-q", action="store_true", help="no per-epoch output")
    run.add_argument("--track", metavar="mlflow[=URI]",
                     help="log to MLflow (pip install 'devgrad[mlflow]'); URI: the tracking server (default: "
                          "$MLFLOW_TRACKING_URI, else MLflow's default); see docs/tracking.md")
    run.set_defaults(func=_run)

    resume = sub.add_parser("resume", help="continue a stopped or killed run from its last checkpoint")
    resume.add_argument("run_dir", help="the run folder 'devgrad run' printed (runs/<name>/<date-time>-<id>)")
    resume.add_argument("--device", help="run on another device than the original run")
    resume.add_argument("--quiet", "-q", action="store_true")
    resume.add_argument("--track", metavar="mlflow[=URI]",
                        help="log to MLflow (pip install 'devgrad[mlflow]'), continuing the run's MLflow run; URI: "
                             "the tracking server (default: $MLFLOW_TRACKING_URI, else MLflow's default)")
    resume.set_defaults(func=_resume)

    validate = sub.add_parser("validate", help="check a spec and report every problem at once")
    validate.add_argument("spec", help="path to a YAML spec, or the name of one devgrad ships")
    validate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="override a spec key as 'run' would (repeatable)")
    validate.set_defaults(func=_validate)

    sweep = sub.add_parser(
        "sweep", help="run a grid of runs of one spec in parallel (a local process pool, or Dask)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Every point of a grid (times --seeds repeats) of SPEC, each a normal run folder under "
                    "sweeps/<name>/<date-time>-<id>/runs/. Every point is validated before anything starts.",
        epilog="examples:\n"
               "  devgrad sweep experiments/spirals.yaml --grid optimizer.lr=0.1,0.01,0.001 --seeds 3\n"
               "  devgrad sweep spec.yaml --grid 'model.hidden=[16],[64,64]' --jobs 2\n"
               "  devgrad sweep spec.yaml --executor dask --address tcp://scheduler:8786 --gpus-per-run 1\n"
               "  devgrad sweep --resume sweeps/spirals/20261127-101500-a1b2c3\n"
               "  devgrad sweep spec.yaml --search tpe --trials 40 --space 'optimizer.lr=loguniform(1e-4,1e-1)' \\\n"
               "      --space 'model.hidden=choice([32],[64,64])' --pruner median --jobs 2\n"
               "A spec may hold the grid itself: sweep: {grid: {optimizer.lr: [0.1, 0.01]}, seeds: 3}, or a search:\n"
               "sweep: {search: {trials: 40, sampler: tpe, pruner: median, space: {optimizer.lr: {loguniform: "
               "[1.0e-4, 0.1]}}}} (see docs/search.md)")
    sweep.add_argument("spec", nargs="?", help="path to a YAML spec, or the name of one devgrad ships (not with "
                                               "--resume)")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="a grid axis, values parsed as YAML and split at top-level commas (repeatable)")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a key of the base spec for every run, as 'run' does (repeatable)")
    sweep.add_argument("--device", help="auto | cpu | cuda | cuda:N for every run (overrides the spec)")
    sweep.add_argument("--seeds", type=int, help="repeats of every grid point, seeds base, base+1, ... (default 1)")
    sweep.add_argument("--jobs", type=int, help="runs at once (default: the number of cores)")
    sweep.add_argument("--executor", choices=("local", "dask"), default="local",
                       help="local: a process pool (default); dask: Dask distributed (pip install 'devgrad[dask]')")
    sweep.add_argument("--address", help="a running Dask scheduler, e.g. tcp://HOST:8786 (default: a LocalCluster)")
    sweep.add_argument("--gpus-per-run", type=int, help="Dask worker resource GPU needed by each run")
    sweep.add_argument("--out", help="root folder for sweep folders (default: ./sweeps)")
    sweep.add_argument("--fail-fast", action="store_true", help="stop the sweep at the first run that fails")
    sweep.add_argument("--resume", metavar="SWEEP_DIR", help="run what a sweep folder has not finished (a search: "
                                                             "continue its study to its trial count)")
    sweep.add_argument("--search", choices=("tpe", "random", "cmaes", "grid"),
                       help="run an Optuna study with this sampler instead of a grid (pip install 'devgrad[optuna]')")
    sweep.add_argument("--trials", type=int, help="how many trials the search runs")
    sweep.add_argument("--space", action="append", default=[], metavar="KEY=KIND(ARGS)",
                       help="a searched key: uniform(a,b), loguniform(a,b), int(a,b[,log]) or choice(v1,v2,...), "
                            "values parsed as YAML (repeatable)")
    sweep.add_argument("--pruner", choices=("median", "hyperband", "none"),
                       help="stop hopeless trials early on the monitored metric per epoch (default: median)")
    sweep.add_argument("--storage", metavar="URL",
                       help="the study in this Optuna RDB storage (e.g. sqlite:///study.db) instead of the sweep "
                            "folder's journal file")
    sweep.add_argument("--quiet", "-q", action="store_true", help="print only the summary table")
    sweep.add_argument("--track", metavar="mlflow[=URI]",
                       help="log every run to MLflow (pip install 'devgrad[mlflow]'), a search's trials nested in a "
                            "run of the sweep; URI: the tracking server (default: $MLFLOW_TRACKING_URI, else "
                            "MLflow's default); see docs/tracking.md")
    sweep.set_defaults(func=_sweep)

    trk = sub.add_parser("track", help="log a finished run folder or sweep folder to MLflow (again: only what is "
                                       "missing is added)")
    trk.add_argument("folder", help="a run folder or a sweep folder")
    trk.add_argument("--uri", help="the MLflow tracking URI (default: the spec's tracking.mlflow.uri, else "
                                   "$MLFLOW_TRACKING_URI, else MLflow's default)")
    trk.set_defaults(func=_track_command)

    rep = sub.add_parser("report", help="(re)write a run's or a sweep's self-contained report.html")
    rep.add_argument("folder", help="a run folder (runs/<name>/<date-time>-<id>) or a sweep folder")
    rep.set_defaults(func=_report)

    examples = sub.add_parser("examples", help="list the example specs devgrad ships (devgrad run NAME runs one)")
    examples.add_argument("--copy", metavar="DIR", help="copy them into DIR to edit them (made if missing)")
    examples.set_defaults(func=_examples)

    lecture = sub.add_parser("lecture", help="run the lecture's experiments and write one HTML page walking "
                                             "through it (seconds on a CPU)")
    lecture.add_argument("--out", default="lecture", help="folder for index.html and the runs (default: ./lecture)")
    lecture.add_argument("--device", default="cpu", help="cpu (default) | cuda | auto")
    lecture.add_argument("--quiet", "-q", action="store_true")
    lecture.set_defaults(func=_lecture)

    plot = sub.add_parser("plot", help="(re)draw the plots of a run folder")
    plot.add_argument("run_dir", help="a run folder; its plots/ are drawn again from its best (else last) checkpoint")
    plot.set_defaults(func=_plot)

    _use_parsers(sub)

    warm = sub.add_parser("warmup", help="compile devgrad's GPU kernels once (into CuPy's kernel cache)")
    warm.add_argument("--device", default="cuda", help="cuda | cuda:N (default: cuda; on the CPU nothing to do)")
    warm.add_argument("--arch", default=None,
                      help="build devgrad's kernels for these GPU architectures without a GPU (compute "
                           "capability: 90 for H100/H200, 80 for A100; several as 80,90), e.g. in a Docker build")
    warm.set_defaults(func=_warmup)

    bench = sub.add_parser("bench", help="time an MLP training step: devgrad vs hand-written NumPy/CuPy and PyTorch")
    bench.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    bench.add_argument("--configs", default="tiny,small,medium,large", help="comma-separated: tiny,small,medium,large")
    bench.add_argument("--repeat", type=int, default=None,
                       help="timed blocks per implementation (default 15); with --checkpoints, rounds (default 5)")
    bench.add_argument("--json", help="also write the results as JSON to this path")
    bench.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    bench.add_argument("--no-jax", action="store_true", help="skip the JAX jit column (shown when JAX is installed)")
    bench.add_argument("--torch-compile", action="store_true",
                       help="also time PyTorch's step under torch.compile (compiling takes a while)")
    bench.add_argument("--pause", type=float, default=0.2, metavar="SECONDS",
                       help="sleep before each timed block, so BLAS threads still spinning from the previous "
                            "block steal no core")
    bench.add_argument("--write", metavar="FILE.md",
                       help="also write the table as a Markdown page (machine, date, command, load) to this path")
    mode = bench.add_mutually_exclusive_group()  # what to time instead of the step table: one at a time
    mode.add_argument("--e2e", choices=("small", "full"),
                      help="time a whole gpu_large-like run instead, devgrad vs plain PyTorch (full: the GPU "
                           "workload of experiments/gpu_large.yaml; small: a CPU-sized one)")
    mode.add_argument("--sweep", action="store_true",
                      help="time 8 small runs as a sweep with 1 vs 2 workers (local pool and Dask): the speed-up, "
                           "and each run's time beside another against alone")
    mode.add_argument("--checkpoints", action="store_true",
                      help="time wine, digits and spirals runs with the default checkpoint policy, without "
                           "checkpoints and writing every epoch: what the policy costs a run")
    mode.add_argument("--overhead", action="store_true",
                      help="only measure per-op overhead: (a*b+c).sum().backward() on 2x2 tensors vs NumPy")
    bench.set_defaults(func=_bench)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or 0)
    except (UserError, SpecError, DataError, RunError, DeviceError, UnsafeFileError) as exc:
        print(f"devgrad: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        # A folder that cannot be created, a full disk, a missing permission: the user's to fix.
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        hint = "; free some space on that disk (or give --out on another one)" if exc.errno == errno.ENOSPC else ""
        print(f"devgrad: error: cannot access{where}: {exc.strerror or exc}{hint}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        # A run or a sweep says how to continue it (devgrad resume / devgrad sweep --resume).
        print(f"devgrad: interrupted{'; ' + str(exc) if str(exc) else ''}", file=sys.stderr, flush=True)
        return 130

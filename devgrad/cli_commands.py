"""What each ``devgrad`` command does: the functions ``devgrad.cli`` dispatches to by name.

Imported only when a command runs, so that ``devgrad --help`` reads the parser alone.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

from devgrad import lecture, warmup
from devgrad.backend import (
    CPU_ADVICE, DeviceError, cuda_available, cuda_unavailable_reason, cupy_import, cupy_version, default_device, device,
    devices,
)
from devgrad.data.files import DataError
from devgrad.experiment import commands, examples, search, space, spec, sweeps, tracking
from devgrad.experiment.errors import RunError
from devgrad.experiment.export import export_run
from devgrad.experiment.plan import make_plan, with_device
from devgrad.experiment.html_report import write_report
from devgrad.experiment.predict import predict_file
from devgrad.experiment.rundir import why_not_completed
from devgrad.experiment.spec import SpecError
from devgrad.io import UnsafeFileError
from devgrad.version import __version__


class UserError(Exception):
    """A mistake the user can fix; the CLI prints it without a traceback and exits 2."""


def cmd_info(args: argparse.Namespace) -> int:
    """``devgrad info``: versions, the devices found, and why CUDA is unavailable if it is."""
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


def cmd_run(args: argparse.Namespace) -> int:
    """``devgrad run``: train the model a spec describes (or print the resolved spec)."""
    if args.print_config:
        print(spec.to_yaml(with_device(spec.resolve(args.spec, args.set), args.device).to_dict()), end="")
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


def cmd_track(args: argparse.Namespace) -> int:
    """``devgrad track``: log a finished run or sweep folder to MLflow."""
    run_id = tracking.track(args.folder, uri=args.uri)
    print(f"logged {args.folder} to MLflow: run {run_id}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """``devgrad resume``: continue a stopped run from its last checkpoint."""
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


def cmd_validate(args: argparse.Namespace) -> int:
    """``devgrad validate``: check that a spec's run (or every run of its sweep) will start, without
    running it."""
    swept = search.check_sweep(args.spec, args.set)  # a sweep: block: its points, as devgrad sweep checks them
    specs = [spec.resolve(args.spec, args.set)] if swept is None else [spec.resolve(s) for s in swept[1]]
    warnings: list = []
    for resolved in specs:
        # "valid" means the run will start: it fits in memory, the data loads and fits the loss, as run
        # checks before its folder (the same plan, check-only: a large synthetic set is never generated)
        plan = make_plan(resolved, check_only=True)
        warnings += [w for w in plan.splits.warnings if w not in warnings]
    for warning in warnings:
        print(f"devgrad: warning: {warning}", file=sys.stderr)
    if swept is not None:
        print(f"{args.spec}: valid ({specs[0].name}: {swept[0]})")
        return 0
    print(f"{args.spec}: valid ({resolved.name}: {resolved.data.source} data, {plan.task.kind} with loss "
          f"{plan.task.loss}, hidden {resolved.model.hidden}, {resolved.optimizer.name}, "
          f"{resolved.train.epochs} epochs)")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """``devgrad sweep``: a grid or a search of runs of one spec, or the rest of a sweep folder."""
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


def cmd_report(args: argparse.Namespace) -> int:
    """``devgrad report``: (re)write a run's or a sweep's report.html."""
    print(write_report(args.folder))
    return 0


def cmd_examples(args: argparse.Namespace) -> int:
    """``devgrad examples``: list the shipped example specs, or copy them into a folder."""
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


def cmd_lecture(args: argparse.Namespace) -> int:
    """``devgrad lecture``: run the lecture's experiments and write its HTML page."""
    lecture.build(args.out, device=args.device, quiet=args.quiet)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """``devgrad plot``: redraw a run folder's plots."""
    commands.redraw(args.run_dir)
    return 0


def cmd_warmup(args: argparse.Namespace) -> int:
    """``devgrad warmup``: compile devgrad's GPU kernels into the kernel cache."""
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


def cmd_predict(args: argparse.Namespace) -> int:
    """``devgrad predict``: predictions of a run's model on a data file, as a CSV."""
    out, metrics = predict_file(args.run_dir, args.data, out=args.out, proba=args.proba,
                                checkpoint=args.checkpoint, device=args.device, quiet=args.quiet)
    if metrics is not None:
        shown = "  ".join(f"{k} {v:.6g}" if v is not None else f"{k} undefined" for k, v in metrics.items()
                          if k not in ("rows", "rows_without_target", "unseen_classes"))
        print(f"{metrics['rows']} rows with their target: {shown}  ({out.with_name(out.stem + '.metrics.json')})")
    print(out)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``devgrad export``: a run's model as ONNX or its weights as safetensors."""
    print(export_run(args.run_dir, args.format, out=args.out, checkpoint=args.checkpoint, opset=args.opset,
                     quiet=args.quiet))
    return 0


# The mistakes a user can fix: ``devgrad.cli`` prints them in one line and exits 2, without a traceback.
USER_ERRORS = (UserError, SpecError, DataError, RunError, DeviceError, UnsafeFileError)


def error_text(exc: Exception) -> str:
    """A user error's message in the command line's words (``--device cpu``, not ``device='cpu'``)."""
    return str(exc).replace(CPU_ADVICE, "Use --device cpu (or --device auto) to run on the CPU.")

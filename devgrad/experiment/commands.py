"""The commands: ``run`` a spec, ``resume`` a run folder, ``redraw`` a run's plots.

``run(spec)`` is the library form of ``devgrad run``; it keeps no global state and its
inputs and ``RunResult`` are picklable, so runs can be shipped to worker processes.
"""

from __future__ import annotations

import contextlib
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from devgrad.backend import cuda_available, cuda_unavailable_reason
from devgrad.backend import device as resolve_device
from devgrad.data import DataLoader, build_splits
from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment import memory, neurons, report, tracking
from devgrad.experiment.html_report import write_run_report
from devgrad.experiment.console import Console, close_logger, fit_terminal
from devgrad.experiment.errors import RunError
from devgrad.experiment.rundir import (
    RunResult, missing_parents, new_run_dir, now, remove_half_made, run_meta, still_running,
)
from devgrad.experiment.spec import Spec, resolve, to_yaml
from devgrad.experiment.task import Task
from devgrad.experiment.trainer import StopFile, Trainer, summary_of
from devgrad.io import atomic_write_text
from devgrad.warmup import cold_cache_notice


def auto_device_notice(requested: str) -> str | None:
    """What to tell the user when 'auto' fell back to the CPU."""
    if requested.strip().lower() == "auto" and not cuda_available():
        return f"device auto: CUDA is not available ({cuda_unavailable_reason()}); running on the CPU"
    return None


def execute(trainer: Trainer, start_epoch: int, meta_base: dict | None, spec: Spec, started_wall: float,
             started: str) -> RunResult:
    run_dir = trainer.run_dir
    console = Console(trainer.quiet, spec.train.epochs, start_epoch - 1, trainer.log)
    status = "failed"
    try:
        try:
            status = trainer.fit(start_epoch, console)
        except KeyboardInterrupt:
            status = "stopped"
            console.say(f"interrupted: status 'stopped'; continue with: devgrad resume {run_dir}")
        except Exception as exc:
            # An unexpected error (out of memory, a full disk, a bug): the folder must not claim 'running'.
            _fail(trainer, exc, spec, meta_base, started, started_wall)
        finally:
            console.close()
        history = trainer.metrics.rows()
        summary = summary_of(trainer, history, status, time.perf_counter() - started_wall, _earlier(meta_base))
        if status in ("completed", "pruned"):  # a pruned run ended early on purpose: it gets its results too
            try:
                _finish(trainer, summary, history, console)
            except KeyboardInterrupt:  # after the last epoch: the run is not done until its results are
                status = summary["status"] = "stopped"
                console.say(f"interrupted after the last epoch (during the test evaluation or the plots): status "
                            f"'stopped'; finish it with: devgrad resume {run_dir}")
            except Exception as exc:  # a plot that cannot be written (a full disk), a bug: not 'running'
                _fail(trainer, exc, spec, meta_base, started, started_wall, summary)
        try:
            if trainer.checkpoints is not None:
                trainer.checkpoints.close()  # the final checkpoints are on disk before the run says it ended
            ckpt.write_json(run_dir / "summary.json", summary)
            meta = run_meta(spec, trainer.device, run_dir, status, started, now(), meta_base)
            ckpt.write_json(run_dir / "meta.json", _with_segment(meta, meta_base, started, summary))
        except OSError as exc:
            _fail(trainer, exc, spec, meta_base, started, started_wall, summary)
        _report(trainer)
        if status == "completed":
            line = f"completed in {summary['wall_seconds']:.1f}s: {run_dir}"
            if "test" in summary:
                line += "  " + "  ".join(f"{k} {v:.4f}" for k, v in summary["test"].items())
            console.say(line)
        if status == "stopped":
            raise KeyboardInterrupt(f"continue with: devgrad resume {run_dir}")
        return RunResult(run_dir, history, summary)
    finally:
        close_logger(trainer.log)


def _fail(trainer: Trainer, exc: Exception, spec: Spec, meta_base: dict | None, started: str,
          started_wall: float, summary: dict | None = None) -> NoReturn:
    """Record the failed run (``_record_failure``) and raise: a file that could not be written as
    a RunError saying what to do, anything else as it is."""
    _record_failure(trainer, exc, spec, meta_base, started, started_wall, summary)
    if isinstance(exc, OSError):
        raise RunError(_write_failed_message(exc, trainer.run_dir)) from exc
    raise exc


def _record_failure(trainer: Trainer, exc: BaseException, spec: Spec, meta_base: dict | None, started: str,
                    started_wall: float, summary: dict | None = None) -> None:
    """A failed run's files, as many as can still be written (the disk may be full): the
    checkpoints of the last good epoch, summary.json and meta.json with the error, report.html."""
    trainer.log.exception("run failed")
    error = f"{type(exc).__name__}: {exc}"
    if trainer.checkpoints is not None:
        with contextlib.suppress(Exception):  # the last good state, if it can still be written
            trainer.checkpoints.close()
    if summary is None:
        summary = summary_of(trainer, trainer.metrics.rows(), "failed", time.perf_counter() - started_wall,
                             _earlier(meta_base))
    summary.update(status="failed", error=error)
    meta = _with_segment(run_meta(spec, trainer.device, trainer.run_dir, "failed", started, now(), meta_base),
                         meta_base, started, summary)
    meta["error"] = error
    for name, payload in (("summary.json", summary), ("meta.json", meta)):
        try:
            ckpt.write_json(trainer.run_dir / name, payload)
        except OSError as problem:
            trainer.log.error("could not write %s: %s", problem.filename or name, problem.strerror or problem)
    _report(trainer)


def _earlier(meta_base: dict | None) -> list:
    """The segments of the run before this one (meta.json's "segments"): a resume starts a new one."""
    return list((meta_base or {}).get("segments", []))


def _with_segment(meta: dict, meta_base: dict | None, started: str, summary: dict) -> dict:
    """``meta`` with this segment (its start and wall time) added to the run's segments."""
    segment = {"started": started, "wall_seconds": summary["wall_seconds_this_segment"]}
    meta["segments"] = [*_earlier(meta_base), segment]
    return meta


def _killed_segment(run_dir: Path, meta: dict) -> dict:
    """The segment of a killed run, which could not write its time: from its start to the last
    file it wrote (an epoch's metrics, a checkpoint, a log line)."""
    started = (meta.get("resumed") or [meta.get("started")])[-1]
    files = [run_dir / "train.log", run_dir / "metrics.jsonl", run_dir / "checkpoints" / "last.npz"]
    last_write = max((f.stat().st_mtime for f in files if f.exists()), default=None)
    try:
        wall = max(0.0, last_write - datetime.fromisoformat(started).timestamp()) if last_write else 0.0
    except (TypeError, ValueError):  # a meta.json without a readable start
        wall = 0.0
    return {"started": started, "wall_seconds": round(wall, 3), "ended": "killed (timed to its last write)"}


def _write_failed_message(exc: OSError, run_dir: Path) -> str:
    """What to say when a run's file could not be written (a full disk, a lost permission)."""
    return (f"cannot write {exc.filename or 'a file of the run'}: {exc.strerror or exc}. The run stopped with "
            f"status 'failed' and keeps its last good checkpoint: make room (or fix the permission), then "
            f"continue with: devgrad resume {run_dir}")


def _report(trainer: Trainer) -> None:
    """report.html for the run folder; a failure to write it is logged, never the run's failure."""
    try:
        write_run_report(trainer.run_dir)
    except Exception:  # the run's own files are what matters; the page can be rebuilt (devgrad report)
        trainer.log.exception("could not write report.html (rebuild it with: devgrad report %s)", trainer.run_dir)


def run(spec_or_path, overrides=(), out=None, device: str | None = None, quiet: bool = False,
        run_dir=None, stop_file=None, callbacks=()) -> RunResult:
    """Validate a spec, create a fresh run folder and train; returns a RunResult.

    ``spec_or_path``: a YAML file path or a spec dict; ``overrides``: ``key.path=value``
    strings; ``out``: the runs root (default ./runs); ``device`` overrides the spec's;
    ``run_dir``: this exact folder instead of a fresh one under ``out`` (created; it must not
    hold files yet: a sweep names its runs' folders); ``stop_file``: a file whose appearance
    stops the run after an epoch, as Ctrl-C would (a sweep's Ctrl-C reaching its Dask workers).
    ``callbacks``: called after every epoch (see ``Trainer.callbacks``).
    """
    overrides = [overrides] if isinstance(overrides, str) else list(overrides)  # one "key=value", not its letters
    overrides = [*overrides, ("--device", f"device={device}")] if device is not None else overrides
    spec = resolve(spec_or_path, overrides)
    root = Path(out) if out is not None else Path("runs")
    if root.exists() and not root.is_dir():
        raise RunError(f"--out {root} is a file, not a folder: give the folder the run folders go into "
                       "(it is created if it does not exist)")
    dev = resolve_device(spec.device)  # fails here, before any folder exists, if CUDA is missing
    memory.check_fits(spec)  # so does a run too large for this machine, before anything is allocated
    chosen = tracking.settings(spec.to_dict())
    if chosen is not None:
        tracking.import_mlflow()  # a missing client is the user's to fix, before any folder
    splits = build_splits(spec.data.to_dict(), spec.seed, spec.task, spec.loss.name)  # bad data fails here too
    Task.from_spec(spec, splits)
    if not quiet:
        for warning in splits.warnings:
            print(f"devgrad: warning: {warning}", file=sys.stderr, flush=True)
    parents = missing_parents(root / spec.name if run_dir is None else Path(run_dir).parent)
    run_dir = new_run_dir(root, spec.name) if run_dir is None else _named_run_dir(Path(run_dir))
    started, wall = now(), time.perf_counter()
    try:
        trainer = _set_up(spec, run_dir, dev, quiet, splits, started)
        trainer.callbacks = list(callbacks)
    except BaseException:
        remove_half_made(run_dir, parents)  # nothing ran: no half-made folder is left behind
        raise
    notices = [auto_device_notice(spec.device), cold_cache_notice(dev)]
    notice = "; ".join(n for n in notices if n)
    if notice:
        if not quiet:  # --quiet means quiet: the notice is in train.log either way
            print(fit_terminal(f"devgrad: notice: {notice}", sys.stderr), file=sys.stderr, flush=True)
        trainer.log.info(notice)
    trainer.log.info("run %s started on %s (%s parameters)", run_dir, dev.description(),
                     trainer.model.num_parameters())
    if not quiet:
        print(f"run folder: {run_dir}\ndevice: {dev.description()}, {trainer.model.num_parameters()} parameters",
              flush=True)
    trainer.stop_requested = StopFile(stop_file) if stop_file else None
    return _tracked(trainer, chosen, lambda: execute(trainer, 1, None, spec, wall, started))


def _tracked(trainer: Trainer, chosen: dict | None, train) -> RunResult:
    """``train()`` with the run logged to MLflow when ``chosen`` says where (see ``tracking``)."""
    if chosen is None:
        return train()
    tracker = tracking.MlflowTracker(trainer.run_dir, chosen, trainer.quiet)
    trainer.callbacks.append(tracker)
    try:
        return train()
    finally:
        tracker.close()


def _set_up(spec: Spec, run_dir: Path, dev, quiet: bool, splits, started: str) -> Trainer:
    """A new run folder's first files and the run's Trainer."""
    atomic_write_text(run_dir / "config.yaml", to_yaml(spec.to_dict()))
    ckpt.write_json(run_dir / "meta.json", run_meta(spec, dev, run_dir, "running", started))
    (run_dir / "checkpoints").mkdir()
    (run_dir / "plots").mkdir()
    trainer = Trainer(spec, run_dir, dev, quiet, splits)
    try:
        trainer.metrics.rewrite([])  # the files exist (with a CSV header) from the start
    except BaseException:
        close_logger(trainer.log)
        raise
    return trainer


def _named_run_dir(run_dir: Path) -> Path:
    """A run folder at a given path: created, or an existing empty folder (never one with files)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if any(run_dir.iterdir()):
        raise RunError(f"{run_dir} already holds files; a run never writes into another run's folder "
                       "(resume it with devgrad resume, or choose another folder)")
    return run_dir


def resume(run_dir, device: str | None = None, quiet: bool = False, stop_file=None, callbacks=(),
           overrides=()) -> RunResult:
    """Continue a stopped, killed or failed run from its last checkpoint, in the same folder
    (``stop_file`` and ``callbacks`` as for ``run``; ``overrides`` such as ``--track``'s)."""
    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    if not config.exists():
        what = "no such folder" if not run_dir.exists() else "no config.yaml in it"
        raise RunError(f"{run_dir} is not a run folder ({what}); pass the folder that 'devgrad run' printed")
    meta = _resume_meta(run_dir)
    if meta.get("status") in ("completed", "pruned"):
        raise RunError(f"{run_dir} already {meta['status']}; start a new run with 'devgrad run' instead")
    if meta.get("status") == "running" and still_running(meta):
        raise RunError(f"{run_dir} is still being trained by process {meta['pid']} on this host; stop it "
                       "(Ctrl-C) before resuming, or two processes would write the same folder")
    spec = resolve(config, [*overrides, *([("--device", f"device={device}")] if device is not None else [])])
    dev = resolve_device(spec.device)
    memory.check_fits(spec)
    chosen = tracking.settings(spec.to_dict())
    if chosen is not None:
        tracking.import_mlflow()
    last = run_dir / "checkpoints" / "last.npz"
    state = _resume_state(last, run_dir) if last.exists() else None  # read before anything in the folder changes
    started, wall = now(), time.perf_counter()
    trainer = Trainer(spec, run_dir, dev, quiet)
    trainer.callbacks = list(callbacks)
    try:
        start = trainer.restore(state) + 1 if state is not None else 1
    except (ValueError, KeyError, TypeError) as exc:  # the weights of another model than config.yaml's
        close_logger(trainer.log)
        raise RunError(f"cannot resume {run_dir}: {last} does not fit the run that its config.yaml describes "
                       f"({exc}); was config.yaml edited after the run started? Put it back as it was, or start "
                       "a new run with devgrad run") from None
    kept = [r for r in trainer.metrics.rows() if r["epoch"] < start]
    trainer.metrics.rewrite(kept)  # epochs after the checkpoint are trained again: no duplicates
    if trainer.units is not None:
        trainer.units.keep_before(start)
    trainer.history = list(kept)
    if meta.get("status") == "running":  # killed: its segment never wrote its time
        meta["segments"] = [*_earlier(meta), _killed_segment(run_dir, meta)]
    meta["resumed"] = [*meta.get("resumed", []), started]
    ckpt.write_json(run_dir / "meta.json", run_meta(spec, dev, run_dir, "running", started, None, meta))
    message = f"resuming {run_dir} at epoch {start} on {dev.description()}"
    trainer.log.info(message)
    if not quiet:
        print(message, flush=True)
    trainer.stop_requested = StopFile(stop_file) if stop_file else None
    return _tracked(trainer, chosen, lambda: execute(trainer, start, meta, spec, wall, started))


def _resume_meta(run_dir: Path) -> dict:
    """meta.json (empty when missing), or a RunError when it cannot be read."""
    path = run_dir / "meta.json"
    try:
        return ckpt.read_json(path) if path.exists() else {}
    except (ValueError, OSError) as exc:
        raise RunError(f"cannot resume {run_dir}: {path} is damaged ({exc}); it records whether a process is "
                       f"still training the run. If none is, move it aside (mv {path} {path}.damaged) and resume "
                       "again") from None


def _resume_state(last: Path, run_dir: Path) -> dict:
    """The state in last.npz, or a RunError that says what to do when the file is damaged."""
    try:
        return ckpt.load_checkpoint(last)
    except ckpt.DamagedCheckpointError as exc:
        raise RunError(f"cannot resume {run_dir}: {exc}. Move the damaged file aside (mv {last} {last}.damaged) "
                       f"and run 'devgrad resume {run_dir}' again to retrain it from the first epoch (the same "
                       f"seeds give the same run), or start afresh with 'devgrad run {run_dir / 'config.yaml'}'"
                       ) from None


def _finish(trainer: Trainer, summary: dict, history: list, console: Console) -> None:
    """After training: the test split's metrics and the plots, into ``summary``."""
    if len(trainer.splits.X_test):
        test_loader = DataLoader(trainer.splits.X_test, trainer.splits.y_test, 4096, False, trainer.device,
                                 trainer.dtype)
        summary["test"] = {f"test_{k}": v for k, v in trainer.evaluate(test_loader).items()}
    else:
        missing = ", ".join(f"test_{m}" for m in ("loss", *trainer.task.metrics))
        console.say(f"the test split is empty ({trainer.splits.sizes_text()}): no test metrics ({missing}) for "
                    "this run")
    if trainer.val_loader is None:
        console.say(f"the validation split is empty ({trainer.splits.sizes_text()}): no val_ metrics; early "
                    f"stopping and best.npz watch {trainer.monitor}")
    linear = _linear_map(trainer)
    if linear is not None:
        summary["linear_map"] = linear
        console.say(f"without a nonlinearity the model is one affine map of the standardised inputs: {linear['text']}")
    if trainer.spec.plots.enabled:
        if trainer.checkpoints is not None:
            trainer.checkpoints.end_writer()  # the plots are drawn in forked processes only without threads
        summary["plots"] = _draw(trainer, history, console.say)
    else:
        summary["plots"] = []
        trainer.log.info("plots.enabled is false: no plots drawn (devgrad plot %s draws them)", trainer.run_dir)


def _linear_map(trainer: Trainer) -> dict | None:
    """The single affine map a model without nonlinearities computes (identity activation, or no
    hidden layer), multiplied out from its layers."""
    spec = trainer.spec
    if spec.model.hidden and spec.model.activation != "identity":
        return None
    weight, bias = neurons.composed_map(neurons.linear_layers(trainer.model))
    raw = neurons.input_coordinates(weight, bias, trainer.splits.mean, trainer.splits.std)
    return {"weight": weight.tolist(), "bias": bias.tolist(), "text": neurons.describe_map(weight, bias),
            "input_text": neurons.describe_map(*raw, variable="x")}


def _draw(trainer: Trainer, history: list, say) -> list[str]:
    """The run's plots, from plain data: its history; for 2-D classification inputs, the data in
    its own coordinates with the model's class probabilities, each first-layer unit's activation
    and line, and the first layer's weights over the epochs; for a regression, predicted against
    true values on the test split (else validation, else train)."""
    boundary = predictions = neuron_view = lines = None
    splits = trainer.splits
    spec = trainer.spec
    if trainer.task.regression:
        for name, X, y in (("test", splits.X_test, splits.y_test), ("validation", splits.X_val, splits.y_val),
                           ("train", splits.X_train, splits.y_train)):
            if len(X):
                predictions = (splits.target_values(y), trainer.predict_values(splits.raw_input(X)), name)
                break
    elif splits.n_features == 2:
        boundary = (*splits.all_points(), trainer.predict_proba)
        if (spec.model.hidden and spec.model.activation == "identity") or not spec.model.hidden:
            weight, bias = neurons.composed_map(neurons.linear_layers(trainer.model))
            if len(weight) == 1:  # one output: the boundary is the line where it crosses 0 (or 0.5 for mse)
                offset = 0.5 if trainer.task.loss == "mse" else 0.0
                (line,) = neurons.raw_lines(weight, bias - offset, splits.mean, splits.std)
                lines = [(line, "the composed affine map" if spec.model.hidden else "the learned line w·x + b = 0")]
    if splits.n_features == 2 and spec.model.hidden:
        # each first-layer unit (the first MAX_UNITS of a wider layer) with its line, beside the output
        weight, bias = neurons.first_layer(trainer.model)
        shown = min(len(weight), neurons.MAX_UNITS)
        unit_lines = neurons.raw_lines(weight[:shown], bias[:shown], splits.mean, splits.std)
        if boundary is not None and lines is None and len(weight) <= 8:
            lines = [(line, f"unit {i + 1}") for i, line in enumerate(unit_lines)]

        def units(points):
            return neurons.hidden_activations(trainer.model, spec.model.activation,
                                              splits.standardize_input(points))[:, :shown]

        X_all, y_all = splits.all_points()
        if trainer.task.regression:
            y_all = splits.target_values(y_all)
            output = lambda points: trainer.predict_values(points)[:, None]  # noqa: E731 - one-liner
        else:
            output = trainer.predict_proba
        neuron_view = (X_all, y_all, units, unit_lines, output, spec.model.activation, len(weight))
    unit_history = None
    if trainer.units is not None:  # in the data's own coordinates, like the lines of neurons.png
        unit_history = neurons.unit_history_in_input_coordinates(trainer.units.rows(), splits.mean, splits.std)
    return report.draw(trainer.run_dir, spec.name, history, say, boundary,
                       best_epoch=trainer.best_epoch or None, stopped_at=trainer.stopped_at,
                       class_names=splits.classes, predictions=predictions, neuron_view=neuron_view,
                       unit_history=unit_history, lines=lines, frames=trainer.frames,
                       margin=trainer.task.loss == "hinge")


def redraw(run_dir, quiet: bool = False) -> list[str]:
    """``devgrad plot RUN_DIR``: rebuild the model from the run's config and best (else last)
    checkpoint on the CPU, and draw the plots again."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise RunError(f"{run_dir} is not a run folder (no config.yaml)")
    if not report.can_plot():
        raise RunError(f"devgrad plot draws with matplotlib, which is not installed: {report.PLOT_HINT}")
    spec = resolve(run_dir / "config.yaml")
    state_file = next((p for p in (run_dir / "checkpoints" / "best.npz", run_dir / "checkpoints" / "last.npz")
                       if p.exists()), None)
    if state_file is None:
        raise RunError(f"{run_dir} has no checkpoint to plot from")
    trainer = Trainer(spec, run_dir, resolve_device("cpu"), quiet=True)
    try:
        trainer.model.load_state_dict(ckpt.load_checkpoint(state_file)["model"])
        messages: list[str] = []
        written = _draw(trainer, ckpt.MetricsLog(run_dir).rows(), messages.append)
        write_run_report(run_dir)  # the page embeds the plots: draw it again with them
    finally:
        close_logger(trainer.log)
    if not quiet:
        for m in messages:
            print(m)
        for w in written:
            print(run_dir / w)
    return written

"""The commands: ``run`` a spec, ``resume`` a run folder, ``redraw`` a run's plots.

Each goes the same way: a ``Spec`` (``resolve``), its ``Plan`` (``make_plan``: every mistake
found before a folder exists), a ``Trainer`` with the run's callbacks (``run_trainer``), and
``execute``, which trains and writes the run's results whatever way the loop ends.
``run(spec)`` is the library form of ``devgrad run``; it keeps no global state and its inputs
and ``RunResult`` are picklable, so runs can be shipped to worker processes.
"""

from __future__ import annotations

import dataclasses

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from devgrad.backend import Device
from devgrad.data import Splits
from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment import model_info, report, resuming
from devgrad.experiment.callbacks import (
    BoundaryAnimation, Checkpoints, EarlyStopping, MetricsFile, NeuronHistory, Progress, StopFile, as_callback,
)
from devgrad.experiment.console import Console, close_logger, fit_terminal, run_logger
from devgrad.experiment.errors import RunError
from devgrad.experiment.html_report import write_run_report
from devgrad.experiment.plan import Plan, auto_device_notice, make_plan
from devgrad.experiment.results import PlotWorkerStart, RunReport, draw, summary_of
from devgrad.experiment.rundir import (
    RunResult, missing_parents, new_run_dir, now, remove_half_made, run_meta, still_running,
)
from devgrad.experiment.spec import resolve, to_yaml
from devgrad.experiment.tracking_service import MlflowTracker
from devgrad.experiment.trainer import Trainer
from devgrad.io import atomic_write_text
from devgrad.warmup import cold_cache_notice

__all__ = ["execute", "redraw", "resume", "run", "run_trainer"]


@dataclass
class Segment:
    """One stretch of a run's training (a resume starts a new one): when it started, and the
    run's meta.json before it (None for a new run)."""

    started: str
    wall_start: float
    meta_base: dict | None = None

    @classmethod
    def begin(cls, meta_base: dict | None = None) -> Segment:
        """A segment starting now."""
        return cls(now(), time.perf_counter(), meta_base)

    def wall(self) -> float:
        """Its seconds so far."""
        return time.perf_counter() - self.wall_start

    def earlier(self) -> list:
        """The segments of the run before this one (meta.json's "segments")."""
        return list((self.meta_base or {}).get("segments", []))

    def meta(self, trainer: Trainer, status: str, summary: dict, ended: str | None) -> dict:
        """meta.json with this segment (its start and wall time) added to the run's segments."""
        meta = run_meta(trainer.spec, trainer.device, trainer.run_dir, status, self.started, ended, self.meta_base)
        meta["segments"] = [*self.earlier(), {"started": self.started,
                                              "wall_seconds": summary["wall_seconds_this_segment"]}]
        return meta


def run_trainer(plan: Plan, run_dir: Path, stop_file=None, callbacks=()) -> Trainer:
    """The Trainer of a run folder, with the run's callbacks in their order: the plot worker's
    start, metrics files, neuron history, progress, checkpoints, the stop file, ``callbacks`` (a
    search's pruning, tracking), early stopping, the boundary animation, the report. Writes model.json (or checks
    that the folder's still describes this data)."""
    log = run_logger(run_dir)
    try:
        log.info("task: %s (%s)", plan.task.kind, plan.splits.task_reason)
        for note in plan.splits.notes:
            log.info("data: %s", note)
        for warning in plan.splits.warnings:
            log.warning("data: %s", warning)
        # What prediction needs beside the weights (features, scalings, class values), before any checkpoint;
        # a resumed or redrawn run keeps the record its weights were trained with
        model_info.record(run_dir, model_info.describe(plan.spec, plan.splits, plan.task))
        log.info(plan.capture_text())
    except BaseException:
        close_logger(log)
        raise
    spec, splits = plan.spec, plan.splits
    assert isinstance(splits, Splits), "a check-only plan trains nothing"
    metrics = MetricsFile(run_dir, plan.task.metrics)
    units = NeuronHistory(run_dir) if NeuronHistory.wanted(splits.n_features, spec.model.hidden) else None
    animation = (BoundaryAnimation(splits.all_points()[0], spec.train.epochs) if spec.plots.enabled
                 and spec.plots.animate and splits.n_features == 2 and not plan.task.regression else None)
    report = RunReport(metrics, units, animation)
    chain = [PlotWorkerStart(report), metrics, units, Progress(), Checkpoints(),
             StopFile(stop_file) if stop_file else None, *(as_callback(c) for c in callbacks),
             EarlyStopping(spec.train.early_stopping), animation, report]
    return Trainer(plan, run_dir, log, [c for c in chain if c is not None])


def _callback(trainer: Trainer, kind: type):
    """The trainer's callback of class ``kind``, or None."""
    return next((c for c in trainer.callbacks if isinstance(c, kind)), None)


def _metrics(trainer: Trainer) -> ckpt.MetricsLog:
    return _callback(trainer, MetricsFile).log


def execute(trainer: Trainer, start_epoch: int, segment: Segment, quiet: bool = False) -> RunResult:
    """Train from ``start_epoch`` and write the run's results (summary.json, meta.json,
    report.html) however the loop ends; Ctrl-C is raised again once they are written."""
    run_dir = trainer.run_dir
    try:
        status = _train(trainer, start_epoch, segment, quiet)
        history = _metrics(trainer).rows()
        summary = summary_of(trainer, history, status, segment.wall(), segment.earlier())
        if status in ("completed", "pruned"):  # a pruned run ended early on purpose: it gets its results too
            try:
                for callback in trainer.callbacks:
                    callback.on_run_end(trainer, summary)
            except KeyboardInterrupt:  # after the last epoch: the run is not done until its results are
                status = summary["status"] = "stopped"
                trainer.say(f"interrupted after the last epoch (during the test evaluation or the plots): status "
                            f"'stopped'; finish it with: devgrad resume {run_dir}")
            except Exception as exc:  # a plot that cannot be written (a full disk), a bug: not 'running'
                _fail(trainer, exc, segment, summary)
        try:
            if trainer.checkpoints is not None:
                trainer.checkpoints.close()  # the final checkpoints are on disk before the run says it ended
            ckpt.write_json(run_dir / "summary.json", summary)
            ckpt.write_json(run_dir / "meta.json", segment.meta(trainer, status, summary, now()))
        except OSError as exc:
            _fail(trainer, exc, segment, summary)
        _report(trainer)
        if status == "completed":
            line = f"completed in {summary['wall_seconds']:.1f}s: {run_dir}"
            if "test" in summary:
                line += "  " + "  ".join(f"{k} {v:.4f}" for k, v in summary["test"].items())
            trainer.say(line)
        if status == "stopped":
            raise KeyboardInterrupt(f"continue with: devgrad resume {run_dir}")
        return RunResult(run_dir, history, summary)
    finally:
        close_logger(trainer.log)


def _train(trainer: Trainer, start_epoch: int, segment: Segment, quiet: bool) -> str:
    """The loop's status: "stopped" on Ctrl-C; an unexpected error is recorded and raised."""
    console = Console(quiet, trainer.spec.train.epochs, start_epoch - 1, trainer.log)
    try:
        return trainer.fit(start_epoch, console)
    except KeyboardInterrupt:
        trainer.say(f"interrupted: status 'stopped'; continue with: devgrad resume {trainer.run_dir}")
        return "stopped"
    except Exception as exc:
        # An unexpected error (out of memory, a full disk, a bug): the folder must not claim 'running'.
        _fail(trainer, exc, segment)
    finally:
        console.close()


def _fail(trainer: Trainer, exc: Exception, segment: Segment, summary: dict | None = None) -> NoReturn:
    """Record the failed run (``_record_failure``) and raise: a file that could not be written as
    a RunError saying what to do, anything else as it is."""
    _record_failure(trainer, exc, segment, summary)
    if isinstance(exc, OSError):
        raise RunError(_write_failed_message(exc, trainer.run_dir)) from exc
    raise exc


def _record_failure(trainer: Trainer, exc: BaseException, segment: Segment, summary: dict | None = None) -> None:
    """A failed run's files, as many as can still be written (the disk may be full): the
    checkpoints of the last good epoch, summary.json and meta.json with the error, report.html."""
    trainer.log.exception("run failed")
    error = f"{type(exc).__name__}: {exc}"
    if trainer.checkpoints is not None:
        with contextlib.suppress(Exception):  # the last good state, if it can still be written
            trainer.checkpoints.close()
    if summary is None:
        summary = summary_of(trainer, _metrics(trainer).rows(), "failed", segment.wall(), segment.earlier())
    summary.update(status="failed", error=error)
    meta = segment.meta(trainer, "failed", summary, now())
    meta["error"] = error
    for name, payload in (("summary.json", summary), ("meta.json", meta)):
        try:
            ckpt.write_json(trainer.run_dir / name, payload)
        except OSError as problem:
            trainer.log.error("could not write %s: %s", problem.filename or name, problem.strerror or problem)
    _report(trainer)


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


def run(spec_or_path, overrides=(), out=None, device: str | Device | None = None, quiet: bool = False,
        run_dir=None, stop_file=None, callbacks=()) -> RunResult:
    """Validate a spec, create a fresh run folder and train; returns a RunResult.

    ``spec_or_path``: a YAML file path, a spec dict or a Spec; ``overrides``: ``key.path=value``
    strings; ``out``: the runs root (default ./runs); ``device`` (a name or a Device) replaces
    the spec's; ``run_dir``: this exact folder instead of a fresh one under ``out`` (created; it
    must not hold files yet: a sweep names its runs' folders); ``stop_file``: a file whose
    appearance stops the run after an epoch, as Ctrl-C would (a sweep's Ctrl-C reaching its Dask
    workers). ``callbacks``: ``callbacks.Callback`` objects, or functions called after every epoch
    as ``f(trainer, epoch, row)`` ("pruned" ends the run).
    """
    overrides = [overrides] if isinstance(overrides, str) else list(overrides)  # one "key=value", not its letters
    spec = resolve(spec_or_path, overrides)
    root = Path(out) if out is not None else Path("runs")
    if root.exists() and not root.is_dir():
        raise RunError(f"--out {root} is a file, not a folder: give the folder the run folders go into "
                       "(it is created if it does not exist)")
    plan = make_plan(spec, device)  # a missing device, data or memory fails here, before any folder exists
    if not quiet:
        for warning in plan.splits.warnings:
            print(f"devgrad: warning: {warning}", file=sys.stderr, flush=True)
    parents = missing_parents(root / plan.spec.name if run_dir is None else Path(run_dir).parent)
    run_dir = new_run_dir(root, plan.spec.name) if run_dir is None else _named_run_dir(Path(run_dir))
    segment = Segment.begin()
    try:
        trainer = _set_up(plan, run_dir, segment, stop_file, callbacks)
    except BaseException:
        remove_half_made(run_dir, parents)  # nothing ran: no half-made folder is left behind
        raise
    _announce(trainer, quiet)
    return _tracked(trainer, lambda: execute(trainer, 1, segment, quiet))


def _announce(trainer: Trainer, quiet: bool) -> None:
    """The run's folder, device and size, and a notice about the device, on the console and in train.log."""
    dev = trainer.device
    notice = "; ".join(n for n in (auto_device_notice(trainer.spec.device), cold_cache_notice(dev)) if n)
    if notice:
        if not quiet:  # --quiet means quiet: the notice is in train.log either way
            print(fit_terminal(f"devgrad: notice: {notice}", sys.stderr), file=sys.stderr, flush=True)
        trainer.log.info(notice)
    trainer.log.info("run %s started on %s (%s parameters)", trainer.run_dir, dev.description(),
                     trainer.model.num_parameters())
    if not quiet:
        print(f"run folder: {trainer.run_dir}\ndevice: {dev.description()}, {trainer.model.num_parameters()} "
              "parameters", flush=True)


def _tracked(trainer: Trainer, train) -> RunResult:
    """``train()`` with the run logged to MLflow when its plan says where (see ``tracking``)."""
    chosen = trainer.plan.tracking
    if chosen is None:
        return train()
    tracker = MlflowTracker(trainer.run_dir, chosen)
    trainer.callbacks.append(as_callback(tracker))
    try:
        return train()
    finally:
        tracker.close()


def _set_up(plan: Plan, run_dir: Path, segment: Segment, stop_file, callbacks) -> Trainer:
    """A new run folder's first files and the run's Trainer."""
    atomic_write_text(run_dir / "config.yaml", to_yaml(plan.spec.to_dict()))
    ckpt.write_json(run_dir / "meta.json", run_meta(plan.spec, plan.device, run_dir, "running", segment.started))
    (run_dir / "checkpoints").mkdir()
    (run_dir / "plots").mkdir()
    trainer = run_trainer(plan, run_dir, stop_file, callbacks)
    try:
        _metrics(trainer).rewrite([])  # the files exist (with a CSV header) from the start
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


def resume(run_dir, device: str | Device | None = None, quiet: bool = False, stop_file=None, callbacks=(),
           overrides=()) -> RunResult:
    """Continue a stopped, killed or failed run from its last checkpoint, in the same folder
    (``stop_file`` and ``callbacks`` as for ``run``; ``overrides`` such as ``--track``'s). A
    config.yaml edited since the run started in a way that changes its training is refused
    (``resuming.check_unchanged``)."""
    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    if not config.exists():
        what = "no such folder" if not run_dir.exists() else "no config.yaml in it"
        raise RunError(f"{run_dir} is not a run folder ({what}); pass the folder that 'devgrad run' printed")
    meta = resuming.read_meta(run_dir)
    if meta.get("status") in ("completed", "pruned"):
        raise RunError(f"{run_dir} already {meta['status']}; start a new run with 'devgrad run' instead")
    if meta.get("status") == "running" and still_running(meta):
        raise RunError(f"{run_dir} is still being trained by process {meta['pid']} on this host; stop it "
                       "(Ctrl-C) before resuming, or two processes would write the same folder")
    # a killed segment never wrote its time: timed to its last write, read before this process writes anything
    killed = resuming.killed_segment(run_dir, meta) if meta.get("status") == "running" else None
    spec = resolve(config, overrides)
    resuming.check_unchanged(run_dir, meta, spec)
    plan = make_plan(spec, device)
    last = run_dir / "checkpoints" / "last.npz"
    state = resuming.read_state(last, run_dir) if last.exists() else None  # before anything in the folder changes
    segment = Segment.begin(meta)
    trainer = run_trainer(plan, run_dir, stop_file, callbacks)
    try:
        start = trainer.restore(state) + 1 if state is not None else 1
    except (ValueError, KeyError, TypeError) as exc:  # the weights of another model than config.yaml's
        close_logger(trainer.log)
        raise RunError(f"cannot resume {run_dir}: {last} does not fit the run that its config.yaml describes "
                       f"({exc}); was config.yaml edited after the run started? Put it back as it was, or start "
                       "a new run with devgrad run") from None
    _rewind(trainer, start)
    if killed is not None:
        meta["segments"] = [*segment.earlier(), killed]
    meta["resumed"] = [*meta.get("resumed", []), segment.started]
    ckpt.write_json(run_dir / "meta.json", run_meta(plan.spec, plan.device, run_dir, "running", segment.started,
                                                    None, meta))
    message = f"resuming {run_dir} at epoch {start} on {trainer.device.description()}"
    trainer.log.info(message)
    if not quiet:
        print(message, flush=True)
    return _tracked(trainer, lambda: execute(trainer, start, segment, quiet))


def _rewind(trainer: Trainer, start: int) -> None:
    """The run's records back to the epoch before ``start``: the epochs after the checkpoint are
    trained again, without duplicates."""
    metrics = _metrics(trainer)
    kept = [r for r in metrics.rows() if r["epoch"] < start]
    metrics.rewrite(kept)
    units = _callback(trainer, NeuronHistory)
    if units is not None:
        units.units.keep_before(start)
    trainer.history = list(kept)


def redraw(run_dir, quiet: bool = False) -> list[str]:
    """``devgrad plot RUN_DIR``: rebuild the model from the run's config and best (else last)
    checkpoint on the CPU, and draw the plots again."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise RunError(f"{run_dir} is not a run folder (no config.yaml)")
    if not report.can_plot():
        raise RunError(f"devgrad plot draws with matplotlib, which is not installed: {report.PLOT_HINT}")
    spec = dataclasses.replace(resolve(run_dir / "config.yaml"), tracking={})  # redrawing logs nothing to MLflow
    state_file = next((p for p in (run_dir / "checkpoints" / "best.npz", run_dir / "checkpoints" / "last.npz")
                       if p.exists()), None)
    if state_file is None:
        raise RunError(f"{run_dir} has no checkpoint to plot from")
    trainer = run_trainer(make_plan(spec, "cpu"), run_dir)
    try:
        trainer.model.load_state_dict(ckpt.load_checkpoint(state_file)["model"])
        messages: list[str] = []
        units = _callback(trainer, NeuronHistory)
        with trainer.blas_threads():
            written = draw(trainer, ckpt.MetricsLog(run_dir).rows(), messages.append,
                           units.units.rows() if units is not None else None)
        write_run_report(run_dir)  # the page embeds the plots: draw it again with them
    finally:
        close_logger(trainer.log)
    if not quiet:
        for m in messages:
            print(m)
        for w in written:
            print(run_dir / w)
    return written

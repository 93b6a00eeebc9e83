"""Train an MLP from a spec: the run folder, the training loop, checkpoints, resume.

``run(spec)`` is the library form of ``devgrad run``; it keeps no global state and its
inputs and ``RunResult`` are picklable, so runs can be shipped to worker processes.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import platform
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import devgrad
from devgrad import nn, optim
from devgrad.core import no_grad
from devgrad.capture import CapturedStep
from devgrad.backend import cuda_available, cuda_unavailable_reason, cupy_version
from devgrad.backend import device as resolve_device
from devgrad.data import DataLoader, build_splits
from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.spec import resolve, to_yaml
from devgrad.io import atomic_write_text
from devgrad.nn import functional as F
from devgrad.core import Tensor

BINARY_LOSSES = ("bce", "logistic", "hinge")


class RunError(RuntimeError):
    """A run that cannot start or continue for a reason the user can fix."""


@dataclass
class RunResult:
    """What a run produced: its folder, one dict per epoch, and the summary."""

    run_dir: Path
    history: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")


# -- the task: how labels, outputs and losses fit together -------------------------------

@dataclass
class Task:
    loss: str
    n_classes: int
    out_features: int
    label_smoothing: float = 0.0
    pos_weight: float | None = None

    @classmethod
    def from_spec(cls, spec: dict, n_classes: int) -> Task:
        name = spec["loss"]["name"]
        if name == "auto":
            name = "bce" if n_classes == 2 else "cross_entropy"
        if name in BINARY_LOSSES and n_classes != 2:
            raise RunError(f"loss '{name}' is for two classes but the data has {n_classes}; "
                           "use loss: cross_entropy (or mse)")
        out = 1 if n_classes == 2 and name != "cross_entropy" else n_classes
        return cls(name, n_classes, out, spec["loss"]["label_smoothing"], spec["loss"]["pos_weight"])

    def targets(self, y: Tensor, dtype) -> Tensor:
        """Labels (int) in the form this loss wants, on the labels' device."""
        xp = y.device.xp
        if self.loss == "cross_entropy":
            return y
        if self.loss in ("logistic", "hinge"):
            return Tensor._make((y.data * 2 - 1).astype(dtype), y.device)
        if self.loss == "mse" and self.out_features > 1:
            return Tensor._make(xp.eye(self.n_classes, dtype=dtype)[y.data], y.device)
        return Tensor._make(y.data.astype(dtype), y.device)

    def loss_value(self, out: Tensor, target: Tensor) -> Tensor:
        if self.loss == "cross_entropy":
            return F.cross_entropy(out, target, label_smoothing=self.label_smoothing)
        if self.out_features == 1:
            out = out.reshape(-1)
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(out, target, pos_weight=self.pos_weight)
        if self.loss == "logistic":
            return F.logistic_loss(out, target)
        if self.loss == "hinge":
            return F.hinge_loss(out, target)
        return F.mse_loss(out, target)

    def predict(self, out_data, xp):
        """Predicted class indices from raw model outputs (device arrays, no sync)."""
        if self.out_features == 1:
            threshold = 0.5 if self.loss == "mse" else 0.0
            return (out_data.reshape(-1) > threshold).astype(np.int64)
        return xp.argmax(out_data, axis=1)

    def probabilities(self, out_data, xp):
        """Class probabilities (n, n_classes) from raw outputs (for decision-boundary plots)."""
        if self.out_features > 1:
            e = xp.exp(out_data - out_data.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        flat = out_data.reshape(-1)
        p1 = xp.clip(flat, 0, 1) if self.loss == "mse" else 1 / (1 + xp.exp(-xp.clip(flat, -60, 60)))
        return xp.stack([1 - p1, p1], axis=1)


def build_model(spec: dict, n_features: int, task: Task, device) -> nn.MLP:
    """The spec's MLP, initialised from the run's seed on the host (same weights on any device)."""
    m = spec["model"]
    generator = np.random.default_rng([spec["seed"], 0])
    return nn.MLP([n_features, *m["hidden"], task.out_features], activation=m["activation"], init=m["init"],
                  dropout=m["dropout"], bias=m["bias"], generator=generator, device=device, dtype=spec["dtype"])


def build_optimizer(spec: dict, params, capturable: bool = False):
    """The spec's optimizer; ``capturable`` keeps its per-step values on the device (for CUDA graphs)."""
    options = dict(spec["optimizer"])
    name = options.pop("name")
    classes = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop,
               "adagrad": optim.Adagrad}
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    return classes[name](params, capturable=capturable, **options)


def build_scheduler(spec: dict, optimizer):
    options = dict(spec["schedule"] or {"name": "none"})
    name = options.pop("name")
    if name == "none":
        return None
    warmup = int(options.pop("warmup_epochs", 0) or 0)
    epochs = spec["train"]["epochs"]
    span = max(epochs - warmup, 1)
    # Schedules compute their lr from the epoch in closed form; a shape-only instance on a
    # throwaway optimizer lets the warm-up wrapper reuse it.
    target = optimizer if warmup == 0 else optim.SGD([devgrad.zeros(1, requires_grad=True)], lr=1.0)
    if name == "step":
        sched = optim.StepLR(target, step_size=options["step_size"], gamma=options["gamma"])
    elif name == "exponential":
        sched = optim.ExponentialLR(target, gamma=options["gamma"])
    elif name == "cosine":
        sched = optim.CosineAnnealingLR(target, T_max=options["t_max"] or span, eta_min=options["eta_min"])
    else:
        total = options["total_epochs"] or span
        start = max(options["start_factor"], 1e-12)
        sched = optim.LinearLR(target, start_factor=start, end_factor=options["end_factor"], total_iters=total)
    if warmup:
        return optim.WarmupScheduler(optimizer, warmup=warmup, after=sched)
    return sched


# -- the run folder -----------------------------------------------------------------------

def new_run_dir(root: Path, name: str) -> Path:
    """runs/<name>/<YYYYmmdd-HHMMSS>-<random>/, created fresh (never an existing folder)."""
    parent = Path(root) / name
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        candidate = parent / f"{stamp}-{secrets.token_hex(3)}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RunError(f"could not create a new run folder under {parent}")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


class _Console:
    """Where progress goes: a tqdm bar on a terminal, one plain line per epoch otherwise."""

    def __init__(self, quiet: bool, total: int, initial: int, log: logging.Logger):
        self.quiet = quiet
        self.log = log
        self.bar = None
        if not quiet and sys.stdout.isatty():
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, initial=initial, unit="epoch", dynamic_ncols=True, leave=True)

    def say(self, message: str) -> None:
        self.log.info(message)
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)

    def epoch(self, row: dict, line: str) -> None:
        self.log.info(line)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in row.items()
                                  if k not in ("epoch", "lr") and isinstance(v, float)})
        elif not self.quiet:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _format_row(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}"]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        if row.get(key) is not None:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"lr {row['lr']:.3g}")
    return "  ".join(parts)


class Trainer:
    """Everything one run needs, built from a resolved spec; ``fit`` trains epoch by epoch."""

    def __init__(self, spec: dict, run_dir: Path, device, quiet: bool, splits=None):
        self.spec = spec
        self.run_dir = run_dir
        self.quiet = quiet
        self.device = device
        self.dtype = np.dtype(spec["dtype"])
        self.splits = splits if splits is not None else build_splits(spec["data"], spec["seed"])
        self.task = Task.from_spec(spec, self.splits.n_classes)
        self.log = _run_logger(run_dir)
        self.model = build_model(spec, self.splits.n_features, self.task, device)
        graphed = spec["train"]["cuda_graph"] and device.supports_graphs
        self.optimizer = build_optimizer(spec, self.model.parameters(), capturable=graphed)
        self.scheduler = build_scheduler(spec, self.optimizer)
        t = spec["train"]
        self.train_loader = DataLoader(self.splits.X_train, self.splits.y_train, t["batch_size"], t["shuffle"],
                                       device, self.dtype, seed=spec["seed"])
        eval_batch = max(t["batch_size"] or 0, 4096)
        self.val_loader = (DataLoader(self.splits.X_val, self.splits.y_val, eval_batch, False, device, self.dtype)
                           if len(self.splits.X_val) else None)
        es = t["early_stopping"]
        monitor = es["monitor"]
        if self.val_loader is None and monitor.startswith("val_"):
            monitor = "train_" + monitor[len("val_"):]  # no validation split: watch the train metric
        self.monitor = monitor
        self.mode = es["mode"] if es["mode"] != "auto" else ("max" if "accuracy" in monitor else "min")
        self.best_value: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.metrics = ckpt.MetricsLog(run_dir)
        self.history: list[dict] = []
        # Per-epoch sums, accumulated on the device by every step (one sync per epoch). They are
        # allocated once: a captured step keeps adding into these very arrays.
        with device.activate():
            self._loss_sum = device.xp.zeros((), dtype=np.float64)
            self._correct = device.xp.zeros((), dtype=np.int64)
        self.step = CapturedStep(self._step, device, optimizer=self.optimizer if graphed else None,
                                 enabled=graphed)

    # -- one epoch ---------------------------------------------------------------------------
    def _step(self, xb: Tensor, yb: Tensor) -> None:
        """One training step on a batch; adds its loss and hits to the epoch sums on the device.
        Everything here stays on the device, so ``self.step`` can capture it in a CUDA graph."""
        out = self.model(xb)
        loss = self.task.loss_value(out, self.task.targets(yb, self.dtype))
        self.optimizer.zero_grad()
        loss.backward()
        clip = self.spec["train"]["clip_grad_norm"]
        if clip:
            optim.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()
        self._loss_sum += loss.data * len(xb.data)
        self._correct += (self.task.predict(out.data, self.device.xp) == yb.data).sum()

    def _train_epoch(self, epoch: int) -> dict:
        self.model.train()
        self.train_loader.set_epoch(epoch)
        for i, m in enumerate(self.model.modules()):
            if isinstance(m, nn.Dropout):
                m.reseed(int(np.random.default_rng([self.spec["seed"], 3, epoch, i]).integers(2**62)))
        self._loss_sum.fill(0)
        self._correct.fill(0)
        for xb, yb in self.train_loader:
            self.step(xb, yb)
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        n = self.train_loader.n
        row = {"epoch": epoch, "lr": float(lr), "train_loss": float(self._loss_sum) / n}
        if "accuracy" in self.spec["metrics"]:
            row["train_accuracy"] = int(self._correct) / n
        return row

    @no_grad()
    def evaluate(self, loader) -> dict:
        """Mean loss and accuracy over a loader, with the model in eval mode."""
        with self.device.activate():
            return self._evaluate(loader)

    def _evaluate(self, loader) -> dict:
        xp = self.device.xp
        self.model.eval()
        loss_sum = xp.zeros((), dtype=np.float64)
        correct = xp.zeros((), dtype=np.int64)
        for xb, yb in loader:
            out = self.model(xb)
            loss_sum += self.task.loss_value(out, self.task.targets(yb, self.dtype)).data * len(xb.data)
            correct += (self.task.predict(out.data, xp) == yb.data).sum()
        result = {"loss": float(loss_sum) / loader.n}
        if "accuracy" in self.spec["metrics"]:
            result["accuracy"] = int(correct) / loader.n
        return result

    def _improved(self, value: float) -> bool:
        if self.best_value is None:
            return True
        delta = self.spec["train"]["early_stopping"]["min_delta"]
        if self.mode == "min":
            return value < self.best_value - delta
        return value > self.best_value + delta

    # -- checkpoints ---------------------------------------------------------------------------
    def _extra_state(self) -> dict:
        return {"best_value": self.best_value, "best_epoch": self.best_epoch, "wait": self.wait,
                "monitor": self.monitor, "rng": {"seed": self.spec["seed"], "scheme": "per-epoch streams"},
                "standardize": {"mean": self.splits.mean, "std": self.splits.std}}

    def save(self, name: str, epoch: int) -> None:
        ckpt.save_checkpoint(self.run_dir / "checkpoints" / name, model=self.model, optimizer=self.optimizer,
                             scheduler=self.scheduler, epoch=epoch, extra=self._extra_state())

    def restore(self, state: dict) -> int:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        self.best_value = state.get("best_value")
        self.best_epoch = int(state.get("best_epoch") or 0)
        self.wait = int(state.get("wait") or 0)
        return int(state["epoch"])

    # -- the loop -----------------------------------------------------------------------------
    def fit(self, start_epoch: int, console: _Console) -> str:
        """Train from ``start_epoch`` (1-based) to the end; returns the final status."""
        with self.device.activate():  # every array of the run lives on the run's device
            return self._fit(start_epoch, console)

    def _fit(self, start_epoch: int, console: _Console) -> str:
        t = self.spec["train"]
        es = t["early_stopping"]
        every = t["checkpoint"]["every"]
        last_saved = start_epoch - 1
        for epoch in range(start_epoch, t["epochs"] + 1):
            row = self._train_epoch(epoch)
            if self.val_loader is not None:
                val = self.evaluate(self.val_loader)
                row.update({f"val_{k}": v for k, v in val.items()})
            if not math.isfinite(row["train_loss"]):
                where = f"epoch {last_saved}" if last_saved > 0 else "none yet"
                console.say(f"the training loss became {row['train_loss']} at epoch {epoch}: the run diverged. "
                            f"The last good checkpoint ({where}) is kept. Try a lower optimizer.lr, "
                            "train.clip_grad_norm, or standardized inputs.")
                return "failed"
            self.metrics.append(row)
            self.history.append(row)
            console.epoch(row, _format_row(row, t["epochs"]))
            value = row.get(self.monitor)
            improved = value is not None and self._improved(value)
            if improved:
                self.best_value, self.best_epoch, self.wait = value, epoch, 0
            else:
                self.wait += 1
            if improved and t["checkpoint"]["save_best"]:
                self.save("best.npz", epoch)
            stop = es["enabled"] and self.wait >= es["patience"]
            if epoch % every == 0 or epoch == t["epochs"] or stop:
                self.save("last.npz", epoch)
                last_saved = epoch
            if stop:
                console.say(f"early stopping at epoch {epoch}: {self.monitor} has not improved for "
                            f"{es['patience']} epochs (best {self.best_value:.4g} at epoch {self.best_epoch})")
                break
        if es["restore_best"] and (self.run_dir / "checkpoints" / "best.npz").exists():
            best = ckpt.load_checkpoint(self.run_dir / "checkpoints" / "best.npz")
            self.model.load_state_dict(best["model"])
            console.say(f"restored the weights of the best epoch ({self.best_epoch})")
        return "completed"

    def predict_proba(self, X_raw: np.ndarray) -> np.ndarray:
        """Class-1 probability for raw (unstandardised) inputs, on the host."""
        X = self.splits.standardize_input(X_raw).astype(self.dtype)
        with no_grad(), self.device.activate():
            self.model.eval()
            out = self.model(Tensor._make(self.device.put(X), self.device))
        return self.device.to_host(self.task.probabilities(out.data, self.device.xp))


def _run_logger(run_dir: Path) -> logging.Logger:
    log = logging.getLogger(f"devgrad.run.{run_dir.name}.{id(run_dir)}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    return log


def _close_logger(log: logging.Logger) -> None:
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)


def _auto_device_notice(requested: str) -> str | None:
    """What to tell the user when 'auto' fell back to the CPU."""
    if requested.strip().lower() == "auto" and not cuda_available():
        return f"device auto: CUDA is not available ({cuda_unavailable_reason()}); running on the CPU"
    return None


def _meta(spec: dict, dev, run_dir: Path, status: str, started: str, ended: str | None = None,
          previous: dict | None = None) -> dict:
    """meta.json: versions, device, seed, host, times and status (earlier fields kept on resume)."""
    meta = dict(previous or {})
    meta.update({
        "name": spec["name"], "run_dir": str(run_dir), "status": status, "seed": spec["seed"],
        "device": dev.name, "device_description": dev.description(), "devgrad": devgrad.__version__,
        "numpy": np.__version__, "cupy": cupy_version(), "python": platform.python_version(),
        "host": socket.gethostname(), "pid": os.getpid(), "started": meta.get("started", started),
        "ended": ended,
    })
    return meta


def _execute(trainer: Trainer, start_epoch: int, meta_base: dict | None, spec: dict, started_wall: float,
             started: str) -> RunResult:
    run_dir = trainer.run_dir
    console = _Console(trainer.quiet, spec["train"]["epochs"], start_epoch - 1, trainer.log)
    status = "failed"
    try:
        try:
            status = trainer.fit(start_epoch, console)
        except KeyboardInterrupt:
            status = "stopped"
            console.say(f"interrupted: status 'stopped'; continue with: devgrad resume {run_dir}")
        except Exception as exc:
            # An unexpected error (out of memory, a bug): the folder must not claim 'running'.
            trainer.log.exception("run failed")
            meta = _meta(spec, trainer.device, run_dir, "failed", started, _now(), meta_base)
            meta["error"] = f"{type(exc).__name__}: {exc}"
            ckpt.write_json(run_dir / "meta.json", meta)
            raise
        finally:
            console.close()
        history = trainer.metrics.rows()
        summary = _summary(trainer, history, status, time.perf_counter() - started_wall)
        if status == "completed":
            test_loader = (DataLoader(trainer.splits.X_test, trainer.splits.y_test, 4096, False, trainer.device,
                                      trainer.dtype) if len(trainer.splits.X_test) else None)
            if test_loader is not None:
                summary["test"] = {f"test_{k}": v for k, v in trainer.evaluate(test_loader).items()}
            from devgrad.experiment import report

            summary["plots"] = report.draw(run_dir, history, trainer, console.say)
        ckpt.write_json(run_dir / "summary.json", summary)
        meta = _meta(spec, trainer.device, run_dir, status, started, _now(), meta_base)
        ckpt.write_json(run_dir / "meta.json", meta)
        if status == "completed":
            line = f"completed in {summary['wall_seconds']:.1f}s: {run_dir}"
            if "test" in summary:
                line += "  " + "  ".join(f"{k} {v:.4f}" for k, v in summary["test"].items())
            console.say(line)
        if status == "stopped":
            raise KeyboardInterrupt
        return RunResult(run_dir, history, summary)
    finally:
        _close_logger(trainer.log)


def _summary(trainer: Trainer, history: list, status: str, wall: float) -> dict:
    epochs_run = len(history)
    best = next((r for r in history if r["epoch"] == trainer.best_epoch), None)
    samples = trainer.train_loader.n * max(epochs_run, 0)
    summary = {"status": status, "name": trainer.spec["name"], "epochs_run": epochs_run,
               "final": history[-1] if history else None, "best": best, "monitor": trainer.monitor,
               "best_epoch": trainer.best_epoch or None, "wall_seconds": round(wall, 3),
               "train_samples_per_second": round(samples / wall, 1) if wall > 0 else None,
               "device": trainer.device.name, "n_parameters": trainer.model.num_parameters()}
    if trainer.spec["train"]["cuda_graph"]:  # what the option did: graphs captured, steps replayed
        step = trainer.step
        summary["cuda_graph"] = {"active": step.graphs > 0, "graphs": step.graphs, "replays": step.replays,
                                 "failure": step.failure if trainer.device.supports_graphs
                                 else f"not available on {trainer.device}"}
    return summary


def run(spec_or_path, overrides=(), out=None, device: str | None = None, quiet: bool = False) -> RunResult:
    """Validate a spec, create a fresh run folder and train; returns a RunResult.

    ``spec_or_path``: a YAML file path or a spec dict; ``overrides``: ``key.path=value``
    strings; ``out``: the runs root (default ./runs); ``device`` overrides the spec's.
    """
    overrides = [*overrides, f"device={device}"] if device is not None else list(overrides)
    spec = resolve(spec_or_path, overrides)
    dev = resolve_device(spec["device"])  # fails here, before any folder exists, if CUDA is missing
    splits = build_splits(spec["data"], spec["seed"])  # bad data files fail before the folder too
    Task.from_spec(spec, splits.n_classes)
    run_dir = new_run_dir(Path(out) if out is not None else Path("runs"), spec["name"])
    atomic_write_text(run_dir / "config.yaml", to_yaml(spec))
    started, wall = _now(), time.perf_counter()
    ckpt.write_json(run_dir / "meta.json", _meta(spec, dev, run_dir, "running", started))
    (run_dir / "checkpoints").mkdir()
    (run_dir / "plots").mkdir()
    trainer = Trainer(spec, run_dir, dev, quiet, splits)
    trainer.metrics.rewrite([])  # the files exist (with a CSV header) from the start
    notice = _auto_device_notice(spec["device"])
    if spec["train"]["cuda_graph"] and not dev.supports_graphs:
        graph_note = f"train.cuda_graph is ignored on {dev}: CUDA graphs need a GPU (the steps run eagerly)"
        notice = f"{notice}; {graph_note}" if notice else graph_note
    if notice:
        print(f"devgrad: notice: {notice}", file=sys.stderr, flush=True)  # even with --quiet
        trainer.log.info(notice)
    trainer.log.info("run %s started on %s (%s parameters)", run_dir, dev.description(),
                     trainer.model.num_parameters())
    if not quiet:
        print(f"run folder: {run_dir}  device: {dev.description()}  parameters: "
              f"{trainer.model.num_parameters()}", flush=True)
    return _execute(trainer, 1, None, spec, wall, started)


def _still_running(meta: dict) -> bool:
    """Is the process that wrote this meta.json alive on this host (so the run is not stale)?"""
    pid = meta.get("pid")
    if not isinstance(pid, int) or meta.get("host") != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resume(run_dir, device: str | None = None, quiet: bool = False) -> RunResult:
    """Continue a stopped, killed or failed run from its last checkpoint, in the same folder."""
    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    if not config.exists():
        raise RunError(f"{run_dir} is not a run folder (no config.yaml); pass the folder that "
                       "'devgrad run' printed")
    meta = ckpt.read_json(run_dir / "meta.json") if (run_dir / "meta.json").exists() else {}
    if meta.get("status") == "completed":
        raise RunError(f"{run_dir} already completed; start a new run with 'devgrad run' instead")
    if meta.get("status") == "running" and _still_running(meta):
        raise RunError(f"{run_dir} is still being trained by process {meta['pid']} on this host; stop it "
                       "(Ctrl-C) before resuming, or two processes would write the same folder")
    spec = resolve(config, [f"device={device}"] if device is not None else [])
    dev = resolve_device(spec["device"])
    started, wall = _now(), time.perf_counter()
    trainer = Trainer(spec, run_dir, dev, quiet)
    last = run_dir / "checkpoints" / "last.npz"
    start = 1
    if last.exists():
        start = trainer.restore(ckpt.load_checkpoint(last)) + 1
    kept = [r for r in trainer.metrics.rows() if r["epoch"] < start]
    trainer.metrics.rewrite(kept)  # epochs after the checkpoint are trained again: no duplicates
    trainer.history = list(kept)
    meta["resumed"] = [*meta.get("resumed", []), started]
    ckpt.write_json(run_dir / "meta.json", _meta(spec, dev, run_dir, "running", started, None, meta))
    message = f"resuming {run_dir} at epoch {start} on {dev.description()}"
    trainer.log.info(message)
    if not quiet:
        print(message, flush=True)
    return _execute(trainer, start, meta, spec, wall, started)

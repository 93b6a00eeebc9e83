"""``devgrad bench --checkpoints``: what the checkpoint policy costs a run on this machine.

Three small runs (on the CPU unless ``--device`` says otherwise), where a checkpoint's share of
the time is largest (a tiny model's epoch takes a few milliseconds): ``wine`` (scikit-learn's
wine data, 13-32-3, Adam, 100 epochs), ``digits`` and ``spirals`` (as in experiments/). Each is
run in rounds of three variants, in an order that rotates from round to round so that all see
the same machine load (after one untimed run, which pays the process's one-time costs):

- ``default``: the default policy (a copy of the state after each epoch; files written by a
  background thread at most every ``train.checkpoint.seconds``, and at the end);
- ``without``: no checkpoint work at all (no per-epoch copy, no file): only a benchmark can run
  this, by giving the run a checkpointer that keeps nothing (a run never does without one);
- ``every epoch``: ``train.checkpoint.seconds: 0``, ``last.npz`` written after every epoch.

Times are the runs' ``wall_seconds`` (training and validation, without start-up, the test
evaluation and plots, which are off). Reported per run: the median of each variant, default and
every epoch against without (the ratio of the medians, and the range of the per-round ratios),
and the time the default policy takes on the training thread (the per-epoch copy, the policy's
bookkeeping and the final flush), as a share of the run's ``wall_seconds``. That share is the
exact cost; the whole-run ratio also carries the machine's noise (and the writer thread's use of
a core while the run trains).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time

from devgrad.bench.report import rows_table
from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment import run
from devgrad.experiment.trainer import Trainer
from devgrad.version import extra_hint

SKLEARN_NEEDED = f"needs scikit-learn ({extra_hint('sklearn', 'scikit-learn')})"
_SPLIT = {"train": 0.7, "val": 0.15, "test": 0.15}
# The shipped specs' contents (experiments/digits.yaml, spirals.yaml), inline: a pip-installed
# devgrad has no experiments/ folder.
SPECS = {
    "wine": {"name": "bench_ckpt_wine", "seed": 0,
             "data": {"source": "sklearn:wine", "split": _SPLIT},
             "model": {"hidden": [32], "activation": "relu"},
             "optimizer": {"name": "adam", "lr": 0.01}, "train": {"epochs": 100, "batch_size": 32}},
    "digits": {"name": "bench_ckpt_digits", "seed": 0,
               "data": {"source": "sklearn:digits", "split": _SPLIT},
               "model": {"hidden": [128], "activation": "relu", "init": "kaiming_uniform", "dropout": 0.1},
               "loss": {"name": "cross_entropy", "label_smoothing": 0.05},
               "optimizer": {"name": "adamw", "lr": 0.002, "weight_decay": 0.01}, "schedule": {"name": "cosine"},
               "train": {"epochs": 60, "batch_size": 64}},
    "spirals": {"name": "bench_ckpt_spirals", "seed": 0,
                "data": {"source": "spirals", "n_samples": 3000, "n_classes": 3, "noise": 0.02},
                "model": {"hidden": [64, 64, 64], "activation": "relu", "init": "kaiming_uniform"},
                "loss": "cross_entropy", "optimizer": {"name": "adam", "lr": 0.01},
                "schedule": {"name": "cosine", "warmup_epochs": 5},
                "train": {"epochs": 150, "batch_size": 128,
                          "early_stopping": {"enabled": True, "monitor": "val_accuracy", "patience": 40,
                                             "restore_best": True}}},
}
VARIANTS = ("default", "without", "every_epoch")


class _NoCheckpoints(ckpt.Checkpointer):
    """A checkpointer that keeps nothing and writes nothing: the run as if it had no policy."""

    def epoch_done(self, state, improved) -> None:
        pass

    def flush(self, wait: bool = True) -> None:
        pass


@contextlib.contextmanager
def _replaced(owner, name: str, value):
    """``owner.name`` is ``value`` inside the block, and what it was after it."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield original
    finally:
        setattr(owner, name, original)


def _timed(function, spent: list):
    """``function``, adding the seconds each call takes to ``spent[0]``."""
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start
    return timed


def _counted(function, counts: dict):
    """``Checkpointer._write``, counting the writes of each file in ``counts``."""
    def counted(self, name, background):
        counts[name] = counts.get(name, 0) + 1
        return function(self, name, background)
    return counted


def run_variant(spec: dict, variant: str, device: str = "cpu") -> dict:
    """One run of ``spec`` (a spec dict) under ``variant``: its wall_seconds, the seconds its
    checkpoint work took on the training thread, the files written, and what is in checkpoints/."""
    spent = [0.0]
    writes: dict[str, int] = {}
    overrides = ["plots.enabled=false"]
    if variant == "every_epoch":
        overrides.append("train.checkpoint.seconds=0")
    with contextlib.ExitStack() as stack:
        if variant == "without":
            stack.enter_context(_replaced(ckpt, "Checkpointer", _NoCheckpoints))
            stack.enter_context(_replaced(Trainer, "snapshot", lambda self, epoch: None))
        else:
            for owner, name in ((Trainer, "snapshot"), (ckpt.Checkpointer, "epoch_done"),
                                (ckpt.Checkpointer, "flush")):
                stack.enter_context(_replaced(owner, name, _timed(getattr(owner, name), spent)))
        stack.enter_context(_replaced(ckpt.Checkpointer, "_write", _counted(ckpt.Checkpointer._write, writes)))
        out = stack.enter_context(tempfile.TemporaryDirectory())
        result = run(spec, overrides=overrides, out=out, device=device, quiet=True)
        files = sorted(p.name for p in (result.run_dir / "checkpoints").iterdir())
    summary = result.summary
    return {"status": summary["status"], "wall_seconds": summary["wall_seconds"], "epochs": summary["epochs_run"],
            "checkpoint_seconds": spent[0], "writes": writes, "files": files}


def _have_sklearn() -> bool:
    try:
        import sklearn  # noqa: F401, PLC0415 - optional
    except ImportError:
        return False
    return True


def checkpoint_bench(specs=None, rounds: int = 5, device: str = "cpu", say=None) -> list[dict]:
    """One row per run in ``specs`` (name -> spec dict; default ``SPECS``) on ``device``, each
    variant run ``rounds`` times in rotating order (see the module doc); ``say`` (a function of
    one line) hears which run is being timed."""
    specs = SPECS if specs is None else specs
    rows = []
    for name, spec in specs.items():
        if str(spec["data"]["source"]).startswith("sklearn:") and not _have_sklearn():
            rows.append({"spec": name, "skipped": SKLEARN_NEEDED})
            continue
        if say is not None:
            say(f"timing {name}: {len(VARIANTS)} variants x {rounds} rounds, after one untimed run")
        run_variant(spec, "without", device)  # untimed: the first run in a process pays one-time costs
        samples: dict = {v: [] for v in VARIANTS}
        for r in range(rounds):
            order = VARIANTS[r % 3:] + VARIANTS[:r % 3]
            for variant in order:
                samples[variant].append(run_variant(spec, variant, device))
        rows.append(_row(name, samples))
    return rows


def _row(name: str, samples: dict) -> dict:
    wall = {v: [s["wall_seconds"] for s in samples[v]] for v in VARIANTS}
    median = {v: statistics.median(wall[v]) for v in VARIANTS}
    paired = {v: [a / b for a, b in zip(wall[v], wall["without"])] for v in ("default", "every_epoch")}
    default = samples["default"]
    share = statistics.median(s["checkpoint_seconds"] / s["wall_seconds"] for s in default)
    return {"spec": name, "epochs": default[0]["epochs"], "rounds": len(default),
            "status": sorted({s["status"] for v in VARIANTS for s in samples[v]}),
            **{f"{v}_seconds": round(median[v], 4) for v in VARIANTS},
            "default_ratio": round(median["default"] / median["without"], 3),
            "default_ratio_range": [round(min(paired["default"]), 3), round(max(paired["default"]), 3)],
            "every_epoch_ratio": round(median["every_epoch"] / median["without"], 3),
            "every_epoch_ratio_range": [round(min(paired["every_epoch"]), 3), round(max(paired["every_epoch"]), 3)],
            "default_training_thread_share": round(share, 4),
            "default_writes": default[0]["writes"], "every_epoch_writes": samples["every_epoch"][0]["writes"]}


def _format_row(r: dict) -> str:
    lo, hi = r["default_ratio_range"]
    elo, ehi = r["every_epoch_ratio_range"]
    return (f"{r['spec']:<8} {r['epochs']:>6} {r['without_seconds']:>8.3f}s {r['default_seconds']:>8.3f}s "
            f"{r['default_ratio']:>6.3f}x ({lo:.2f}-{hi:.2f}) {r['default_training_thread_share']:>18.1%} "
            f"{r['every_epoch_seconds']:>11.3f}s {r['every_epoch_ratio']:>6.2f}x ({elo:.2f}-{ehi:.2f})")


def format_checkpoints(rows: list[dict]) -> str:
    rounds = next((r["rounds"] for r in rows if "rounds" in r), 0)
    heading = [f"the checkpoint policy's cost: wall_seconds (training, without start-up, test evaluation and plots), "
               f"median of {rounds} rounds; default = train.checkpoint defaults, without = no checkpoint work, "
               "every epoch = train.checkpoint.seconds: 0",
               f"{'run':<8} {'epochs':>6} {'without':>9} {'default':>9} {'default/without':>22} "
               f"{'on training thread':>19} {'every epoch':>12} {'every/without':>20}"]
    return rows_table(heading, rows, "spec", 8, _format_row) + (
        "\non training thread: the default policy's per-epoch copy, bookkeeping and final flush, as a share of its "
        "wall_seconds (the exact cost; the ratios also carry the machine's noise)")

"""Checkpoints and the small JSON/CSV files of a run folder, all written atomically."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from devgrad.io import atomic_write_text, load, save

METRIC_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy")


def save_checkpoint(path: Path, *, model, optimizer, scheduler, epoch: int, extra: dict) -> Path:
    """Model + optimizer + scheduler + epoch + run state, as one atomic .npz."""
    return save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict() if scheduler is not None else None,
                 "epoch": int(epoch), **extra}, path)


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's contents with arrays on the CPU (load_state_dict moves them)."""
    return load(path, device="cpu")


def write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, default=_json_default) + "\n")


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


class MetricsLog:
    """metrics.jsonl and metrics.csv: one row per epoch, appended as epochs finish."""

    def __init__(self, run_dir: Path):
        self.jsonl = run_dir / "metrics.jsonl"
        self.csv = run_dir / "metrics.csv"

    def rows(self) -> list[dict]:
        if not self.jsonl.exists():
            return []
        rows = []
        for raw in self.jsonl.read_text(encoding="utf-8").splitlines():
            text = raw.strip()
            if not text:
                continue
            try:
                rows.append(json.loads(text))
            except json.JSONDecodeError:
                break  # a line cut short by a kill: everything after it is unreliable
        return rows

    def rewrite(self, rows: list[dict]) -> None:
        """Replace both files with exactly ``rows`` (used when a resumed run rewinds)."""
        atomic_write_text(self.jsonl, "".join(json.dumps(r, default=_json_default) + "\n" for r in rows))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _csv_value(r.get(k)) for k in METRIC_COLUMNS})
        atomic_write_text(self.csv, buffer.getvalue())

    def append(self, row: dict) -> None:
        with open(self.jsonl, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, default=_json_default) + "\n")
            fh.flush()
        new_csv = not self.csv.exists()
        with open(self.csv, "a", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
            if new_csv:
                writer.writeheader()
            writer.writerow({k: _csv_value(row.get(k)) for k in METRIC_COLUMNS})


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value

"""Where a run's progress goes: the console (a tqdm bar on a terminal, plain lines otherwise)
and the run's train.log."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def _tqdm():
    """tqdm's terminal bar, or None without the progress extra. Imported only when a bar is
    drawn (a terminal): tqdm.auto would also import asyncio and notebook support, and a notebook
    is not a terminal, so it gets plain lines anyway."""
    try:
        from tqdm import tqdm  # noqa: PLC0415 - optional (the progress extra), only for a terminal
    except ImportError:
        return None
    return tqdm


class Console:
    """Where progress goes: a tqdm bar on a terminal; otherwise (a pipe, a log file) plain lines,
    at most about ``PLAIN_LINES`` evenly spaced epochs and the last one. train.log has every epoch."""

    PLAIN_LINES = 20

    def __init__(self, quiet: bool, total: int, initial: int, log: logging.Logger):
        self.quiet = quiet
        self.log = log
        self.total = total
        self.every = max(1, -(-total // self.PLAIN_LINES))  # ceil(total / PLAIN_LINES)
        self.bar = None
        tqdm = _tqdm() if not quiet and sys.stdout.isatty() else None
        if tqdm is not None:
            # A fixed, short bar so the numbers fit an 80-column terminal.
            self.bar = tqdm(total=total, initial=initial, unit="epoch", dynamic_ncols=True, leave=True,
                            bar_format="epoch {n_fmt}/{total_fmt} |{bar:10}| {elapsed}<{remaining}{postfix}")

    def say(self, message: str) -> None:
        self.log.info(message)
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)

    def epoch(self, row: dict, line: str, best: tuple | None = None) -> None:
        """One finished epoch: ``row`` of metrics, ``line`` for logs and pipes, ``best`` as
        (monitored metric, best value, its epoch) for the bar."""
        self.log.info(line)
        if self.bar is not None:
            self.bar.set_postfix_str(bar_postfix(row, best), refresh=False)
            self.bar.update(1)
        elif not self.quiet and (row["epoch"] % self.every == 0 or row["epoch"] in (1, self.total)):
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def bar_postfix(row: dict, best: tuple | None) -> str:
    """The key numbers of an epoch, short enough for an 80-column bar: the training loss, the
    validation accuracy (or loss), and the best monitored value with its epoch."""
    parts = [f"loss {row['train_loss']:.4g}"]
    for key, label in (("val_accuracy", "val_acc"), ("val_loss", "val_loss")):
        if row.get(key) is not None:
            parts.append(f"{label} {row[key]:.4g}")
            break
    if best is not None and best[1] is not None:
        parts.append(f"best {best[1]:.4g}@{best[2]}")
    return " ".join(parts)


def format_row(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}"]
    for key in ("train_loss", "train_accuracy", "train_r2", "val_loss", "val_accuracy", "val_r2"):
        if row.get(key) is not None:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"lr {row['lr']:.3g}")
    return "  ".join(parts)


def run_logger(run_dir: Path) -> logging.Logger:
    """The logger of one run, writing train.log. It is not registered with ``logging`` (nothing
    needs to find it by name, and a process running thousands of runs, a sweep, keeps none of
    them) and does not propagate: a run's lines go to its train.log and its console only."""
    log = logging.Logger(f"devgrad.run.{run_dir.name}", logging.INFO)
    log.propagate = False
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    return log


def close_logger(log: logging.Logger) -> None:
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)

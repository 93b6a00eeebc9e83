"""Where a run's progress goes: the console (a tqdm bar on a terminal, plain lines otherwise)
and the run's train.log."""

from __future__ import annotations

import logging
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _tqdm() -> Callable[..., Any] | None:
    """tqdm's terminal bar, or None without the progress extra. Imported only when a bar is
    drawn (a terminal): tqdm.auto would also import asyncio and notebook support, and a notebook
    is not a terminal, so it gets plain lines anyway."""
    try:
        from tqdm import tqdm  # noqa: PLC0415 - optional (the progress extra), only for a terminal
    except ImportError:
        return None

    class Bar(tqdm):
        # No monitor thread (it only nudges bars that stall between updates, and ours update every
        # epoch): a run forks processes to draw its figures side by side, which a process with
        # another thread must not do.
        monitor_interval = 0

    return Bar


def terminal_columns(stream=None) -> int | None:
    """The width of the terminal ``stream`` (stdout) writes to, or None when it is no terminal."""
    stream = sys.stdout if stream is None else stream
    try:
        if not stream.isatty():
            return None
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        return None


def fit_terminal(message: str, stream=None) -> str:
    """``message`` wrapped at word boundaries to the terminal's width (continuation lines
    indented), unchanged on a pipe or in a file. A path or a word longer than a line stays whole."""
    columns = terminal_columns(stream)
    if columns is None or len(message) < columns:
        return message
    return textwrap.fill(message, width=columns - 1, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


class Console:
    """Where progress goes: a tqdm bar on a terminal; otherwise (a pipe, a log file) plain lines,
    at most about ``PLAIN_LINES`` evenly spaced epochs and the last one. train.log has every epoch.

    On a terminal the bar line is laid out for its width at every epoch (``bar_format``). A message
    before the first epoch prints above the bar; one after an epoch (early stopping, the restored
    weights, an interruption) ends the bar first, so the bar's last state stays above it."""

    PLAIN_LINES = 20

    def __init__(self, quiet: bool, total: int, initial: int, log: logging.Logger):
        self.quiet = quiet
        self.log = log
        self.total = total
        self.every = max(1, -(-total // self.PLAIN_LINES))  # ceil(total / PLAIN_LINES)
        self.bar = None
        self.done = initial
        self._epochs_shown = 0
        self._tqdm = _tqdm() if not quiet and sys.stdout.isatty() else None
        if self._tqdm is not None:
            self._open(self._tqdm)

    def _open(self, tqdm: Callable[..., Any]) -> None:
        columns = (terminal_columns() or 80) - 1  # the last column would wrap on some terminals
        self.bar = tqdm(total=self.total, initial=self.done, unit="epoch", file=sys.stdout, leave=True,
                              ncols=columns, bar_format=bar_format({}, None, columns, self.total))
        self._epochs_shown = 0

    def say(self, message: str) -> None:
        self.log.info(message)
        if self.quiet:
            return
        if self.bar is not None and self._epochs_shown:
            self.close()  # training is over (or stopped): the bar's last line stays above the message
        if self.bar is not None:
            self.bar.write(fit_terminal(message))
        else:
            print(fit_terminal(message), flush=True)

    def epoch(self, row: dict, line: str, best: tuple | None = None) -> None:
        """One finished epoch: ``row`` of metrics, ``line`` for logs and pipes, ``best`` as
        (monitored metric, best value, its epoch) for the bar."""
        self.log.info(line)
        if self._tqdm is not None and self.bar is None:
            self._open(self._tqdm)  # an epoch after a message that ended the bar: a fresh bar below it
        if self.bar is not None:
            columns = (terminal_columns() or 80) - 1
            self.bar.ncols = columns  # laid out again for a resized terminal
            self.bar.bar_format = bar_format(row, best, columns, self.total)
            self.bar.update(1)
            self._epochs_shown += 1
        elif not self.quiet and (row["epoch"] % self.every == 0 or row["epoch"] in (1, self.total)):
            print(line, flush=True)
        self.done = row["epoch"]

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


_SHORT = {"val_accuracy": "val_acc", "train_accuracy": "train_acc", "val_loss": "val_loss",
          "train_loss": "loss", "val_r2": "val_r2", "val_mae": "val_mae"}


def _short(metric: str) -> str:
    return _SHORT.get(metric, metric)


def bar_stats(row: dict, best: tuple | None) -> list[str]:
    """The bar's texts for an epoch, from the fullest to the shortest: the training loss, the
    monitored (else the validation) metric, and the best monitored value with its epoch."""
    monitor = best[0] if best is not None and best[1] is not None else None
    if monitor and monitor != "train_loss" and row.get(monitor) is not None:
        shown = monitor
    else:
        shown = next((k for k in ("val_accuracy", "val_r2", "val_loss") if row.get(k) is not None), None)
    loss = f"loss {row['train_loss']:.4g}"
    metric = f"{_short(shown)} {row[shown]:.4g}" if shown else ""
    main = f"{loss}  {metric}" if metric else loss
    if monitor is None or best is None:
        return [main, metric or loss]
    # the best is of the monitored metric: named, unless it is the one shown beside it
    same = monitor == shown or (monitor == "train_loss" and not shown)
    best_text = f"best {'' if same else _short(monitor) + ' '}{best[1]:.4g}"
    return [f"{main}  ({best_text} at epoch {best[2]})", f"{metric or loss}  ({best_text} at epoch {best[2]})",
            f"{metric or loss}  ({best_text})", metric or loss]


def bar_format(row: dict, best: tuple | None, columns: int, total: int) -> str:
    """tqdm's ``bar_format`` for one epoch, laid out for ``columns``: the epoch count, the bar, the
    time spent and left, and the numbers of ``bar_stats``, the fullest that leaves the bar at least
    ``MIN_BAR`` columns (the time goes first, then the longer texts); the bar takes what is left,
    so it grows with the terminal."""
    width = len(str(total))
    head = f"epoch {{n_fmt:>{width}}}/{{total_fmt}} |"
    head_len = len(f"epoch {total}/{total} |")
    timing, timing_len = "| {elapsed}<{remaining}", len("| 00:00<00:00")
    texts = bar_stats(row, best) if row else [""]
    for text in texts:
        for with_time in (True, False):
            used = head_len + (timing_len if with_time else 1) + (len(text) + 2 if text else 0)
            if columns - used >= MIN_BAR:
                return head + "{bar}" + (timing if with_time else "|") + (f"  {text}" if text else "")
    text = texts[-1]
    return head + "{bar}|" + (f"  {text}" if text else "")


MIN_BAR = 8


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

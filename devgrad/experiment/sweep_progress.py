"""What a sweep shows while it runs: one bar over the runs (tqdm when installed, else a line per
run) with the best monitored value so far."""

from __future__ import annotations

import sys

from devgrad.experiment.ranking import value

__all__ = ["Progress"]


class Progress:
    """One bar over the runs with the best monitored value so far (tqdm when installed)."""

    def __init__(self, total: int, initial: int, quiet: bool, monitor: tuple, where: str, resumed: bool = False):
        self.quiet, self.monitor = quiet, monitor
        self.best: tuple[float, int] | None = None  # (best monitored value, its run's index)
        self.bar = None
        if quiet:
            return
        if resumed:  # what it will run now, not the whole grid again
            print(f"sweep --resume: {total - initial} of {total} runs to run ({initial} finished before) on {where}",
                  flush=True)
        else:
            print(f"sweep: {total} runs on {where}", flush=True)
        try:
            from tqdm import tqdm  # noqa: PLC0415 - optional (the progress extra)
        except ImportError:
            return
        if sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=initial, unit="run", dynamic_ncols=True)

    def record(self, line: dict, new: bool = True) -> None:
        """A run's result line: counted towards the best so far, and shown when ``new`` (a line
        written before a resume only counts)."""
        name, mode = self.monitor
        v = value(line, name) if line["status"] == "completed" else None
        if v is not None and (self.best is None or (v > self.best[0] if mode == "max" else v < self.best[0])):
            self.best = (v, line["index"])
        if self.quiet or not new:
            return
        best = (f"best so far {self.best[0]:.4f}, run {self.best[1]}" if self.best is not None
                else "no completed run yet")
        if self.bar is not None:
            self.bar.set_postfix_str(f"{name} {best}")
            self.bar.update(1)
        else:
            own = f": {name} {v:.4f}" if v is not None else ""
            print(f"run {line['index']} {line['status']} in {line['wall_seconds'] or 0:.1f}s{own} ({best})", flush=True)

    def say(self, message: str) -> None:
        """A line for the user (nothing under --quiet)."""
        if not self.quiet:
            print(message, flush=True)

    def close(self) -> None:
        """End the bar."""
        if self.bar is not None:
            self.bar.close()

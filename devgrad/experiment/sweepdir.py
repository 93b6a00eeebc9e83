"""Reading a sweep folder: the newest line of each run in ``results.jsonl``.

Kept apart from ``sweeps`` (which runs sweeps and writes the folder) so that the reports read a
sweep folder without importing the code that runs one: ``sweeps`` → ``commands`` →
``html_report`` → ``sweepdir``, no circle.
"""

from __future__ import annotations

from pathlib import Path

from devgrad.experiment import checkpoint as ckpt


def read_results(sweep_dir: Path) -> list[dict]:
    """results.jsonl's newest complete line of each run (a line torn by a kill is passed over; a
    run stopped by Ctrl-C and resumed later has two lines, its stop and its end)."""
    newest = {}
    for line in ckpt.read_jsonl(Path(sweep_dir) / "results.jsonl", after_torn="skip"):
        newest[line["index"]] = line
    return list(newest.values())

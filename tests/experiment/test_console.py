"""devgrad.experiment.console: what a run prints, on a pipe and on a terminal."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.run_helpers import SMALL, cli, only_run_dir, write_spec


@pytest.mark.slow
def test_non_tty_output_is_plain_lines_without_progress_bar_noise(tmp_path):
    small = {**SMALL, "plots": {"enabled": False}}  # the console is tested, not the pictures
    result = cli("run", write_spec(tmp_path, small), "--out", tmp_path / "runs")
    assert "\r" not in result.stdout and "it/s" not in result.stdout and "%|" not in result.stdout
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 6 and "train_loss" in epoch_lines[0]
    quiet = cli("run", write_spec(tmp_path, small), "--out", tmp_path / "runs", "--quiet")
    assert quiet.returncode == 0 and "epoch " not in quiet.stdout
    long = cli("run", write_spec(tmp_path, {**small, "train": {**SMALL["train"], "epochs": 190}}), "--out",
               tmp_path / "long")
    lines = [line for line in long.stdout.splitlines() if line.startswith("epoch ")]
    assert 10 <= len(lines) <= 22 and lines[0].startswith("epoch   1/190") and lines[-1].startswith("epoch 190/190")
    run_dir = only_run_dir(tmp_path / "long", "small")
    assert (run_dir / "train.log").read_text().count("epoch ") >= 190  # the log keeps every epoch


def _on_a_terminal(args: list, columns: int) -> tuple[int, str]:
    """The CLI on a pseudo-terminal ``columns`` wide; its exit code and what it wrote."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI with a terminal as stdout and stderr
        import fcntl
        import struct
        import termios

        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        os.execv(sys.executable, [sys.executable, "-m", "devgrad", *map(str, args)])
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("columns", [80, 120])
def test_progress_bar_on_a_terminal_fits_and_reads_clearly(tmp_path, columns):
    pytest.importorskip("tqdm")
    spec = write_spec(tmp_path, {**SMALL, "plots": {"enabled": False}, "train": {
        "epochs": 40, "batch_size": 32,
        "early_stopping": {"patience": 2, "min_delta": 0.5, "restore_best": True}}})
    code, text = _on_a_terminal(["run", spec, "--out", tmp_path / "r"], columns)
    assert code == 0, text
    assert "\r" in text  # tqdm redraws its bar in place
    # every state of every line fits (nothing wraps, nothing is cut) but a path longer than a line
    shown = [part for line in text.split("\n") for part in line.split("\r") if part.strip()]
    too_long = [p for p in shown if len(p.rstrip()) >= columns and len(p.removeprefix("run folder:").split()) > 1]
    assert not too_long, too_long
    bars = [part for part in shown if part.startswith("epoch ") and "|" in part]
    last = bars[-1]
    # the numbers in words: the loss, the validation metric, the best with its epoch
    assert "val_loss " in last and "(best " in last and " at epoch " in last, last
    if columns >= 120:
        assert "loss " in last and "<" in last, last  # room for the training loss and the time too
    bar_width = len(last.split("|")[1])
    assert bar_width >= 8 and (columns < 120 or bar_width > 20), last  # the bar grows with the terminal
    # the bar's final line, then what happened after the last epoch, in that order
    lines = [line.split("\r")[-1] for line in text.replace("\r\n", "\n").split("\n")]
    final_bar = max(i for i, line in enumerate(lines) if line.startswith("epoch ") and "|" in line)
    stop = next(i for i, line in enumerate(lines) if line.startswith("early stopping at epoch"))
    restored = next(i for i, line in enumerate(lines) if line.startswith("restored the weights"))
    assert final_bar < stop < restored, lines


def test_importing_the_runner_loads_no_progress_bar_library():
    """tqdm (and, through tqdm.auto, asyncio) is imported only when a bar is drawn on a terminal:
    importing the runner, or running with output to a pipe, costs none of it."""
    probe = ("import sys, devgrad.experiment; "
             "print(sorted(m for m in ('tqdm', 'asyncio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_terminal_bar_starts_no_thread(monkeypatch):
    """A run forks processes to draw its figures side by side (while its bar is still open), which
    a process with another thread must not do: the bar has no monitor thread."""
    import logging
    import threading

    pytest.importorskip("tqdm")
    from devgrad.experiment.console import Console

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    before = set(threading.enumerate())
    console = Console(quiet=False, total=3, initial=0, log=logging.getLogger("test-bar"))
    try:
        assert console.bar is not None
        assert set(threading.enumerate()) == before
    finally:
        console.close()

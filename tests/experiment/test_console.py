"""devgrad.experiment.console: what a run prints, on a pipe and on a terminal."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.run_helpers import SMALL, cli, only_run_dir, write_spec


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


def test_progress_bar_on_a_terminal(tmp_path):
    pytest.importorskip("tqdm")
    import pty

    spec = write_spec(tmp_path, {**SMALL, "train": {"epochs": 3}})
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI with a terminal (100 columns) as stdout
        import fcntl
        import struct
        import termios

        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a classic 80-column terminal
        os.execv(sys.executable, [sys.executable, "-m", "devgrad", "run", str(spec), "--out", str(tmp_path / "r")])
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
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "epoch" in text and "3/3" in text and "\r" in text, text  # tqdm redraws its bar in place
    last = [line for line in text.replace("\r", "\n").splitlines() if "3/3" in line][-1]
    # at 80 columns the bar stays legible: the loss, the validation metric and the best, uncut
    assert len(last.strip()) <= 80 and "loss " in last and "val_acc " in last and "best " in last, last


def test_importing_the_runner_loads_no_progress_bar_library():
    """tqdm (and, through tqdm.auto, asyncio) is imported only when a bar is drawn on a terminal:
    importing the runner, or running with output to a pipe, costs none of it."""
    probe = ("import sys, devgrad.experiment; "
             "print(sorted(m for m in ('tqdm', 'asyncio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

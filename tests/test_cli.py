"""The command line, run as a user would: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import devgrad as dg


def run_cli(*args, env=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "devgrad", *args], capture_output=True, text=True,
                          env=full_env, timeout=120, check=False)


def test_info_lists_versions_devices_and_why_cuda_is_unavailable():
    result = run_cli("info")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"devgrad {dg.__version__}" in out and "numpy" in out and "cpu (NumPy)" in out
    if not dg.cuda_available():
        assert "CUDA unavailable:" in out and "'auto' resolves to: cpu" in out


def test_info_with_bad_default_device_is_a_clean_error():
    result = run_cli("info", env={"DEVGRAD_DEVICE": "tpu"})
    assert result.returncode == 2
    assert "DEVGRAD_DEVICE='tpu'" in result.stderr and "Traceback" not in result.stderr


def test_no_command_prints_help_and_exits_2():
    result = run_cli()
    assert result.returncode == 2 and "usage" in result.stdout.lower()

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


def test_cli_messages_name_their_origin_and_the_fix(tmp_path, capsys):
    from devgrad.cli import main
    from devgrad.experiment import report

    assert main(["run", "experiments/xor.yaml", "--device", "tpu"]) == 2
    assert "device (from --device): unknown device 'tpu'" in capsys.readouterr().err
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert main(["run", "experiments/xor.yaml", "--out", str(a_file), "--device", "cpu"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["plot", str(tmp_path)]) == 2  # not a run folder
    assert "not a run folder" in capsys.readouterr().err
    assert callable(report.can_plot)


def test_plot_without_matplotlib_is_an_error_not_a_silent_success(tmp_path, monkeypatch, capsys):
    from devgrad.cli import main
    from devgrad.experiment import report, run

    result = run({"data": {"source": "xor", "n_samples": 100}, "train": {"epochs": 1}, "device": "cpu"},
                 out=tmp_path, quiet=True)
    monkeypatch.setattr(report, "_pyplot", lambda: None)
    assert main(["plot", str(result.run_dir)]) == 2
    assert "matplotlib, which is not installed" in capsys.readouterr().err


def test_subcommands_have_help_and_run_has_examples(capsys):
    import pytest

    from devgrad.cli import main

    for command in ("run", "resume", "validate", "plot", "bench", "warmup"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "usage:" in text
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "examples:" in capsys.readouterr().out

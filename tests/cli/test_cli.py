"""The command line: in this process (tests.support.run_helpers.cli), and as a user runs it, in a
subprocess, where the process itself is what is checked."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys

import pytest

import devgrad as dg
from devgrad.bench.references import CONFIGS
from devgrad.cli import COMMANDS, build_parser
from devgrad.experiment import export, search, sweeps
from tests.support.run_helpers import cli


def run_cli(*args, env=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "devgrad", *args], capture_output=True, text=True,
                          env=full_env, timeout=120, check=False)


@pytest.mark.slow
def test_info_lists_versions_devices_and_why_cuda_is_unavailable():
    result = cli("info")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"devgrad {dg.__version__}" in out and "numpy" in out and "cpu (NumPy)" in out
    if not dg.cuda_available():
        assert "CUDA unavailable:" in out and "'auto' resolves to: cpu" in out


@pytest.mark.slow
def test_info_with_bad_default_device_is_a_clean_error():
    result = cli("info", env={"DEVGRAD_DEVICE": "tpu"})
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

    result = run({"data": {"source": "xor", "n_samples": 100}, "train": {"epochs": 1}, "device": "cpu",
                  "plots": {"enabled": False}}, out=tmp_path, quiet=True)  # the plot command draws them
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


_HELP_PROCESS = """
import json, sys
start = set(sys.modules)
from devgrad.cli import main
imported = sorted(set(sys.modules) - start)
for argv in (["--help"], ["sweep", "--help"], ["export", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
print(json.dumps([imported, sorted(set(sys.modules) - start)]))
"""

# What the parser may import: itself, the light names it offers, and the package's light top level.
_HELP_MODULES = {"devgrad", "devgrad.version", "devgrad.cli", "devgrad.cli_parser", "devgrad.experiment",
                 "devgrad.experiment.choices"}


def test_help_imports_the_parser_alone_not_the_commands():
    """``import devgrad.cli`` and ``devgrad --help`` (and a command's help) build the parser without
    importing any command's implementation, nor NumPy or the autodiff core: no runner, data,
    layers, bench, YAML or matplotlib."""
    done = subprocess.run([sys.executable, "-c", _HELP_PROCESS], capture_output=True, text=True, check=False,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: devgrad sweep" in done.stdout and "--search {tpe,random,cmaes,grid}" in done.stdout
    imported, loaded = json.loads(done.stdout.splitlines()[-1])
    assert set(imported) <= set(loaded) and "devgrad.cli_parser" in imported  # the check sees imports
    wrong = [m for m in loaded if (m.startswith("devgrad") and m not in _HELP_MODULES)
             or m.split(".")[0] in ("numpy", "yaml", "matplotlib", "optuna", "onnx", "torch")]
    assert not wrong, f"devgrad --help imported {wrong}"


def test_every_command_names_the_function_that_runs_it():
    """The parser's commands and ``COMMANDS`` agree, and each "module:function" resolves."""
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(subparsers.choices) == list(COMMANDS)
    for command, target in COMMANDS.items():
        module_name, function = target.split(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, function)), command
        assert all(issubclass(e, Exception) for e in module.USER_ERRORS), command


def test_the_parser_offers_the_names_the_library_accepts():
    """Choices kept in a light module for the parser are the ones the implementations check."""
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = {(name, o): a for name, sub in subparsers.choices.items() for a in sub._actions for o in a.option_strings}
    assert tuple(options["sweep", "--search"].choices) == search.SAMPLERS
    assert tuple(options["sweep", "--pruner"].choices) == search.PRUNERS
    assert tuple(options["sweep", "--executor"].choices) == sweeps.EXECUTORS
    assert tuple(options["export", "--format"].choices) == tuple(export.FORMATS)
    assert options["bench", "--configs"].default == ",".join(CONFIGS)


@pytest.mark.parametrize("where", ["build_parser", "import_module"])
def test_ctrl_c_while_the_command_starts_is_one_line_and_status_130(monkeypatch, capsys, where):
    from devgrad import cli as devgrad_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    target = devgrad_cli.importlib if where == "import_module" else devgrad_cli
    monkeypatch.setattr(target, where, interrupted)
    assert devgrad_cli.main(["info"]) == 130
    assert capsys.readouterr().err == "devgrad: interrupted\n"

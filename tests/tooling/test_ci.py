"""The scripts of .ci/ (gpu-check, gpu_summary.py, watchdog.py, host-overhead) and the suite's own
device check, run on the host as CI runs them."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

import devgrad as dg
from tests.support import kernel_harness as harness
from tests.support.run_helpers import ROOT

pytestmark = pytest.mark.tooling


@pytest.mark.slow  # the check's info step and summary: several Python processes
def test_gpu_check_runs_only_the_steps_it_is_given(tmp_path):
    """.ci/gpu-check with GPU_CHECK_STEPS naming no step (a rerun that needs only the summary):
    nothing is run, every step's file says so, the summary is written, and it writes at most 8
    files."""
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "GPU_CHECK_STEPS": "none", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / ".ci" / "gpu-check")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in out.iterdir())
    assert "summary.txt" in files and len(files) <= 8
    for name in ("pytest-cuda.txt", "bench-cuda.txt", "runs.txt"):
        assert (out / name).read_text().startswith("not run: GPU_CHECK_STEPS=none"), name
    summary = (out / "summary.txt").read_text()
    assert "gpu-check done in" in summary and "not run: GPU_CHECK_STEPS=none" in summary


def _gpu_check_on_a_small_suite(tmp_path, last_test: str, **settings) -> tuple:
    """Run .ci/gpu-check's test step (and whatever ``settings`` add) on a suite of a passing test,
    a failing one and ``last_test`` (a body, run last); returns (the output folder, summary.txt)."""
    tests = tmp_path / "test_small.py"
    tests.write_text("import signal, time\n\n"
                     "def test_quick():\n    assert True\n\n"
                     "def test_wrong():\n    assert 1 == 2\n\n"
                     f"def test_zz_last():\n{last_test}")
    out = tmp_path / "out"
    # three tests in one process: xdist workers starting on a busy 2-core machine would eat the time limits
    env = {**os.environ, "OUT": str(out), "GPU_CHECK_STEPS": "tests", "GPU_CHECK_PYTEST": str(tests),
           "GPU_CHECK_WORKERS": "0", "PYTHON": sys.executable, **settings}
    done = subprocess.run(["bash", str(ROOT / ".ci" / "gpu-check")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    summary = (out / "summary.txt").read_text()
    assert "test_small.py::test_wrong" in summary, summary
    # The test still running near the limit had its stack printed, and the summary shows it.
    assert "in test_zz_last" in summary.split("stacks of a hang or crash:")[1], summary
    return out, summary


@pytest.mark.slow  # waits out the time limits it checks
def test_gpu_check_reports_the_tests_that_ran_when_the_suite_runs_out_of_time(tmp_path):
    """A suite that outlives its limit gets Ctrl-C, not SIGKILL: pytest still prints its counts
    and failures so far, and the summary shows them (a killed pytest would print nothing)."""
    _, summary = _gpu_check_on_a_small_suite(tmp_path, "    time.sleep(120)\n", GPU_CHECK_TEST_SECONDS="10")
    assert "1 failed, 1 passed" in summary and "pytest exit 124" in summary, summary


@pytest.mark.slow  # waits out the time limits it checks
def test_gpu_check_counts_the_tests_that_ran_even_when_the_suite_is_killed(tmp_path):
    """A suite that does not end on Ctrl-C (a test ignoring it) is killed after the grace and
    prints no counts of its own; the summary counts pytest -v's line per test instead and names
    the failed test. The check's budget cuts the suite's limit to what is left and skips a step
    that would not fit, so the whole check still ends in time with its summary."""
    out, summary = _gpu_check_on_a_small_suite(
        tmp_path, "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n    time.sleep(120)\n",
        GPU_CHECK_STEPS="tests,bench", GPU_CHECK_BUDGET="24", GPU_CHECK_TEST_GRACE="2")
    assert int(re.search(r"gpu-check done in (\d+)s", summary).group(1)) <= 24, summary
    assert "skipped: the check's 24 s (GPU_CHECK_BUDGET) are spent" in (out / "bench-cuda.txt").read_text()
    assert "pytest exit 137" in summary and " passed in " not in summary, summary  # killed: no counts of its own
    assert "counted from the per-test lines: 1 passed, 1 failed" in summary, summary
    assert "FAILED" in summary


def _watchdog(tmp_path, seconds, module, *args, limit=60):
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    return subprocess.run(["timeout", "-s", "INT", "-k", "10", str(limit), sys.executable,
                           str(ROOT / ".ci" / "watchdog.py"), str(seconds), module, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit + 30, check=False)


@pytest.mark.slow  # waits out the time limits it checks
def test_watchdog_prints_where_a_hung_command_waits(tmp_path):
    """.ci/watchdog.py (gpu-check runs every devgrad command through it): a command still running
    after its seconds prints every thread's stack, down to the call it waits in, and keeps running
    until the limit's Ctrl-C."""
    (tmp_path / "hangs.py").write_text("import time\n\ndef wait_for_the_gpu():\n    time.sleep(60)\n\n"
                                       "wait_for_the_gpu()\n")
    done = _watchdog(tmp_path, 1, "hangs", limit=4)
    assert done.returncode == 124
    dump = done.stderr.split("Timeout (0:00:01)!")[1]
    assert "line 4 in wait_for_the_gpu" in dump and "KeyboardInterrupt" in dump, done.stderr


def test_watchdog_shows_the_stack_of_a_native_crash(tmp_path):
    """A segfault inside a native call (a ctypes call into cuBLAS with a bad pointer, say) prints
    the Python stack that made the call, not only the shell's "Segmentation fault"."""
    (tmp_path / "crashes.py").write_text("import ctypes\n\ndef call_into_native_code():\n"
                                         "    ctypes.string_at(0)\n\ncall_into_native_code()\n")
    done = _watchdog(tmp_path, 30, "crashes")
    assert done.returncode != 0
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert "line 4 in call_into_native_code" in done.stderr, done.stderr


def test_watchdog_runs_a_module_as_python_m_does(tmp_path):
    """Same arguments, output and exit status as ``python -m devgrad``: a user mistake still exits
    2 with its one-line message, and a module that finishes in time prints no stack."""
    missing = str(tmp_path / "missing.yaml")
    done = _watchdog(tmp_path, 30, "devgrad", "run", missing)
    plain = subprocess.run([sys.executable, "-m", "devgrad", "run", missing], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, check=False)
    assert done.returncode == plain.returncode == 2
    assert done.stderr == plain.stderr and missing in done.stderr and "Timeout" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("devices", ["cpu,tpu", "cuda"])
def test_the_suite_stops_at_once_when_told_to_test_a_device_it_cannot_use(tmp_path, devices):
    """DEVGRAD_TEST_DEVICES naming a device this machine cannot use (a typo; cuda where no GPU is
    usable, as on a machine whose driver is missing) ends pytest before any test with one message
    naming the variable, the device and the fix, instead of an error in every device test."""
    if devices == "cuda" and dg.cuda_available():
        pytest.skip("this machine can use CUDA")
    (tmp_path / "test_one.py").write_text("def test_device(device):\n    assert device is not None\n")
    env = {**os.environ, "DEVGRAD_TEST_DEVICES": devices}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
                           "-c", str(ROOT / "pyproject.toml"), "--confcutdir", str(ROOT),
                           "-p", "tests.conftest", str(tmp_path / "test_one.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 4, output
    name = devices.split(",")[-1]
    assert f"DEVGRAD_TEST_DEVICES={devices} names {name!r}" in output and "Unset DEVGRAD_TEST_DEVICES" in output
    assert output.count("ERROR:") == 1 and "passed" not in output and "at setup" not in output, output


def _gpu_summary():
    """.ci/gpu_summary.py (a script of .ci/, not a package module) loaded as a module."""
    spec = importlib.util.spec_from_file_location("gpu_summary", ROOT / ".ci" / "gpu_summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench_row(config, eager, graph, replays, weights=1e-7, unavailable=None):
    return {"config": config, "ratio_vs_pytorch": eager, "graph_ratio_vs_pytorch_graph": graph,
            "agreement": {"devgrad_graph": {"replays": replays, "weights_rel_err": weights}},
            "unavailable": unavailable or {}}


def test_gpu_summary_says_which_targets_a_gpu_check_met(tmp_path):
    """The GPU check's summary opens with the GPU targets, each met, NOT met or
    unmeasured from what the check wrote: the suite's per-test lines, the bench and end-to-end
    JSON and the spirals runs' summary.json files (here made up, one target missed on purpose)."""
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    (out / "pytest-cuda.txt").write_text("[gw0] [ 33%] PASSED tests/a.py::test_x[cuda]\n"
                                         "[gw1] [ 66%] SKIPPED tests/a.py::test_y[cuda]\n"
                                         "[gw0] [100%] PASSED tests/b.py::test_z\n"
                                         "======== 2 passed, 1 skipped in 3.21s ========\npytest exit 0 after 5s\n")
    bench_rows = [_bench_row("tiny", 0.6, 1.05, 30), _bench_row("small", 0.7, 1.02, 30),
                  _bench_row("medium", 0.9, 1.08, 30), _bench_row("large", 1.12, 1.04, 30)]
    (out / "bench-cuda.json").write_text(json.dumps({"configs": bench_rows}))
    (out / "e2e.json").write_text(json.dumps({"e2e": {
        "devgrad": {"seconds": 0.52, "first_seconds": 2.6, "cuda_graph": True, "test_accuracy": 0.9},
        "pytorch": {"seconds": 1.35, "first_seconds": 1.9, "test_accuracy": 0.9}, "ratio_vs_pytorch": 0.52 / 1.35}}))
    for name, seconds, graph in (("spirals-cpu", 1.05, False), ("spirals-graph", 0.34, True)):
        run_dir = work / name / "spirals" / "run-1"
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(json.dumps({"wall_seconds": seconds, "cuda_graph": {"active": graph}}))
    text = _gpu_summary().summarize(out, work)
    targets = text.split("GPU targets")[1].split("\ntests (")[0]
    lines = dict(line.strip().split(": ", 1) for line in targets.strip().splitlines()[1:])
    assert lines["suite passes with DEVGRAD_TEST_DEVICES=cuda"] == "2 passed, 1 skipped, 0 failed - met"
    assert lines["CapturedStep replays > 0 (else it ran eagerly)"].endswith("large 30 - met")
    assert lines["CapturedStep <= 1.1x PyTorch's CUDA-graph step"].endswith("large 1.04x - met")
    assert lines["eager step <= 1.0x PyTorch eager"] == "tiny 0.60x, small 0.70x, medium 0.90x, large 1.12x - NOT met"
    assert lines["gpu_large warm <= 1.0x plain PyTorch"] == "0.39x (0.52 s vs 1.35 s) - met"
    assert lines["gpu_large <= 0.6 s with the captured step"] == "0.52 s, captured - met"
    assert lines["gpu_large on a fresh kernel cache <= 3 s"] == "first run 2.60 s - met"
    assert lines["spirals with the captured step faster than on the CPU"].startswith("0.34 s (graph on) vs 1.05 s")
    assert lines["spirals with the captured step faster than on the CPU"].endswith(" - met")
    assert json.loads((out / "runs.json").read_text())["spirals-graph"]["wall_seconds"] == 0.34


def test_gpu_summary_never_calls_a_target_met_that_was_not_measured(tmp_path):
    """A check cut short (a killed suite, a capture that fell back, no bench or end-to-end numbers)
    reports those targets as NOT met or unmeasured, never as met."""
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    (out / "pytest-cuda.txt").write_text("[gw0] [ 10%] PASSED tests/a.py::test_x[cuda]\npytest exit 137 after 230s\n")
    rows = [_bench_row(c, 0.5, None, 0, unavailable={"devgrad_graph": "capture failed"}) for c in
            ("tiny", "small", "medium")]
    (out / "bench-cuda.json").write_text(json.dumps({"configs": rows}))
    text = _gpu_summary().summarize(out, work)
    targets = text.split("GPU targets")[1].split("\ntests (")[0]
    assert " - met" not in targets, targets
    lines = dict(line.strip().split(": ", 1) for line in targets.strip().splitlines()[1:])
    assert lines["suite passes with DEVGRAD_TEST_DEVICES=cuda"].endswith("(the suite did not finish: more tests "
                                                                          "were to run) - unmeasured")
    assert lines["CapturedStep replays > 0 (else it ran eagerly)"].endswith("large - (not in the bench) - NOT met")
    assert "tiny - ({'devgrad_graph': 'capture failed'})" in lines["CapturedStep <= 1.1x PyTorch's CUDA-graph step"]
    assert lines["eager step <= 1.0x PyTorch eager"].endswith("large - (not in the bench) - unmeasured")
    assert lines["gpu_large warm <= 1.0x plain PyTorch"] == "unmeasured"
    assert lines["spirals with the captured step faster than on the CPU"] == "unmeasured"


def test_the_host_overhead_script_runs_the_budgeted_step(tmp_path):
    """.ci/host-overhead (the host time of a GPU step, measured without a GPU) still runs, and
    the step it times is the budgeted one: 8 kernel launches and 12 GEMMs (on a GPU a ninth, the
    backward's seed, is a fill; the host device here uses its cached read-only 1)."""
    if harness.compiler() is None:
        pytest.skip("no C++ compiler to build the host cuBLAS stand-in")
    env = {**os.environ, "DEVGRAD_OVERHEAD_BLOCKS": "1", "DEVGRAD_OVERHEAD_STEPS": "5"}
    done = subprocess.run([sys.executable, str(ROOT / ".ci" / "host-overhead")], check=False, capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "us of host time per eager step (8 kernel launches, 12 GEMMs; min of 1 blocks of 5 steps)" in done.stdout

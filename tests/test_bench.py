"""devgrad bench: the references compute what devgrad computes (correctness, not speed)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import devgrad as dg
from devgrad import bench
from devgrad.bench import timing as bench_timing
from tests.run_helpers import ROOT


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_handwritten_reference_matches_devgrad(device, name):
    report = bench.check_agreement(bench.CONFIGS[name], device)
    assert report["devgrad"]["ok"] and report["handwritten"]["ok"], report
    assert report["devgrad"]["grad_rel_err"] < 1e-4


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["tiny", "small"])
def test_pytorch_reference_matches_devgrad(torch, device, name):
    report = bench.check_agreement(bench.CONFIGS[name], device, torch, device.name)
    assert report["pytorch"]["ok"] and report["pytorch"]["grad_rel_err"] < 1e-3, report


def test_a_step_updates_like_the_reference(device):
    config = bench.CONFIGS["tiny"]
    weights, X, y = bench.initial(config)
    ours = bench.DevgradStep(config, weights, device)
    hand = bench.HandWritten(config, weights, np)
    for _ in range(3):
        ours.step(dg.tensor(X, device=device), dg.tensor(y, device=device))
        hand.step(X, y)
    for lin, W in zip(ours.model.linears, hand.W):
        np.testing.assert_allclose(lin.weight.numpy(), W, rtol=1e-5, atol=1e-6)


def test_flop_count_of_a_config():
    c = bench.Config("c", (4, 3, 2), "relu", 10)
    # forward 2·(4·3 + 3·2), weight grads the same, input grad of layer 2 only: 2·3·2; per sample ×10
    assert c.flops() == 10 * (2 * (12 + 6) * 2 + 2 * 6)


def test_cli_bench_writes_table_and_json(tmp_path, capsys, quick_peak):
    from devgrad.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", "--configs", "tiny", "--repeat", "2", "--no-torch", "--no-jax", "--pause", "0",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "tiny" in text and "vs hand" in text and "matmul peak" in text
    data = json.loads(out.read_text())
    row = data["configs"][0]
    assert row["config"] == "tiny" and row["devgrad"]["median_ms"] > 0 and row["ratio_vs_handwritten"] > 0
    assert data["matmul_peak_gflops"] > 0
    assert main(["bench", "--configs", "huge"]) == 2


def test_op_overhead_measurement(capsys):
    from devgrad.cli import main

    result = bench.op_overhead("cpu", repeat=2)
    assert result["devgrad_us"] > 0 and result["handwritten_us"] > 0 and result["ratio"] > 0
    assert main(["bench", "--overhead", "--repeat", "2"]) == 0
    assert "(a * b + c).sum().backward()" in capsys.readouterr().out


def test_pytorch_is_timed_in_phases_alternating_with_ours():
    """devgrad and the hand-written step take turns block by block; PyTorch gets phases of its
    own, alternating with theirs over the rounds, and every implementation gets `repeat` blocks."""
    calls = []

    def impl(name):
        return (lambda: calls.append(name)), (lambda: None)

    ours = {"devgrad": impl("devgrad"), "handwritten": impl("handwritten")}
    theirs = {"pytorch": impl("pytorch")}
    samples = bench.time_in_rounds(ours, theirs, repeat=5, min_block_s=0.0, rounds=2, settle_s=0.0)
    assert {k: len(v) for k, v in samples.items()} == {"devgrad": 5, "handwritten": 5, "pytorch": 5}
    phases = [calls[0]]
    for name in calls[1:]:
        if (name == "pytorch") != (phases[-1] == "pytorch"):
            phases.append(name)
    assert [p == "pytorch" for p in phases] == [False, True, False, True]  # two rounds, two phases each


def test_table_shows_the_cuda_graph_column_when_there_is_one():
    """On CUDA the results carry a devgrad_graph entry; the table shows it beside devgrad's eager
    step, and its ratio to PyTorch's beside devgrad's."""
    stats = {"median_ms": 1.0, "iqr_ms": 0.1, "runs": 3, "gflops": 10.0, "peak_step_bytes": 2**20}
    row = {"config": "tiny", "devgrad": stats, "handwritten": dict(stats, median_ms=0.5),
           "pytorch": dict(stats, median_ms=2.0, peak_step_bytes=None),
           "devgrad_graph": dict(stats, median_ms=0.25, peak_step_bytes=None),
           "ratio_vs_handwritten": 2.0, "ratio_vs_pytorch": 0.5, "graph_ratio_vs_handwritten": 0.5,
           "graph_ratio_vs_pytorch": 0.125}
    results = {"device_description": "cuda:0 (test card)", "numpy": "x", "torch": "y", "matmul_peak_gflops": 100.0,
               "configs": [row]}
    lines = bench.format_table(results).splitlines()
    head = lines[1].split("  ")
    head = [h.strip() for h in head if h.strip()]
    assert head[:8] == ["config", "devgrad ms", "captured ms", "hand ms", "torch ms", "vs hand", "vs torch",
                        "captured vs torch"]
    assert lines[3].split()[:9] == ["tiny", "1.000", "±0.100", "0.250", "0.500", "2.000", "2.00×", "0.50×", "0.12×"]


def _timed_row(**medians) -> dict:
    row = {"config": "tiny", "unavailable": {}}
    for name, ms in medians.items():
        row[name] = {"median_ms": ms, "iqr_ms": 0.0, "runs": 1, "gflops": 1.0, "peak_step_bytes": None}
    return row


def test_the_tight_reference_agrees_with_the_float64_truth():
    """The tight step (preallocated buffers, out= everywhere, one fused update) computes the same
    loss and gradients as the float64 truth, for the binary and the softmax heads."""
    for name in ("tiny", "small"):
        report = bench.check_agreement(bench.CONFIGS[name], dg.device("cpu"))
        assert report["tight"]["ok"] and report["tight"]["grad_rel_err"] < 1e-4, report


def test_a_tight_step_updates_like_the_other_references():
    config = bench.CONFIGS["small"]
    weights, X, y = bench.initial(config)
    tight = bench.TightHandWritten(config, weights, config.batch)
    hand = bench.HandWritten(config, weights, np)
    for _ in range(3):
        tight.step(X, y)
        hand.step(X, y)
    for W, Wh, b, bh in zip(tight.W, hand.W, tight.b, hand.b):
        np.testing.assert_allclose(W, Wh, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b, bh, rtol=1e-5, atol=1e-6)


def test_implementations_never_share_weight_arrays(torch):
    """Each implementation trains arrays of its own: after a step of each, no two share memory,
    and the initial weights they were made from are unchanged."""
    config = bench.CONFIGS["tiny"]
    weights, X, y = bench.initial(config)
    before = [(w.copy(), b.copy()) for w, b in weights]
    cpu = dg.device("cpu")
    ours = bench.DevgradStep(config, weights, cpu)
    hand = bench.HandWritten(config, weights, np)
    tight = bench.TightHandWritten(config, weights, config.batch)
    theirs = bench.TorchStep(torch, config, weights, "cpu")
    ours.step(dg.tensor(X), dg.tensor(y))
    hand.step(X, y)
    tight.step(X, y)
    theirs.step(torch.from_numpy(X), torch.from_numpy(y))
    arrays = {"initial": [a for pair in weights for a in pair],
              "devgrad": [a for lin in ours.model.linears for a in (lin.weight.data, lin.bias.data)],
              "hand": hand.W + hand.b, "tight": tight.W + tight.b,
              "torch": [p.detach().numpy() for p in theirs.model.parameters()]}
    names = list(arrays)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for x in arrays[a]:
                for z in arrays[b]:
                    assert x is not z and not np.shares_memory(x, z), (a, b)
    for (w, b), (w0, b0) in zip(weights, before):
        assert np.array_equal(w, w0) and np.array_equal(b, b0)
    assert not np.array_equal(tight.W[0], weights[0][0])  # it did train


@pytest.fixture
def quick_peak(monkeypatch):
    """A made-up matmul peak: measuring the real one takes seconds, and these tests time nothing."""
    monkeypatch.setattr(bench, "matmul_peak_gflops", lambda dev, pause_s=0.2: 50.0)


@pytest.mark.slow
def test_the_jax_column_is_skipped_with_its_reason_when_jax_is_missing(monkeypatch, quick_peak):
    monkeypatch.setattr(bench, "import_jax", lambda: None)
    results = bench.run("cpu", ["tiny"], repeat=1, use_torch=False, min_block_s=0.0, pause_s=0.0)
    row = results["configs"][0]
    assert "jax" not in row
    assert row["unavailable"]["jax"] == "JAX is not installed (pip install '.[bench]' from the devgrad folder)"
    assert results["jax"] is None
    assert "tiny: jax not measured: JAX is not installed" in bench.format_table(results)


_JAX_CHECK = """
import jax
from devgrad import bench, device
report = bench.check_agreement(bench.CONFIGS["tiny"], device("cpu"), jax=jax)
assert report["jax"]["ok"] and report["jax"]["grad_rel_err"] < 1e-3, report
weights, X, y = bench.initial(bench.CONFIGS["small"])
step = bench.JaxStep(jax, bench.CONFIGS["small"], weights, X, y)
assert step.compile_s > 0
first = step.step()
step.step()
step.sync()
assert float(step.loss) < float(first)  # it trains: its own weights change
print("ok")
"""


@pytest.mark.slow
def test_the_jax_step_agrees_with_the_truth_and_reports_its_compile_time():
    """In a process of its own: JAX starts threads, and a test process that forks later (the sweep
    tests) must not inherit them."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX not installed: its bench column is skipped (tested above)")
    done = subprocess.run([sys.executable, "-c", _JAX_CHECK], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.slow
def test_a_failed_torch_compile_is_reported_not_fatal(torch, monkeypatch):
    from devgrad.bench import peers

    def refuse(*args):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(bench, "TorchCompiledStep", refuse)
    row = bench.bench_config(bench.CONFIGS["tiny"], dg.device("cpu"), 1, torch, 0.0, torch_compile=True, pause_s=0.0)
    assert row["unavailable"]["torch_compile"] == "torch.compile failed: RuntimeError: no C++ compiler"
    assert "torch_compile" not in row and "pytorch" in row
    assert peers.TorchCompiledStep is not refuse


@pytest.mark.slow
def test_the_peak_is_the_best_of_several_and_never_below_a_measured_step(monkeypatch):
    """The matmul peak is the best of its rounds; a step faster than it (a peak measured in a busy
    moment) raises the peak to that step's rate, with a note: no column shows more than 100%."""
    samples = iter([[4.0, 2.0], [1.0, 3.0], [5.0, 5.0]])
    monkeypatch.setattr(bench, "time_calls", lambda *args: next(samples))
    monkeypatch.setattr(bench.time, "sleep", lambda s: None)
    assert bench.matmul_peak_gflops(dg.device("cpu"), n=4, rounds=3) == 2 * 4**3 / 1.0 / 1e9
    monkeypatch.setattr(bench, "matmul_peak_gflops", lambda dev, pause_s: 1e-9)
    results = bench.run("cpu", ["tiny"], repeat=1, use_torch=False, use_jax=False, min_block_s=0.0, pause_s=0.0)
    row = results["configs"][0]
    fastest = max(row[k]["gflops"] for k in bench.TIMED if k in row)
    assert results["matmul_peak_gflops"] == fastest and "faster than" in results["peak_note"]
    percents = [int(c.rstrip("%")) for line in bench.format_table(results).splitlines()[3:4]
                for c in line.split() if c.endswith("%")]
    assert percents and max(percents) <= 100


def test_blocks_are_separated_by_the_pause(monkeypatch):
    slept = []
    monkeypatch.setattr(bench_timing.time, "sleep", slept.append)
    impls = {"a": ((lambda: None), (lambda: None)), "b": ((lambda: None), (lambda: None))}
    samples = bench_timing.time_interleaved(impls, 3, 0.0, pause_s=0.25)
    assert {k: len(v) for k, v in samples.items()} == {"a": 3, "b": 3}
    assert slept == [0.25] * 6


def test_ratios_to_the_tight_step():
    row = _timed_row(devgrad=3.0, handwritten=2.0, tight=1.0, devgrad_graph=1.5, jax=0.5)
    bench._ratios(row)
    assert row["vs_tight"] == {"devgrad": 3.0, "devgrad_graph": 1.5, "handwritten": 2.0, "jax": 0.5}


@pytest.mark.slow
def test_cli_bench_writes_a_results_page(tmp_path, capsys, quick_peak, monkeypatch):
    from devgrad.cli import main

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # the page says how BLAS was told to thread

    page = tmp_path / "bench-results.md"
    assert main(["bench", "--configs", "tiny", "--repeat", "1", "--no-torch", "--no-jax", "--pause", "0",
                 "--write", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# devgrad bench results") and "| config | devgrad ms |" in text
    assert f"`devgrad bench --configs tiny --repeat 1 --no-torch --no-jax --pause 0.0 --write {page}`" in text
    assert "| tiny |" in text and "Load average" in text and "thread settings OPENBLAS_NUM_THREADS=1" in text
    assert main(["bench", "--pause", "-1"]) == 2
    assert "--pause -1.0" in capsys.readouterr().err
    assert main(["bench", "--write", str(tmp_path / "missing" / "r.md")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_end_to_end_row_trains_the_same_problem_in_devgrad_and_pytorch(torch, capsys):
    from devgrad.bench import end_to_end

    row = end_to_end.e2e("tiny", "cpu", torch)
    for side in ("devgrad", "pytorch"):
        assert row[side]["seconds"] > 0 and row[side]["first_seconds"] > 0
        assert 0.3 < row[side]["test_accuracy"] <= 1.0  # 10 classes (chance 0.1): both learned
    assert row["ratio_vs_pytorch"] == row["devgrad"]["seconds"] / row["pytorch"]["seconds"]
    assert "devgrad / PyTorch" in end_to_end.format_e2e(row)


_CKPT_SPEC = {"name": "ckpt_bench", "seed": 0, "data": {"source": "spirals", "n_samples": 300, "n_classes": 3},
              "model": {"hidden": [8]}, "optimizer": {"name": "adam", "lr": 0.01},
              "train": {"epochs": 4, "batch_size": 64}}


def test_checkpoint_bench_variants_do_what_they_say():
    """default: the policy (one write of each file, at the end of a short run), timed on the
    training thread; without: nothing kept or written; every epoch: last.npz after each epoch.
    The bench's stand-ins are gone afterwards."""
    from devgrad.bench import checkpoint_bench as cb
    from devgrad.experiment import checkpoint as ckpt
    from devgrad.experiment.trainer import Trainer

    before = (ckpt.Checkpointer, Trainer.snapshot, ckpt.Checkpointer._write, ckpt.Checkpointer.flush)
    default = cb.run_variant(_CKPT_SPEC, "default")
    assert default["status"] == "completed" and default["epochs"] == 4
    assert default["files"] == ["best.npz", "last.npz"] and default["writes"] == {"last.npz": 1, "best.npz": 1}
    assert 0 < default["checkpoint_seconds"] < default["wall_seconds"]
    without = cb.run_variant(_CKPT_SPEC, "without")
    assert without["status"] == "completed" and without["files"] == [] and without["writes"] == {}
    assert without["checkpoint_seconds"] == 0
    every = cb.run_variant(_CKPT_SPEC, "every_epoch")
    assert every["writes"]["last.npz"] == 4 and "last.npz" in every["files"]
    assert (ckpt.Checkpointer, Trainer.snapshot, ckpt.Checkpointer._write, ckpt.Checkpointer.flush) == before


def test_checkpoint_bench_rows_and_table(monkeypatch):
    from devgrad.bench import checkpoint_bench as cb

    monkeypatch.setattr(cb, "_have_sklearn", lambda: False)
    rows = cb.checkpoint_bench({"tiny": _CKPT_SPEC, "wine": cb.SPECS["wine"]}, rounds=2)
    row = rows[0]
    assert row["spec"] == "tiny" and row["rounds"] == 2 and row["status"] == ["completed"]
    assert row["default_ratio"] == pytest.approx(row["default_seconds"] / row["without_seconds"], rel=1e-2)
    lo, hi = row["default_ratio_range"]
    assert lo <= hi and 0 < row["default_training_thread_share"] < 1
    assert row["every_epoch_writes"]["last.npz"] == 4 and row["default_writes"] == {"last.npz": 1, "best.npz": 1}
    assert rows[1] == {"spec": "wine", "skipped": cb.SKLEARN_NEEDED}
    table = cb.format_checkpoints(rows)
    assert "tiny" in table and "wine     skipped: needs scikit-learn" in table


def test_cli_bench_checkpoints(monkeypatch, tmp_path, capsys):
    from devgrad.bench import checkpoint_bench as cb
    from devgrad.cli import main

    monkeypatch.setattr(cb, "SPECS", {"tiny": _CKPT_SPEC})
    out = tmp_path / "ckpt.json"
    assert main(["bench", "--checkpoints", "--repeat", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr()
    assert "default/without" in printed.out and "devgrad bench: timing tiny: 3 variants x 1 rounds" in printed.err
    assert json.loads(out.read_text())["checkpoints"][0]["spec"] == "tiny"
    assert main(["bench", "--checkpoints", "--repeat", "0"]) == 2
    assert "--repeat 0: give a positive number" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # one thing to time instead of the step table
        main(["bench", "--checkpoints", "--sweep"])
    assert exited.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_sweep_bench_row_and_table(monkeypatch):
    """bench --sweep: the same grid as one sweep with 1 and 2 workers (a tiny one here)."""
    from devgrad.bench import sweep_bench as sb

    monkeypatch.setattr(sb, "SPEC", {**_CKPT_SPEC, "train": {"epochs": 2, "batch_size": 64}})
    monkeypatch.setattr(sb, "GRID", {"optimizer.lr": [0.01]})
    monkeypatch.setattr(sb, "SEEDS", 2)
    monkeypatch.setattr(sb, "_have_dask", lambda: False)
    said = []
    rows = sb.sweep_bench(say=said.append)
    assert said == [f"timing the sweep on the local executor with {jobs} worker(s)" for jobs in (1, 2)]
    local, dask = rows
    assert local["executor"] == "local" and local["runs"] == 2
    assert local["status_1"] == local["status_2"] == "completed"
    assert local["speedup"] == round(local["wall_1"] / local["wall_2"], 2) and local["run_1"] > 0
    assert dask == {"executor": "dask", "skipped": "Dask distributed is not installed (the dask extra)"}
    table = sb.format_sweep(rows)
    assert "dask      skipped: Dask distributed is not installed" in table and "local" in table


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


def test_gpu_check_reports_the_tests_that_ran_when_the_suite_runs_out_of_time(tmp_path):
    """A suite that outlives its limit gets Ctrl-C, not SIGKILL: pytest still prints its counts
    and failures so far, and the summary shows them (a killed pytest would print nothing)."""
    _, summary = _gpu_check_on_a_small_suite(tmp_path, "    time.sleep(120)\n", GPU_CHECK_TEST_SECONDS="10")
    assert "1 failed, 1 passed" in summary and "pytest exit 124" in summary, summary


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


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_the_captured_cpu_step_replays_bit_for_bit(name):
    """On the CPU the bench's captured column is CapturedStep's recorded plan: after one eager and
    one recorded step, its replays give exactly the eager step's weights."""
    report = bench.check_graph_replay(bench.CONFIGS[name], dg.device("cpu"))
    assert report == {"replays": 3, "weights_rel_err": 0.0, "ok": True}

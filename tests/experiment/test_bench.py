"""devgrad bench: the references compute what devgrad computes (correctness, not speed)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import devgrad as dg
from devgrad import bench
from devgrad.bench import timing as bench_timing
from tests.support.run_helpers import ROOT


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


@pytest.mark.slow
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
    assert row["unavailable"]["jax"] == (
        "JAX is not installed (run your pip install again from the devgrad folder with bench added to its list of "
        "extras, e.g. pip install -e '.[test,bench]' (or pip install jax))")
    assert results["jax"] is None
    table = bench.format_table(results)
    assert "tiny: jax not measured: JAX is not installed" in table and ", jax not installed;" in table
    # PyTorch is left out on request, which the table says as such (installed or not)
    assert row["unavailable"]["pytorch"] == "--no-torch was given" and "torch not measured (--no-torch)" in table


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
    assert row["graph_ratio_vs_jax"] == 3.0


def test_table_shows_the_captured_step_against_jax():
    row = _timed_row(devgrad=3.0, handwritten=2.0, tight=1.0, devgrad_graph=1.5, jax=0.5)
    bench._ratios(row)
    results = {"device_description": "cpu", "numpy": "x", "torch": None, "matmul_peak_gflops": 100.0,
               "configs": [row]}
    head, _, cells = bench.format_table(results).splitlines()[1:4]
    columns = [h.strip() for h in head.split("  ") if h.strip()]
    values = cells.replace(" ±", "±").split()  # devgrad's cell is "median ±iqr"
    assert dict(zip(columns, values))["captured vs jax"] == "3.00×"
    assert "jax: its calls return before the step has run" in bench.format_table(results)


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


@pytest.mark.slow
def test_end_to_end_row_trains_the_same_problem_in_devgrad_and_pytorch(torch, capsys, monkeypatch):
    from devgrad.bench import end_to_end

    spec_for = end_to_end.spec_for  # the row is checked, not the runs' pictures (seconds of drawing)
    monkeypatch.setattr(end_to_end, "spec_for", lambda size, device: {**spec_for(size, device),
                                                                      "plots": {"enabled": False}})
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


@pytest.mark.slow
def test_sweep_bench_row_and_table(monkeypatch):
    """bench --sweep: the same grid as one sweep with 1 and 2 workers (a tiny one here)."""
    from devgrad.bench import sweep_bench as sb

    monkeypatch.setattr(sb, "SPEC", {**_CKPT_SPEC, "train": {"epochs": 2, "batch_size": 64},
                                     "plots": {"enabled": False}})  # the row is checked, not the runs' pictures
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


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_the_captured_cpu_step_replays_bit_for_bit(name):
    """On the CPU the bench's captured column is CapturedStep's recorded plan: after one eager and
    one recorded step, its replays give exactly the eager step's weights."""
    report = bench.check_graph_replay(bench.CONFIGS[name], dg.device("cpu"))
    assert report == {"replays": 3, "weights_rel_err": 0.0, "ok": True}


def test_the_tracking_bench_interleaves_pairs_after_a_warm_up_and_takes_medians(monkeypatch, tmp_path):
    """Untracked and tracked runs of one spec alternate their order pair by pair, a warm-up pair is
    not counted, and the overhead is the median of the pairs' ratios (no run is timed here)."""
    from types import SimpleNamespace

    from devgrad.bench import search_bench as sb

    order, walls = [], iter([9.0, 9.0, 1.1, 1.0, 1.2, 1.3, 1.0, 1.02])  # warm-up pair, then three pairs

    def fake_run(spec, out, quiet):
        order.append("tracking" in spec)
        return SimpleNamespace(summary={"wall_seconds": next(walls)})

    monkeypatch.setattr(sb, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    row = sb.tracking_overhead(rounds=3)
    assert order == [False, True, True, False, False, True, True, False]
    # pairs (off, on): (1.0, 1.1), (1.2, 1.3), (1.02, 1.0): ratios 1.1, 1.083, 0.980
    assert row["overhead_percent"] == 8.3 and (row["ratio_low"], row["ratio_high"]) == (0.98, 1.1)
    epochs = sb.SPIRALS["train"]["epochs"]
    assert row["per_epoch_off"] == round(1.02 / epochs, 4) and row["per_epoch_on"] == round(1.1 / epochs, 4)
    assert "3 interleaved pairs" in sb.format_tracking([row])

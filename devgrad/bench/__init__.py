"""``devgrad bench``: one MLP training step in devgrad vs hand-written NumPy/CuPy vs PyTorch.

Every implementation trains the same network from the same weights on the same batch
(forward, loss, backward, SGD update). Before timing, the references' loss and gradients
are checked against a float64 truth, so the race is fair. Times are medians of repeated
blocks of steps (synchronised on the GPU), with the spread as the interquartile range.
devgrad's step captured by ``CapturedStep`` (a CUDA graph on a GPU, racing PyTorch's CUDA
graph; a recorded plan of NumPy calls on the CPU, racing the tight hand-written step) is a
column of its own. A column that cannot be measured here (no PyTorch, a capture that failed)
is reported as unavailable, with the reason, and the rest is timed.

The package: ``references`` (the implementations), ``timing`` (how they are timed),
``report`` (the table and JSON); this module checks and measures.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
import warnings
from typing import Any

import numpy as np

from devgrad.backend import device as resolve_device
from devgrad.bench.end_to_end import e2e, format_e2e
from devgrad.bench.peers import JAX_NEEDED, JaxStep, TorchCompiledStep, import_jax
from devgrad.bench.references import (
    CONFIGS, LR, Config, DevgradStep, HandWritten, TorchGraphStep, TorchStep, bias_of, initial)
from devgrad.bench.report import format_markdown, format_table, write_json, write_markdown
from devgrad.bench.tight import TightHandWritten
from devgrad.bench.timing import stats, time_calls, time_in_rounds, time_interleaved
from devgrad.capture import CapturedStep
from devgrad.core import tensor
from devgrad.version import __version__, extra_hint

__all__ = [
    "CONFIGS", "LR", "BenchError", "Config", "DevgradStep", "HandWritten", "JaxStep", "TightHandWritten",
    "TorchCompiledStep", "TorchGraphStep", "TorchStep", "bench_config", "check_agreement", "check_graph_replay", "e2e",
    "format_e2e", "format_markdown", "format_table", "import_jax", "import_torch", "initial", "matmul_peak_gflops",
    "op_overhead", "run", "time_in_rounds", "write_json", "write_markdown",
]


class BenchError(RuntimeError):
    """devgrad or the hand-written reference computed a wrong step: timing it would be meaningless."""


def matmul_peak_gflops(dev, n: int = 2048, repeat: int = 5, rounds: int = 3, pause_s: float = 0.2) -> float:
    """The float32 matmul rate of this device through its GEMM seam (the roofline for medium/large):
    the best of ``rounds`` measurements, each the fastest of ``repeat`` products. On a shared
    machine one measurement can land in a slow moment; the best is the closest to the peak."""
    rng = np.random.default_rng(0)
    a = dev.put(rng.standard_normal((n, n)).astype(np.float32))
    b = dev.put(rng.standard_normal((n, n)).astype(np.float32))
    best = float("inf")
    for _ in range(rounds):
        time.sleep(pause_s)
        best = min(best, *time_calls(lambda: dev.matmul(a, b), dev.synchronize, repeat, 0.2))
    return 2 * n**3 / best / 1e9


def check_agreement(config: Config, dev, torch=None, torch_device: str = "cpu", jax=None) -> dict:
    """Loss and gradients of each implementation vs the float64 hand-written truth.

    devgrad and the hand-written float32 steps must agree with it (``ok``); PyTorch's and
    JAX's errors are reported too, with ``ok`` judged on the loss only: on some CPUs their
    float32 weight gradients are measurably less accurate than a plain NumPy matmul.
    """
    weights, X, y = initial(config)
    truth = HandWritten(config, [(w.astype(np.float64), b.astype(np.float64)) for w, b in weights], np)
    t_loss, t_grads = truth.step(X.astype(np.float64), y, update=False)
    ours = DevgradStep(config, weights, dev)
    loss = ours.step(tensor(X, device=dev), tensor(y, device=dev), update=False)
    ours_grads = [(lin.weight.grad.numpy(), bias_of(lin).grad.numpy()) for lin in ours.model.linears]
    hand = HandWritten(config, weights, dev.xp)
    h_loss, h_grads = hand.step(dev.put(X), dev.put(y), update=False)
    report = {"devgrad": _compare(loss.item(), float(t_loss), ours_grads, t_grads),
              "handwritten": _compare(float(h_loss), float(t_loss),
                                      [(dev.to_host(w), dev.to_host(b)) for w, b in h_grads], t_grads)}
    if dev.is_host:
        tight = TightHandWritten(config, weights, config.batch)
        tight_loss = tight.step(X, y, update=False)
        report["tight"] = _compare(float(tight_loss), float(t_loss), list(zip(tight.dW, tight.db)), t_grads)
    if torch is not None:
        ts = TorchStep(torch, config, weights, torch_device)
        p_loss = ts.step(torch.from_numpy(X).to(torch_device), torch.from_numpy(y).to(torch_device), update=False)
        p_grads = [(m.weight.grad.cpu().numpy(), m.bias.grad.cpu().numpy())
                   for m in ts.model if isinstance(m, torch.nn.Linear)]
        report["pytorch"] = _compare(p_loss.item(), float(t_loss), p_grads, t_grads)
        report["pytorch"]["ok"] = report["pytorch"]["loss_rel_err"] < 1e-4
    if jax is not None and dev.is_host:
        j_loss, j_grads = JaxStep(jax, config, weights, X, y).loss_and_grads()
        report["jax"] = _compare(j_loss, float(t_loss), j_grads, t_grads)
        report["jax"]["ok"] = report["jax"]["loss_rel_err"] < 1e-4
    return report


def check_graph_replay(config: Config, dev, steps: int = 5) -> dict:
    """Weights after ``steps`` updates through CapturedStep (one eager step, then replays of the
    captured graph; on the CPU one eager step, one recorded as it runs, then replays of the plan)
    vs the same steps run eagerly: the replays must do exactly the same work (on the CPU, bit for
    bit). ``ok`` False comes with ``why``."""
    weights, X, y = initial(config)
    Xd, yd = tensor(X, device=dev), tensor(y, device=dev)
    eager = DevgradStep(config, weights, dev, capturable=dev.is_host)  # the CPU: the very same optimizer
    graphed = DevgradStep(config, weights, dev, capturable=True)
    step = CapturedStep(graphed.step, dev, optimizer=graphed.opt)
    with warnings.catch_warnings():  # a failed capture is reported below, with its reason
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(steps):
            eager.step(Xd, yd)
            step(Xd, yd)
    worst = 0.0
    for (we, be), (wg, bg) in zip(eager.weights(), graphed.weights()):
        for a, b in ((we, wg), (be, bg)):
            worst = max(worst, float(np.abs(a - b).max()) / max(float(np.abs(a).max()), 1e-12))
    expected = steps - (2 if dev.is_host else 1)
    tolerance = 0.0 if dev.is_host else 1e-5
    report: dict[str, Any] = {"replays": step.replays, "weights_rel_err": worst,
              "ok": bool(worst <= tolerance and step.replays == expected)}
    if step.replays != expected:
        report["why"] = f"capturing the step failed ({step.failure})"
    elif not report["ok"]:
        report["why"] = f"replayed steps give weights {worst:.2e} (relative) away from eager steps"
    return report


def _compare(loss, true_loss, grads, true_grads) -> dict:
    worst = 0.0
    for (wa, ba), (wb, bb) in zip(grads, true_grads):
        for ga, gb in ((wa, wb), (ba, bb)):
            scale = max(float(np.abs(gb).max()), 1e-12)
            worst = max(worst, float(np.abs(ga - gb).max()) / scale)
    loss_err = abs(loss - true_loss) / max(abs(true_loss), 1e-12)
    return {"loss_rel_err": loss_err, "grad_rel_err": worst, "ok": bool(loss_err < 1e-4 and worst < 1e-3)}


def bench_config(config: Config, dev, repeat: int, torch=None, min_block_s: float = 0.05, *, jax=None,
                 torch_compile: bool = False, pause_s: float = 0.2, jax_off: str | None = None,
                 torch_off: bool = False) -> dict:
    """Check, then time, one config on ``dev``: a JSON-ready dict (see ``run``). ``jax_off``: why
    the JAX column was not asked for (its note), when it was not; ``torch_off``: PyTorch's was not."""
    weights, X, y = initial(config)
    sync = dev.synchronize
    agreement = check_agreement(config, dev, torch, dev.name, jax)
    result = {"config": config.name, "sizes": list(config.sizes), "batch": config.batch, "agreement": agreement}
    if jax_off:
        result["jax_off"] = jax_off
    unavailable = result["unavailable"] = {"pytorch": "--no-torch was given"} if torch_off else {}
    wrong = {k: v for k, v in agreement.items() if k in ("devgrad", "handwritten", "tight") and not v["ok"]}
    if wrong:
        raise BenchError(f"bench {config.name}: {' and '.join(wrong)} disagree with the float64 truth: {wrong}")
    for peer in ("pytorch", "jax"):
        if peer in agreement and not agreement[peer]["ok"]:
            unavailable[peer] = f"its loss is {agreement[peer]['loss_rel_err']:.2e} (relative) off the truth"
    if "pytorch" in unavailable:
        torch = None
    agreement["devgrad_graph"] = check_graph_replay(config, dev)
    if not agreement["devgrad_graph"]["ok"]:
        unavailable["devgrad_graph"] = agreement["devgrad_graph"]["why"]

    ours = DevgradStep(config, weights, dev)
    Xd, yd = tensor(X, device=dev), tensor(y, device=dev)
    ours.step(Xd, yd)  # the first step creates the optimizer's state; the count is a steady one's
    _count_launches(ours, Xd, yd, dev, result)
    hand = HandWritten(config, weights, dev.xp)
    Xh, yh = dev.put(X), dev.put(y)
    impls = {"devgrad": (lambda: ours.step(Xd, yd), sync), "handwritten": (lambda: hand.step(Xh, yh), sync)}
    if dev.is_host:
        tight = TightHandWritten(config, weights, config.batch)
        impls["tight"] = (lambda: tight.step(X, y), sync)
    else:
        unavailable["tight"] = "the tight reference is written for NumPy (the CPU)"
    replay = None
    if "devgrad_graph" not in unavailable:  # the same step, replayed (a CUDA graph; a NumPy plan on the CPU)
        graphed = DevgradStep(config, weights, dev, capturable=True)
        replay = CapturedStep(graphed.step, dev, optimizer=graphed.opt)
        impls["devgrad_graph"] = (lambda: replay(Xd, yd), sync)
    theirs = _peer_impls(torch, jax, torch_compile, config, weights, X, y, dev, result)
    # no pause asked for (a quick look, the tests): no settling between phases either
    samples = time_in_rounds(impls, theirs, repeat, min_block_s, settle_s=0.3 if pause_s else 0.0, pause_s=pause_s)
    impls.update(theirs)
    if replay is not None and replay.replays == 0:
        unavailable["devgrad_graph"] = f"capturing the step failed ({replay.failure})"
        del impls["devgrad_graph"]
    for name, (fn, _) in impls.items():
        entry = stats(samples[name])
        entry["gflops"] = config.flops() / (entry["median_ms"] / 1e3) / 1e9
        # PyTorch's and JAX's allocations are invisible here; a replayed graph allocates nothing (its
        # memory was set aside once, at capture)
        entry["peak_step_bytes"] = dev.peak_bytes(fn) if name in ("devgrad", "handwritten", "tight") else None
        result[name] = entry
    _ratios(result)
    return result


def _count_launches(ours, Xd, yd, dev, result: dict) -> None:
    """On a GPU: what one eager step launches (devgrad's kernels, cuBLAS GEMMs) and the host's
    time to issue it, into ``result``; nothing on the CPU (no launch counts)."""
    before = dev.kernels.launch_counts()
    if before is not None:
        ours.step(Xd, yd)
        after = dev.kernels.launch_counts()
        result["launches_per_step"] = {k: after[k] - before[k] for k in after}
        result["host_ms_per_step"] = _host_ms_per_step(lambda: ours.step(Xd, yd), dev.synchronize)


def _host_ms_per_step(step, sync, steps: int = 20, rounds: int = 5) -> float:
    """The host's time to issue one step (ms): ``steps`` steps queued back to back, timed without
    waiting for the GPU (its queue holds them), best of ``rounds``. Beside the step's time it says
    whether a step is bound by the host's Python (about equal) or by the GPU (much smaller)."""
    best = float("inf")
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps)
        sync()
    return best * 1e3


def _peer_impls(torch, jax, torch_compile: bool, config, weights, X, y, dev, result: dict) -> dict:
    """The peers timed in phases of their own (they run their own thread pools): PyTorch eager, on a
    GPU its CUDA graph, ``torch.compile`` when asked for, and JAX ``jit`` on the CPU. A peer that
    cannot run here is recorded in ``result["unavailable"]`` with the reason; compile times go
    in ``result["compile_s"]``."""
    unavailable = result["unavailable"]
    compile_s = result["compile_s"] = {}
    theirs = {}
    if torch is not None:
        theirs.update(_torch_impls(torch, config, weights, X, y, dev, unavailable))
        if torch_compile:
            tdev = dev.name
            Xt, yt = torch.from_numpy(X).to(tdev), torch.from_numpy(y).to(tdev)
            try:
                compiled = TorchCompiledStep(torch, config, weights, tdev, Xt, yt)
            except Exception as exc:  # whatever inductor raises (no compiler, ...): reported, not fatal
                unavailable["torch_compile"] = f"torch.compile failed: {type(exc).__name__}: {str(exc)[:200]}"
            else:
                compile_s["torch_compile"] = compiled.compile_s
                sync = torch.cuda.synchronize if dev.supports_graphs else (lambda: None)
                theirs["torch_compile"] = (lambda: compiled.step(Xt, yt), sync)
    elif "pytorch" not in unavailable:
        unavailable["pytorch"] = f"PyTorch is not installed ({extra_hint('bench', 'torch')})"
    if not dev.is_host:
        unavailable["jax"] = "the JAX column runs on the CPU only"
    elif jax is None:
        unavailable["jax"] = result.pop("jax_off", None) or JAX_NEEDED
    elif "jax" not in unavailable:
        step = JaxStep(jax, config, weights, X, y)
        compile_s["jax"] = step.compile_s
        theirs["jax"] = (step.step, step.sync)
    return theirs


def _torch_impls(torch, config, weights, X, y, dev, unavailable: dict) -> dict:
    """PyTorch's eager step, and on a GPU its CUDA-graph step (or why it is unavailable)."""
    tdev = dev.name  # torch spells devices the same way
    Xt, yt = torch.from_numpy(X).to(tdev), torch.from_numpy(y).to(tdev)
    sync = torch.cuda.synchronize if dev.supports_graphs else (lambda: None)
    eager = TorchStep(torch, config, weights, tdev)
    theirs = {"pytorch": (lambda: eager.step(Xt, yt), sync)}
    if dev.supports_graphs:
        try:
            graphed = TorchGraphStep(torch, config, weights, tdev, Xt, yt)
        except Exception as exc:  # whatever PyTorch raises: the column is reported, not fatal
            unavailable["pytorch_graph"] = f"PyTorch could not capture its step: {type(exc).__name__}: {exc}"
        else:
            theirs["pytorch_graph"] = (lambda: graphed.step(Xt, yt), sync)
    return theirs


def _ratios(result: dict) -> None:
    """Each column's time over devgrad's, PyTorch's and the tight hand step's (as measured)."""
    base = result["devgrad"]["median_ms"]
    result["ratio_vs_handwritten"] = base / result["handwritten"]["median_ms"]
    if "pytorch" in result:
        result["ratio_vs_pytorch"] = base / result["pytorch"]["median_ms"]
    if "tight" in result:
        tight = result["tight"]["median_ms"]
        result["vs_tight"] = {name: result[name]["median_ms"] / tight
                              for name in ("devgrad", "devgrad_graph", "handwritten", "jax", "pytorch", "torch_compile")
                              if name in result}
    if "devgrad_graph" in result:
        graph = result["devgrad_graph"]["median_ms"]
        result["graph_ratio_vs_handwritten"] = graph / result["handwritten"]["median_ms"]
        if "pytorch" in result:
            result["graph_ratio_vs_pytorch"] = graph / result["pytorch"]["median_ms"]
        if "pytorch_graph" in result:
            result["graph_ratio_vs_pytorch_graph"] = graph / result["pytorch_graph"]["median_ms"]
        if "jax" in result:
            result["graph_ratio_vs_jax"] = graph / result["jax"]["median_ms"]


def run(device="cpu", configs=("tiny", "small", "medium", "large"), repeat: int = 15,
        use_torch: bool = True, min_block_s: float = 0.05, *, use_jax: bool = True, torch_compile: bool = False,
        pause_s: float = 0.2) -> dict:
    """Benchmark the chosen configs on ``device``; returns a JSON-ready dict.

    ``pause_s`` is the sleep before each timed block (see ``time_interleaved``). The matmul
    peak is measured before and after the configs, the best kept; should a step still outrun
    it (a peak measured in a busy moment), the fastest rate seen becomes the peak, and
    ``peak_note`` says so: no column is ever shown above 100% of the peak.
    """
    dev = resolve_device(device)
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown bench config(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    torch = import_torch() if use_torch else None
    jax = import_jax() if use_jax else None
    peak = matmul_peak_gflops(dev, pause_s=pause_s)
    results = {
        "device": dev.name, "device_description": dev.description(), "devgrad": __version__,
        "numpy": np.__version__, "torch": getattr(torch, "__version__", None),
        "jax": getattr(jax, "__version__", None), "skipped": [k for k, on in (("torch", use_torch), ("jax", use_jax))
                                                              if not on],
        "python": platform.python_version(),
        "machine": platform.machine(), "cpus": os.cpu_count(), "load_average": _load_average(),
        "date": time.strftime("%Y-%m-%d"), "pause_s": pause_s, "configs": [],
        "thread_settings": {k: os.environ[k] for k in _THREAD_VARIABLES if k in os.environ},
    }
    for name in configs:
        results["configs"].append(bench_config(CONFIGS[name], dev, repeat, torch, min_block_s, jax=jax,
                                               torch_compile=torch_compile, pause_s=pause_s,
                                               jax_off=None if use_jax else "--no-jax was given",
                                               torch_off=not use_torch))
    peak = max(peak, matmul_peak_gflops(dev, pause_s=pause_s))
    fastest = max((r[k]["gflops"] for r in results["configs"] for k in TIMED if k in r), default=0.0)
    if fastest > peak:
        results["peak_note"] = (f"a step ran at {fastest:.1f} GFLOP/s, faster than the {peak:.1f} GFLOP/s measured "
                                "for the matmul peak (measured in a busier moment): the peak shown is that step's rate")
        peak = fastest
    results["matmul_peak_gflops"] = peak
    results["load_average_after"] = _load_average()
    return results


_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
TIMED = ("devgrad", "devgrad_graph", "handwritten", "tight", "pytorch", "pytorch_graph", "torch_compile", "jax")


def _load_average() -> list | None:
    """The machine's 1, 5 and 15 minute load averages (others' work competes with the bench)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def import_torch():
    try:
        import torch  # noqa: PLC0415 - optional: the PyTorch columns
    except ImportError:
        return None
    return torch


def op_overhead(device="cpu", repeat: int = 15) -> dict:
    """Per-op overhead: ``(a * b + c).sum().backward()`` on 2×2 float32 tensors vs the same
    arithmetic (forward and hand-written backward) in NumPy/CuPy."""
    dev = resolve_device(device)
    xp = dev.xp
    host = np.ones((2, 2), dtype=np.float32)
    a, b, c = (tensor(host, requires_grad=True, device=dev) for _ in range(3))
    an, bn, cn = a.data, b.data, c.data

    def ours():
        a.grad = b.grad = c.grad = None
        (a * b + c).sum().backward()

    def by_hand():
        (an * bn + cn).sum()
        ones = xp.ones((2, 2), dtype=np.float32)
        return ones * bn, ones * an, ones.copy()

    samples = time_interleaved({"devgrad": (ours, dev.synchronize), "handwritten": (by_hand, dev.synchronize)},
                                repeat, 0.05)
    dg_ms, hand_ms = (statistics.median(samples[k]) * 1e3 for k in ("devgrad", "handwritten"))
    return {"device": dev.name, "devgrad_us": dg_ms * 1e3, "handwritten_us": hand_ms * 1e3,
            "ratio": dg_ms / hand_ms}

"""``devgrad bench``: one MLP training step in devgrad vs hand-written NumPy/CuPy vs PyTorch.

Every implementation trains the same network from the same weights on the same batch
(forward, loss, backward, SGD update). Before timing, the references' loss and gradients
are checked against a float64 truth, so the race is fair. Times are medians of repeated
blocks of steps (synchronised on the GPU), with the spread as the interquartile range.
On a GPU, devgrad's step captured into a CUDA graph (``CapturedStep``) races PyTorch's
CUDA graph. A column that cannot be measured here (no PyTorch, a capture that failed) is
reported as unavailable, with the reason, and the rest is timed.

The package: ``references`` (the implementations), ``timing`` (how they are timed),
``report`` (the table and JSON); this module checks and measures.
"""

from __future__ import annotations

import platform
import statistics
import time
import warnings

import numpy as np

from devgrad.backend import device as resolve_device
from devgrad.bench.end_to_end import e2e, format_e2e
from devgrad.bench.references import CONFIGS, LR, Config, DevgradStep, HandWritten, TorchGraphStep, TorchStep, initial
from devgrad.bench.report import format_table, write_json
from devgrad.bench.timing import stats, time_calls, time_in_rounds, time_interleaved
from devgrad.capture import CapturedStep
from devgrad.core import tensor
from devgrad.version import __version__

__all__ = [
    "CONFIGS", "LR", "BenchError", "Config", "DevgradStep", "HandWritten", "TorchGraphStep", "TorchStep",
    "bench_config", "check_agreement", "check_graph_replay", "e2e", "format_e2e", "format_table", "import_torch",
    "initial", "matmul_peak_gflops", "op_overhead", "run", "time_in_rounds", "write_json",
]


class BenchError(RuntimeError):
    """devgrad or the hand-written reference computed a wrong step: timing it would be meaningless."""


def matmul_peak_gflops(dev, n: int = 2048, repeat: int = 5) -> float:
    """The float32 matmul rate of this device through its GEMM seam (the roofline for medium/large)."""
    rng = np.random.default_rng(0)
    a = dev.put(rng.standard_normal((n, n)).astype(np.float32))
    b = dev.put(rng.standard_normal((n, n)).astype(np.float32))
    samples = time_calls(lambda: dev.matmul(a, b), dev.synchronize, repeat, 0.2)
    return 2 * n**3 / min(samples) / 1e9


def check_agreement(config: Config, dev, torch=None, torch_device: str = "cpu") -> dict:
    """Loss and gradients of each implementation vs the float64 hand-written truth.

    devgrad and the hand-written float32 step must agree with it (``ok``); PyTorch's
    errors are reported too, with ``ok`` judged on the loss only: on some CPUs its
    float32 weight gradients are measurably less accurate than a plain NumPy matmul.
    """
    weights, X, y = initial(config)
    truth = HandWritten(config, [(w.astype(np.float64), b.astype(np.float64)) for w, b in weights], np)
    t_loss, t_grads = truth.step(X.astype(np.float64), y, update=False)
    ours = DevgradStep(config, weights, dev)
    loss = ours.step(tensor(X, device=dev), tensor(y, device=dev), update=False)
    ours_grads = [(lin.weight.grad.numpy(), lin.bias.grad.numpy()) for lin in ours.model.linears]
    hand = HandWritten(config, weights, dev.xp)
    h_loss, h_grads = hand.step(dev.put(X), dev.put(y), update=False)
    report = {"devgrad": _compare(loss.item(), float(t_loss), ours_grads, t_grads),
              "handwritten": _compare(float(h_loss), float(t_loss),
                                      [(dev.to_host(w), dev.to_host(b)) for w, b in h_grads], t_grads)}
    if torch is not None:
        ts = TorchStep(torch, config, weights, torch_device)
        p_loss = ts.step(torch.from_numpy(X).to(torch_device), torch.from_numpy(y).to(torch_device), update=False)
        p_grads = [(m.weight.grad.cpu().numpy(), m.bias.grad.cpu().numpy())
                   for m in ts.model if isinstance(m, torch.nn.Linear)]
        report["pytorch"] = _compare(p_loss.item(), float(t_loss), p_grads, t_grads)
        report["pytorch"]["ok"] = report["pytorch"]["loss_rel_err"] < 1e-4
    return report


def check_graph_replay(config: Config, dev, steps: int = 4) -> dict:
    """Weights after ``steps`` updates through CapturedStep (one eager step, then replays of the
    captured graph) vs the same steps run eagerly: the graph must do exactly the same work.
    ``ok`` False comes with ``why``."""
    weights, X, y = initial(config)
    Xd, yd = tensor(X, device=dev), tensor(y, device=dev)
    eager = DevgradStep(config, weights, dev)
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
    report = {"replays": step.replays, "weights_rel_err": worst,
              "ok": bool(worst < 1e-5 and step.replays == steps - 1)}
    if step.replays != steps - 1:
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


def bench_config(config: Config, dev, repeat: int, torch=None, min_block_s: float = 0.05) -> dict:
    """Check, then time, one config on ``dev``: a JSON-ready dict (see ``run``)."""
    weights, X, y = initial(config)
    sync = dev.synchronize
    agreement = check_agreement(config, dev, torch, dev.name)
    result = {"config": config.name, "sizes": list(config.sizes), "batch": config.batch, "agreement": agreement}
    unavailable = result["unavailable"] = {}
    wrong = {k: v for k, v in agreement.items() if k in ("devgrad", "handwritten") and not v["ok"]}
    if wrong:
        raise BenchError(f"bench {config.name}: {' and '.join(wrong)} disagree with the float64 truth: {wrong}")
    if torch is not None and not agreement["pytorch"]["ok"]:
        unavailable["pytorch"] = f"its loss is {agreement['pytorch']['loss_rel_err']:.2e} (relative) off the truth"
        torch = None
    if dev.supports_graphs:
        agreement["devgrad_graph"] = check_graph_replay(config, dev)
        if not agreement["devgrad_graph"]["ok"]:
            unavailable["devgrad_graph"] = agreement["devgrad_graph"]["why"]

    ours = DevgradStep(config, weights, dev)
    Xd, yd = tensor(X, device=dev), tensor(y, device=dev)
    ours.step(Xd, yd)  # the first step creates the optimizer's state; the count is a steady one's
    before = dev.kernels.launch_counts()
    if before is not None:  # a GPU: what one eager step launches (devgrad's kernels, cuBLAS GEMMs)
        ours.step(Xd, yd)
        after = dev.kernels.launch_counts()
        result["launches_per_step"] = {k: after[k] - before[k] for k in after}
        result["host_ms_per_step"] = _host_ms_per_step(lambda: ours.step(Xd, yd), sync)
    hand = HandWritten(config, weights, dev.xp)
    Xh, yh = dev.put(X), dev.put(y)
    impls = {"devgrad": (lambda: ours.step(Xd, yd), sync), "handwritten": (lambda: hand.step(Xh, yh), sync)}
    replay = None
    if dev.supports_graphs and "devgrad_graph" not in unavailable:  # the same step, replayed as a CUDA graph
        graphed = DevgradStep(config, weights, dev, capturable=True)
        replay = CapturedStep(graphed.step, dev, optimizer=graphed.opt)
        impls["devgrad_graph"] = (lambda: replay(Xd, yd), sync)
    if torch is None:
        samples = time_interleaved(impls, repeat, min_block_s)
    else:
        theirs = _torch_impls(torch, config, weights, X, y, dev, unavailable)
        samples = time_in_rounds(impls, theirs, repeat, min_block_s)
        impls.update(theirs)
    if replay is not None and replay.replays == 0:
        unavailable["devgrad_graph"] = f"capturing the step failed ({replay.failure})"
        del impls["devgrad_graph"]
    for name, (fn, _) in impls.items():
        entry = stats(samples[name])
        entry["gflops"] = config.flops() / (entry["median_ms"] / 1e3) / 1e9
        # PyTorch's allocations are invisible here; a replayed graph allocates nothing (its memory
        # was set aside once, at capture)
        entry["peak_step_bytes"] = dev.peak_bytes(fn) if name in ("devgrad", "handwritten") else None
        result[name] = entry
    _ratios(result)
    return result


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
    base = result["devgrad"]["median_ms"]
    result["ratio_vs_handwritten"] = base / result["handwritten"]["median_ms"]
    if "pytorch" in result:
        result["ratio_vs_pytorch"] = base / result["pytorch"]["median_ms"]
    if "devgrad_graph" in result:
        graph = result["devgrad_graph"]["median_ms"]
        result["graph_ratio_vs_handwritten"] = graph / result["handwritten"]["median_ms"]
        if "pytorch" in result:
            result["graph_ratio_vs_pytorch"] = graph / result["pytorch"]["median_ms"]
        if "pytorch_graph" in result:
            result["graph_ratio_vs_pytorch_graph"] = graph / result["pytorch_graph"]["median_ms"]


def run(device="cpu", configs=("tiny", "small", "medium", "large"), repeat: int = 15,
        use_torch: bool = True, min_block_s: float = 0.05) -> dict:
    """Benchmark the chosen configs on ``device``; returns a JSON-ready dict."""
    dev = resolve_device(device)
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown bench config(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    torch = import_torch() if use_torch else None
    results = {
        "device": dev.name, "device_description": dev.description(), "devgrad": __version__,
        "numpy": np.__version__, "torch": getattr(torch, "__version__", None), "python": platform.python_version(),
        "machine": platform.machine(), "date": time.strftime("%Y-%m-%d"),
        "matmul_peak_gflops": matmul_peak_gflops(dev), "configs": [],
    }
    for name in configs:
        results["configs"].append(bench_config(CONFIGS[name], dev, repeat, torch, min_block_s))
    return results


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

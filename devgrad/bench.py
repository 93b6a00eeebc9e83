"""``devgrad bench``: one MLP training step in devgrad vs hand-written NumPy/CuPy vs PyTorch.

Every implementation trains the same network from the same weights on the same batch
(forward, loss, backward, SGD update). Before timing, the references' loss and gradients
are checked against devgrad's, so the race is fair. Times are medians of repeated blocks of
steps (synchronised on the GPU), with the spread as the interquartile range.
"""

from __future__ import annotations

import gc
import json
import platform
import statistics
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import devgrad
from devgrad import nn
from devgrad.backend import device as resolve_device
from devgrad.capture import CapturedStep
from devgrad.nn import functional as F

LR = 0.01


@dataclass(frozen=True)
class Config:
    name: str
    sizes: tuple
    activation: str
    batch: int

    @property
    def binary(self) -> bool:
        return self.sizes[-1] == 1

    def flops(self) -> int:
        """Multiply-adds ×2 of one step: forward, weight gradients, input gradients past layer 1."""
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        per_sample = sum(2 * a * b for a, b in pairs) * 2 + sum(2 * a * b for a, b in pairs[1:])
        return per_sample * self.batch


CONFIGS = {
    "tiny": Config("tiny", (2, 16, 16, 1), "sigmoid", 32),
    "small": Config("small", (64, 128, 128, 10), "relu", 64),
    "medium": Config("medium", (784, 512, 512, 10), "relu", 256),
    "large": Config("large", (784, 2048, 2048, 10), "relu", 1024),
}


# -- the hand-written reference: what people write without a framework ------------------------

class HandWritten:
    """Forward, loss, backward and SGD written out by hand against ``xp`` (NumPy or CuPy)."""

    def __init__(self, config: Config, weights: list, xp):
        self.config = config
        self.xp = xp
        self.W = [xp.asarray(w) for w, _ in weights]
        self.b = [xp.asarray(b) for _, b in weights]

    def _act(self, z):
        xp = self.xp
        if self.config.activation == "relu":
            return xp.maximum(z, 0)
        return 1 / (1 + xp.exp(-z))

    def _act_grad(self, a):
        if self.config.activation == "relu":
            return a > 0
        return a * (1 - a)

    def step(self, X, y, update: bool = True):
        xp = self.xp
        hs = [X]
        h = X
        last = len(self.W) - 1
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            z = h @ W.T + b
            h = z if i == last else self._act(z)
            hs.append(h)
        n = X.shape[0]
        if self.config.binary:
            z = h[:, 0]
            loss = (xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))).mean()
            dz = ((1 / (1 + xp.exp(-z)) - y) / n)[:, None]
        else:
            e = xp.exp(h - h.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            loss = -xp.log(p[xp.arange(n), y]).mean()
            p[xp.arange(n), y] -= 1
            dz = p / n
        grads = []
        for i in range(last, -1, -1):
            dW = dz.T @ hs[i]
            db = dz.sum(axis=0)
            grads.append((dW, db))
            if i > 0:
                dz = (dz @ self.W[i]) * self._act_grad(hs[i])
        grads.reverse()
        if update:
            for W, b, (dW, db) in zip(self.W, self.b, grads):
                xp.subtract(W, LR * dW, out=W)
                xp.subtract(b, LR * db, out=b)
        return loss, grads


# -- devgrad and PyTorch ---------------------------------------------------------------------

class DevgradStep:
    def __init__(self, config: Config, weights: list, device, capturable: bool = False):
        self.config = config
        self.model = nn.MLP(config.sizes, activation=config.activation, device=device)
        for layer, (w, b) in zip(self.model.linears, weights):
            layer.weight.data = device.put(w)
            layer.bias.data = device.put(b)
        self.opt = devgrad.optim.SGD(self.model.parameters(), lr=LR, capturable=capturable)

    def weights(self) -> list:
        return [(lin.weight.numpy(), lin.bias.numpy()) for lin in self.model.linears]

    def step(self, X, y, update: bool = True):
        out = self.model(X)
        if self.config.binary:
            loss = F.binary_cross_entropy_with_logits(out.reshape(-1), y)
        else:
            loss = F.cross_entropy(out, y)
        self.opt.zero_grad()
        loss.backward()
        if update:
            self.opt.step()
        return loss


class TorchStep:
    def __init__(self, torch, config: Config, weights: list, device: str):
        self.torch = torch
        self.config = config
        layers = []
        for i, (w, b) in enumerate(weights):
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if i < len(weights) - 1:
                layers.append(torch.nn.ReLU() if config.activation == "relu" else torch.nn.Sigmoid())
        self.model = torch.nn.Sequential(*layers).to(device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)

    def step(self, X, y, update: bool = True):
        tf = self.torch.nn.functional
        out = self.model(X)
        if self.config.binary:
            loss = tf.binary_cross_entropy_with_logits(out[:, 0], y)
        else:
            loss = tf.cross_entropy(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if update:
            self.opt.step()
        return loss


# -- measurement -----------------------------------------------------------------------------

def _initial(config: Config, seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = []
    for a, b in zip(config.sizes[:-1], config.sizes[1:]):
        bound = 1 / np.sqrt(a)
        weights.append((rng.uniform(-bound, bound, (b, a)).astype(np.float32),
                        rng.uniform(-bound, bound, b).astype(np.float32)))
    X = rng.standard_normal((config.batch, config.sizes[0])).astype(np.float32)
    if config.binary:
        y = (rng.random(config.batch) > 0.5).astype(np.float32)
    else:
        y = rng.integers(0, config.sizes[-1], config.batch).astype(np.int64)
    return weights, X, y


def _calibrate(fn, sync, min_block_s: float) -> int:
    """Warm up, then find how many calls make one block of at least ``min_block_s``."""
    for _ in range(3):
        fn()
    sync()
    inner = 1
    while True:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        if time.perf_counter() - start >= min_block_s or inner >= 1 << 14:
            return inner
        inner *= 2


def _block(fn, sync, inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    sync()
    return (time.perf_counter() - start) / inner


def _time(fn, sync, repeat: int, min_block_s: float) -> list[float]:
    """Seconds per call over ``repeat`` blocks, each long enough to time reliably."""
    inner = _calibrate(fn, sync, min_block_s)
    return [_block(fn, sync, inner) for _ in range(repeat)]


def _time_interleaved(impls: dict, repeat: int, min_block_s: float, inner: dict | None = None) -> dict:
    """Like ``_time`` for several implementations, taking turns block by block.

    On a shared machine the available CPU drifts; interleaving exposes every implementation
    to the same drift, so their ratio stays meaningful even when absolute times wobble.
    ``inner`` (calls per block, by name) is calibrated when not given, and filled in.
    """
    if inner is None:
        inner = {}
    for name, (fn, sync) in impls.items():
        if name not in inner:
            inner[name] = _calibrate(fn, sync, min_block_s)
    samples: dict = {name: [] for name in impls}
    for _ in range(repeat):
        for name, (fn, sync) in impls.items():
            samples[name].append(_block(fn, sync, inner[name]))
    return samples


def _time_in_rounds(ours: dict, theirs: dict, repeat: int, min_block_s: float, rounds: int = 3,
                    settle_s: float = 0.3) -> dict:
    """Time ``ours`` interleaved block by block, and ``theirs`` (PyTorch) in phases of its own,
    alternating over ``rounds`` so a drift of the machine's speed reaches both alike.

    PyTorch runs its own thread pool; interleaved with NumPy's, the two fight for the cores
    (OpenMP workers spin for a while after each op), hence separate phases, each followed
    by a pause that lets the spinning threads go idle.
    """
    inner: dict = {}
    samples: dict = {name: [] for name in (*ours, *theirs)}
    per_round = [repeat // rounds + (1 if i < repeat % rounds else 0) for i in range(rounds)]
    for count in per_round:
        if not count:
            continue
        for group in (ours, theirs):
            for name, values in _time_interleaved(group, count, min_block_s, inner).items():
                samples[name] += values
            time.sleep(settle_s)
    return samples


def _host_peak_bytes(fn) -> int:
    """Extra bytes allocated at the peak of one call (NumPy reports to tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return max(tracemalloc.get_traced_memory()[1] - base, 0)
    finally:
        tracemalloc.stop()


def _gpu_pool_bytes(dev, fn) -> int:
    cp = dev.xp
    pool = cp.get_default_memory_pool()
    dev.synchronize()
    pool.free_all_blocks()
    before = pool.total_bytes()
    fn()
    dev.synchronize()
    return int(pool.total_bytes() - before)


def _stats(samples: list[float]) -> dict:
    q = statistics.quantiles(samples, n=4) if len(samples) >= 2 else [samples[0]] * 3
    return {"median_ms": statistics.median(samples) * 1e3, "iqr_ms": (q[2] - q[0]) * 1e3, "runs": len(samples)}


def matmul_peak_gflops(dev, n: int = 2048, repeat: int = 5) -> float:
    """The float32 matmul rate of this device (the roofline for medium/large)."""
    xp = dev.xp
    rng = np.random.default_rng(0)
    a = dev.put(rng.standard_normal((n, n)).astype(np.float32))
    b = dev.put(rng.standard_normal((n, n)).astype(np.float32))
    out = xp.empty((n, n), dtype=np.float32)
    samples = _time(lambda: xp.matmul(a, b, out=out), dev.synchronize, repeat, 0.2)
    return 2 * n**3 / min(samples) / 1e9


def check_agreement(config: Config, dev, torch=None, torch_device: str = "cpu") -> dict:
    """Loss and gradients of each implementation vs the float64 hand-written truth.

    devgrad and the hand-written float32 step must agree with it (``ok``); PyTorch's
    errors are reported too, with ``ok`` judged on the loss only: on some CPUs its
    float32 weight gradients are measurably less accurate than a plain NumPy matmul.
    """
    weights, X, y = _initial(config)
    truth = HandWritten(config, [(w.astype(np.float64), b.astype(np.float64)) for w, b in weights], np)
    t_loss, t_grads = truth.step(X.astype(np.float64), y, update=False)
    ours = DevgradStep(config, weights, dev)
    loss = ours.step(devgrad.tensor(X, device=dev), devgrad.tensor(y, device=dev), update=False)
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
    captured graph) vs the same steps run eagerly: the graph must do exactly the same work."""
    weights, X, y = _initial(config)
    Xd, yd = devgrad.tensor(X, device=dev), devgrad.tensor(y, device=dev)
    eager = DevgradStep(config, weights, dev)
    graphed = DevgradStep(config, weights, dev, capturable=True)
    step = CapturedStep(graphed.step, dev, optimizer=graphed.opt)
    for _ in range(steps):
        eager.step(Xd, yd)
        step(Xd, yd)
    worst = 0.0
    for (we, be), (wg, bg) in zip(eager.weights(), graphed.weights()):
        for a, b in ((we, wg), (be, bg)):
            worst = max(worst, float(np.abs(a - b).max()) / max(float(np.abs(a).max()), 1e-12))
    return {"replays": step.replays, "weights_rel_err": worst, "ok": bool(worst < 1e-5 and step.replays == steps - 1)}


def _compare(loss, true_loss, grads, true_grads) -> dict:
    worst = 0.0
    for (wa, ba), (wb, bb) in zip(grads, true_grads):
        for ga, gb in ((wa, wb), (ba, bb)):
            scale = max(float(np.abs(gb).max()), 1e-12)
            worst = max(worst, float(np.abs(ga - gb).max()) / scale)
    loss_err = abs(loss - true_loss) / max(abs(true_loss), 1e-12)
    return {"loss_rel_err": loss_err, "grad_rel_err": worst, "ok": bool(loss_err < 1e-4 and worst < 1e-3)}


def bench_config(config: Config, dev, repeat: int, torch=None, min_block_s: float = 0.05) -> dict:
    weights, X, y = _initial(config)
    sync = dev.synchronize
    result = {"config": config.name, "sizes": list(config.sizes), "batch": config.batch,
              "agreement": check_agreement(config, dev, torch, "cuda" if dev.type == "cuda" else "cpu")}
    if dev.supports_graphs:
        result["agreement"]["devgrad_graph"] = check_graph_replay(config, dev)
    if not all(v["ok"] for v in result["agreement"].values()):
        raise RuntimeError(f"bench {config.name}: the implementations disagree: {result['agreement']}")

    ours = DevgradStep(config, weights, dev)
    Xd, yd = devgrad.tensor(X, device=dev), devgrad.tensor(y, device=dev)
    hand = HandWritten(config, weights, dev.xp)
    Xh, yh = dev.put(X), dev.put(y)
    impls = {"devgrad": (lambda: ours.step(Xd, yd), sync), "handwritten": (lambda: hand.step(Xh, yh), sync)}
    if dev.supports_graphs:  # the same step, captured once and replayed as a CUDA graph
        graphed = DevgradStep(config, weights, dev, capturable=True)
        replay = CapturedStep(graphed.step, dev, optimizer=graphed.opt)
        impls["devgrad_graph"] = (lambda: replay(Xd, yd), sync)
    if torch is None:
        samples = _time_interleaved(impls, repeat, min_block_s)
    else:
        tdev = "cuda" if dev.type == "cuda" else "cpu"
        ts = TorchStep(torch, config, weights, tdev)
        Xt, yt = torch.from_numpy(X).to(tdev), torch.from_numpy(y).to(tdev)
        theirs = {"pytorch": (lambda: ts.step(Xt, yt), torch.cuda.synchronize if tdev == "cuda" else (lambda: None))}
        samples = _time_in_rounds(impls, theirs, repeat, min_block_s)
        impls.update(theirs)
    for name, (fn, _) in impls.items():
        stats = _stats(samples[name])
        stats["gflops"] = config.flops() / (stats["median_ms"] / 1e3) / 1e9
        if dev.type == "cpu":
            stats["peak_step_bytes"] = _host_peak_bytes(fn) if name != "pytorch" else None
        else:
            # a replayed graph allocates nothing: its memory was set aside once, at capture
            stats["peak_step_bytes"] = _gpu_pool_bytes(dev, fn) if name in ("devgrad", "handwritten") else None
        result[name] = stats
    base = result["devgrad"]["median_ms"]
    result["ratio_vs_handwritten"] = base / result["handwritten"]["median_ms"]
    if "pytorch" in result:
        result["ratio_vs_pytorch"] = base / result["pytorch"]["median_ms"]
    if "devgrad_graph" in result:
        graph = result["devgrad_graph"]["median_ms"]
        result["graph_ratio_vs_handwritten"] = graph / result["handwritten"]["median_ms"]
        if "pytorch" in result:
            result["graph_ratio_vs_pytorch"] = graph / result["pytorch"]["median_ms"]
    return result


def run(device="cpu", configs=("tiny", "small", "medium", "large"), repeat: int = 15,
        use_torch: bool = True, min_block_s: float = 0.05) -> dict:
    """Benchmark the chosen configs on ``device``; returns a JSON-ready dict."""
    dev = resolve_device(device)
    torch = None
    if use_torch:
        try:
            import torch
        except ImportError:
            torch = None
    if torch is not None and dev.type == "cpu":
        torch.set_num_threads(max(torch.get_num_threads(), 1))
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown bench config(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    results = {
        "device": dev.name, "device_description": dev.description(), "devgrad": devgrad.__version__,
        "numpy": np.__version__, "torch": getattr(torch, "__version__", None), "python": platform.python_version(),
        "machine": platform.machine(), "date": time.strftime("%Y-%m-%d"),
        "matmul_peak_gflops": matmul_peak_gflops(dev), "configs": [],
    }
    for name in configs:
        results["configs"].append(bench_config(CONFIGS[name], dev, repeat, torch, min_block_s))
    return results


def op_overhead(device="cpu", repeat: int = 15) -> dict:
    """Per-op overhead: ``(a * b + c).sum().backward()`` on 2×2 float32 tensors vs the same
    arithmetic (forward and hand-written backward) in NumPy/CuPy."""
    dev = resolve_device(device)
    xp = dev.xp
    host = np.ones((2, 2), dtype=np.float32)
    a, b, c = (devgrad.tensor(host, requires_grad=True, device=dev) for _ in range(3))
    an, bn, cn = a.data, b.data, c.data

    def ours():
        a.grad = b.grad = c.grad = None
        (a * b + c).sum().backward()

    def by_hand():
        (an * bn + cn).sum()
        ones = xp.ones((2, 2), dtype=np.float32)
        return ones * bn, ones * an, ones.copy()

    samples = _time_interleaved({"devgrad": (ours, dev.synchronize), "handwritten": (by_hand, dev.synchronize)},
                                repeat, 0.05)
    dg_ms, hand_ms = (statistics.median(samples[k]) * 1e3 for k in ("devgrad", "handwritten"))
    return {"device": dev.name, "devgrad_us": dg_ms * 1e3, "handwritten_us": hand_ms * 1e3,
            "ratio": dg_ms / hand_ms}


def format_table(results: dict) -> str:
    has_torch = any("pytorch" in r for r in results["configs"])
    has_graph = any("devgrad_graph" in r for r in results["configs"])
    head = ["config", "devgrad ms", "hand ms", "vs hand"]
    if has_torch:
        head += ["torch ms", "vs torch"]
    if has_graph:
        head += ["graph ms"] + (["graph vs torch"] if has_torch else ["graph vs hand"])
    head += ["GFLOP/s", "% peak", "peak MiB dg/hand"]
    rows = [head]
    for r in results["configs"]:
        d, h = r["devgrad"], r["handwritten"]
        row = [r["config"], f"{d['median_ms']:.3f} ±{d['iqr_ms']:.3f}", f"{h['median_ms']:.3f}",
               f"{r['ratio_vs_handwritten']:.2f}×"]
        if has_torch:
            row += ([f"{r['pytorch']['median_ms']:.3f}", f"{r['ratio_vs_pytorch']:.2f}×"] if "pytorch" in r
                    else ["-", "-"])
        if has_graph:
            ratio = r.get("graph_ratio_vs_pytorch" if has_torch else "graph_ratio_vs_handwritten")
            row += ([f"{r['devgrad_graph']['median_ms']:.3f}", f"{ratio:.2f}×" if ratio is not None else "-"]
                    if "devgrad_graph" in r else ["-", "-"])
        row += [f"{d['gflops']:.1f}", f"{100 * d['gflops'] / results['matmul_peak_gflops']:.0f}%"]
        if d.get("peak_step_bytes") is not None:
            row.append(f"{d['peak_step_bytes'] / 2**20:.2f}/{h['peak_step_bytes'] / 2**20:.2f}")
        else:
            row.append("-")
        rows.append(row)
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = [f"devgrad bench on {results['device_description']}, numpy {results['numpy']}, "
             f"torch {results['torch'] or 'not installed'}; float32 matmul peak "
             f"{results['matmul_peak_gflops']:.1f} GFLOP/s"]
    for i, row in enumerate(rows):
        lines.append("  ".join(str(c).rjust(w) if j else str(c).ljust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(results: dict, path) -> None:
    from devgrad.io import atomic_write_text

    atomic_write_text(Path(path), json.dumps(results, indent=2) + "\n")

"""The contestants of ``devgrad bench``: one MLP training step written four ways.

devgrad (eager, and captured into a CUDA graph by the caller), the step written out by hand
against NumPy/CuPy (what people write without a framework), and PyTorch (eager, and as a
CUDA graph on a GPU). All start from the same weights (``initial``) and train on the same
batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devgrad import nn, optim
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
        # copies: every implementation trains arrays of its own, never the caller's or another's
        self.W = [xp.array(w, copy=True) for w, _ in weights]
        self.b = [xp.array(b, copy=True) for _, b in weights]

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

def bias_of(layer: nn.Linear) -> nn.Parameter:
    """A benchmark model's layer's bias (every layer of the benchmarks' MLPs has one)."""
    if layer.bias is None:
        raise ValueError("the benchmarks' layers have biases")
    return layer.bias


class DevgradStep:
    def __init__(self, config: Config, weights: list, device, capturable: bool = False):
        self.config = config
        self.model = nn.MLP(config.sizes, activation=config.activation, device=device)
        for layer, (w, b) in zip(self.model.linears, weights):  # copies: arrays of its own
            layer.weight.data = device.put(w.copy())
            bias_of(layer).data = device.put(b.copy())
        self.opt = optim.SGD(self.model.parameters(), lr=LR, capturable=capturable)

    def weights(self) -> list:
        return [(lin.weight.numpy(), bias_of(lin).numpy()) for lin in self.model.linears]

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


def initial(config: Config, seed: int = 0):
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


class TorchGraphStep:
    """PyTorch's step captured into a CUDA graph the way its documentation shows (warm-up on a
    side stream, then ``torch.cuda.graph``), replayed after copying the batch into static
    inputs: the fair comparison for devgrad's ``CapturedStep``. SGD with a constant lr needs
    no capturable optimizer state."""

    def __init__(self, torch, config: Config, weights: list, device: str, X, y, warmup: int = 3):
        self.torch = torch
        self.eager = TorchStep(torch, config, weights, device)
        self.static_x, self.static_y = X.clone(), y.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                self.eager.step(self.static_x, self.static_y)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        self.eager.opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            out = self.eager.model(self.static_x)
            if config.binary:
                self.loss = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], self.static_y)
            else:
                self.loss = torch.nn.functional.cross_entropy(out, self.static_y)
            self.loss.backward()
            self.eager.opt.step()

    def step(self, X, y):
        self.static_x.copy_(X)
        self.static_y.copy_(y)
        self.graph.replay()
        return self.loss

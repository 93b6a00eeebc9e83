"""The tight hand-written reference of ``devgrad bench``: the step as a careful NumPy programmer
writes it when speed matters.

Every array it needs is allocated once, at construction; every call writes into one of them
(``out=``), so a step allocates nothing but the few bytes of its loss. The weights and biases
are views into one flat parameter vector and the gradients views into one flat gradient vector,
so the SGD update of the whole network is one pass over each (scale the gradients, subtract).
It runs on the host only (NumPy); the bench's other hand-written step covers CuPy.
"""

from __future__ import annotations

import numpy as np

from devgrad.bench.references import LR, Config


class TightHandWritten:
    """Forward, loss, backward and one fused SGD update into preallocated float32 buffers."""

    def __init__(self, config: Config, weights: list, batch: int):
        self.config = config
        sizes = config.sizes
        total = sum(w.size + b.size for w, b in weights)
        self.theta = np.empty(total, dtype=np.float32)  # every weight and bias, one vector
        self.grad = np.empty(total, dtype=np.float32)
        self.W: list[np.ndarray] = []  # views into theta (weights, biases) and grad (their gradients)
        self.b: list[np.ndarray] = []
        self.dW: list[np.ndarray] = []
        self.db: list[np.ndarray] = []
        start = 0
        for w, b in weights:  # copies into the flat vector: arrays of its own
            for src, params, grads in ((w, self.W, self.dW), (b, self.b, self.db)):
                view = self.theta[start:start + src.size].reshape(src.shape)
                view[...] = src
                params.append(view)
                grads.append(self.grad[start:start + src.size].reshape(src.shape))
                start += src.size
        self.H = [np.empty((batch, n), dtype=np.float32) for n in sizes[1:]]  # layer outputs
        self.D = [np.empty((batch, n), dtype=np.float32) for n in sizes[1:]]  # their gradients
        self.T = [np.empty((batch, n), dtype=np.float32) for n in sizes[1:]]  # scratch (activation grads)
        self.rows = np.arange(batch)
        self.col = np.empty((batch, 1), dtype=np.float32)  # per-row scratch (softmax max and sum)

    def _forward(self, X):
        sigmoid = self.config.activation == "sigmoid"
        h = X
        last = len(self.W) - 1
        for i, (W, b, out) in enumerate(zip(self.W, self.b, self.H)):
            np.matmul(h, W.T, out=out)
            out += b
            if i < last:
                if sigmoid:
                    np.negative(out, out=out)
                    np.exp(out, out=out)
                    out += 1
                    np.reciprocal(out, out=out)
                else:
                    np.maximum(out, 0, out=out)
            h = out
        return h

    def _loss(self, h, y):
        """The loss, and its gradient with respect to the logits written into the last D."""
        n = h.shape[0]
        dz, tmp = self.D[-1], self.T[-1]
        if self.config.binary:
            z, t, d = h[:, 0], tmp[:, 0], dz[:, 0]
            np.abs(z, out=t)
            np.negative(t, out=t)
            np.exp(t, out=t)
            np.log1p(t, out=t)
            np.maximum(z, 0, out=d)
            t += d
            np.multiply(z, y, out=d)
            t -= d
            loss = t.mean()
            np.negative(z, out=d)  # d = (sigmoid(z) - y) / n
            np.exp(d, out=d)
            d += 1
            np.reciprocal(d, out=d)
            d -= y
            d *= 1.0 / n
            return loss
        np.max(h, axis=1, keepdims=True, out=self.col)
        np.subtract(h, self.col, out=dz)
        np.exp(dz, out=dz)
        np.sum(dz, axis=1, keepdims=True, out=self.col)
        dz /= self.col
        loss = -np.log(dz[self.rows, y]).mean()
        dz[self.rows, y] -= 1
        dz *= 1.0 / n
        return loss

    def step(self, X, y, update: bool = True):
        """One step on the batch (X, y); the loss."""
        h = self._forward(X)
        loss = self._loss(h, y)
        sigmoid = self.config.activation == "sigmoid"
        for i in range(len(self.W) - 1, -1, -1):
            dz = self.D[i]
            np.matmul(dz.T, self.H[i - 1] if i else X, out=self.dW[i])
            np.sum(dz, axis=0, out=self.db[i])
            if i:
                prev, act, tmp = self.D[i - 1], self.H[i - 1], self.T[i - 1]
                np.matmul(dz, self.W[i], out=prev)
                if sigmoid:  # a (1 - a)
                    np.subtract(1.0, act, out=tmp)
                    tmp *= act
                    prev *= tmp
                else:
                    np.greater(act, 0, out=tmp)
                    prev *= tmp
        if update:
            self.grad *= LR
            self.theta -= self.grad
        return loss

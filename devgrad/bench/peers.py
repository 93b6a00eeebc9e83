"""The compiled peers of ``devgrad bench``: the step under JAX ``jit`` and under ``torch.compile``.

Both are optional: JAX when it is importable, ``torch.compile`` when asked for (compiling takes
long and needs a C++ compiler). Each reports its compile time apart from its step time: the
first call compiles, the timed calls replay the compiled code. A peer that cannot run here is
reported as unavailable, with the reason, never fatal.
"""

from __future__ import annotations

import time

import numpy as np

from devgrad.bench.references import LR, Config, TorchStep
from devgrad.version import extra_hint

JAX_NEEDED = f"JAX is not installed ({extra_hint('bench', 'jax')})"


def import_jax():
    """The jax module, or None when it cannot be imported here."""
    try:
        import jax  # noqa: PLC0415 - optional: the JAX column
    except Exception:  # a broken install (missing jaxlib, a bad CPU) counts as not there
        return None
    return jax


class JaxStep:
    """The step as JAX users write it: ``value_and_grad`` of the loss and the SGD update in one
    ``jax.jit``-compiled function, the parameters donated so the update may reuse their memory."""

    def __init__(self, jax, config: Config, weights: list, X, y):
        self.jax = jax
        jnp = jax.numpy
        last = len(weights) - 1
        act = jax.nn.relu if config.activation == "relu" else jax.nn.sigmoid

        def loss_fn(params, X, y):
            h = X
            for i, (W, b) in enumerate(params):
                h = h @ W.T + b
                if i < last:
                    h = act(h)
            if config.binary:
                z = h[:, 0]
                return jnp.mean(jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z))))
            logp = jax.nn.log_softmax(h, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        def step(params, X, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
            return [(W - LR * gW, b - LR * gb) for (W, b), (gW, gb) in zip(params, grads)], loss

        self.params = [(jnp.array(w), jnp.array(b)) for w, b in weights]  # copies of its own
        self.X, self.y = jnp.asarray(X), jnp.asarray(y.astype(np.int32) if not config.binary else y)
        start = time.perf_counter()
        self._step = jax.jit(step, donate_argnums=0).lower(self.params, self.X, self.y).compile()
        self.compile_s = time.perf_counter() - start
        self._loss_and_grads = jax.jit(jax.value_and_grad(loss_fn))
        self.loss = None

    def loss_and_grads(self):
        """The loss and the gradients at the current parameters, as host arrays (no update)."""
        loss, grads = self._loss_and_grads(self.params, self.X, self.y)
        return float(loss), [(np.asarray(gW), np.asarray(gb)) for gW, gb in grads]

    def step(self):
        """One step on the batch given at construction; the loss (a JAX array)."""
        self.params, self.loss = self._step(self.params, self.X, self.y)
        return self.loss

    def sync(self) -> None:
        """Wait for JAX's queued work (its calls return before the arrays are computed)."""
        if self.loss is not None:
            self.loss.block_until_ready()


class TorchCompiledStep:
    """PyTorch's step with the model under ``torch.compile`` (backward and the optimizer stay
    eager, as most users have them); compiled by the first call, whose time is the compile time."""

    def __init__(self, torch, config: Config, weights: list, device: str, X, y):
        self.eager = TorchStep(torch, config, weights, device)
        self.eager.model = torch.compile(self.eager.model)
        start = time.perf_counter()
        self.eager.step(X, y)  # compiles forward and backward; one real step, as the other warm-ups
        self.compile_s = time.perf_counter() - start

    def step(self, X, y):
        return self.eager.step(X, y)

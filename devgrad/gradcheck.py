"""Check backward against float64 central differences."""

from __future__ import annotations

import numpy as np

from devgrad.core import grad
from devgrad.core import Tensor


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with finite differences."""


def _as_outputs(out) -> list:
    outs = list(out) if isinstance(out, tuple | list) else [out]
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor or a tuple of Tensors, got {type(o).__name__}")
    return outs


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4,
              seed: int = 0) -> bool:
    """Compare ``fn``'s backward with float64 central differences; True or GradcheckError.

    Floating-point inputs are copied to float64; those with ``requires_grad`` are checked
    (all floating inputs if none requires grad). The outputs are contracted with a random
    cotangent, so every element of every output's Jacobian takes part. The error names
    the input and element with the worst mismatch.
    """
    xs, checked = _float64_inputs(inputs)
    outs = _as_outputs(fn(*xs))
    rng = np.random.default_rng(seed)
    cotangents = [Tensor._make(o.device.put(rng.standard_normal(o.shape)).astype(o.dtype), o.device)
                  for o in outs]
    differentiable = [i for i, o in enumerate(outs) if o.requires_grad]
    targets = [xs[i] for i in checked]
    if differentiable:
        analytic = grad([outs[i] for i in differentiable], targets,
                        [cotangents[i] for i in differentiable], allow_unused=True)
    else:
        analytic = [None] * len(targets)

    def contracted() -> float:
        # Grad mode stays on: fn may itself differentiate (gradcheck of a gradient).
        values = _as_outputs(fn(*xs))
        return float(sum(float((v.data * c.data).sum()) for v, c in zip(values, cotangents)))

    for k, i in enumerate(checked):
        x = xs[i]
        numeric = _central_differences(x, contracted, eps)
        got = analytic[k]
        got = np.zeros(x.shape) if got is None else got.numpy().astype(np.float64)
        with np.errstate(invalid="ignore"):  # NaN on either side is a mismatch, told as such below
            excess = np.abs(got - numeric) - (atol + rtol * np.abs(numeric))
        failed = ~(excess <= 0)  # NaN (from either side) fails, as in PyTorch's gradcheck
        if failed.any():
            worst = np.unravel_index(int(np.argmax(np.where(np.isnan(excess), np.inf, excess))), x.shape)
            raise GradcheckError(
                f"gradcheck failed for input {i} (shape {x.shape}) at element {tuple(int(w) for w in worst)}: "
                f"backward gives {float(got[worst])!r}, finite differences give {float(numeric[worst])!r} "
                f"(atol={atol}, rtol={rtol}, eps={eps})")
    return True


def _float64_inputs(inputs) -> tuple[list, list[int]]:
    """float64 copies of the floating-point Tensor inputs (the others as given) and the indices
    of those to check: the ones that require grad, or every floating one if none does."""
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked_any = any(isinstance(t, Tensor) and t.requires_grad for t in inputs)
    xs: list = []
    checked: list[int] = []
    for t in inputs:
        if isinstance(t, Tensor) and t.dtype.kind == "f":
            # C order: the differences perturb x through a flat view of it (a transposed input included)
            x = Tensor._make(t.data.astype(np.float64, order="C"), t.device)
            if t.requires_grad or not checked_any:
                x.requires_grad = True
                checked.append(len(xs))
            xs.append(x)
        else:
            xs.append(t)
    if not checked:
        raise ValueError("gradcheck: no floating-point tensor input to check")
    return xs, checked


def _central_differences(x: Tensor, contracted, eps: float) -> np.ndarray:
    """d contracted / d x by central differences, one element of ``x`` at a time (in place)."""
    flat = x.data.reshape(-1)  # a view: perturbing it perturbs x
    numeric = np.empty(flat.size)
    for j in range(flat.size):
        orig = float(flat[j])
        flat[j] = orig + eps
        plus = contracted()
        flat[j] = orig - eps
        minus = contracted()
        flat[j] = orig
        numeric[j] = (plus - minus) / (2 * eps)
    return numeric.reshape(x.shape)


def gradgradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4,
                  seed: int = 0) -> bool:
    """Second-order gradcheck: ``fn``'s vector-Jacobian product (a fixed random cotangent,
    built with ``create_graph=True``) is itself checked against float64 central differences.

    The arguments are ``gradcheck``'s. An input that ``fn`` does not use gets a zero gradient.
    """
    rng = np.random.default_rng(seed + 1)
    cotangents: list = []

    def vjp(*xs):
        targets = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        outs = _as_outputs(fn(*xs))
        if not cotangents:  # drawn once: every call of vjp contracts with the same vector
            cotangents.extend(Tensor._make(o.device.put(rng.standard_normal(o.shape)).astype(o.dtype), o.device)
                              for o in outs)
        pairs = [(o, c) for o, c in zip(outs, cotangents) if o.requires_grad]
        grads = [None] * len(targets)
        if pairs:
            grads = grad([o for o, _ in pairs], targets, [c for _, c in pairs], create_graph=True,
                         allow_unused=True)
        return tuple(Tensor._make(x.xp.zeros(x.shape, dtype=x.dtype), x.device) if g is None else g
                     for x, g in zip(targets, grads))

    return gradcheck(vjp, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed)

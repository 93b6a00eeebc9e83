"""``nn.utils``: gradient clipping, on the gradients' device without a host sync (also exported
by ``devgrad.optim``)."""

from __future__ import annotations

from devgrad.core import no_grad
from devgrad.core import Tensor
from devgrad.creation import zeros


def _params(parameters) -> list[Tensor]:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _grads(parameters) -> list[Tensor]:
    return [p.grad for p in _params(parameters) if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Scale all gradients together so their global norm is at most ``max_norm``.

    Returns the norm before clipping as a 0-d tensor on the gradients' device (reading it
    with ``.item()`` is the only sync); 0 when no parameter has a gradient, as PyTorch.
    """
    params = _params(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return zeros((), device=params[0].device if params else None)
    dev = grads[0].device
    xp = dev.xp
    with no_grad(), dev.activate():
        if norm_type == float("inf"):
            total = xp.max(xp.stack([xp.max(xp.abs(g.data)) for g in grads]))
        else:
            # a 0-d array's power, as a replayed step computes it (a NumPy scalar's ** is the C library's
            # pow, and ** 0.5 not sqrt: an ulp apart at times)
            total = xp.asarray(xp.sum(xp.stack([xp.sum(xp.abs(g.data) ** norm_type) for g in grads])))
            total = xp.power(total, 1.0 / norm_type)
        coef = xp.minimum(max_norm / (total + 1e-6), 1.0).astype(grads[0].dtype)
        for g in grads:
            g.data *= coef
    return Tensor._make(total, dev)


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    for g in _grads(parameters):
        g.device.xp.clip(g.data, -clip_value, clip_value, out=g.data)

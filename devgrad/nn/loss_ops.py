"""The loss nodes: each loss of devgrad.nn.functional as one fused op (a ``Function``).

A per-element loss of (input, target) is a ``PairLoss``: its forward and first-order backward
are device kernels (registered in ``devgrad.nn._kernels``, one launch each on a GPU), its
``grad_formula`` written with Tensor ops serves higher-order graphs. Cross-entropy from logits
and the negative log-likelihood are nodes of their own.
"""

from __future__ import annotations

import functools

from devgrad.core import Function, is_grad_enabled
from devgrad.nn import _kernels  # noqa: F401 - registers the loss kernels looked up below (device.kernels)
from devgrad.ops import sigmoid, softmax, softplus
from devgrad.ops.elementwise import Where, link_zero
from devgrad.ops.shape import IndexAdd


class PairLoss(Function):
    """A per-element loss of (input, target) computed by the device kernel ``KERNEL`` (with the
    float ``params`` a loss has: Huber's delta, the hinge's margin), its reduction (mean or sum:
    a sum scaled by ``scale``, one GEMM on a GPU) part of the op: one node.

    Backward runs the kernel ``KERNEL + "_grad"`` on arrays (one launch on a GPU), or, for a
    higher-order graph, the subclass's ``grad_formula(x, y)`` (dloss/dx per element) on Tensors.
    The target's gradient (``TARGET``): "negate", minus the input's (a loss of x − y); "swap",
    the same formula with the two swapped (a symmetric loss of y·x); "own", the subclass's
    ``target_grad(g, x, y)``.
    """

    __slots__ = ("scale", "params")
    save_inputs = True
    array_backward = True
    KERNEL = ""
    TARGET = "negate"

    def forward(self, x, y, scale, params=()):
        self.scale, self.params = scale, params
        loss = getattr(self.device.kernels, self.KERNEL)(x, y, *params)
        return loss if scale is None else self.device.kernels.sum_axes(loss, tuple(range(loss.ndim)), scale)

    def _scaled(self, g):
        return g if self.scale is None else g * self.scale

    def backward(self, g):
        need_x, need_y = self.next
        need_x, need_y = need_x is not None, need_y is not None
        x, y = self.operands(g)
        # create_graph: Tensor ops, themselves differentiable; first order: one fused kernel
        grad = self.for_kind(g, self._graph_grad, self._kernel_grad)
        gx = grad(g, x, y) if need_x or (need_y and self.TARGET == "negate") else None
        if not need_y:  # the usual case (every step)
            return gx, None
        if self.TARGET == "negate":
            gy = -gx
        elif self.TARGET == "swap":
            gy = grad(g, y, x)
        else:
            gy = self.target_grad(g, x, y)
        return (gx if need_x else None), gy

    def _graph_grad(self, g, a, b):
        return self._scaled(g) * self.grad_formula(a, b)

    def _kernel_grad(self, g, a, b):
        return getattr(self.device.kernels, self.KERNEL + "_grad")(a, b, g, self.scale, *self.params)


class SquaredError(PairLoss):
    """(x - y)² per element; gradient 2·(x - y)."""

    __slots__ = ()
    KERNEL = "sq_err"

    def grad_formula(self, x, y):
        return (x - y) * 2.0


class AbsoluteError(PairLoss):
    """|x - y| per element; gradient sign(x - y) (0 where x = y and at NaN, as PyTorch's l1_loss)."""

    __slots__ = ()
    KERNEL = "abs_err"

    def grad_formula(self, x, y):
        # piecewise constant: its derivative is 0 (linked, so a second grad gives zeros)
        d = x.data - y.data
        return link_zero(self.const((d > 0).astype(d.dtype) - (d < 0).astype(d.dtype)), x)


class HuberError(PairLoss):
    """½d² where |d| ≤ delta, else delta·(|d| − ½delta), d = x - y; gradient d clipped to ±delta.
    The second derivative is 1 where |d| < delta and 0 elsewhere, at |d| = delta too (PyTorch's)."""

    __slots__ = ()
    KERNEL = "huber_err"

    def grad_formula(self, x, y):
        delta = self.params[0]
        d = x - y
        inside = self.device.xp.abs(d.data) < delta
        return Where.apply(d, self.const(self.device.xp.sign(d.data) * delta), cond=inside)


class Logistic(PairLoss):
    """log(1 + exp(-y·x)) per element; gradient -y·sigmoid(-y·x)."""

    __slots__ = ()
    KERNEL = "logistic"
    TARGET = "swap"

    def grad_formula(self, x, y):
        return -y * sigmoid(-(y * x))


class Hinge(PairLoss):
    """max(0, margin - y·x) per element; gradient -y where margin - y·x ≥ 0 (clip's convention
    at the kink), else 0."""

    __slots__ = ()
    KERNEL = "hinge"
    TARGET = "swap"

    def grad_formula(self, x, y):
        active = self.params[0] - y.data * x.data >= 0
        return -y * link_zero(self.const(active.astype(x.dtype)), x)


class BCEWithLogits(PairLoss):
    """softplus(z) - z·y per element (= max(z, 0) - z·y + log1p(exp(-|z|))); gradient sigmoid(z) - y.
    With a pos_weight w (``params``): w·y·softplus(-z) + (1 - y)·softplus(z), gradient
    (1 - y)·sigmoid(z) - w·y·sigmoid(-z)."""

    __slots__ = ()
    KERNEL = "bce_logits"
    TARGET = "own"

    def _pos_weight(self) -> float:
        return self.params[0] if self.params else 1.0

    def grad_formula(self, z, y):
        w = self._pos_weight()
        return sigmoid(z) - y if w == 1.0 else (1.0 - y) * sigmoid(z) - w * y * sigmoid(-z)

    def target_grad(self, g, z, y):
        """dL/dy = (w - 1)·softplus(z) - w·z: -z without a pos_weight."""
        w = self._pos_weight()
        if w == 1.0:
            return -self._scaled(g) * z
        soft = self.for_kind(g, softplus, functools.partial(self.device.xp.logaddexp, 0))(z)
        return self._scaled(g) * ((w - 1.0) * soft - w * z)


class CrossEntropy(Function):
    """Softmax cross-entropy from logits and integer labels, with label smoothing; the reduction
    (mean, sum, or none for per-row values) is part of the op."""

    __slots__ = ("labels", "smoothing", "scale")
    save_inputs = True
    array_backward = True

    def forward(self, z, labels, smoothing, scale):
        self.labels = labels
        self.smoothing = smoothing
        self.scale = scale
        loss, self.saved = self.device.kernels.softmax_xent(z, labels, smoothing)
        # the mean (or sum) of the rows: on a GPU one GEMM with a ones vector, the scale its alpha
        return loss if scale is None else self.device.kernels.sum_axes(loss, (0,), scale)

    def backward(self, g):
        # first order: (probabilities - smoothed one-hot)·g in one fused kernel
        return self.for_kind(g, self._graph_grad, self._kernel_grad)(g)

    def _kernel_grad(self, g):
        return self.device.kernels.softmax_xent_grad(self.saved, self.labels, self.smoothing, g, self.scale)

    def _graph_grad(self, g):
        xp = self.device.xp
        z = self.inputs[0]
        n, c = z.shape
        target = xp.zeros((n, c), dtype=z.dtype)
        target[xp.arange(n), self.labels] = 1.0
        if self.smoothing:
            target = target * (1.0 - self.smoothing) + self.smoothing / c
        # Under create_graph the softmax must be a graph op so second derivatives are right.
        probs = softmax(z, axis=1) if is_grad_enabled() else self.const(self.saved)
        g = g.reshape(-1, 1) if self.scale is None else g * self.scale
        return g * (probs - self.const(target))


class NLL(Function):
    """-log_probs[row, label] per row. Its gradient (-g at each row's label) does not depend on
    the log-probabilities: linked with derivative 0, so a second grad gives zeros (PyTorch's)."""

    __slots__ = ("index", "in_shape")
    save_inputs = True  # for the link only
    array_backward = True

    def forward(self, log_probs, index):
        self.index, self.in_shape = index, log_probs.shape
        return -log_probs[index]

    def backward(self, g):
        return self.for_kind(g, self._graph_grad, self._array_grad)(g)

    def _graph_grad(self, g):
        scattered = IndexAdd.apply(-g, index=self.index, shape=self.in_shape, accumulate=False)
        return link_zero(scattered, self.inputs[0])

    def _array_grad(self, g):
        out = self.device.xp.zeros(self.in_shape, dtype=g.dtype)
        out[self.index] = -g  # one label per row: no index repeats
        return out

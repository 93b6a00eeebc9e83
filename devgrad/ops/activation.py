"""Activations and (log-)softmax, written to stay finite for any input.

softplus and log_sigmoid only ever exponentiate -|x|, sigmoid lets exp(-x) overflow to inf
quietly (1/(1+inf) is exactly 0), and (log_)softmax shifts by the maximum, so |x| = 1e4
gives no overflow, NaN or warning — and neither do their gradients, which are expressed
through the same stable outputs.
"""

from __future__ import annotations

from devgrad.core import Function, Tensor
from devgrad.ops._util import axis_arg, normalize_axis


def activation_grad(act: str, g, out, device):
    """dL/dz from g = dL/dy for y = act(z) ('relu', 'sigmoid' or 'tanh'), from the output y.

    On Tensors (a graph of the gradient) it is written with Tensor ops, so it is
    differentiable again (relu's mask is a constant); on the first-order path it is the
    device's fused kernel (one launch on a GPU) computing the same formula.
    """
    if not isinstance(g, Tensor):
        return device.kernels.act_grad(act, g, out)
    if act == "relu":
        return g * Tensor._make((out.data > 0).astype(g.dtype), out.device)
    if act == "sigmoid":
        return g * out * (1.0 - out)
    return g * (1.0 - out * out)


def _sigmoid(g, x, device):
    """sigmoid(x) in ``g``'s kind: the op on a Tensor, the device's kernel on an array."""
    return sigmoid(x) if isinstance(g, Tensor) else device.kernels.sigmoid(x)


class ReLU(Function):
    __slots__ = ()
    array_backward = True
    save_output = True

    def forward(self, a):
        return self.device.xp.maximum(a, 0)

    def backward(self, g):
        return activation_grad("relu", g, self.result(g), self.device)


class LeakyReLU(Function):
    __slots__ = ("slope",)
    array_backward = True
    save_inputs = True

    def forward(self, a, slope):
        self.slope = slope
        return self.device.xp.where(a > 0, a, a * slope)

    def backward(self, g):
        slopes = self.device.xp.where(self.inputs[0].data > 0, 1.0, self.slope).astype(g.dtype)
        return g * self.constant(g, slopes)


class Sigmoid(Function):
    __slots__ = ()
    array_backward = True
    save_output = True

    def forward(self, a):
        return self.device.kernels.sigmoid(a)

    def backward(self, g):
        return activation_grad("sigmoid", g, self.result(g), self.device)


class Tanh(Function):
    __slots__ = ()
    array_backward = True
    save_output = True

    def forward(self, a):
        return self.device.xp.tanh(a)

    def backward(self, g):
        return activation_grad("tanh", g, self.result(g), self.device)


class Softplus(Function):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""

    __slots__ = ()
    array_backward = True
    save_inputs = True

    def forward(self, a):
        return self.device.xp.logaddexp(0, a)  # stable in one pass

    def backward(self, g):
        return g * _sigmoid(g, self.operands(g)[0], self.device)


class LogSigmoid(Function):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))."""

    __slots__ = ()
    array_backward = True
    save_inputs = True

    def forward(self, a):
        return -self.device.xp.logaddexp(0, -a)

    def backward(self, g):
        return g * _sigmoid(g, -self.operands(g)[0], self.device)


class Softmax(Function):
    __slots__ = ("axis",)
    array_backward = True
    save_output = True

    def forward(self, a, axis):
        xp = self.device.xp
        self.axis = axis
        e = xp.exp(a - xp.max(a, axis=axis, keepdims=True))
        return e / xp.sum(e, axis=axis, keepdims=True)

    def backward(self, g):
        y = self.result(g)
        return y * (g - (g * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    __slots__ = ("axis",)
    array_backward = True
    save_output = True

    def forward(self, a, axis):
        xp = self.device.xp
        self.axis = axis
        shifted = a - xp.max(a, axis=axis, keepdims=True)
        return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))

    def backward(self, g):
        y = self.result(g)
        probabilities = y.exp() if isinstance(y, Tensor) else self.device.xp.exp(y)
        return g - probabilities * g.sum(axis=self.axis, keepdims=True)


def relu(x: Tensor) -> Tensor:
    """max(x, 0); the gradient at 0 is 0."""
    return ReLU.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    return LeakyReLU.apply(x, slope=float(negative_slope))


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow."""
    return Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(x)


def softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)), stable for large |x|."""
    return Softplus.apply(x)


def log_sigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)), stable for large |x|."""
    return LogSigmoid.apply(x)


def softmax(x: Tensor, axis: int | None = None, *, dim=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the max for stability."""
    axis = axis_arg(axis, dim, "softmax")
    return Softmax.apply(x, axis=normalize_axis(-1 if axis is None else axis, x.ndim)[0])


def log_softmax(x: Tensor, axis: int | None = None, *, dim=None) -> Tensor:
    """x - logsumexp(x) along ``axis``, stable for large |x|."""
    axis = axis_arg(axis, dim, "log_softmax")
    return LogSoftmax.apply(x, axis=normalize_axis(-1 if axis is None else axis, x.ndim)[0])

"""Activations and (log-)softmax, written to stay finite for any input.

softplus and log_sigmoid only ever exponentiate -|x|, sigmoid lets exp(-x) overflow to inf
quietly (1/(1+inf) is exactly 0), and (log_)softmax shifts by the maximum, so |x| = 1e4
gives no overflow, NaN or warning — and neither do their gradients, which are expressed
through the same stable outputs.
"""

from __future__ import annotations

from devgrad.backend.cpu_kernels import relu as host_relu
from devgrad.core import Function, Tensor
from devgrad.ops._util import axis_arg, normalize_axis
from devgrad.ops.elementwise import Where, link_zero, select


def activation_grad(act: str, g, out, device):
    """dL/dz from g = dL/dy for y = act(z) ('relu', 'sigmoid' or 'tanh'), from the output y.

    On Tensors (a graph of the gradient) it is written with Tensor ops, so it is
    differentiable again (relu's mask is a constant); on the first-order path it is the
    device's fused kernel (one launch on a GPU) computing the same formula.
    """
    return Function.for_kind(g, _activation_grad_graph, device.kernels.act_grad)(act, g, out)


def _activation_grad_graph(act: str, g: Tensor, out: Tensor) -> Tensor:
    """``activation_grad`` with Tensor ops (the device kernel ``act_grad``'s formula)."""
    if act == "relu":  # PyTorch's threshold: 0 where out <= 0, else g (a NaN output passes g)
        return link_zero(Where.apply(0.0, g, cond=out.data <= 0), out)
    if act == "sigmoid":
        return g * out * (1.0 - out)
    return g * (1.0 - out * out)


def _sigmoid(g, x, device):
    """sigmoid(x) in ``g``'s kind: the op on a Tensor, the device's kernel on an array."""
    return Function.for_kind(g, sigmoid, device.kernels.sigmoid)(x)


class ReLU(Function):
    """max(x, 0). The gradient is 0 where the output is <= 0 (at 0 too), g elsewhere, also at NaN
    (PyTorch's threshold convention); an infinite g where x < 0 gives 0, not NaN."""

    __slots__ = ()
    array_backward = True
    save_output = True

    def forward(self, a):
        if self.device.is_host:
            return host_relu(a)
        return self.device.xp.where(a < 0, 0, a)  # PyTorch's clamp_min: -0.0 and NaN pass as they are

    def backward(self, g):
        return activation_grad("relu", g, self.result(g), self.device)


class LeakyReLU(Function):
    """x for x > 0, slope·x otherwise; the gradient is slope at 0 and at NaN (PyTorch's)."""

    __slots__ = ("slope",)
    array_backward = True
    save_inputs = True

    def forward(self, a, slope):
        self.slope = slope
        return self.device.xp.where(a > 0, a, a * slope)

    def backward(self, g):
        x = self.inputs[0]
        positive = x.data > 0
        return link_zero(select(g, positive, g, g * self.slope, self.device.xp), x)


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
        out = -self.device.xp.logaddexp(0, -a)
        # + 0.0: where exp(-x) underflows (x → +inf) the result is +0.0, as PyTorch's
        # min(x, 0) − log1p(exp(−|x|)) gives, not −0.0 (1 / log_sigmoid(inf) is +inf)
        out += 0.0
        return out

    def backward(self, g):
        return g * _sigmoid(g, -self.operands(g)[0], self.device)


class Softmax(Function):
    __slots__ = ("axis",)
    array_backward = True
    save_output = True

    def forward(self, a, axis):
        xp = self.device.xp
        self.axis = axis
        if a.size == 0:  # no maximum to shift by: the empty result
            return a.copy()
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
        if a.size == 0:
            return a.copy()
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


def _along(cls, x: Tensor, axis, dim, name: str) -> Tensor:
    """``cls`` along ``axis`` (default the last), or jointly over a tuple of axes as
    ``scipy.special.softmax`` and ``dg.logsumexp``; a 0-d tensor is a single element along axis
    0 or -1 (as in PyTorch)."""
    axis = axis_arg(axis, dim, name)
    axes = normalize_axis(-1 if axis is None else axis, x.ndim)
    if x.ndim == 0:
        return cls.apply(x.reshape(1), axis=0).reshape(())
    return cls.apply(x, axis=axes[0] if len(axes) == 1 else axes)


def softmax(x: Tensor, axis: int | None = None, *, dim=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis`` (or jointly over a tuple of axes), shifted by the max
    for stability."""
    return _along(Softmax, x, axis, dim, "softmax")


def log_softmax(x: Tensor, axis: int | None = None, *, dim=None) -> Tensor:
    """x - logsumexp(x) along ``axis`` (or jointly over a tuple of axes), stable for large |x|."""
    return _along(LogSoftmax, x, axis, dim, "log_softmax")

"""Matrix products with NumPy's ``matmul`` rules: 1-D operands, batches, broadcast batch dims."""

from __future__ import annotations

from devgrad.core import Function, Tensor
from devgrad.ops._util import operand, sum_to
from devgrad.ops.activation import activation_grad
from devgrad.ops.shape import transpose


def _check_matmul_shapes(a_shape, b_shape) -> None:
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"matmul: operands must have at least one dimension, got shapes {a_shape} and "
                         f"{b_shape}; use * to scale by a scalar")
    k_a = a_shape[-1]
    k_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
    if k_a != k_b:
        where_b = "its only dim" if len(b_shape) == 1 else "dim -2"
        raise ValueError(f"matmul: shapes {a_shape} and {b_shape} are not aligned: {k_a} (last dim of the "
                         f"first) != {k_b} ({where_b} of the second)")


class MatMul(Function):
    __slots__ = ()
    save_inputs = True
    array_backward = True

    def forward(self, a, b):
        _check_matmul_shapes(a.shape, b.shape)
        try:
            return self.device.matmul(a, b)
        except ValueError as exc:
            raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast "
                             f"({exc})") from None

    def backward(self, g):
        a, b = self.operands(g)
        need_a, need_b = self.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if need_a else None), (g * a if need_b else None)
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:  # the row axis a 1-D operand lost comes back
            g2 = g2.reshape(*g2.shape[:-1], 1, g2.shape[-1])
        if b.ndim == 1:
            g2 = g2.reshape(*g2.shape, 1)
        mm = self.for_kind(g, matmul, self.device.matmul)  # the op (differentiable again), or the GEMM seam
        ga = gb = None
        if need_a:
            ga = sum_to(mm(g2, b2.swapaxes(-1, -2)), a2.shape).reshape(a.shape)
        if need_b:
            gb = sum_to(mm(a2.swapaxes(-1, -2), g2), b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a, b) -> Tensor:
    """Matrix product ``a @ b`` following ``numpy.matmul`` (1-D, 2-D and batched operands)."""
    if not isinstance(a, Tensor):
        a = operand(a, b, "MatMul")
    elif not isinstance(b, Tensor):
        b = operand(b, a, "MatMul")
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise ValueError("matmul: operands must be arrays, not scalars; use * to scale")
    return MatMul.apply(a, b)


def dot(a, b) -> Tensor:
    """``numpy.dot``: a product with a scalar (0-d) side, the inner product of 1-D tensors, the
    matrix product of 2-D ones, and for N-D ``a`` and M-D ``b`` (M >= 2) the sum over a's last
    axis and b's second-to-last, of shape ``a.shape[:-1] + b.shape[:-2] + b.shape[-1:]``."""
    if not isinstance(a, Tensor):
        a = operand(a, b, "dot")
    elif not isinstance(b, Tensor):
        b = operand(b, a, "dot")
    if not isinstance(a, Tensor) or not isinstance(b, Tensor) or a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2 or a.ndim == 1:  # numpy.dot and numpy.matmul agree here
        return matmul(a, b)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"dot: shapes {a.shape} and {b.shape} are not aligned: {a.shape[-1]} (last dim of the "
                         f"first) != {b.shape[-2]} (dim -2 of the second)")
    k = b.ndim - 2
    b_rows = transpose(b, (k, *range(k), b.ndim - 1)).reshape(b.shape[k], -1)  # the contracted axis first
    return matmul(a.reshape(-1, a.shape[-1]), b_rows).reshape(a.shape[:-1] + b.shape[:-2] + b.shape[-1:])


def _times_weight(device, x, w):
    """x @ w.T through the device's GEMM seam, with an error in the layer's terms when the feature
    counts differ."""
    if x.ndim == 0 or w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: input has {x.shape[-1] if x.ndim else 0} features (shape {x.shape}) but "
                         f"the weight expects {w.shape[1] if w.ndim == 2 else '?'} (weight shape {w.shape} = "
                         "(out_features, in_features))")
    return device.matmul(x, w.T)


class Linear(Function):
    """x @ w.T + b as one node: the fully connected layer, with one backward for all three."""

    __slots__ = ()
    save_inputs = True
    array_backward = True

    def forward(self, x, w, b):
        out = _times_weight(self.device, x, w)
        if b is not None:
            self.device.kernels.bias_act_(out, b, "identity")  # out += b (one fused kernel on a GPU)
        return out

    def backward(self, g):
        # the ops (differentiable again), or the device's GEMM seam and reduction (a GEMM with a ones
        # vector on a GPU) on arrays: chosen once per node (every layer of every step)
        return self.for_kind(g, _linear_grads, _linear_array_grads)(self, g)


def _linear_grads(node: Linear, g: Tensor) -> tuple:
    """Linear's input gradients with Tensor ops (a graph of the gradient is being built)."""
    x, w, _ = node.inputs  # type: ignore[misc]  # saved (a released node is refused before)
    return _affine_grads(node.next, g, x, w, matmul, _sum_rows)


def _linear_array_grads(node: Linear, g) -> tuple:
    """Linear's input gradients on arrays (the first-order walk)."""
    x, w, _ = node.input_arrays  # type: ignore[misc]  # saved (a released node is refused before)
    device = node.device
    return _affine_grads(node.next, g, x, w, device.matmul, device.kernels.sum_axes)


def _affine_grads(nexts: tuple, g, x, w, mm, total) -> tuple:
    """(g·W, gᵀ·x, Σ g) of x @ w.T + b, each where its input takes a gradient (``nexts``)."""
    need_x, need_w, need_b = nexts
    if g.ndim != 2:  # a batch of rows of any shape: the weight gradient sums over all of them
        g2, x = g.reshape(-1, w.shape[0]), x.reshape(-1, w.shape[1])
    else:
        g2 = g
    gx = mm(g, w) if need_x is not None else None
    gw = mm(g2.T, x) if need_w is not None else None
    gb = total(g2, (0,)) if need_b is not None else None  # the bias gradient: the rows' sum
    return gx, gw, gb


def _sum_rows(g: Tensor, axes: tuple) -> Tensor:
    """``g`` summed over ``axes`` (a Tensor op): Linear's bias gradient when a graph is being built."""
    return g.sum(axis=axes)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """The affine map ``x @ weight.T + bias`` (weight shaped (out_features, in_features))."""
    return Linear.apply(x, weight, bias)


class LinearAct(Linear):
    """activation(x @ w.T + b) as one node: the hidden layer of an MLP.

    The bias and the activation are applied in place to the fresh product buffer, which
    nobody else can see, so a layer costs one allocation instead of two (and on a GPU one
    fused kernel after the matmul). Backward multiplies by the activation's derivative,
    written from the saved output, then is Linear's backward.
    """

    __slots__ = ("act",)
    save_output = True
    ACTIVATIONS = ("relu", "sigmoid", "tanh")

    def forward(self, x, w, b, act):
        self.act = act
        return self.device.kernels.bias_act_(_times_weight(self.device, x, w), b, act)

    def backward(self, g):
        return self.for_kind(g, _linear_act_grads, _linear_act_array_grads)(self, g)


def _linear_act_grads(node: LinearAct, g: Tensor) -> tuple:
    """LinearAct's input gradients with Tensor ops: the activation's, then Linear's."""
    return _linear_grads(node, activation_grad(node.act, g, node.output(), node.device))


def _linear_act_array_grads(node: LinearAct, g) -> tuple:
    """LinearAct's input gradients on arrays: the device's activation-gradient kernel, then Linear's."""
    return _linear_array_grads(node, node.device.kernels.act_grad(node.act, g, node.out_data))


def linear_act(x: Tensor, weight: Tensor, bias: Tensor | None, activation: str) -> Tensor:
    """``activation(x @ weight.T + bias)`` in one op, for activation relu, sigmoid or tanh."""
    if activation not in LinearAct.ACTIVATIONS:
        raise ValueError(f"linear_act: activation must be one of {LinearAct.ACTIVATIONS}, got {activation!r}")
    return LinearAct.apply(x, weight, bias, act=activation)

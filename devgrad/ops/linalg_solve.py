"""``dg.linalg``'s inverses and determinants: inv, solve, det, slogdet, pinv, matrix_power.

Stacked (batched) matrices work as in NumPy. Each backward is written with these same ops
(``inv``, ``solve``, ``matmul``), so gradients of any order follow; the formulas are HIPS
autograd's and JAX's.
"""

from __future__ import annotations

import collections
import numbers

import numpy as np

from devgrad.backend import DeviceError
from devgrad.core import Function, Tensor
from devgrad.ops._util import sum_to
from devgrad.ops.elementwise import link_zero
from devgrad.ops.linalg import matmul
from devgrad.ops.shape import GetItem, swapaxes

SlogdetResult = collections.namedtuple("SlogdetResult", ["sign", "logabsdet"])


def xp_linalg(device, name: str):
    """``xp.linalg.<name>`` of the device, or a clear error where its array library lacks it."""
    fn = getattr(getattr(device.xp, "linalg", None), name, None)
    if fn is None:
        raise DeviceError(f"dg.linalg.{name}: the array library of {device} has no linalg.{name}; move the "
                          "tensor to the CPU with .to('cpu') for this step")
    return fn


def mT(x):  # noqa: N802 - PyTorch's name for the matrix transpose
    """The transpose of the last two axes."""
    return swapaxes(x, -1, -2)


def check_square(a, op: str) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise np.linalg.LinAlgError(f"dg.linalg.{op}: expects square matrices in the last two axes, got shape "
                                    f"{a.shape}")


def _singular(op: str):
    return np.linalg.LinAlgError(f"dg.linalg.{op}: the matrix is singular (not invertible); for a least-squares "
                                 "or minimum-norm answer use dg.linalg.pinv or dg.linalg.lstsq")


class Inv(Function):
    """The inverse; its gradient is -A⁻ᵀ g A⁻ᵀ."""

    __slots__ = ()
    save_output = True

    def forward(self, a):
        check_square(a, "inv")
        try:
            return xp_linalg(self.device, "inv")(a)
        except np.linalg.LinAlgError:
            raise _singular("inv") from None

    def backward(self, g):
        inv_t = mT(self.output())
        return -matmul(inv_t, matmul(g, inv_t))


class Solve(Function):
    """x with a @ x = b (b a stack of column matrices; a 1-D b is one vector, NumPy 2's rule)."""

    __slots__ = ()
    save_inputs = True
    save_output = True

    def forward(self, a, b):
        check_square(a, "solve")
        vector = b.ndim == 1
        columns = b[:, None] if vector else b
        try:
            # the batch axes broadcast here, so every array library sees equal stacks
            batch = np.broadcast_shapes(a.shape[:-2], columns.shape[:-2])
            xp = self.device.xp
            x = xp_linalg(self.device, "solve")(xp.broadcast_to(a, batch + a.shape[-2:]),
                                                xp.broadcast_to(columns, batch + columns.shape[-2:]))
        except np.linalg.LinAlgError:
            raise _singular("solve") from None
        except ValueError as exc:
            raise ValueError(f"dg.linalg.solve: a of shape {a.shape} and b of shape {b.shape} do not fit ({exc})") \
                from None
        return x[..., 0] if vector else x

    def backward(self, g):
        a, b = self.inputs
        x = self.output()
        vector = b.ndim == 1
        g_col, x_col = (g.reshape(*g.shape, 1), x.reshape(*x.shape, 1)) if vector else (g, x)
        gb = Solve.apply(mT(a), g_col)
        need_a, need_b = self.needs_input_grad
        ga = sum_to(-matmul(gb, mT(x_col)), a.shape) if need_a else None
        if need_b:
            gb = sum_to(gb.reshape(gb.shape[:-1]) if vector else gb, b.shape)
        return ga, (gb if need_b else None)


def _cofactors(a: Tensor) -> Tensor:
    """The cofactor matrix (the adjugate's transpose), from the minors' determinants: the gradient
    of det where A is singular (exact, differentiable again; O(n⁴) memory)."""
    n = a.shape[-1]
    xp = a.xp
    keep = xp.asarray([[k for k in range(n) if k != i] for i in range(n)], dtype=np.int64)  # (n, n-1)
    rows = keep[:, None, :, None]  # minor (i, j): rows without i, columns without j
    cols = keep[None, :, None, :]
    minors = GetItem.apply(a, index=(Ellipsis, rows, cols), accumulate=True)  # (..., n, n, n-1, n-1)
    signs = (-1.0) ** (xp.arange(n)[:, None] + xp.arange(n)[None, :])
    return det(minors) * Tensor._make(signs.astype(a.dtype), a.device)


class Det(Function):
    """The determinant; its gradient is g·det·A⁻ᵀ, the cofactor matrix where A is singular."""

    __slots__ = ()
    save_inputs = True
    save_output = True

    def forward(self, a):
        check_square(a, "det")
        return xp_linalg(self.device, "det")(a)

    def backward(self, g):
        a = self.inputs[0]
        g = g.reshape(*g.shape, 1, 1)
        if a.shape[-1] == 0:
            return a * 0.0
        if bool((self.out_data == 0).any()):
            return g * _cofactors(a)
        return g * self.output().reshape(*g.shape) * mT(inv(a))


class LogAbsDet(Function):
    """log|det A| (slogdet's second part); its gradient is A⁻ᵀ, infinite at a singular matrix."""

    __slots__ = ()
    save_inputs = True

    def forward(self, a):
        check_square(a, "slogdet")
        sign, logabsdet = xp_linalg(self.device, "slogdet")(a)
        self.saved = sign
        return logabsdet

    def backward(self, g):
        if bool((self.saved == 0).any()):
            raise np.linalg.LinAlgError("dg.linalg.slogdet: the gradient of log|det| is infinite at a singular "
                                        "matrix")
        return g.reshape(*g.shape, 1, 1) * mT(inv(self.inputs[0]))


class Pinv(Function):
    """The Moore-Penrose pseudo-inverse. Gradient (of constant rank, as autograd and JAX):
    -A⁺ᵀ g A⁺ᵀ + (I - A A⁺) gᵀ A⁺ A⁺ᵀ + A⁺ᵀ A⁺ gᵀ (I - A⁺ A)."""

    __slots__ = ()
    save_inputs = True
    save_output = True

    def forward(self, a, rcond, hermitian, rtol):
        if a.ndim < 2:
            raise np.linalg.LinAlgError(f"dg.linalg.pinv: expects matrices in the last two axes, got shape {a.shape}")
        options = {"hermitian": hermitian} if hermitian else {}
        if rcond is not None:
            options["rcond"] = rcond
        if rtol is not None:
            options["rtol"] = rtol
        return xp_linalg(self.device, "pinv")(a, **options)

    def backward(self, g):
        a, p = self.inputs[0], self.output()
        p_t, g_t = mT(p), mT(g)
        left = g_t - matmul(a, matmul(p, g_t))  # (I - A A⁺) gᵀ
        right = g_t - matmul(g_t, matmul(p, a))  # gᵀ (I - A⁺ A)
        return -matmul(p_t, matmul(g, p_t)) + matmul(left, matmul(p, p_t)) + matmul(matmul(p_t, p), right)


def _tensor(a, op: str) -> Tensor:
    if not isinstance(a, Tensor):
        raise TypeError(f"dg.linalg.{op}: expects a Tensor, got {type(a).__name__}")
    return a


def inv(a: Tensor) -> Tensor:
    """``numpy.linalg.inv``: the inverse of each square matrix (a singular one is a LinAlgError)."""
    return Inv.apply(_tensor(a, "inv"))


def solve(a: Tensor, b) -> Tensor:
    """``numpy.linalg.solve``: x with a @ x = b; b of shape (..., M, K), or (M,) for one vector."""
    a = _tensor(a, "solve")
    if not isinstance(b, Tensor):
        b = Tensor._make(a.device.put(np.asarray(b, dtype=a.dtype)), a.device)
    return Solve.apply(a, b)


def det(a: Tensor) -> Tensor:
    """``numpy.linalg.det``: the determinant of each square matrix."""
    return Det.apply(_tensor(a, "det"))


def slogdet(a: Tensor) -> SlogdetResult:
    """``numpy.linalg.slogdet``: (sign, log|det|); the sign is not differentiated."""
    a = _tensor(a, "slogdet")
    logabsdet = LogAbsDet.apply(a)
    sign = xp_linalg(a.device, "slogdet")(a.data)[0] if logabsdet.grad_fn is None else logabsdet.grad_fn.saved
    return SlogdetResult(Tensor._make(sign, a.device), logabsdet)


def pinv(a: Tensor, rcond=None, hermitian: bool = False, *, rtol=None) -> Tensor:
    """``numpy.linalg.pinv``: the pseudo-inverse (singular values below rcond·largest, or NumPy 2's
    rtol·largest, cut); its gradient assumes the rank stays constant, as autograd's and JAX's."""
    return Pinv.apply(_tensor(a, "pinv"), rcond=rcond, hermitian=hermitian, rtol=rtol)


def matrix_power(a: Tensor, n: int) -> Tensor:
    """``numpy.linalg.matrix_power``: a @ a @ ... (n times) by repeated squaring; n = 0 is the identity
    (gradient 0), a negative n a power of the inverse."""
    a = _tensor(a, "matrix_power")
    if not isinstance(n, numbers.Integral):
        raise TypeError(f"dg.linalg.matrix_power: the exponent must be an integer, got {n!r}")
    check_square(a, "matrix_power")
    if n == 0:
        identity = a.xp.broadcast_to(a.xp.eye(a.shape[-1], dtype=a.dtype), a.shape).copy()
        return link_zero(Tensor._make(identity, a.device), a)
    base, n = (inv(a), -int(n)) if n < 0 else (a, int(n))
    result = None
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result

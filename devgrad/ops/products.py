"""Products with NumPy's semantics: outer, inner, vdot, tensordot, kron, cross and einsum.

All but einsum are compositions of differentiable ops (matmul, reshape, transpose, indexing), so
their gradients of any order follow. einsum is one op whose gradient for each operand is another
einsum (of the output's gradient with the other operands), so it is differentiable again too.
"""

from __future__ import annotations

import numbers
import string

from devgrad.core import Function, Tensor
from devgrad.ops._util import one_axis, operand
from devgrad.ops.elementwise import Where
from devgrad.ops.linalg import matmul
from devgrad.ops.shape import broadcast_to, getitem, reshape, stack, transpose


def _pair(a, b, op: str) -> tuple:
    """Both operands as Tensors on one device (lists, arrays and scalars join the Tensor's device)."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: needs at least one Tensor operand")
    like = a if isinstance(a, Tensor) else b
    return tuple(_as_tensor(x, like, op) for x in (a, b))


def _as_tensor(x, like: Tensor, op: str) -> Tensor:
    x = operand(x, like, op)
    if isinstance(x, Tensor):
        return x
    return Tensor._make(like.xp.asarray(x, dtype=like.dtype if isinstance(x, float) else None), like.device)


def outer(a, b) -> Tensor:
    """``numpy.outer``: out[i, j] = a.ravel()[i] · b.ravel()[j]."""
    a, b = _pair(a, b, "outer")
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


def inner(a, b) -> Tensor:
    """``numpy.inner``: the sum over the last axes of ``a`` and ``b`` (a product for a 0-d side)."""
    a, b = _pair(a, b, "inner")
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"inner: the last dimensions differ: {a.shape} and {b.shape}")
    return tensordot(a, b, axes=([-1], [-1]))


def vdot(a, b) -> Tensor:
    """``numpy.vdot`` on real tensors: the dot product of the flattened operands (equal sizes)."""
    a, b = _pair(a, b, "vdot")
    if a.size != b.size:
        raise ValueError(f"vdot: the operands have {a.size} and {b.size} elements; they must have as many")
    return matmul(reshape(a, (-1,)), reshape(b, (-1,)))


def tensordot(a, b, axes=2) -> Tensor:
    """``numpy.tensordot``: the sum over ``axes`` (N: a's last N with b's first N; or a pair of
    axis lists), as one matrix product of the operands reshaped."""
    a, b = _pair(a, b, "tensordot")
    if isinstance(axes, numbers.Integral):
        if axes < 0 or axes > min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: axes={axes} does not fit operands of {a.ndim} and {b.ndim} dimensions")
        axes_a, axes_b = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        given_a, given_b = ([x] if isinstance(x, numbers.Integral) else list(x) for x in axes)
        axes_a = [one_axis(x, a.ndim, "tensordot") for x in given_a]
        axes_b = [one_axis(x, b.ndim, "tensordot") for x in given_b]
    if len(axes_a) != len(axes_b) or any(a.shape[i] != b.shape[j] for i, j in zip(axes_a, axes_b)):
        raise ValueError(f"tensordot: shape-mismatch for sum: axes {axes_a} of {a.shape} and {axes_b} of {b.shape}")
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [i for i in range(b.ndim) if i not in axes_b]
    k = 1
    for i in axes_a:
        k *= a.shape[i]
    rows = _size(a.shape[i] for i in free_a)
    cols = _size(b.shape[i] for i in free_b)
    left = reshape(_permuted(a, free_a + axes_a), (rows, k))
    right = reshape(_permuted(b, axes_b + free_b), (k, cols))
    return reshape(matmul(left, right), tuple(a.shape[i] for i in free_a) + tuple(b.shape[i] for i in free_b))


def _size(dims) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def _permuted(x: Tensor, perm: list) -> Tensor:
    return x if perm == list(range(x.ndim)) else transpose(x, tuple(perm))


def kron(a, b) -> Tensor:
    """``numpy.kron``: the Kronecker product (the operand with fewer axes gets leading 1s)."""
    a, b = _pair(a, b, "kron")
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + a.shape
    sb = (1,) * (nd - b.ndim) + b.shape
    left = reshape(a, tuple(x for s in sa for x in (s, 1)))
    right = reshape(b, tuple(x for s in sb for x in (1, s)))
    return reshape(left * right, tuple(x * y for x, y in zip(sa, sb)))


def cross(a, b, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: int | None = None) -> Tensor:
    """``numpy.cross`` of 3-vectors (or 2-vectors, taken with a zero third component; two 2-vectors
    give the z component only), broadcast over the other axes."""
    a, b = _pair(a, b, "cross")
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = _vectors_last(a, axisa, "a"), _vectors_last(b, axisb, "b")
    both_planar = a.shape[-1] == 2 and b.shape[-1] == 2
    a0, a1, a2 = _components(a)
    b0, b1, b2 = _components(b)
    z = a0 * b1 - a1 * b0
    if both_planar:
        return z
    out = stack(list(_broadcast_all([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, z])), axis=-1)
    axisc = one_axis(axisc, out.ndim, "cross")
    return out if axisc == out.ndim - 1 else transpose(out, _move_last_to(out.ndim, axisc))


def _vectors_last(x: Tensor, axis: int, name: str) -> Tensor:
    if x.ndim == 0:
        raise ValueError(f"cross: {name} is 0-d; it needs an axis of vectors of 2 or 3 components")
    axis = one_axis(axis, x.ndim, "cross")
    if x.shape[axis] not in (2, 3):
        raise ValueError(f"cross: the vectors of {name} have {x.shape[axis]} components (axis {axis} of shape "
                         f"{x.shape}); 2 or 3 are supported")
    if axis == x.ndim - 1:
        return x
    return transpose(x, tuple(i for i in range(x.ndim) if i != axis) + (axis,))


def _components(x: Tensor) -> tuple:
    parts = [getitem(x, (Ellipsis, i)) for i in range(x.shape[-1])]
    return (*parts, 0.0) if len(parts) == 2 else tuple(parts)


def _broadcast_all(parts: list) -> list:
    """Python scalars (a 2-vector's zero component) broadcast to the shape of the tensor parts."""
    tensors = [p for p in parts if isinstance(p, Tensor)]
    shape = tensors[0].shape
    for t in tensors[1:]:
        shape = tuple(max(x, y) for x, y in zip((1,) * (len(t.shape) - len(shape)) + shape,
                                                (1,) * (len(shape) - len(t.shape)) + t.shape))
    return [broadcast_to(p, shape) for p in parts]


def _move_last_to(ndim: int, position: int) -> tuple:
    order = list(range(ndim - 1))
    order.insert(position, ndim - 1)
    return tuple(order)


# -- einsum ---------------------------------------------------------------------------------------

_LETTERS = string.ascii_uppercase + string.ascii_lowercase


class Einsum(Function):
    """``numpy.einsum`` of explicit subscripts (no ellipsis: :func:`einsum` spells them out). The
    gradient for an operand is an einsum of the output's gradient with the other operands; letters
    only that operand sums over are broadcast back, its repeated letters are a diagonal."""

    __slots__ = ("inputs_subs", "output_subs", "sizes")
    save_inputs = True

    def forward(self, *arrays, inputs_subs, output_subs, sizes, original):
        self.inputs_subs, self.output_subs, self.sizes = inputs_subs, output_subs, sizes
        return self.device.xp.einsum(original, *arrays, optimize=len(arrays) > 2)

    def backward(self, g):
        return tuple(self._operand_grad(g, i) if needed else None for i, needed in enumerate(self.needs_input_grad))

    def _operand_grad(self, g, i: int):
        subs, sizes = self.inputs_subs[i], self.sizes
        inputs = self.inputs or ()  # saved by apply (save_inputs)
        others = [inputs[j] for j in range(len(inputs)) if j != i]
        seen = set(self.output_subs).union(*(self.inputs_subs[j] for j in range(len(inputs)) if j != i))
        unique = "".join(dict.fromkeys(subs))
        kept = "".join(c for c in unique if c in seen)
        solo = "".join(c for c in unique if c not in seen)
        spec = ",".join([self.output_subs, *(self.inputs_subs[j] for j in range(len(inputs)) if j != i)])
        grad = _einsum_explicit([g, *others], [self.output_subs, *(s for j, s in enumerate(self.inputs_subs)
                                                                    if j != i)], kept, sizes, spec + "->" + kept)
        if solo:  # summed inside this operand alone: every element got the same gradient
            grad = broadcast_to(reshape(grad, grad.shape + (1,) * len(solo)), tuple(sizes[c] for c in kept + solo))
            grad = _permuted(grad, [(kept + solo).index(c) for c in unique])
        if len(unique) == len(subs):
            return grad
        return _on_diagonal(grad, subs, sizes, self.device.xp)


def _on_diagonal(grad: Tensor, subs: str, sizes: dict, xp) -> Tensor:
    """The gradient of an operand with a repeated letter ('ii'): ``grad`` on the diagonal, 0 elsewhere."""
    first: dict[str, int] = {}
    for p, c in enumerate(subs):
        first.setdefault(c, p)
    spread = broadcast_to(reshape(grad, tuple(sizes[c] if first[c] == p else 1 for p, c in enumerate(subs))),
                          tuple(sizes[c] for c in subs))
    mask = xp.ones(spread.shape, dtype=bool)
    for p, c in enumerate(subs):
        if first[c] != p:
            along = [1] * len(subs)
            along[p] = sizes[c]
            at_first = [1] * len(subs)
            at_first[first[c]] = sizes[c]
            mask = mask & (xp.arange(sizes[c]).reshape(along) == xp.arange(sizes[c]).reshape(at_first))
    return Where.apply(spread, 0.0, cond=mask)


def _einsum_explicit(tensors: list, inputs_subs: list, output_subs: str, sizes: dict, original: str) -> Tensor:
    return Einsum.apply(*tensors, inputs_subs=tuple(inputs_subs), output_subs=output_subs, sizes=sizes,
                        original=original)


def einsum(*operands, optimize=None) -> Tensor:
    """``numpy.einsum``: any subscripts NumPy accepts — implicit output, ``...`` broadcasting,
    repeated letters (diagonals), the interleaved ``einsum(a, [0, 1], b, [1, 2])`` form —
    differentiable in every Tensor operand to any order."""
    subscripts, arrays = _subscripts_and_operands(operands)
    tensors = [a for a in arrays if isinstance(a, Tensor)]
    if not tensors:
        raise TypeError("einsum: needs at least one Tensor operand")
    arrays = [_as_tensor(a, tensors[0], "einsum") for a in arrays]
    inputs_subs, output_subs = _explicit(subscripts.replace(" ", ""), [a.ndim for a in arrays])
    sizes: dict = {}
    for subs, a in zip(inputs_subs, arrays):
        for c, n in zip(subs, a.shape):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise ValueError(f"einsum: operands could not be broadcast together: subscript {c!r} has sizes "
                                 f"{sizes[c]} and {n}")
            sizes[c] = max(sizes.get(c, 1), n) if n != 0 else 0
    arrays = [_full_size(a, s, sizes) for a, s in zip(arrays, inputs_subs)]
    return _einsum_explicit(arrays, inputs_subs, output_subs, sizes, ",".join(inputs_subs) + "->" + output_subs)


def _full_size(a: Tensor, subs: str, sizes: dict) -> Tensor:
    """Size-1 axes that broadcast against another operand, broadcast (so the gradient sums back)."""
    full = tuple(sizes[c] for c in subs)
    return a if full == a.shape else broadcast_to(a, full)


def _subscripts_and_operands(operands: tuple) -> tuple:
    """(subscripts, operands) from einsum's string form or its interleaved (operand, sublist) form."""
    if not operands:
        raise TypeError("einsum: give the subscripts and at least one operand")
    if isinstance(operands[0], str):
        return operands[0], list(operands[1:])
    body, output = (operands[:-1], _sublist(operands[-1])) if len(operands) % 2 else (operands, None)
    parts = [_sublist(s) for s in body[1::2]]
    return ",".join(parts) + ("" if output is None else "->" + output), list(body[0::2])


def _sublist(items) -> str:
    out = []
    for item in items:
        if item is Ellipsis:
            out.append("...")
        elif isinstance(item, numbers.Integral) and 0 <= int(item) < 52:
            out.append(_LETTERS[int(item)])
        else:
            raise ValueError(f"einsum: a sublist holds integers 0..51 and Ellipsis, got {item!r}")
    return "".join(out)


def _explicit(subscripts: str, ndims: list) -> tuple:
    """The input subscripts with every ``...`` spelled out in unused letters, and the output's."""
    inputs, arrow, output = subscripts.partition("->")
    parts = inputs.split(",")
    if len(parts) != len(ndims):
        raise ValueError(f"einsum: {len(parts)} subscript groups for {len(ndims)} operands")
    for c in subscripts:
        if c not in _LETTERS and c not in ",.->":
            raise ValueError(f"einsum: invalid subscript {c!r}; use letters a-z and A-Z")
    free = [c for c in _LETTERS if c not in subscripts]
    broadcast = 0
    for part, nd in zip(parts, ndims):
        if "..." in part:
            broadcast = max(broadcast, nd - len(part.replace("...", "")))
    if broadcast > len(free):
        raise ValueError("einsum: too many broadcast dimensions for the letters left")
    ell = "".join(free[:broadcast])
    spelled = []
    for part, nd in zip(parts, ndims):
        if "..." in part:
            count = nd - (len(part) - 3)  # the axes the ellipsis covers
            part = part.replace("...", ell[broadcast - count:] if count >= 0 else "...")
        if len(part) != nd:
            raise ValueError(f"einsum: subscripts {part!r} name {len(part)} axes of an operand with {nd}")
        spelled.append(part)
    if arrow and ell and "..." not in output:
        raise ValueError("einsum: output has more dimensions than subscripts given in einstein sum, but no '...' "
                         "ellipsis provided to broadcast the extra dimensions")
    if arrow:
        out = output.replace("...", ell)
    else:
        counts: dict = {}
        for c in "".join(parts).replace(".", ""):
            counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1))
    return spelled, out

"""Passes that make a recorded CPU plan cheaper to replay, bit for bit (``devgrad.cpu_plan`` runs them).

A replay of a small model's step is dozens of NumPy calls on arrays of a few hundred numbers,
each costing about a microsecond of argument handling, so what the passes save is calls and the
work NumPy does for each argument, never arithmetic:

- ``compiled``: the recorded calls as the replay's (function, arguments) pairs, keywords bound
  once; a selection ``np.where(cond, 0, g)`` (a ReLU's gradient) as a mask of bits (``_as_mask``).
- ``constants``: a Python number in a ufunc call (``x + 1``, ``1.0 - a``, ``x <= 0``) or a fill
  (``copyto(buf, 1.0)``) becomes a 0-d array of the other operands' float dtype, made once. NumPy
  converts a Python number on every call (half the cost of a small call); it converts it to that
  same dtype, so where the number is exact in it the loop and the values are the same.
- ``dots``: a small ``matmul`` of two matrices (no side of 1), or of a matrix and a column or a
  row and a matrix, into a C-ordered buffer becomes ``np.dot``: for such operands both hand BLAS
  the very same ``gemm`` (row-major, each operand transposed or not by its layout) or ``gemv``
  call, but ``dot`` skips the generalised-ufunc machinery around it, a third to a half of a small
  product's cost. (A column times a row stays: matmul computes it without BLAS.)
- ``scalars``: a one-element input of a larger elementwise call (a bias of one unit) as a 0-d
  view. NumPy sends a one-element operand that is broadcast through its general iterator,
  about a microsecond; a 0-d one takes its fast path, with the same inner loop and values.
  Likewise a column's sum (the gradient of a bias of one unit) reduces its 1-d view.
- ``shared_views``: the arrays of the replay's calls, one object for each view (memory, shape,
  strides, dtype). The recording hands NumPy a fresh view of a buffer for every argument, so an
  in-place call (``x += 1``: ``add(x, 1, x)``) gets two objects for one array; NumPy then proves
  they overlap only elementwise (a Diophantine solve, half a microsecond), where one object
  passes its identity check at once. Same memory, same layout: the same call.
- ``merge_sgd``: plain SGD updates each parameter with two calls (scale its gradient into a
  scratch array, subtract that); the gradients of consecutive updates are moved into one array
  of the plan, so that one call scales them all (elementwise: the same products) and only the
  subtractions stay one per parameter. Past ``_SCRATCH_BYTES`` the scaling goes piece by piece,
  each piece subtracted before the next is scaled into the same scratch, which stays in the
  cache (a scratch the size of all the gradients is written out to memory and read back).
"""

from __future__ import annotations

import functools
import itertools

from collections.abc import Callable

import numpy as np

from devgrad.backend.cpu_kernels import CACHE_PIECE_BYTES
from devgrad.core import Tensor
from devgrad.cpu_capture import _owner, _Recording

__all__ = ["arrays_in", "compiled", "constants", "dots", "merge_sgd", "moved_result", "scalars", "shared_views"]


def _pair(fn, args: tuple, kwargs: dict | None) -> tuple:
    """A recorded call as the replay's (function, positional arguments): keywords bound once, here."""
    if not kwargs:
        return fn, args
    if (fn is np.copyto and kwargs == {"casting": "unsafe"} and isinstance(args[1], np.ndarray)
            and args[1].dtype == args[0].dtype):
        return fn, args  # no cast to allow: the default casting rule passes
    if fn is np.copyto and kwargs.keys() <= {"casting", "where"} and len(args) == 2:
        # copyto(dst, src, casting, where) takes them positionally, a third cheaper than a partial's keywords
        casting = kwargs.get("casting", "same_kind")
        return fn, (*args, casting, kwargs["where"]) if "where" in kwargs else (*args, casting)
    return functools.partial(fn, **kwargs), args


_SAME_SIZE_INT = {2: np.int16, 4: np.int32, 8: np.int64}


def compiled(rec: _Recording, made: set) -> list:
    """The replay's (function, args) pairs for the recorded calls; a selection ``np.where(cond, 0, g)``
    (recorded as a copy and a masked copy) becomes a mask of bits (``_as_mask``); ``made`` gets the ids
of the constants ``cpu_fuse.constants`` makes."""
    calls, steps, i = rec.plan, [], 0
    while i < len(calls):
        fused = _as_mask(rec, calls[i], calls[i + 1]) if i + 1 < len(calls) else None
        if fused is not None:
            steps += fused
            i += 2
        else:
            steps.append(_pair(*calls[i]))
            i += 1
    return dots(constants(steps, made))


def _as_mask(rec: _Recording, first: tuple, second: tuple) -> list | None:
    """``copyto(buf, g); copyto(buf, 0, where=cond)`` for a float buffer and an array g of its dtype
    (a ReLU's gradient) as two vectorised passes: a mask of all bits where g is kept and none where 0
    goes, and g's bits and-ed with it. The same bits (inf, NaN and -0.0 pass as they are), without a
    masked copy's branch per element (about 10x slower on a ReLU layer's random masks). None: no match."""
    (f1, args1, k1), (f2, args2, k2) = first, second
    if f1 is not np.copyto or f2 is not np.copyto or k1 != {"casting": "unsafe"} or not k2 or args2[0] is not args1[0]:
        return None
    buf, g = args1
    cond = k2.get("where")
    kind = _SAME_SIZE_INT.get(buf.dtype.itemsize) if buf.dtype.kind == "f" else None
    if (kind is None or k2.keys() != {"casting", "where"} or not isinstance(cond, np.ndarray) or cond.dtype != np.bool_
            or not _is_zero(args2[1]) or not isinstance(g, np.ndarray) or g.dtype != buf.dtype):
        return None
    keep = _owner(rec, buf.shape, np.dtype(kind), "C", np.ndarray)
    rec.buffers.append(keep)
    masked = (np.bitwise_and, (g.view(kind), keep, buf.view(kind)))
    if buf.size < _BYTE_MASK_MIN:
        return [(np.add, (cond, kind(-1), keep)), masked]
    # a large mask: cond - 1 in bytes (0 or -1) and a widening copy (sign-extended: all bits or none)
    # cost less than one add that casts each bool to the wide integer (a third of the time at 256x512)
    byte = _owner(rec, buf.shape, np.dtype(np.int8), "C", np.ndarray)
    rec.buffers.append(byte)
    return [(np.subtract, (cond.view(np.int8), np.int8(1), byte)), (np.copyto, (keep, byte)), masked]


_BYTE_MASK_MIN = 4096  # elements; below, the extra call costs more than the cast it saves


def _is_zero(value) -> bool:
    """Whether ``value`` is the number +0 (whose bits, in any float format, are all zero)."""
    return type(value) in (int, float, np.float32, np.float64) and value == 0 and not np.signbit(value)


def constants(steps: list, made: set | None = None) -> list:
    """``steps`` with the Python numbers of ufunc calls and fills as 0-d arrays (their ids added to
    ``made`` when given: arrays that nothing but these calls holds, never written)."""
    out = [_constant_step(fn, args) for fn, args in steps]
    if made is not None:
        for (_, before), (_, after) in zip(steps, out):
            made.update(id(a) for a, b in zip(after, before) if a is not b)
    return out


def _constant_step(fn, args: tuple) -> tuple:
    if fn is np.copyto and len(args) == 2 and isinstance(args[0], np.ndarray):
        value = _exact(args[1], args[0].dtype)
        return (fn, (args[0], value)) if value is not None else (fn, args)
    if type(fn) is np.ufunc and fn.nout == 1 and len(args) == fn.nin + 1:
        inputs, out = args[:-1], args[-1]
    elif (type(fn) is functools.partial and type(fn.func) is np.ufunc and fn.func.nout == 1 and not fn.args
          and fn.keywords.keys() == {"out"} and len(fn.keywords["out"]) == 1 and len(args) == fn.func.nin):
        inputs, out = args, fn.keywords["out"][0]  # maximum & co.: out= as a keyword
    else:
        return fn, args
    dtypes = {a.dtype for a in inputs if isinstance(a, np.ndarray)}
    if not isinstance(out, np.ndarray) or len(dtypes) != 1:
        return fn, args
    dtype = dtypes.pop()  # the loop NumPy picks for it and a weak Python number (out= may differ: x <= 0)
    converted = [_exact(a, dtype) if _is_number(a) else a for a in inputs]
    if any(c is None for c in converted) or all(isinstance(a, np.ndarray) for a in inputs):
        return fn, args  # a number not exact in the dtype (NumPy's rounding decides), or none at all
    return fn, (*converted, *args[len(inputs):])


def scalars(steps: list) -> list:
    """``steps`` with each one-element input of a larger elementwise call as a 0-d view (broadcast
    like a scalar, on NumPy's fast path), and each reduction of a column (N, 1) down its length
    as that of its (N,) view into a 0-d view of the output."""
    return [_scalar_step(fn, args) for fn, args in steps]


def _scalar_step(fn, args: tuple) -> tuple:
    if (getattr(fn, "__name__", "") == "reduce" and isinstance(getattr(fn, "__self__", None), np.ufunc)
            and len(args) == 5 and isinstance(args[0], np.ndarray) and isinstance(args[3], np.ndarray)):
        a, axis, dtype, out, keepdims = args
        # the iterator drops the length-1 axis either way: one run of N elements (pairwise for add)
        if (a.ndim == 2 and a.shape[0] > 1 and a.shape[1] == 1 and axis in (0, -2, (0,), (-2,))
                and keepdims is False and out.shape == (1,)):
            return fn, (a[:, 0], 0, dtype, out.reshape(()), False)
        return fn, args
    if (type(fn) is not np.ufunc or fn.signature is not None  # a gufunc (matmul) is not elementwise
            or fn.nout != 1 or len(args) != fn.nin + 1 or not isinstance(args[-1], np.ndarray)):
        return fn, args
    out = args[-1]
    if out.size <= 1:
        return fn, args
    # the same value against every element; an input on the output's bytes stays as it is (NumPy copies it)
    return fn, (*(a.reshape(()) if isinstance(a, np.ndarray) and a.size == 1 and a.ndim
                  and not np.may_share_memory(a, out) else a for a in args[:-1]), out)


_DOT_MAX = 1 << 20  # multiply-adds: above this the call's overhead is noise, and matmul stays as recorded


def dots(steps: list) -> list:
    """``steps`` with each small matrix-matrix, matrix-column and row-matrix ``matmul(a, b, out)`` as
    ``np.dot(a, b, out)``."""
    return [(np.dot, args) if fn is np.matmul and (_same_gemm(*args) or _same_gemv(*args)) else (fn, args)
            for fn, args in steps]


def _same_gemm(*args) -> bool:
    """Whether NumPy's dot and matmul make one and the same BLAS gemm call for ``matmul(a, b, out)``:
    float matrices with every side above 1 (a side of 1 takes other paths, each its own), each
    operand C- or F-ordered (dot copies others), a C-ordered ``out`` of the product's shape, and
    no memory shared (a matrix times its own transpose goes to syrk)."""
    if len(args) != 3 or not all(isinstance(a, np.ndarray) and a.ndim == 2 for a in args):
        return False
    a, b, out = args
    (m, n), (n2, p) = a.shape, b.shape
    return (a.dtype == b.dtype == out.dtype and a.dtype in (np.float32, np.float64) and n == n2
            and min(m, n, p) > 1 and m * n * p <= _DOT_MAX and out.shape == (m, p) and out.flags.c_contiguous
            and all(x.flags.c_contiguous or x.flags.f_contiguous for x in (a, b)) and out.flags.aligned
            and not (np.may_share_memory(a, b) or np.may_share_memory(a, out) or np.may_share_memory(b, out)))


def _same_gemv(*args) -> bool:
    """Whether NumPy's dot and matmul make one and the same BLAS gemv call for ``matmul(a, b, out)``:
    a matrix (C- or F-ordered, both sides above 1) times a column, or a row times such a matrix,
    of one float dtype, the vector's strides positive multiples of its item size, a C-ordered
    ``out``, no memory shared. Both name the matrix's layout to cblas the other way round (matmul
    as column-major and transposed where dot says row-major), which is the same call to gemv."""
    if len(args) != 3 or not all(isinstance(a, np.ndarray) and a.ndim == 2 for a in args):
        return False
    a, b, out = args
    (m, n), (n2, p) = a.shape, b.shape
    if p == 1 and m > 1:
        matrix, vector = a, b
    elif m == 1 and p > 1:
        matrix, vector = b, a
    else:
        return False
    size = vector.itemsize
    return (a.dtype == b.dtype == out.dtype and a.dtype in (np.float32, np.float64) and n == n2 and n > 1
            and m * n * p <= _DOT_MAX and out.shape == (m, p) and out.flags.c_contiguous and out.flags.aligned
            and (matrix.flags.c_contiguous or matrix.flags.f_contiguous) and matrix.flags.aligned
            and vector.flags.aligned and all(st > 0 and st % size == 0 for st in vector.strides)
            and not (np.may_share_memory(a, b) or np.may_share_memory(a, out) or np.may_share_memory(b, out)))


def _is_number(value) -> bool:
    return type(value) in (int, float)


def _exact(value, dtype: np.dtype):
    """``value`` as a 0-d array of ``dtype`` when it is a Python number that this float dtype holds
    exactly (NumPy's own conversion gives the same then); else None."""
    if not _is_number(value) or dtype.kind != "f":
        return None
    array = np.array(value, dtype=dtype)
    if not np.isfinite(array) or float(array) != value:
        return None
    return array


def merge_sgd(steps: list, buffers: list, private: list, alloc) -> tuple[list, list, Callable]:
    """Plain SGD's ``multiply(g, rate, tmp); subtract(p, tmp, p)`` for consecutive parameters as
    one ``multiply`` over all their gradients and one ``subtract`` each: the gradients move into
    one array of the plan (views of it, each starting on a cache line), the scratch into another.

    ``buffers``: the plan's own arrays; ``private``: optimizer state that nothing outside the
    step reads (its scratch: a replay need not write it); ``alloc(n, dtype)``: a new array of
    the plan. Returns the steps, the private arrays no longer written, and ``moved(value)``,
    which gives a value holding arrays (a Tensor's data) its arrays where they now are."""
    owned = {(b.ctypes.data, b.nbytes) for b in buffers if b.flags.c_contiguous}
    scratch = {(a.ctypes.data, a.nbytes) for a in private if a.flags.c_contiguous}
    out: list = []
    moves: list = []
    freed: list = []
    i = 0
    while i < len(steps):
        run = _sgd_run(steps, i, owned, scratch)
        if len(run) < 2:
            out.append(steps[i])
            i += 1
            continue
        grads, rate, scratches, params = zip(*run)
        dtype = params[0].dtype
        starts = list(itertools.accumulate((-(-g.size // _LINE_ITEMS) * _LINE_ITEMS for g in grads), initial=0))
        piece = _SCRATCH_BYTES // dtype.itemsize  # a multiple of a line's items: pieces start on lines
        flat_g, flat_t = alloc(starts[-1], dtype), alloc(min(starts[-1], piece), dtype)
        flat_g[...] = 0  # the padding between gradients: multiplied like the rest, read by nobody
        for g, start in zip(grads, starts):
            flat_g[start:start + g.size] = g.ravel()
            moves.append((g.ctypes.data, g.nbytes, flat_g, start * dtype.itemsize))
        for lo in range(0, starts[-1], piece):
            hi = min(lo + piece, starts[-1])
            out.append((np.multiply, (flat_g[lo:hi], rate[0], flat_t[:hi - lo])))
            for p, start in zip(params, starts):
                a, b = max(lo, start), min(hi, start + p.size)
                if a >= b:
                    continue
                whole = a == start and b == start + p.size
                part, tmp = (p, flat_t[a - lo:b - lo].reshape(p.shape)) if whole else (
                    p.reshape(-1)[a - start:b - start], flat_t[a - lo:b - lo])
                out.append((np.subtract, (part, tmp, part)))
        freed += scratches
        i += 2 * len(run)
    if not moves:
        return steps, [], _unmoved
    moved = functools.partial(_moved, moves=moves)
    return [(moved(fn), moved(args)) for fn, args in out], freed, moved


def shared_views(steps: list) -> list:
    """``steps`` with equal views of one memory (address, shape, strides, dtype, writability) as one
    ndarray object, in their positional arguments and in a partial's ``out=``."""
    seen: dict = {}

    def one(a):
        if type(a) is not np.ndarray:
            return a
        key = (a.__array_interface__["data"], a.shape, a.strides, a.dtype)
        return seen.setdefault(key, a)

    out = []
    for fn, args in steps:
        outs = fn.keywords.get("out") if type(fn) is functools.partial else None
        if isinstance(outs, tuple):
            fn = functools.partial(fn.func, *fn.args, **{**fn.keywords, "out": tuple(one(a) for a in outs)})
        out.append((fn, tuple(one(a) for a in args)))
    return out


_LINE_ITEMS = 16  # float32s per 64-byte cache line: each gradient starts on a line (SIMD loads stay aligned)
_SCRATCH_BYTES = CACHE_PIECE_BYTES  # the update's scratch: a piece of the gradients


def _sgd_run(steps: list, i: int, owned: set, scratch: set) -> list:
    """The (gradient, rate, scratch, parameter) of each SGD update pair from ``steps[i]`` on, for one
    rate array and dtype; a scratch array read anywhere else ends the run."""
    run: list = []
    while i + 1 < len(steps):
        (f1, a1), (f2, a2) = steps[i], steps[i + 1]
        if f1 is not np.multiply or f2 is not np.subtract or len(a1) != 3 or len(a2) != 3:
            break
        (g, rate, t), (p, t2, p2) = a1, a2
        if not all(isinstance(a, np.ndarray) for a in (g, rate, t, p, t2, p2)):
            break
        if (rate.shape != () or (g.ctypes.data, g.nbytes) not in owned or (t.ctypes.data, t.nbytes) not in scratch
                or not _same(t, t2) or not _same(p, p2) or not p.flags.c_contiguous or p.dtype.kind != "f"
                or not (g.shape == t.shape == p.shape) or not (g.dtype == t.dtype == p.dtype == rate.dtype)
                or (run and (not _same(rate, run[0][1]) or p.dtype != run[0][3].dtype))
                or _used_elsewhere(steps, t, (i, i + 1))):
            break
        run.append((g, rate, t, p))
        i += 2
    return run


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.ctypes.data == b.ctypes.data and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype


def _used_elsewhere(steps: list, array: np.ndarray, skip: tuple) -> bool:
    return any(np.may_share_memory(a, array) for k, (fn, args) in enumerate(steps) if k not in skip
               for a in arrays_in(fn, args))


def arrays_in(*values) -> list:
    """Every array in ``values``: themselves, inside tuples, lists and dicts, a partial's arguments."""
    found: list = []
    for v in values:
        if isinstance(v, np.ndarray):
            found.append(v)
        elif isinstance(v, tuple | list):
            found += arrays_in(*v)
        elif isinstance(v, dict):
            found += arrays_in(*v.values())
        elif isinstance(v, functools.partial):
            found += arrays_in(v.args, v.keywords)
    return found


def _unmoved(value):
    return value


def moved_result(result, moved: Callable):
    """A step's result with its Tensors' arrays (changed in place) and other arrays as ``moved`` gives them."""
    if isinstance(result, Tensor):
        result.data = moved(result.data)
        return result
    if isinstance(result, tuple | list):
        return type(result)(moved_result(r, moved) for r in result)
    if isinstance(result, dict):
        return {k: moved_result(v, moved) for k, v in result.items()}
    return moved(result)


def _moved(value, moves: list):
    """``value`` with every array inside it (tuples, lists, dicts, a partial's arguments) that lies
    in a moved buffer made again, with the same shape, strides and dtype, where that buffer went."""
    if isinstance(value, np.ndarray):
        if value.size:
            address = value.ctypes.data
            for start, nbytes, target, offset in moves:
                if start <= address < start + nbytes:
                    return np.ndarray(value.shape, value.dtype, buffer=target, offset=offset + address - start,
                                      strides=value.strides)
        return value
    if isinstance(value, tuple | list):
        return type(value)(_moved(v, moves) for v in value)
    if isinstance(value, dict):
        return {k: _moved(v, moves) for k, v in value.items()}
    if isinstance(value, functools.partial):
        return functools.partial(value.func, *_moved(value.args, moves), **_moved(value.keywords, moves))
    return value

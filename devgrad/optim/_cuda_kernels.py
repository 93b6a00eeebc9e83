"""The optimizers' update kernels on CUDA devices: every parameter of a group in one launch of
devgrad's multi-tensor kernels (``devgrad.backend.cuda_kernels`` launches them). Registered by
``devgrad.optim._kernels`` and imported when a GPU first runs one; same functions and
signatures as the CPU's there.

One tensor's update is the multi-tensor kernel over a table of one: the module needs no second
copy of each optimizer (four kernels less for NVRTC to compile on a fresh machine). A tensor
that is not a contiguous float32/float64 array (a strided view, float16) is updated through a
contiguous working copy in the module's dtype (float16 widened to float64, its arithmetic in
double anyway), written back once, rounded once.
"""

from __future__ import annotations

from array import array as _words

import numpy as np

from devgrad.backend import cuda_kernels as cuda
from devgrad.backend.cuda_sources import TABLE_CAPACITY, TABLE_FIELDS

TABLE_DTYPE = np.dtype([(name, kind, (TABLE_CAPACITY,)) for name, kind in TABLE_FIELDS]
                       + [("start", "i8", (TABLE_CAPACITY + 1,)), ("count", "i8")])


def _work_dtype(p):
    return p.dtype if p.dtype in cuda.CTYPE else np.dtype(np.float64)


def _one_by_one(arrays, update) -> None:
    """``update(work)`` on ``arrays`` (p first; None stays None) as contiguous arrays of the
    module's dtype (working copies where they are not, written back after): one tensor that a
    multi-tensor launch cannot take in place."""
    dtype = _work_dtype(arrays[0])
    work = [a if a is None or (a.dtype == dtype and a.flags.c_contiguous) else a.astype(dtype, order="C")
            for a in arrays]
    update(work)
    for target, value in zip(arrays, work):
        if target is not None and value is not target:
            target[...] = value


def sgd_update(p, g, buf, tmp, lr, momentum, dampening, weight_decay, nesterov, maximize, first) -> None:
    g = g.astype(_work_dtype(p), copy=False)
    _one_by_one((p, buf), lambda w: sgd_update_many([(w[0], g, w[1], None, first)], lr, momentum, dampening,
                                                    weight_decay, nesterov, maximize))


def adam_update(p, g, m, v, vmax, tmp, lr, step, b1, b2, eps, weight_decay, decoupled, maximize) -> None:
    g = g.astype(_work_dtype(p), copy=False)
    _one_by_one((p, m, v, vmax), lambda w: adam_update_many([(w[0], g, *w[1:], None, step)], lr, b1, b2, eps,
                                                            weight_decay, decoupled, maximize))


# -- multi-tensor updates: one launch for every parameter of a group ----------------------------

_TABLE_WORDS = TABLE_DTYPE.itemsize // 8  # every field is 8 bytes: the table is a row of words
_FIELD_AT = {name: i * TABLE_CAPACITY for i, (name, _) in enumerate(TABLE_FIELDS)}  # first word of each field
_START_AT = len(TABLE_FIELDS) * TABLE_CAPACITY
assert TABLE_DTYPE.itemsize == 8 * (_START_AT + TABLE_CAPACITY + 2), "the table must be all 8-byte words"


def _tables(items, fields):
    """Yield (table, element count) for ``items`` in chunks of TABLE_CAPACITY: each item is a
    tuple of arrays (in ``fields`` order, None for unused) and a step count (a number, a 0-d
    float64 device array, or None). The table is written as one list of words (an optimizer step
    builds one per launch, on the host's time), then viewed as the struct."""
    offsets = [_FIELD_AT[f] for f in fields]
    step_at, step_value = _FIELD_AT["step_at"], _FIELD_AT["step"]
    ndarray = cuda.module().ndarray
    for first in range(0, len(items), TABLE_CAPACITY):
        chunk = items[first:first + TABLE_CAPACITY]
        words = [0] * _TABLE_WORDS
        values = []  # (word, float) for numeric step counts
        total = 0
        for k, (arrays, step) in enumerate(chunk):
            for at, array in zip(offsets, arrays):
                if array is not None:
                    words[at + k] = cuda.address(array)
            if isinstance(step, ndarray):  # a capturable count: read on the device
                words[step_at + k] = cuda.address(step)
            elif step is not None:
                values.append((step_value + k, float(step)))
            words[_START_AT + k] = total
            total += 0 if arrays[0] is None else arrays[0].size
        words[_START_AT + len(chunk)] = total
        words[-1] = len(chunk)  # count
        table = np.frombuffer(_words("Q", words), dtype=np.uint64)  # half np.array's time for a list
        if values:
            as_float = table.view(np.float64)
            for at, value in values:
                as_float[at] = value
        yield table.view(TABLE_DTYPE), total


def _same_dtype_contiguous(items, name):
    """The items' arrays with each gradient (the second array) made contiguous, checked to share
    one float dtype; the other arrays are updated in place and must already be contiguous."""
    dtype = items[0][0][0].dtype
    if dtype not in cuda.CTYPE:
        raise TypeError(f"{name}: parameters of dtype {dtype}: the fused update takes float32 or float64")
    fixed = []
    for arrays, step in items:
        for array in arrays:
            if array is not None and array.dtype != dtype:
                raise TypeError(f"{name}: one launch takes one dtype, got {array.dtype} and {dtype}")
        fixed.append(([arrays[0], cuda.contiguous(arrays[1]), *arrays[2:]], step))
    return fixed, cuda.CTYPE[dtype]


def _in_place_ready(arrays) -> bool:
    """True when the module has a build for the parameter's dtype and every array a multi-tensor
    update writes (all but the gradient) is contiguous. Otherwise the one-tensor update copies
    back (a strided view) or widens (float16)."""
    return arrays[0].dtype in cuda.CTYPE and all(a is None or a.flags.c_contiguous
                                                 for i, a in enumerate(arrays) if i != 1)


def _lr_args(lr):
    if isinstance(lr, cuda.module().ndarray):  # a capturable lr: read on the device
        return lr if lr.dtype == np.float64 else lr.astype(np.float64), np.float64(0.0)
    return np.uint64(0), np.float64(lr)


def increment_steps(steps) -> None:
    """Add 1 to each 0-d float64 step array (a capturable optimizer's counts), in one launch."""
    if not steps:
        return
    for table, _ in _tables([((None,), s) for s in steps], ("p",)):
        kernel = cuda.function("devgrad_increment_steps", cuda.compiled_ctype())
        kernel(cuda.blocks(len(steps)), (cuda.BLOCK,), (table,))


def adam_update_many(items, lr, b1, b2, eps, weight_decay, decoupled, maximize) -> None:
    """``adam_update`` for each item (p, g, m, v, vmax or None, scratch (unused), step): one
    launch per dtype (and per TABLE_CAPACITY tensors) for the whole group."""
    groups: dict = {}
    for p, g, m, v, vmax, tmp, step in items:
        if not _in_place_ready((p, g, m, v, vmax)):  # strided, or float16: the one-tensor path
            adam_update(p, g, m, v, vmax, tmp, lr, step, b1, b2, eps, weight_decay, decoupled, maximize)
            continue
        groups.setdefault((p.dtype, vmax is not None), []).append(((p, g, m, v, vmax), step))
    lr_at, lr_value = _lr_args(lr)
    for (_, amsgrad), group in groups.items():
        group, ctype = _same_dtype_contiguous(group, "adam")
        for table, total in _tables(group, ("p", "g", "a", "b", "c")):
            if total:
                cuda.run_kernel("adam_many", ctype, total, table, lr_at, lr_value, np.float64(b1), np.float64(b2),
                                np.float64(eps), np.float64(weight_decay), np.int32(decoupled), np.int32(maximize),
                                np.int32(amsgrad))


def sgd_update_many(items, lr, momentum, dampening, weight_decay, nesterov, maximize) -> None:
    """``sgd_update`` for each item (p, g, momentum buffer or None, scratch (unused), first):
    one launch per dtype, buffer use and first step (and per TABLE_CAPACITY tensors)."""
    groups: dict = {}
    for p, g, buf, tmp, first in items:
        if not _in_place_ready((p, g, buf)):  # strided, or float16: the one-tensor path
            sgd_update(p, g, buf, tmp, lr, momentum, dampening, weight_decay, nesterov, maximize, first)
            continue
        groups.setdefault((p.dtype, buf is not None, bool(first)), []).append(((p, g, buf), None))
    lr_at, lr_value = _lr_args(lr)
    for (_, has_buf, first), group in groups.items():
        group, ctype = _same_dtype_contiguous(group, "sgd")
        for table, total in _tables(group, ("p", "g", "a")):
            if total:
                cuda.run_kernel("sgd_many", ctype, total, table, lr_at, lr_value, np.float64(momentum),
                                np.float64(dampening), np.float64(weight_decay), np.int32(nesterov),
                                np.int32(maximize), np.int32(first), np.int32(has_buf))


def rmsprop_update_many(items, lr, alpha, eps, weight_decay, momentum, centered, maximize) -> None:
    """RMSprop for each item (p, g, square_avg, momentum buffer or None, grad_avg or None): one
    launch per dtype (and per TABLE_CAPACITY tensors)."""
    def launch_group(group):
        group, ctype = _same_dtype_contiguous(group, "rmsprop")
        for table, total in _tables(group, ("p", "g", "a", "b", "c")):
            if total:
                cuda.run_kernel("rmsprop_many", ctype, total, table, *_lr_args(lr), np.float64(alpha), np.float64(eps),
                                np.float64(weight_decay), np.float64(momentum), np.int32(centered), np.int32(maximize))

    groups: dict = {}
    for p, g, sq, buf, ga in items:
        if _in_place_ready((p, g, sq, buf, ga)):
            groups.setdefault(p.dtype, []).append(((p, g, sq, buf, ga), None))
        else:  # strided, or float16
            dtype = _work_dtype(p)
            _one_by_one((p, sq, buf, ga), lambda w, g=g, dtype=dtype: launch_group(
                [((w[0], g.astype(dtype, copy=False), *w[1:]), None)]))
    for group in groups.values():
        launch_group(group)


def adagrad_update_many(items, lr, lr_decay, weight_decay, eps, maximize) -> None:
    """Adagrad for each item (p, g, sum, step count: a number or a 0-d float64 device array, already
    advanced): one launch per dtype (and per TABLE_CAPACITY tensors)."""
    def launch_group(group):
        group, ctype = _same_dtype_contiguous(group, "adagrad")
        for table, total in _tables(group, ("p", "g", "a")):
            if total:
                cuda.run_kernel("adagrad_many", ctype, total, table, *_lr_args(lr), np.float64(lr_decay),
                                np.float64(weight_decay), np.float64(eps), np.int32(maximize))

    groups: dict = {}
    for p, g, total, step in items:
        if _in_place_ready((p, g, total)):
            groups.setdefault(p.dtype, []).append(((p, g, total), step))
        else:  # strided, or float16
            dtype = _work_dtype(p)
            _one_by_one((p, total), lambda w, g=g, step=step, dtype=dtype: launch_group(
                [((w[0], g.astype(dtype, copy=False), w[1]), step)]))
    for group in groups.values():
        launch_group(group)

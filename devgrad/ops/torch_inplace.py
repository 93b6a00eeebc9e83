"""PyTorch's in-place methods (``exp_``, ``add_(other, alpha=)``, ``fill_``, ``uniform_``, ...),
its dtype methods (``half``, ``type``) and ``f"{t:.3f}"`` on a one-element tensor.

An in-place change is allowed where no graph is being recorded through the tensor: inside
``dg.no_grad()`` (a parameter update, an initialisation), or on a tensor that does not require
grad. devgrad records no in-place op, so changing a tensor of the graph while it is recorded
is an error that names the out-of-place form, never a silent rebinding. A change bumps the
tensor's version, so a graph that saved it refuses to backward through stale values.
"""

from __future__ import annotations

import numpy as np

from devgrad.backend import DeviceError
from devgrad.core import Tensor, as_dtype, is_grad_enabled
from devgrad.cpu_capture import traced_if_recording
from devgrad.ops.elementwise import cast
from devgrad.random import get_generator


def _check(a: Tensor, name: str, other=None) -> None:
    """Refuse an in-place change that a recorded graph would need to see."""
    if not is_grad_enabled():
        return
    if a.requires_grad or (isinstance(other, Tensor) and other.requires_grad):
        base = name.rstrip("_")
        what = "a leaf that requires grad (a parameter)" if a.requires_grad and a.grad_fn is None else \
            "a tensor of the graph being recorded"
        raise RuntimeError(f"{name}() changes {what} in place while the graph is recorded, and devgrad records no "
                           f"in-place op: do it inside dg.no_grad() (an update or an initialisation), or write "
                           f"the out-of-place y = x.{base}(...)")


def _value(a: Tensor, other, name: str):
    """``other`` as what NumPy/CuPy arithmetic on ``a.data`` takes: an array of a's device or a
    Python scalar (so float32 stays float32)."""
    if isinstance(other, Tensor):
        if other.device is not a.device:
            raise DeviceError(f"{name}: tensors are on different devices, {a.device} and {other.device}")
        return other.data
    if isinstance(other, np.generic):
        return other.item()
    if isinstance(other, np.ndarray | list | tuple):
        return a.device.put(np.asarray(other))
    return other


def _write(a: Tensor, values) -> Tensor:
    """Store ``values`` into ``a``'s array (cast to its dtype) and record the change."""
    try:
        traced_if_recording(a.data)[...] = values  # a step recorded for replay repeats the write
    except ValueError:
        if not getattr(getattr(a.data, "flags", None), "writeable", True):
            raise ValueError("in-place: the tensor is read-only, a broadcast view (expand, broadcast_to) whose "
                             "elements share memory; write into a copy (x.expand(...).clone())") from None
        raise ValueError(f"in-place: a result of shape {getattr(values, 'shape', ())} does not fit the tensor's "
                         f"shape {a.shape} (an in-place op cannot grow a tensor by broadcasting)") from None
    a._bump_version()
    return a


def _write_result(a: Tensor, result, name: str) -> Tensor:
    """Store an arithmetic result into ``a`` where PyTorch would: a float result into an integer
    tensor is an error there (it would be truncated silently), not a write."""
    dtype = getattr(result, "dtype", None)
    if dtype is not None and not np.can_cast(dtype, a.dtype, casting="same_kind"):
        raise TypeError(f"{name}: the result is {dtype}, which a {a.dtype} tensor cannot hold without "
                        f"truncating it; use the out-of-place x.{name.rstrip('_')}(...), or x.astype(...) first")
    return _write(a, result)


def _unary_(name: str, fn, floating: bool = True):
    def method(a: Tensor) -> Tensor:
        _check(a, name)
        if floating and a.dtype.kind != "f":
            raise TypeError(f"{name}() on a {a.dtype} tensor: the result is not an integer; use .{name[:-1]}() "
                            "for a new floating-point tensor")
        with np.errstate(all="ignore"), a.device.activate():
            return _write(a, fn(a.device, traced_if_recording(a.data)))

    method.__name__ = name
    method.__doc__ = f"In place: ``x.{name}()`` is ``x = x.{name[:-1]}()`` on x's own memory."
    return method


def _binary_(name: str, fn):
    def method(a: Tensor, other) -> Tensor:
        _check(a, name, other)
        with np.errstate(all="ignore"), a.device.activate():
            return _write_result(a, fn(traced_if_recording(a.data), _value(a, other, name)), name)

    method.__name__ = name
    method.__doc__ = f"In place: ``x.{name}(y)`` is ``x = x.{name[:-1]}(y)`` on x's own memory."
    return method


def add_(a: Tensor, other, *, alpha=1) -> Tensor:
    """In place: ``x += alpha * other`` (PyTorch's ``add_(other, alpha=)``)."""
    _check(a, "add_", other)
    value = _value(a, other, "add_")
    with a.device.activate():
        return _write_result(a, traced_if_recording(a.data) + (value if alpha == 1 else value * alpha), "add_")


def sub_(a: Tensor, other, *, alpha=1) -> Tensor:
    """In place: ``x -= alpha * other``."""
    _check(a, "sub_", other)
    value = _value(a, other, "sub_")
    with a.device.activate():
        return _write_result(a, traced_if_recording(a.data) - (value if alpha == 1 else value * alpha), "sub_")


def clamp_(a: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
    """In place: clamp to [min, max] (either may be None)."""
    _check(a, "clamp_", min)
    _check(a, "clamp_", max)
    if min is None and max is None:
        raise ValueError("clamp_: give at least one of min, max")
    with a.device.activate():
        low, high = _value(a, min, "clamp_"), _value(a, max, "clamp_")
        return _write_result(a, a.xp.clip(traced_if_recording(a.data), low, high), "clamp_")


def copy_(a: Tensor, src) -> Tensor:
    """In place: ``a``'s values become ``src``'s (broadcast to a's shape, cast to a's dtype)."""
    _check(a, "copy_", src)
    return _write(a, _value(a, src, "copy_"))


def fill_(a: Tensor, value) -> Tensor:
    """In place: every element becomes ``value``."""
    _check(a, "fill_", value)
    return _write(a, _value(a, value, "fill_"))


def uniform_(a: Tensor, low: float = 0.0, high: float = 1.0, *, generator=None) -> Tensor:
    """In place: uniform samples in [low, high), drawn on the host (devgrad's default generator,
    or ``generator``: a seed or a NumPy Generator) so a seed gives the same values on any device."""
    _check(a, "uniform_")
    return _write(a, a.device.put(get_generator(generator).uniform(low, high, a.shape).astype(a.dtype)))


def normal_(a: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """In place: normal samples of ``mean`` and ``std``, drawn on the host like ``uniform_``."""
    _check(a, "normal_")
    return _write(a, a.device.put(get_generator(generator).normal(mean, std, a.shape).astype(a.dtype)))


def half(a: Tensor) -> Tensor:
    """``a`` as float16 (differentiable)."""
    return cast(a, np.float16)


# PyTorch's legacy type names, for ``x.type('torch.DoubleTensor')``
_TYPE_NAMES = {"FloatTensor": "float32", "DoubleTensor": "float64", "HalfTensor": "float16", "LongTensor": "int64",
               "IntTensor": "int32", "BoolTensor": "bool", "ByteTensor": "uint8"}


def type_(a: Tensor, dtype=None):
    """``x.type()``: the dtype's name ('float32'); ``x.type(dtype)``: ``x`` cast to it (a dtype,
    its name, or PyTorch's 'torch.DoubleTensor' style)."""
    if dtype is None:
        return str(a.dtype)
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _TYPE_NAMES:
        dtype = _TYPE_NAMES[dtype.removeprefix("torch.")]
    return cast(a, as_dtype(dtype))


def format_(a: Tensor, spec: str) -> str:
    """``f"{t:.3f}"``: a one-element tensor formats as its number; any tensor formats with ``f"{t}"``."""
    if not spec:
        return str(a)
    if a.data.size != 1:
        raise TypeError(f"format {spec!r} applies to a number; this tensor has shape {a.shape} ({a.data.size} "
                        "elements): format one element, e.g. f'{t[0].item():.3f}', or the tensor with f'{t}'")
    return format(a.item(), spec)


def _sigmoid(device, x):
    return device.kernels.sigmoid(x)


INPLACE_METHODS = {
    "add_": add_, "sub_": sub_, "clamp_": clamp_, "copy_": copy_, "fill_": fill_,
    "uniform_": uniform_, "normal_": normal_,
    "mul_": _binary_("mul_", lambda x, y: x * y), "div_": _binary_("div_", lambda x, y: x / y),
    "pow_": _binary_("pow_", lambda x, y: x**y),
    "exp_": _unary_("exp_", lambda d, x: d.xp.exp(x)), "log_": _unary_("log_", lambda d, x: d.xp.log(x)),
    "sqrt_": _unary_("sqrt_", lambda d, x: d.xp.sqrt(x)), "abs_": _unary_("abs_", lambda d, x: d.xp.abs(x), False),
    "neg_": _unary_("neg_", lambda d, x: -x, False), "tanh_": _unary_("tanh_", lambda d, x: d.xp.tanh(x)),
    "sigmoid_": _unary_("sigmoid_", _sigmoid), "relu_": _unary_("relu_", lambda d, x: d.xp.where(x < 0, 0, x), False),
    "half": half, "type": type_, "__format__": format_,
}

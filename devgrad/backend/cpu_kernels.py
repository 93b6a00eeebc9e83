"""The CPU's primitive kernels: what one CUDA kernel does, as short chains of in-place NumPy calls.

Registered for the CPU by ``devgrad.backend`` (``backend.PRIMITIVES``) and reached as
``device.kernels.<name>``; ``devgrad.backend.cuda_kernels`` has the same functions with the
same signatures for CUDA devices. The layers above register their own kernels next to the
code that uses them.
"""

from __future__ import annotations

import functools

import numpy as np

from devgrad.backend.fp_errors import quiet


def _constants(value: int) -> dict:
    """``value`` as a read-only 0-d array of each float dtype."""
    table = {}
    for dtype in (np.float16, np.float32, np.float64):
        array = np.full((), value, dtype)
        array.flags.writeable = False
        table[array.dtype] = array
    return table


# 0 and 1 as 0-d arrays of each float dtype, for the kernels' ufunc calls on every step: a ufunc
# converts a Python number on every call (about as much work as the call itself on a small array).
# Looked up by the other operand's dtype, the array holds the same exact number in the dtype NumPy
# would convert it to, so the call runs the same loop and gives the same bits. Other dtypes get
# the Python number (``ZERO.get(a.dtype, 0)``).
ZERO = _constants(0)
ONE = _constants(1)


def scatter_add(target: np.ndarray, index, values) -> None:
    """target[index] += values, accumulating repeated indices."""
    np.add.at(target, index, values)


# exp overflowing to inf gives exactly 0, silently (``quiet``: inside an op's forward or the
# backward walk, where NumPy's floating-point errors are ignored already, it only reads the state).

@quiet
def _sigmoid_inplace(x: np.ndarray) -> np.ndarray:
    """The logistic function in place."""
    np.negative(x, out=x)
    np.exp(x, out=x)
    x += ONE.get(x.dtype, 1)
    np.reciprocal(x, out=x)
    return x


@quiet
def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in place on one buffer; exp overflowing to inf gives exactly 0."""
    out = np.negative(x, out=np.empty_like(x))  # an array even for 0-d input
    np.exp(out, out=out)
    out += ONE.get(out.dtype, 1)
    np.reciprocal(out, out=out)
    return out


@functools.cache
def _maximum_is_relu(dtype: np.dtype) -> bool:
    """Does ``np.maximum(0, a)`` give ``np.where(a < 0, 0, a)`` bit for bit for this dtype (-0.0
    and NaN kept as they are, PyTorch's relu) on every length and lane? NumPy documents maximum's
    NaN rule, not which of two equal zeros it returns (float16's gives +0.0 on x86, float32's and
    float64's -0.0), so it is checked once per dtype on this NumPy and CPU."""
    pattern = np.array([-0.0, np.nan, -np.nan, -1.0, 1.0, 0.0, np.inf, -np.inf])
    for n in (*range(1, 41), 63, 64, 65, 127, 129, 257):
        for shift in range(len(pattern)):
            a = np.resize(np.roll(pattern, shift), n).astype(dtype)
            if np.maximum(0, a).tobytes() != np.where(a < 0, 0, a).tobytes():
                return False
    return True


def relu(a):
    """PyTorch's relu on the CPU: ``np.where(a < 0, 0, a)`` (-0.0 and NaN pass as they are), by
    ``np.maximum`` where that is the same bit for bit: one vectorised pass instead of where's
    branch per element (5-10x faster from 64x128 up)."""
    if isinstance(a, np.ndarray) and a.dtype.kind == "f" and _maximum_is_relu(a.dtype):
        return np.maximum(0, a)
    return np.where(a < 0, 0, a)


# Each float dtype's integer twin of its width: a ReLU gradient selects g's bits as integers.
# The piece of a long elementwise update (plain SGD's scale and subtract) done at a time: its scratch
# stays in a core's cache between the two passes (the eager kernel and the captured plan's merged update)
CACHE_PIECE_BYTES = 1 << 18

_AS_INT = {np.dtype(np.float16): np.int16, np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def _relu_grad(g, y):
    """``np.where(y <= 0, 0, g)`` for a ReLU's output ``y`` (never below 0): as integers when g and
    y are float arrays alike, g's bits times 1 where y != 0 (NaN included) and times 0 (the bits of
    +0.0) where y is ±0. The same values (inf, NaN and -0.0 in g included) in two vectorised passes,
    not where's branch per element (about 10x slower on the random masks a ReLU layer gives).
    A step recorded for replay (``devgrad.cpu_capture``'s ndarray subclass) records these two calls."""
    as_int = _AS_INT.get(g.dtype) if isinstance(g, np.ndarray) and isinstance(y, np.ndarray) else None
    if as_int is not None and y.dtype == g.dtype and y.shape == g.shape:
        return np.multiply(g.view(as_int), np.not_equal(y, ZERO[y.dtype])).view(g.dtype)
    return np.where(y <= 0, 0, g)


def act_grad(act: str, g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dz from dL/dy = g for y = act(z), written from the activation's output y."""
    if act == "relu":  # selected, not multiplied by a mask: inf·0 would be NaN; a NaN output passes g
        return _relu_grad(g, y)
    # Operators rather than out= calls: for 0-d y they give NumPy scalars, which *= rebinds.
    one = ONE.get(y.dtype, 1.0)
    out = one - y if act == "sigmoid" else one - y * y
    if act == "sigmoid":
        out *= y
    out *= g
    return out


def bias_act_(out: np.ndarray, bias, act: str) -> np.ndarray:
    """out ← act(out + bias) in place (bias None: no bias; act "identity": the bias only)."""
    if bias is not None:
        out += bias
    if act == "relu":
        np.maximum(out, ZERO.get(out.dtype, 0), out=out)
    elif act == "sigmoid":
        _sigmoid_inplace(out)
    elif act == "tanh":
        np.tanh(out, out=out)
    elif act != "identity":
        raise ValueError(f"bias_act_: unknown activation {act!r}")
    return out


def fill_(out: np.ndarray, value: float) -> np.ndarray:
    """Every element of ``out`` set to ``value``, in place; returns ``out``."""
    out.fill(value)
    return out


def full(shape, value: float, dtype) -> np.ndarray:
    """A new array of ``shape`` and ``dtype`` filled with ``value``."""
    return np.full(shape, value, dtype=dtype)


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a × b into a new array of a's dtype and shape (an array also for 0-d a)."""
    return np.multiply(a, b, out=np.empty_like(a))


def gather_rows(src: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``src[index]``: the rows of ``src`` that ``index`` picks (the loader's shuffle)."""
    return src.take(index, axis=0)  # the same copy as src[index], several times faster for narrow rows


def launch_counts() -> None:
    """NumPy launches nothing: None (the CUDA module counts its kernels and GEMMs)."""
    return None


def sum_axes(a: np.ndarray, axes: tuple, scale: float | None = None) -> np.ndarray:
    """``a`` summed over ``axes`` (a bias gradient, a broadcast operand's gradient), times
    ``scale`` when given (a mean: the sum scaled by 1/n)."""
    out = np.add.reduce(a, axis=axes)  # a.sum(axis=axes) without its Python wrapper (on every bias gradient)
    return out if scale is None else out * scale

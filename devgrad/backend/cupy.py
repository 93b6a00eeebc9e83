"""The CUDA backend: CuPy arrays in GPU memory.

CuPy is optional. It is imported on first use, and any failure (not only ImportError:
a broken CUDA install can raise anything) is kept so that ``devgrad info`` and the error
raised when a user asks for ``cuda`` can say why the GPU is unavailable.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from devgrad.backend import numpy as _generic  # its xp-generic forms serve where a kernel does not fit

INSTALL_HINT = (
    "install the CuPy extra that matches your CUDA toolkit: "
    "pip install 'devgrad[cuda12]' (CUDA 12.x) or 'devgrad[cuda13]' (CUDA 13.x)"
)

_lock = threading.Lock()
_state: dict = {}


def _probe() -> dict:
    """Import CuPy and count devices once; remember the module or the reason it failed."""
    try:
        import cupy
    except ImportError as exc:
        return {"module": None, "count": 0, "version": None,
                "reason": f"CuPy is not installed ({exc}); {INSTALL_HINT}"}
    except Exception as exc:  # a broken CUDA install can raise anything at import
        return {"module": None, "count": 0, "version": None,
                "reason": f"CuPy failed to import: {type(exc).__name__}: {exc}"}
    version = getattr(cupy, "__version__", "?")
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:
        return {"module": None, "count": 0, "version": version,
                "reason": f"CuPy {version} is installed but no CUDA driver or GPU is usable: "
                          f"{type(exc).__name__}: {exc}"}
    if count == 0:
        return {"module": None, "count": 0, "version": version,
                "reason": f"CuPy {version} is installed but reports 0 CUDA devices"}
    return {"module": cupy, "count": count, "version": version, "reason": None}


def state() -> dict:
    """The probe result: module (or None), device count, CuPy version, reason unavailable."""
    if not _state:
        with _lock:
            if not _state:
                _state.update(_probe())
    return _state


def available() -> bool:
    return state()["module"] is not None


def device_count() -> int:
    return state()["count"]


def unavailable_reason() -> str | None:
    return state()["reason"]


def module():
    """The cupy module; raises RuntimeError with the reason when CUDA is unusable."""
    st = state()
    if st["module"] is None:
        raise RuntimeError(f"CUDA is not available: {st['reason']}")
    return st["module"]


def activate(index: int):
    """CuPy's context manager making GPU ``index`` the current device."""
    return module().cuda.Device(index)


def to_device(array, index: int):
    """Copy a host (or other-GPU) array onto GPU ``index`` (an array already there is returned as is)."""
    cp = module()
    if isinstance(array, cp.ndarray) and array.device.id != index:
        array = cp.asnumpy(array)  # cp.asarray would hand back the array on its old GPU
    with cp.cuda.Device(index):
        return cp.asarray(array)


def to_host(array) -> np.ndarray:
    """Copy a GPU array into host memory (this synchronizes)."""
    if isinstance(array, np.ndarray):
        return array
    return module().asnumpy(array)


def scatter_add(target, index, values) -> None:
    """target[index] += values, accumulating repeated indices (atomic adds on the GPU)."""
    import cupyx

    cupyx.scatter_add(target, index, values)


def generator(seed: int, index: int):
    cp = module()
    with cp.cuda.Device(index):
        return cp.random.RandomState(seed)


def uniform(gen, shape, dtype, index: int):
    cp = module()
    dtype = np.dtype(dtype)
    with cp.cuda.Device(index):
        if dtype in (np.float32, np.float64):
            return gen.random_sample(shape, dtype=dtype)
        return gen.random_sample(shape).astype(dtype)


# -- fused kernels ---------------------------------------------------------------------------
# One elementwise kernel where NumPy needs a chain of in-place calls: on a GPU each call is a
# launch (several microseconds of host time) and a pass over memory. Scalars that change from
# step to step (lr, the Adam step count) are parameters that take a number or a 0-d device
# array alike, so the same kernel serves eager steps and steps captured in a CUDA graph (which
# must read them from device memory). Arithmetic is in double and rounded once to T.

# Adam's inputs, and its body up to the new moments mi, vi (decay applied to pi or gi).
_ADAM_IN = ("T g, float64 lr, float64 step, float64 b1, float64 b2, float64 eps, float64 wd, int32 decoupled, "
            "int32 maximize")
_ADAM_MOMENTS = """
        double gi = maximize ? -(double)g : (double)g;
        double pi = (double)p;
        if (wd != 0.0) {
            if (decoupled) pi *= 1.0 - lr * wd; else gi += wd * pi;
        }
        double mi = b1 * (double)m + (1.0 - b1) * gi;
        double vi = b2 * (double)v + (1.0 - b2) * gi * gi;
        m = (T)mi;
        v = (T)vi;
"""

_KERNELS = {
    # exp overflowing to inf for x < -709 gives exactly 0, without any warning
    "sigmoid": ("T x", "T y", "y = (T)(1.0 / (1.0 + exp(-(double)x)))"),
    "relu_grad": ("T g, T y", "T gz", "gz = y > (T)0 ? g : (T)0"),
    "sigmoid_grad": ("T g, T y", "T gz", "gz = g * (y * ((T)1 - y))"),
    "tanh_grad": ("T g, T y", "T gz", "gz = g * ((T)1 - y * y)"),
    "bias_relu": ("T b", "T y", "T z = y + b; y = z > (T)0 ? z : (T)0"),
    "bias_sigmoid": ("T b", "T y", "y = (T)(1.0 / (1.0 + exp(-(double)(y + b))))"),
    "bias_tanh": ("T b", "T y", "y = tanh(y + b)"),
    "sgd": (
        "T g, float64 lr, float64 wd, int32 maximize", "T p",
        """
        double gi = maximize ? -(double)g : (double)g;
        if (wd != 0.0) gi += wd * (double)p;
        p = (T)((double)p - lr * gi);
        """),
    "sgd_momentum": (
        "T g, float64 lr, float64 momentum, float64 dampening, float64 wd, int32 nesterov, int32 maximize, "
        "int32 first", "T p, T buf",
        """
        double gi = maximize ? -(double)g : (double)g;
        if (wd != 0.0) gi += wd * (double)p;
        double b = first ? gi : momentum * (double)buf + (1.0 - dampening) * gi;
        buf = (T)b;
        double d = nesterov ? gi + momentum * b : b;
        p = (T)((double)p - lr * d);
        """),
    "adam": (_ADAM_IN, "T p, T m, T v", _ADAM_MOMENTS + """
        double denom = sqrt(vi) / sqrt(1.0 - pow(b2, step)) + eps;
        p = (T)(pi - lr / (1.0 - pow(b1, step)) * mi / denom);
        """),
    "adam_amsgrad": (_ADAM_IN, "T p, T m, T v, T vmax", _ADAM_MOMENTS + """
        double vm = fmax((double)vmax, (double)(T)vi);
        vmax = (T)vm;
        double denom = sqrt(vm) / sqrt(1.0 - pow(b2, step)) + eps;
        p = (T)(pi - lr / (1.0 - pow(b1, step)) * mi / denom);
        """),
    # Binary cross-entropy from logits, softplus(z) - z·y written to never overflow, and its
    # gradient (sigmoid(z) - y) times the upstream gradient (per element, or a scalar) and scale.
    "bce_logits": (
        "T z, T y", "T loss",
        "loss = (T)(fmax((double)z, 0.0) - (double)z * (double)y + log1p(exp(-fabs((double)z))))"),
    "bce_logits_grad": (
        "T z, T y, raw T g, float64 scale, int32 per_element", "T gz",
        """
        const double upstream = per_element ? (double)g[i] : (double)g[0];
        gz = (T)((1.0 / (1.0 + exp(-(double)z)) - (double)y) * upstream * scale);
        """),
    # Softmax cross-entropy, one thread per row of n_classes logits: the row's max, the sum of exps,
    # the probabilities (kept for backward) and the row's loss, with label smoothing.
    "softmax_xent": (
        "raw T z, raw int64 labels, int32 n_classes, float64 smoothing", "T loss, raw T probs",
        """
        const ptrdiff_t row = (ptrdiff_t)i * n_classes;
        double mx = (double)z[row];
        for (int j = 1; j < n_classes; ++j) mx = fmax(mx, (double)z[row + j]);
        double total = 0.0, shifted_sum = 0.0;
        for (int j = 0; j < n_classes; ++j) {
            const double s = (double)z[row + j] - mx;
            total += exp(s);
            shifted_sum += s;
        }
        const double inv = 1.0 / total;
        for (int j = 0; j < n_classes; ++j) probs[row + j] = (T)(exp((double)z[row + j] - mx) * inv);
        const double log_total = log(total);
        // A label outside [0, n_classes) gives a NaN loss (the run reports it) rather than a
        // read outside the row; labels are not range-checked on the GPU (that would sync).
        const long long label = labels[i];
        double value = (label >= 0 && label < n_classes) ? log_total - ((double)z[row + label] - mx) : nan("");
        if (smoothing != 0.0) value = (1.0 - smoothing) * value + smoothing * (log_total - shifted_sum / n_classes);
        loss = (T)value;
        """),
    # Its gradient: (probabilities - smoothed one-hot) times the upstream gradient (one per row
    # for reduction 'none', else a scalar) times the reduction's scale.
    "softmax_xent_grad": (
        "T p, raw int64 labels, raw T g, int32 n_classes, float64 smoothing, float64 scale, int32 per_row", "T gz",
        """
        const ptrdiff_t row = (ptrdiff_t)i / n_classes;
        const int col = (int)((ptrdiff_t)i - row * n_classes);
        double target = smoothing / n_classes;
        if (col == labels[row]) target += 1.0 - smoothing;
        const double upstream = per_row ? (double)g[row] : (double)g[0];
        gz = (T)(((double)p - target) * upstream * scale);
        """),
}
_compiled: dict = {}


def kernel(name: str):
    """The CuPy ElementwiseKernel ``name`` of ``_KERNELS`` (built once, compiled on first launch)."""
    k = _compiled.get(name)
    if k is None:
        in_params, out_params, body = _KERNELS[name]
        k = _compiled[name] = module().ElementwiseKernel(in_params, out_params, body, f"devgrad_{name}")
    return k


def sigmoid(x):
    return kernel("sigmoid")(x)


def act_grad(act: str, g, y):
    if g.dtype != y.dtype:  # a kernel's T-typed arrays must share one dtype
        g = g.astype(y.dtype)
    return kernel(f"{act}_grad")(g, y)


def bias_act_(out, bias, act: str):
    if bias is None:
        bias = module().zeros((), dtype=out.dtype)
    elif bias.dtype != out.dtype:
        bias = bias.astype(out.dtype)
    kernel(f"bias_{act}")(bias, out)
    return out


def bce_logits(z, y):
    return kernel("bce_logits")(z, y)


def bce_logits_grad(z, y, g, scale):
    per_element = scale is None
    return kernel("bce_logits_grad")(z, y, g.astype(z.dtype, copy=False), 1.0 if per_element else scale,
                                     int(per_element))


# Above this many classes a row is too long for one thread: the vectorised form (a few more
# launches, each using the whole GPU) is faster.
ROW_KERNEL_MAX_CLASSES = 1024


def softmax_xent(z, labels, smoothing: float):
    cp = module()
    n, c = z.shape
    if c > ROW_KERNEL_MAX_CLASSES:
        return _generic.softmax_xent(z, labels, smoothing, xp=cp)
    loss = cp.empty(n, dtype=z.dtype)
    probs = cp.empty(z.shape, dtype=z.dtype)
    kernel("softmax_xent")(z, labels.astype(np.int64, copy=False), c, smoothing, loss, probs)
    return loss, probs


def softmax_xent_grad(probs, labels, smoothing: float, g, scale):
    if probs.shape[1] > ROW_KERNEL_MAX_CLASSES:
        return _generic.softmax_xent_grad(probs, labels, smoothing, g, scale, xp=module())
    per_row = scale is None
    return kernel("softmax_xent_grad")(probs, labels.astype(np.int64, copy=False), g.astype(probs.dtype, copy=False),
                                       probs.shape[1], smoothing, 1.0 if per_row else scale, int(per_row))


def sgd_update(p, g, buf, tmp, lr, momentum, dampening, weight_decay, nesterov, maximize, first) -> None:
    if buf is None:
        kernel("sgd")(g, lr, weight_decay, int(maximize), p)
    else:
        kernel("sgd_momentum")(g, lr, momentum, dampening, weight_decay, int(nesterov), int(maximize),
                               int(first), p, buf)


def adam_update(p, g, m, v, vmax, tmp, lr, step, b1, b2, eps, weight_decay, decoupled, maximize) -> None:
    args = (g, lr, step, b1, b2, eps, weight_decay, int(decoupled), int(maximize), p, m, v)
    if vmax is None:
        kernel("adam")(*args)
    else:
        kernel("adam_amsgrad")(*args, vmax)


# -- CUDA graphs ----------------------------------------------------------------------------

class CapturedGraph:
    """The kernels ``fn()`` launches on GPU ``index``, recorded once into a CUDA graph.

    Capture runs ``fn``'s Python code but executes nothing on the GPU. Every array ``fn``
    allocates comes from a memory pool private to this graph: its blocks are never handed to
    anyone else, so the addresses the graph reads and writes stay valid for every replay.
    ``result`` is what ``fn`` returned (arrays that each replay overwrites).
    """

    def __init__(self, fn, index: int):
        cp = module()
        self.pool = cp.cuda.MemoryPool()
        with cp.cuda.Device(index):
            stream = cp.cuda.Stream(non_blocking=True)  # capture needs a stream other than the default
            cp.cuda.Device(index).synchronize()  # eager work queued before capture is finished
            with stream, cp.cuda.using_allocator(self.pool.malloc):
                stream.begin_capture()
                try:
                    self.result = fn()
                except BaseException:
                    with contextlib.suppress(Exception):  # the capture is invalid anyway: report fn's error
                        stream.end_capture()
                    raise
                self.graph = stream.end_capture()
            self.graph.upload(stream)
            stream.synchronize()

    def replay(self) -> None:
        """Launch the recorded kernels on the current stream (ordered after earlier work on it)."""
        cp = module()
        self.graph.launch(stream=cp.cuda.get_current_stream())


def synchronize(index: int) -> None:
    module().cuda.Device(index).synchronize()


def memory_info(index: int) -> dict:
    cp = module()
    pool = cp.get_default_memory_pool()
    with cp.cuda.Device(index):
        free, total = cp.cuda.runtime.memGetInfo()
    return {"pool_used_bytes": int(pool.used_bytes()), "pool_total_bytes": int(pool.total_bytes()),
            "device_free_bytes": int(free), "device_total_bytes": int(total)}


def device_name(index: int) -> str:
    cp = module()
    try:
        props = cp.cuda.runtime.getDeviceProperties(index)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return "CUDA device"

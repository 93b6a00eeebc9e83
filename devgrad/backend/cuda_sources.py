"""The CUDA kernel sources of devgrad's fused kernels.

``ELEMENTWISE[name]`` is (in params, out params, body) in ``cupy.ElementwiseKernel``'s
notation; ``module_source()`` turns every one of them, the multi-tensor optimizer updates and
the hand-written kernels into one CUDA source per group (``GROUPS``) and dtype (grid-stride
``extern "C"`` kernels). Kept apart from the Python
that launches them (``cuda_kernels``) so that the test harness can compile the very same source
for the host and with NVRTC, without a GPU.
"""

# -- fused kernels ---------------------------------------------------------------------------
# One elementwise kernel where NumPy needs a chain of in-place calls: on a GPU each call is a
# launch (several microseconds of host time) and a pass over memory. Scalars that change from
# step to step (lr, the Adam step count) are parameters that take a number or a 0-d device
# array alike, so the same kernel serves eager steps and steps captured in a CUDA graph (which
# must read them from device memory). Arithmetic is in double and rounded once to T.

# Adam's body up to the new moments mi, vi (decay applied to pi or gi), for adam_many.
ADAM_MOMENTS = """
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

ELEMENTWISE = {
    # exp overflowing to inf for x < -709 gives exactly 0, without any warning
    "sigmoid": ("T x", "T y", "y = (T)(1.0 / (1.0 + exp(-(double)x)))"),
    "relu_grad": ("T g, T y", "T gz", "gz = y > (T)0 ? g : (T)0"),
    "sigmoid_grad": ("T g, T y", "T gz", "gz = g * (y * ((T)1 - y))"),
    "tanh_grad": ("T g, T y", "T gz", "gz = g * ((T)1 - y * y)"),
    "bias_relu": ("T b", "T y", "T z = y + b; y = z > (T)0 ? z : (T)0"),
    "bias_sigmoid": ("T b", "T y", "y = (T)(1.0 / (1.0 + exp(-(double)(y + b))))"),
    "bias_tanh": ("T b", "T y", "y = tanh(y + b)"),
    "bias_identity": ("T b", "T y", "y = y + b"),  # a Linear without activation: the output layer
    # Dropout forward in one launch: the mask from uniform draws u (in place: 1/(1-p) where u >= p,
    # compared in T as NumPy compares a float32 array with a Python float, else 0) and x times it.
    # The draws may be cuRAND's, in (0, 1], as they come: a draw of 1 counts as 0 (what moving them
    # into [0, 1) would make of it), so no kernel runs between cuRAND and this one. Backward is mul
    # (g times the mask). CuPy would compile a comparison, a cast and a multiply for it.
    "dropout": ("float64 p, float64 scale, T x", "T u, T y",
                "const T w = u >= (T)1 ? (T)0 : u; u = w >= (T)p ? (T)scale : (T)0; y = x * u"),
    "mul": ("T a, T b", "T c", "c = a * b"),
    # cuRAND's uniform draws lie in (0, 1]: a draw of 1 becomes 0, as CuPy's random_sample makes it
    # with a kernel of its own (``top`` is 1)
    "wrap_top": ("float64 top", "T u", "u = u >= (T)top ? (T)0 : u"),
    # Squared error (x - y)² and its gradient 2·(x - y) times the upstream gradient (per element,
    # or a scalar) and the reduction's scale: mse as one node.
    "sq_err": ("T x, T y", "T loss", "const double d = (double)x - (double)y; loss = (T)(d * d)"),
    "sq_err_grad": (
        "T x, T y, raw T g, float64 scale, int32 per_element", "T gx",
        """
        const double upstream = per_element ? (double)g[i] : (double)g[0];
        gx = (T)(2.0 * ((double)x - (double)y) * upstream * scale);
        """),
    # The other per-element losses of (input x, target y), each with its gradient written the
    # same way (times the upstream gradient and the reduction's scale). Comparisons are written
    # so that a NaN input gives a NaN loss, as the op-by-op NumPy formula does (a run must see it).
    "abs_err": ("T x, T y", "T loss", "loss = (T)fabs((double)x - (double)y)"),
    "abs_err_grad": (
        "T x, T y, raw T g, float64 scale, int32 per_element", "T gx",
        """
        const double upstream = per_element ? (double)g[i] : (double)g[0];
        const double d = (double)x - (double)y;
        const double sign = d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : d);  // 0 at 0 (PyTorch's), NaN stays
        gx = (T)(sign * upstream * scale);
        """),
    "huber_err": (
        "T x, T y, float64 delta", "T loss",
        """
        const double a = fabs((double)x - (double)y);
        loss = (T)(a > delta ? delta * (a - 0.5 * delta) : 0.5 * a * a);
        """),
    "huber_err_grad": (
        "T x, T y, raw T g, float64 scale, int32 per_element, float64 delta", "T gx",
        """
        const double upstream = per_element ? (double)g[i] : (double)g[0];
        const double d = (double)x - (double)y;
        const double clipped = d > delta ? delta : (d < -delta ? -delta : d);
        gx = (T)(clipped * upstream * scale);
        """),
    # The lecture's logistic loss log(1 + exp(-y·x)) for labels ±1, and the linear SVM's hinge.
    "logistic": (
        "T x, T y", "T loss",
        """
        const double t = -((double)y * (double)x);
        loss = (T)(fmax(t, 0.0) + log1p(exp(-fabs(t))));
        """),
    "logistic_grad": (
        "T x, T y, raw T g, float64 scale, int32 per_element", "T gx",
        """
        const double upstream = per_element ? (double)g[i] : (double)g[0];
        const double yi = (double)y;
        gx = (T)(-yi / (1.0 + exp(yi * (double)x)) * upstream * scale);
        """),
    "hinge": (
        "T x, T y, float64 margin", "T loss",
        """
        const double t = margin - (double)y * (double)x;
        loss = (T)(t < 0.0 ? 0.0 : t);
        """),
    "hinge_grad": (
        "T x, T y, raw T g, float64 scale, int32 per_element, float64 margin", "T gx",
        """
        const double upstream = per_element ? (double)g[i] : (double)g[0];
        const double yi = (double)y;
        gx = (T)(margin - yi * (double)x >= 0.0 ? -yi * upstream * scale : 0.0);
        """),
    # Binary cross-entropy from logits, softplus(z) - z·y written to never overflow, and its
    # gradient (sigmoid(z) - y) times the upstream gradient (per element, or a scalar) and scale.
    # With a pos_weight other than 1: pos_weight·y·softplus(-z) + (1 - y)·softplus(z), and the
    # gradient (1 - y)·sigmoid(z) - pos_weight·y·sigmoid(-z).
    "bce_logits": (
        "T z, T y, float64 pos_weight", "T loss",
        """
        const double zi = (double)z, yi = (double)y, tail = log1p(exp(-fabs(zi)));
        loss = (T)(pos_weight == 1.0 ? fmax(zi, 0.0) - zi * yi + tail
                                     : pos_weight * yi * (fmax(-zi, 0.0) + tail) + (1.0 - yi) * (fmax(zi, 0.0) + tail));
        """),
    "bce_logits_grad": (
        "T z, T y, raw T g, float64 scale, int32 per_element, float64 pos_weight", "T gz",
        """
        const double upstream = per_element ? (double)g[i] : (double)g[0];
        const double yi = (double)y, s = 1.0 / (1.0 + exp(-(double)z));
        const double d = pos_weight == 1.0 ? s - yi : (1.0 - yi) * s - pos_weight * yi * (1.0 - s);
        gz = (T)(d * upstream * scale);
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


# -- a few modules for every kernel ----------------------------------------------------------
# Every kernel above, plus the multi-tensor optimizer updates and the hand-written kernels, in a
# CUDA source per group (``module_source``, below) and dtype: one NVRTC compilation each per
# device (cached on disk by CuPy) instead of one per kernel and dtype. ``cuda_kernels`` launches
# them; the test harness compiles the same text, every group at once, for the host.

CTYPES = {"float32": "float", "float64": "double"}
SCALAR_C = {"float64": "double", "int32": "int", "int64": "long long"}

# The tensors of one multi-tensor launch travel by value in a struct (a kernel's parameters may
# take 4 KiB): the addresses of each tensor's parameter, gradient and state arrays, its step
# count (a number, or the address of a 0-d float64 device array when capturable) and where its
# elements start in the launch's flat index space.
TABLE_CAPACITY = 32
TABLE_FIELDS = (("p", "u8"), ("g", "u8"), ("a", "u8"), ("b", "u8"), ("c", "u8"), ("step_at", "u8"),
                ("step", "f8"))
TABLE_STRUCT = ("struct devgrad_table {\n"
                + "".join(f"    {'unsigned long long' if kind == 'u8' else 'double'} {name}[{TABLE_CAPACITY}];\n"
                          for name, kind in TABLE_FIELDS)
                + f"    long long start[{TABLE_CAPACITY + 1}];\n    long long count;\n}};\n")


def params(name: str):
    """(in params, out params) of kernel ``name`` of ``ELEMENTWISE``, each a list of (raw, type, name)."""
    in_params, out_params, _ = ELEMENTWISE[name]

    def one(text):
        words = text.split()
        return (True, words[1], words[2]) if words[0] == "raw" else (False, words[0], words[1])

    return [one(p) for p in in_params.split(",")], [one(p) for p in out_params.split(",")]


def function_name(name: str, ctype: str) -> str:
    return f"devgrad_{name}_{ctype}"


def _elementwise(name: str, ctype: str) -> str:
    """Kernel ``name`` for T = ``ctype`` as a grid-stride loop over n elements.

    The launch contract (``cuda_kernels.launch`` keeps it): an element parameter ``x`` is
    ``x_data, x_size`` and reads element ``i % x_size`` (so a bias of the last dimension's size,
    or a 0-d array, broadcasts along the leading ones); a float64 scalar ``s`` is ``s_at, s_value``
    and reads ``*s_at`` when that address is not null (a 0-d device array: what a captured step
    must read), else the number; a raw parameter is a plain pointer; the last parameter is n."""
    ins, outs = params(name)
    args, lines = [], []
    for param in ins + outs:
        raw, typ, pname = param
        c = "T" if typ == "T" else SCALAR_C[typ]
        const = "" if param in outs else "const "
        if raw:
            args.append(f"{const}{c}* {pname}")
        elif typ == "T":
            args.append(f"{const}T* {pname}_data, const long long {pname}_size")
            lines.append(f"{const}T& {pname} = {pname}_data[{pname}_size == n ? i : i % {pname}_size];")
        elif typ == "float64":
            args.append(f"const double* {pname}_at, const double {pname}_value")
            lines.append(f"const double {pname} = {pname}_at ? *{pname}_at : {pname}_value;")
        else:
            args.append(f"const {c} {pname}")
    return (f"namespace {function_name(name, ctype)}_ns {{\ntypedef {ctype} T;\n"
            f"extern \"C\" __global__ void {function_name(name, ctype)}({', '.join(args)}, const long long n) {{\n"
            "    DEVGRAD_NO_UNROLL\n"
            "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
            "         i += (long long)blockDim.x * gridDim.x) {\n        "
            + "\n        ".join(lines) + f"\n{ELEMENTWISE[name][2]};\n    }}\n}}\n}}\n")


# Multi-tensor updates: thread i finds its tensor k by binary search over t.start, then runs the
# very body of the one-tensor kernel on element j of tensor k.
_FIND = """
        int lo = 0, hi = (int)t.count - 1;
        while (lo < hi) { const int mid = (lo + hi + 1) / 2; if (t.start[mid] <= i) lo = mid; else hi = mid - 1; }
        const int k = lo;
        const long long j = i - t.start[k];
        T& p = ((T*)t.p[k])[j];
        const T& g = ((const T*)t.g[k])[j];
"""
_MULTI = {
    # a = exp_avg, b = exp_avg_sq, c = max_exp_avg_sq (AMSGrad) or unused
    "adam_many": ("const double* lr_at, const double lr_value, const double b1, const double b2, const double eps, "
                  "const double wd, const int decoupled, const int maximize, const int amsgrad", _FIND + """
        T& m = ((T*)t.a[k])[j];
        T& v = ((T*)t.b[k])[j];
        const double step = t.step_at[k] ? *(const double*)t.step_at[k] : t.step[k];
""" + ADAM_MOMENTS + """
        double vm = vi;
        if (amsgrad) {
            T& vmax = ((T*)t.c[k])[j];
            vm = fmax((double)vmax, (double)(T)vi);
            vmax = (T)vm;
        }
        const double denom = sqrt(vm) / sqrt(1.0 - pow(b2, step)) + eps;
        p = (T)(pi - lr / (1.0 - pow(b1, step)) * mi / denom);
"""),
    # a = momentum buffer (when momentum != 0)
    "sgd_many": ("const double* lr_at, const double lr_value, const double momentum, const double dampening, "
                 "const double wd, const int nesterov, const int maximize, const int first, const int has_buf",
                 _FIND + """
        double gi = maximize ? -(double)g : (double)g;
        if (wd != 0.0) gi += wd * (double)p;
        double d = gi;
        if (has_buf) {
            T& buf = ((T*)t.a[k])[j];
            const double b = first ? gi : momentum * (double)buf + (1.0 - dampening) * gi;
            buf = (T)b;
            d = nesterov ? gi + momentum * b : b;
        }
        p = (T)((double)p - lr * d);
"""),
    # a = square_avg, b = momentum buffer (when momentum > 0), c = grad_avg (centered); as PyTorch
    "rmsprop_many": ("const double* lr_at, const double lr_value, const double alpha, const double eps, "
                     "const double wd, const double momentum, const int centered, const int maximize",
                     _FIND + """
        T& sq = ((T*)t.a[k])[j];
        double gi = maximize ? -(double)g : (double)g;
        if (wd != 0.0) gi += wd * (double)p;
        const double s = alpha * (double)sq + (1.0 - alpha) * gi * gi;
        sq = (T)s;
        double avg;
        if (centered) {
            T& ga = ((T*)t.c[k])[j];
            const double a = alpha * (double)ga + (1.0 - alpha) * gi;
            ga = (T)a;
            avg = sqrt(s - a * a) + eps;
        } else {
            avg = sqrt(s) + eps;
        }
        if (momentum > 0.0) {
            T& buf = ((T*)t.b[k])[j];
            const double b = momentum * (double)buf + gi / avg;
            buf = (T)b;
            p = (T)((double)p - lr * b);
        } else {
            p = (T)((double)p - lr * (gi / avg));
        }
"""),
    # a = sum of squared gradients; the step count (already advanced) decays the rate
    "adagrad_many": ("const double* lr_at, const double lr_value, const double lr_decay, const double wd, "
                     "const double eps, const int maximize", _FIND + """
        T& sum = ((T*)t.a[k])[j];
        const double step = t.step_at[k] ? *(const double*)t.step_at[k] : t.step[k];
        double gi = maximize ? -(double)g : (double)g;
        if (wd != 0.0) gi += wd * (double)p;
        const double total = (double)sum + gi * gi;
        sum = (T)total;
        const double clr = lr / (1.0 + (step - 1.0) * lr_decay);
        p = (T)((double)p - clr * (gi / (sqrt(total) + eps)));
"""),
}


def _multi(name: str, ctype: str) -> str:
    scalars, body = _MULTI[name]
    return (f"extern \"C\" __global__ void {function_name(name, ctype)}(const devgrad_table t, {scalars}, "
            "const long long n) {\n"
            f"    typedef {ctype} T;\n    const double lr = lr_at ? *lr_at : lr_value;\n"
            "    DEVGRAD_NO_UNROLL\n"
            "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
            f"         i += (long long)blockDim.x * gridDim.x) {{{body}    }}\n}}\n")


# Capturable step counts: one launch adds 1 to every tensor's 0-d float64 step array.
_INCREMENT = ("extern \"C\" __global__ void devgrad_increment_steps(const devgrad_table t) {\n"
              "    DEVGRAD_NO_UNROLL\n"
              "    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < t.count;\n"
              "         k += (long long)blockDim.x * gridDim.x)\n"
              "        *(double*)t.step_at[k] += 1.0;\n}\n")

MULTI_KERNELS = tuple(_MULTI)

# Kernels written out by hand, each (parameters, body of the grid-stride loop over i < n), with
# T the element type of the module; ``_looped`` gives each its header and loop.
_LOOPED = {
    # A classification step's contribution to its epoch's sums, in one launch where CuPy needs six
    # (argmax, ==, sum, +=, and the loss's * and +=), each also one more NVRTC compilation on a
    # fresh machine: thread i predicts row i (the first largest of its ``cols`` outputs, a NaN
    # counting as largest as in NumPy's argmax; for one output, output > threshold) and counts a
    # hit when that is its label (an integer atomic add: the same count in any order); thread 0
    # adds the batch's mean loss times ``weight`` (its row count) to the float64 loss sum.
    "class_sums": (
        "const T* z, const long long* labels, const int cols, const double threshold, const T* loss, "
        "const double weight, double* loss_sum, unsigned long long* hits",
        """
        const T* zi = z + i * (long long)cols;
        long long pred;
        if (cols == 1) {
            pred = (double)zi[0] > threshold ? 1 : 0;
        } else {
            pred = 0;
            T best = zi[0];
            if (best == best) {
                for (int j = 1; j < cols; ++j) {
                    const T v = zi[j];
                    if (v != v) { pred = j; break; }
                    if (v > best) { best = v; pred = j; }
                }
            }
        }
        if (pred == labels[i]) atomicAdd(hits, 1ULL);
        if (i == 0) *loss_sum += (double)loss[0] * weight;
"""),
    # A regression step's part of its epoch's sums, deterministically: thread i writes row i's
    # error e = output - target and its sign s (in double), thread 0 adds the loss × ``weight``;
    # the sums of e·e and e·s (= |e|) are then two cuBLAS dot products that add into the float64
    # sums (beta = 1): no float atomics, so the same sums in any launch order.
    "reg_errors": (
        "const T* out, const double* y, const T* loss, const double weight, double* loss_sum, double* e, double* s",
        """
        const double d = (double)out[i] - y[i];
        e[i] = d;
        s[i] = d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : (d == 0.0 ? 0.0 : d));  // a NaN stays NaN
        if (i == 0) *loss_sum += (double)loss[0] * weight;
"""),
    # Rows of any array picked by an index (the data loader's shuffle), copied as 32-bit words,
    # so one kernel serves float features and int64 labels alike, in the module already compiled
    # for the run's dtype: dst row r is src row index[r], each ``words`` words long.
    "gather_rows": (
        "const unsigned int* src, const long long* index, unsigned int* dst, const long long words",
        """
        const long long row = i / words;
        dst[i] = src[index[row] * words + (i - row * words)];
"""),
    # A constant into every element of a float32 or float64 array (a backward's seed, a ones vector,
    # a capturable optimizer's float64 rate and step counts), written as its 32-bit words: ``lo`` into
    # the even words and ``hi`` into the odd ones (the two halves of a float64, one float32 twice),
    # so one kernel serves both dtypes in the module already compiled (a float32 run's float64
    # scalars need no float64 module: one NVRTC compilation less on a fresh machine), where CuPy's
    # fill would be one more kernel to compile per dtype.
    "fill": (
        "const unsigned int lo, const unsigned int hi, unsigned int* out",
        """
        out[i] = (i & 1) ? hi : lo;
"""),
    # A loss's targets from a batch's labels (int64) or values (double), in the run's dtype:
    # mode 0 the value itself, 1 the ±1 margin label 2·y − 1, 2 one-hot rows of ``classes`` columns.
    "targets": (
        "const void* src, const int src_is_int, T* out, const int mode, const int classes",
        """
        if (mode == 2) {
            const long long row = i / classes;
            out[i] = (T)(((const long long*)src)[row] == i - row * classes ? 1 : 0);
        } else {
            const double v = src_is_int ? (double)((const long long*)src)[i] : ((const double*)src)[i];
            out[i] = (T)(mode == 1 ? 2.0 * v - 1.0 : v);
        }
"""),
}


def _looped(name: str, ctype: str) -> str:
    params, body = _LOOPED[name]
    return (f"namespace {function_name(name, ctype)}_ns {{\ntypedef {ctype} T;\n"
            f"extern \"C\" __global__ void {function_name(name, ctype)}({params}, const long long n) {{\n"
            "    DEVGRAD_NO_UNROLL\n"
            "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
            f"         i += (long long)blockDim.x * gridDim.x) {{{body}    }}\n}}\n}}\n")


# What the host build needs to compile CUDA source: the math library, and one block of one
# thread, so that every grid-stride loop walks all of its elements serially.
HOST_PRELUDE = """#include <cmath>
#include <cstddef>
using namespace std;
#define __global__
#define DEVGRAD_NO_UNROLL
struct devgrad_dim3 { unsigned int x; };
static const devgrad_dim3 blockIdx = {0}, threadIdx = {0}, blockDim = {1}, gridDim = {1};
static unsigned long long atomicAdd(unsigned long long* at, unsigned long long v) {
    const unsigned long long old = *at;
    *at = old + v;
    return old;
}
"""


# Grid-stride loops stay rolled: a thread of an elementwise kernel runs one iteration, or a few
# (memory-bound either way), and letting NVRTC unroll them made the module take 2-3 times as
# long to compile (4.4 s instead of 1.6 s for float32 on a 2-core CPU, to sm_90): the cost of a
# cold start.
_NO_UNROLL = """#ifndef DEVGRAD_NO_UNROLL
#define DEVGRAD_NO_UNROLL _Pragma("unroll 1")
#endif
"""


# The kernels come in two groups, each one module per dtype, compiled the first time one of its
# kernels runs: "step", what a classification run launches (the activations, both cross-entropies,
# the optimizers, the loader's gather, the epoch sums, fill and the step counts), and "more", the
# rest (the regression and margin losses, dropout, RMSprop and Adagrad). A classification run with
# Adam or SGD compiles only the first,
# in about half the time of one module of everything; a run that needs both compiles both, in
# about the time of that one module.
MORE = frozenset({"sq_err", "sq_err_grad", "abs_err", "abs_err_grad", "huber_err", "huber_err_grad", "logistic",
                  "logistic_grad", "hinge", "hinge_grad", "dropout", "mul", "wrap_top", "reg_errors",
                  "rmsprop_many", "adagrad_many"})
GROUPS = ("step", "more")
KERNELS = (*ELEMENTWISE, *MULTI_KERNELS, *_LOOPED)


def group_of(name: str) -> str:
    """The group (module) kernel ``name`` of ``KERNELS`` is compiled in."""
    return "more" if name in MORE else "step"


def module_source(ctypes=("float", "double"), host: bool = False, group: str | None = None) -> str:
    """The CUDA source of devgrad's kernels of ``group`` ("step" or "more"; None: every kernel)
    for the element types ``ctypes`` (the CUDA backend compiles one module per group and dtype it
    meets: float32 training compiles no float64 one); ``host``: with the prelude that lets a host
    C++ compiler build the very same text."""
    parts = [HOST_PRELUDE if host else "", _NO_UNROLL, TABLE_STRUCT]
    if group in (None, "step"):
        parts.append(_INCREMENT)
    for ctype in ctypes:
        for name in KERNELS:
            if group is None or group_of(name) == group:
                build = _elementwise if name in ELEMENTWISE else _multi if name in _MULTI else _looped
                parts.append(build(name, ctype))
    return "\n".join(parts)

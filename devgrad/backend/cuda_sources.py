"""The CUDA kernel sources of devgrad's fused kernels (CuPy ElementwiseKernel bodies).

``ELEMENTWISE[name]`` is (in params, out params, body) as ``cupy.ElementwiseKernel`` takes
them. Kept apart from the Python that launches them (``cuda_kernels``) so that the test
harness can compile the very same bodies for the host and with NVRTC, without a GPU.
"""

# -- fused kernels ---------------------------------------------------------------------------
# One elementwise kernel where NumPy needs a chain of in-place calls: on a GPU each call is a
# launch (several microseconds of host time) and a pass over memory. Scalars that change from
# step to step (lr, the Adam step count) are parameters that take a number or a 0-d device
# array alike, so the same kernel serves eager steps and steps captured in a CUDA graph (which
# must read them from device memory). Arithmetic is in double and rounded once to T.

# Adam's inputs, and its body up to the new moments mi, vi (decay applied to pi or gi).
ADAM_IN = ("T g, float64 lr, float64 step, float64 b1, float64 b2, float64 eps, float64 wd, int32 decoupled, "
            "int32 maximize")
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
    "adam": (ADAM_IN, "T p, T m, T v", ADAM_MOMENTS + """
        double denom = sqrt(vi) / sqrt(1.0 - pow(b2, step)) + eps;
        p = (T)(pi - lr / (1.0 - pow(b1, step)) * mi / denom);
        """),
    "adam_amsgrad": (ADAM_IN, "T p, T m, T v, T vmax", ADAM_MOMENTS + """
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

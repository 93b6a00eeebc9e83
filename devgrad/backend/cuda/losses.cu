// devgrad's CUDA kernels: the losses and dropout (nn).
// Compiled by NVRTC at run time (one module per group and dtype, which
// devgrad/backend/cuda_sources.py builds from these files) and, with a host prelude, by a C++
// compiler for the host tests.
//
// Each kernel is a body under a `//@` header; the generator wraps it in a grid-stride loop over
// i < n with T the module's element type:
//   //@elementwise NAME(IN PARAMS) -> (OUT PARAMS)   cupy.ElementwiseKernel's notation: an element
//       parameter `T x` is x's element i (broadcast along leading axes), `raw T g` a pointer,
//       `float64 s` a number or a 0-d device array, int32/int64 plain scalars
//   //@looped NAME(C PARAMETERS)      a hand-written loop body over i
//   //@multi NAME(C PARAMETERS)       a multi-tensor update: element j of tensor k of the table t,
//       with p and g bound (the `find_tensor` snippet) and lr read
//   //@snippet NAME / //@kernel NAME   C text used by the generator as it is
// Comment lines just above a header describe the kernel below them.

// Dropout forward in one launch: the mask from uniform draws u (in place: 1/(1-p) where u >= p,
// compared in T as NumPy compares a float32 array with a Python float, else 0) and x times it.
// The draws may be cuRAND's, in (0, 1], as they come: a draw of 1 counts as 0 (what moving them
// into [0, 1) would make of it), so no kernel runs between cuRAND and this one. Backward is mul
// (g times the mask). CuPy would compile a comparison, a cast and a multiply for it.
//@elementwise dropout(float64 p, float64 scale, T x) -> (T u, T y)
const T w = u >= (T)1 ? (T)0 : u; u = w >= (T)p ? (T)scale : (T)0; y = x * u

// Squared error (x - y)² and its gradient 2·(x - y) times the upstream gradient (per element,
// or a scalar) and the reduction's scale: mse as one node.
//@elementwise sq_err(T x, T y) -> (T loss)
const double d = (double)x - (double)y; loss = (T)(d * d)

//@elementwise sq_err_grad(T x, T y, raw T g, float64 scale, int32 per_element) -> (T gx)
const double upstream = per_element ? (double)g[i] : (double)g[0];
gx = (T)(2.0 * ((double)x - (double)y) * upstream * scale);

// The other per-element losses of (input x, target y), each with its gradient written the
// same way (times the upstream gradient and the reduction's scale). Comparisons are written
// so that a NaN input gives a NaN loss, as the op-by-op NumPy formula does (a run must see it).
//@elementwise abs_err(T x, T y) -> (T loss)
loss = (T)fabs((double)x - (double)y)

//@elementwise abs_err_grad(T x, T y, raw T g, float64 scale, int32 per_element) -> (T gx)
const double upstream = per_element ? (double)g[i] : (double)g[0];
const double d = (double)x - (double)y;
const double sign = d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : 0.0);  // 0 at 0 and at NaN (PyTorch's)
gx = (T)(sign * upstream * scale);

//@elementwise huber_err(T x, T y, float64 delta) -> (T loss)
const double a = fabs((double)x - (double)y);
loss = (T)(a > delta ? delta * (a - 0.5 * delta) : 0.5 * a * a);

//@elementwise huber_err_grad(T x, T y, raw T g, float64 scale, int32 per_element, float64 delta) -> (T gx)
const double upstream = per_element ? (double)g[i] : (double)g[0];
const double d = (double)x - (double)y;
const double clipped = d > delta ? delta : (d < -delta ? -delta : d);
gx = (T)(clipped * upstream * scale);

// The lecture's logistic loss log(1 + exp(-y·x)) for labels ±1, and the linear SVM's hinge.
//@elementwise logistic(T x, T y) -> (T loss)
const double t = -((double)y * (double)x);
loss = (T)(fmax(t, 0.0) + log1p(exp(-fabs(t))));

//@elementwise logistic_grad(T x, T y, raw T g, float64 scale, int32 per_element) -> (T gx)
const double upstream = per_element ? (double)g[i] : (double)g[0];
const double yi = (double)y;
gx = (T)(-yi / (1.0 + exp(yi * (double)x)) * upstream * scale);

//@elementwise hinge(T x, T y, float64 margin) -> (T loss)
const double t = margin - (double)y * (double)x;
loss = (T)(t < 0.0 ? 0.0 : t);

//@elementwise hinge_grad(T x, T y, raw T g, float64 scale, int32 per_element, float64 margin) -> (T gx)
const double upstream = per_element ? (double)g[i] : (double)g[0];
const double yi = (double)y;
gx = (T)(margin - yi * (double)x >= 0.0 ? -yi * upstream * scale : 0.0);

// Binary cross-entropy from logits, softplus(z) - z·y written to never overflow, and its
// gradient (sigmoid(z) - y) times the upstream gradient (per element, or a scalar) and scale.
// With a pos_weight other than 1: pos_weight·y·softplus(-z) + (1 - y)·softplus(z), and the
// gradient (1 - y)·sigmoid(z) - pos_weight·y·sigmoid(-z).
// At z = ±inf the limit: inf where the infinite term's weight is nonzero, else 0 (never inf·0).
//@elementwise bce_logits(T z, T y, float64 pos_weight) -> (T loss)
const double zi = (double)z, yi = (double)y, tail = log1p(exp(-fabs(zi)));
if (isinf(zi)) {
    const double weight = zi > 0.0 ? 1.0 - yi : pos_weight * yi;
    loss = (T)(weight == 0.0 ? 0.0 : weight * INFINITY);
} else {
    loss = (T)(pos_weight == 1.0 ? fmax(zi, 0.0) - zi * yi + tail
                                 : pos_weight * yi * (fmax(-zi, 0.0) + tail) + (1.0 - yi) * (fmax(zi, 0.0) + tail));
}

//@elementwise bce_logits_grad(T z, T y, raw T g, float64 scale, int32 per_element, float64 pos_weight) -> (T gz)
const double upstream = per_element ? (double)g[i] : (double)g[0];
const double yi = (double)y, s = 1.0 / (1.0 + exp(-(double)z)), s_neg = 1.0 / (1.0 + exp((double)z));
const double d = pos_weight == 1.0 ? s - yi : (1.0 - yi) * s - pos_weight * yi * s_neg;  // sigmoid(-z), not 1 - s
gz = (T)(d * upstream * scale);

// Softmax cross-entropy, one thread per row of n_classes logits: the row's max, the sum of exps,
// the probabilities (kept for backward) and the row's loss, with label smoothing.
//@elementwise softmax_xent(raw T z, raw int64 labels, int32 n_classes, float64 smoothing) -> (T loss, raw T probs)
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

// Its gradient: (probabilities - smoothed one-hot) times the upstream gradient (one per row
// for reduction 'none', else a scalar) times the reduction's scale.
//@elementwise softmax_xent_grad(T p, raw int64 labels, raw T g, int32 n_classes, float64 smoothing, float64 scale, int32 per_row) -> (T gz)
const ptrdiff_t row = (ptrdiff_t)i / n_classes;
const int col = (int)((ptrdiff_t)i - row * n_classes);
double target = smoothing / n_classes;
if (col == labels[row]) target += 1.0 - smoothing;
const double upstream = per_row ? (double)g[row] : (double)g[0];
gz = (T)(((double)p - target) * upstream * scale);

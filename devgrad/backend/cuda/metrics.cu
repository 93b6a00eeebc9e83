// devgrad's CUDA kernels: the training loop's metric sums and targets (experiment).
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

// A classification step's contribution to its epoch's sums, in one launch where CuPy needs six
// (argmax, ==, sum, +=, and the loss's * and +=), each also one more NVRTC compilation on a
// fresh machine: thread i predicts row i (the first largest of its ``cols`` outputs, a NaN
// counting as largest as in NumPy's argmax; for one output, output > threshold) and counts a
// hit when that is its label (an integer atomic add: the same count in any order); thread 0
// adds the batch's mean loss times ``weight`` (its row count) to the float64 loss sum.
//@looped class_sums(const T* z, const long long* labels, const int cols, const double threshold, const T* loss, const double weight, double* loss_sum, unsigned long long* hits)
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

// A regression step's part of its epoch's sums, deterministically: thread i writes row i's
// error e = output - target and its sign s (in double), thread 0 adds the loss × ``weight``;
// the sums of e·e and e·s (= |e|) are then two cuBLAS dot products that add into the float64
// sums (beta = 1): no float atomics, so the same sums in any launch order.
//@looped reg_errors(const T* out, const double* y, const T* loss, const double weight, double* loss_sum, double* e, double* s)
const double d = (double)out[i] - y[i];
e[i] = d;
s[i] = d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : (d == 0.0 ? 0.0 : d));  // a NaN stays NaN
if (i == 0) *loss_sum += (double)loss[0] * weight;

// A loss's targets from a batch's labels (int64) or values (double), in the run's dtype:
// mode 0 the value itself, 1 the ±1 margin label 2·y − 1, 2 one-hot rows of ``classes`` columns.
//@looped targets(const void* src, const int src_is_int, T* out, const int mode, const int classes)
if (mode == 2) {
    const long long row = i / classes;
    out[i] = (T)(((const long long*)src)[row] == i - row * classes ? 1 : 0);
} else {
    const double v = src_is_int ? (double)((const long long*)src)[i] : ((const double*)src)[i];
    out[i] = (T)(mode == 1 ? 2.0 * v - 1.0 : v);
}

// devgrad's CUDA kernels: the optimizers' multi-tensor updates (optim).
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

// Multi-tensor updates: thread i finds its tensor k by binary search over t.start, then runs the
// very body of the one-tensor update on element j of tensor k.
//@snippet find_tensor
int lo = 0, hi = (int)t.count - 1;
while (lo < hi) { const int mid = (lo + hi + 1) / 2; if (t.start[mid] <= i) lo = mid; else hi = mid - 1; }
const int k = lo;
const long long j = i - t.start[k];
T& p = ((T*)t.p[k])[j];
const T& g = ((const T*)t.g[k])[j];

// Capturable step counts: one launch adds 1 to every tensor's 0-d float64 step array.
//@kernel increment_steps
extern "C" __global__ void devgrad_increment_steps(const devgrad_table t) {
    DEVGRAD_NO_UNROLL
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < t.count;
         k += (long long)blockDim.x * gridDim.x)
        *(double*)t.step_at[k] += 1.0;
}

// a = exp_avg, b = exp_avg_sq, c = max_exp_avg_sq (AMSGrad) or unused
//@multi adam_many(const double* lr_at, const double lr_value, const double b1, const double b2, const double eps, const double wd, const int decoupled, const int maximize, const int amsgrad)
T& m = ((T*)t.a[k])[j];
T& v = ((T*)t.b[k])[j];
const double step = t.step_at[k] ? *(const double*)t.step_at[k] : t.step[k];
double gi = maximize ? -(double)g : (double)g;
double pi = (double)p;
if (wd != 0.0) {
    if (decoupled) pi *= 1.0 - lr * wd; else gi += wd * pi;
}
double mi = b1 * (double)m + (1.0 - b1) * gi;
double vi = b2 * (double)v + (1.0 - b2) * gi * gi;
m = (T)mi;
v = (T)vi;

double vm = vi;
if (amsgrad) {
    T& vmax = ((T*)t.c[k])[j];
    vm = fmax((double)vmax, (double)(T)vi);
    vmax = (T)vm;
}
const double denom = sqrt(vm) / sqrt(1.0 - pow(b2, step)) + eps;
p = (T)(pi - lr / (1.0 - pow(b1, step)) * mi / denom);

// a = momentum buffer (when momentum != 0)
//@multi sgd_many(const double* lr_at, const double lr_value, const double momentum, const double dampening, const double wd, const int nesterov, const int maximize, const int first, const int has_buf)
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

// a = square_avg, b = momentum buffer (when momentum > 0), c = grad_avg (centered); as PyTorch
//@multi rmsprop_many(const double* lr_at, const double lr_value, const double alpha, const double eps, const double wd, const double momentum, const int centered, const int maximize)
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

// a = sum of squared gradients; the step count (already advanced) decays the rate
//@multi adagrad_many(const double* lr_at, const double lr_value, const double lr_decay, const double wd, const double eps, const int maximize)
T& sum = ((T*)t.a[k])[j];
const double step = t.step_at[k] ? *(const double*)t.step_at[k] : t.step[k];
double gi = maximize ? -(double)g : (double)g;
if (wd != 0.0) gi += wd * (double)p;
const double total = (double)sum + gi * gi;
sum = (T)total;
const double clr = lr / (1.0 + (step - 1.0) * lr_decay);
p = (T)((double)p - clr * (gi / (sqrt(total) + eps)));

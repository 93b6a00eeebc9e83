// devgrad's CUDA kernels: array primitives (activations, bias+activation, fills, gathers).
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

// exp overflowing to inf for x < -709 gives exactly 0, without any warning
//@elementwise sigmoid(T x) -> (T y)
y = (T)(1.0 / (1.0 + exp(-(double)x)))

//@elementwise relu_grad(T g, T y) -> (T gz)
gz = y <= (T)0 ? (T)0 : g

//@elementwise sigmoid_grad(T g, T y) -> (T gz)
gz = g * (y * ((T)1 - y))

//@elementwise tanh_grad(T g, T y) -> (T gz)
gz = g * ((T)1 - y * y)

//@elementwise bias_relu(T b) -> (T y)
T z = y + b; y = z > (T)0 ? z : (T)0

//@elementwise bias_sigmoid(T b) -> (T y)
y = (T)(1.0 / (1.0 + exp(-(double)(y + b))))

//@elementwise bias_tanh(T b) -> (T y)
y = tanh(y + b)

// a Linear without activation: the output layer
//@elementwise bias_identity(T b) -> (T y)
y = y + b

//@elementwise mul(T a, T b) -> (T c)
c = a * b

// cuRAND's uniform draws lie in (0, 1]: a draw of 1 becomes 0, as CuPy's random_sample makes it
// with a kernel of its own (``top`` is 1)
//@elementwise wrap_top(float64 top) -> (T u)
u = u >= (T)top ? (T)0 : u

// Rows of any array picked by an index (the data loader's shuffle), copied as 32-bit words,
// so one kernel serves float features and int64 labels alike, in the module already compiled
// for the run's dtype: dst row r is src row index[r], each ``words`` words long.
//@looped gather_rows(const unsigned int* src, const long long* index, unsigned int* dst, const long long words)
const long long row = i / words;
dst[i] = src[index[row] * words + (i - row * words)];

// A constant into every element of a float32 or float64 array (a backward's seed, a ones vector,
// a capturable optimizer's float64 rate and step counts), written as its 32-bit words: ``lo`` into
// the even words and ``hi`` into the odd ones (the two halves of a float64, one float32 twice),
// so one kernel serves both dtypes in the module already compiled (a float32 run's float64
// scalars need no float64 module: one NVRTC compilation less on a fresh machine), where CuPy's
// fill would be one more kernel to compile per dtype.
//@looped fill(const unsigned int lo, const unsigned int hi, unsigned int* out)
out[i] = (i & 1) ? hi : lo;

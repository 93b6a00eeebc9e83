"""A host library with cuBLAS's C ABI, for checking devgrad's GEMM seam without a GPU.

``devgrad.backend.cublas`` calls libcublas through ctypes. This harness compiles, with the
host C++ compiler, a library exporting the same functions with the same C signatures as the
cuBLAS documentation gives them (``cublasSgemm_v2``, ``cublasDgemmStridedBatched``,
``cublasGemmEx``, ...), computing the column-major GEMM contract in double precision and
validating the arguments the way cuBLAS does (a bad leading dimension is
CUBLAS_STATUS_INVALID_VALUE). Loaded with ``cublas.load(path)``, it checks the argument
order, the marshalling of every integer, pointer and scalar, and the layout mapping of
``devgrad.backend.gemm`` end to end. It also records what it was asked (stream, compute type,
which entry point) so tests can check the handle follows the stream and TF32 is requested.
"""

from __future__ import annotations

import ctypes

from tests.support.kernel_harness import compile_library

SOURCE = r"""
#include <cstdint>
static void* g_stream = 0;
static int g_compute = -1, g_set_stream_calls = 0, g_calls = 0;
static char g_entry[64];
static void note(const char* name) {
    int i = 0;
    while (name[i] && i < 63) { g_entry[i] = name[i]; ++i; }
    g_entry[i] = 0;
    ++g_calls;
}
static int at_least_one(int v) { return v > 1 ? v : 1; }

template <typename T>
static int gemm(int ta, int tb, int m, int n, int k, const T* alpha, const T* A, int lda, const T* B, int ldb,
                const T* beta, T* C, int ldc) {
    if (ta < 0 || ta > 1 || tb < 0 || tb > 1 || m < 0 || n < 0 || k < 0) return 7;
    if (lda < at_least_one(ta ? k : m) || ldb < at_least_one(tb ? n : k) || ldc < at_least_one(m)) return 7;
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
            double acc = 0.0;
            for (int l = 0; l < k; ++l) {
                double a = ta ? (double)A[l + (long long)i * lda] : (double)A[i + (long long)l * lda];
                double b = tb ? (double)B[j + (long long)l * ldb] : (double)B[l + (long long)j * ldb];
                acc += a * b;
            }
            T* c = C + i + (long long)j * ldc;
            *c = (T)((double)*alpha * acc + ((double)*beta == 0.0 ? 0.0 : (double)*beta * (double)*c));
        }
    return 0;
}

template <typename T>
static int batched(int ta, int tb, int m, int n, int k, const T* alpha, const T* A, int lda, long long sa,
                   const T* B, int ldb, long long sb, const T* beta, T* C, int ldc, long long sc, int count) {
    if (count < 0) return 7;
    for (int p = 0; p < count; ++p) {
        int status = gemm<T>(ta, tb, m, n, k, alpha, A + p * sa, lda, B + p * sb, ldb, beta, C + p * sc, ldc);
        if (status) return status;
    }
    return 0;
}

extern "C" {
int cublasCreate_v2(void** handle) { *handle = (void*)0x1000; return 0; }
int cublasSetStream_v2(void* handle, void* stream) { g_stream = stream; ++g_set_stream_calls; return 0; }
const char* cublasGetStatusString(int status) {
    return status == 7 ? "CUBLAS_STATUS_INVALID_VALUE" : "CUBLAS_STATUS_?";
}
int cublasSgemm_v2(void* h, int ta, int tb, int m, int n, int k, const float* alpha, const float* A, int lda,
                   const float* B, int ldb, const float* beta, float* C, int ldc) {
    note("cublasSgemm_v2"); return gemm<float>(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
int cublasDgemm_v2(void* h, int ta, int tb, int m, int n, int k, const double* alpha, const double* A, int lda,
                   const double* B, int ldb, const double* beta, double* C, int ldc) {
    note("cublasDgemm_v2"); return gemm<double>(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
int cublasSgemmStridedBatched(void* h, int ta, int tb, int m, int n, int k, const float* alpha, const float* A,
                              int lda, long long sa, const float* B, int ldb, long long sb, const float* beta,
                              float* C, int ldc, long long sc, int count) {
    note("cublasSgemmStridedBatched");
    return batched<float>(ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, count);
}
int cublasDgemmStridedBatched(void* h, int ta, int tb, int m, int n, int k, const double* alpha, const double* A,
                              int lda, long long sa, const double* B, int ldb, long long sb, const double* beta,
                              double* C, int ldc, long long sc, int count) {
    note("cublasDgemmStridedBatched");
    return batched<double>(ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, count);
}
int cublasGemmEx(void* h, int ta, int tb, int m, int n, int k, const void* alpha, const void* A, int at, int lda,
                 const void* B, int bt, int ldb, const void* beta, void* C, int ct, int ldc, int compute, int algo) {
    note("cublasGemmEx"); g_compute = compute;
    if (at != 0 || bt != 0 || ct != 0) return 7;  /* only CUDA_R_32F is used */
    return gemm<float>(ta, tb, m, n, k, (const float*)alpha, (const float*)A, lda, (const float*)B, ldb,
                       (const float*)beta, (float*)C, ldc);
}
int cublasGemmStridedBatchedEx(void* h, int ta, int tb, int m, int n, int k, const void* alpha, const void* A, int at,
                               int lda, long long sa, const void* B, int bt, int ldb, long long sb, const void* beta,
                               void* C, int ct, int ldc, long long sc, int count, int compute, int algo) {
    note("cublasGemmStridedBatchedEx"); g_compute = compute;
    if (at != 0 || bt != 0 || ct != 0) return 7;
    return batched<float>(ta, tb, m, n, k, (const float*)alpha, (const float*)A, lda, sa, (const float*)B, ldb, sb,
                          (const float*)beta, (float*)C, ldc, sc, count);
}
void* harness_stream() { return g_stream; }
int harness_set_stream_calls() { return g_set_stream_calls; }
int harness_compute() { return g_compute; }
int harness_calls() { return g_calls; }
const char* harness_entry() { return g_entry; }
}
"""

_built: dict = {}


def library_path() -> str:
    """Compile (once per test run) the host library and return its path."""
    if "path" not in _built:
        _built["path"] = str(compile_library(SOURCE, "cublas_host"))
    return _built["path"]


class Recorder:
    """What the host library was last asked: the stream, the compute type, the entry point."""

    def __init__(self, path: str):
        lib = ctypes.CDLL(path)
        lib.harness_stream.restype = ctypes.c_void_p
        lib.harness_entry.restype = ctypes.c_char_p
        self.lib = lib

    @property
    def stream(self) -> int:
        return self.lib.harness_stream() or 0

    @property
    def set_stream_calls(self) -> int:
        return self.lib.harness_set_stream_calls()

    @property
    def compute(self) -> int:
        return self.lib.harness_compute()

    @property
    def calls(self) -> int:
        return self.lib.harness_calls()

    @property
    def entry(self) -> str:
        return self.lib.harness_entry().decode()

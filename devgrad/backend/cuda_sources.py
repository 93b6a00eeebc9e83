"""The CUDA sources of devgrad's kernels, generated from the kernel files ``cuda/*.cu``.

The files hold each kernel's body under a ``//@`` header (their opening comment gives the
notation); ``ELEMENTWISE[name]`` is (in params, out params, body) in ``cupy.ElementwiseKernel``'s
notation, and ``module_source()`` turns every kernel into one CUDA source per group
(``GROUPS``) and dtype (grid-stride ``extern "C"`` kernels). Plain text, no CuPy: the test
harness compiles the very same source for the host, and ``devgrad warmup --arch`` with NVRTC,
without a GPU. ``cuda_kernels`` launches the kernels.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

# -- the kernel bodies: devgrad/backend/cuda/*.cu ---------------------------------------------
# One elementwise kernel where NumPy needs a chain of in-place calls: on a GPU each call is a
# launch (several microseconds of host time) and a pass over memory. Scalars that change from
# step to step (lr, the Adam step count) are parameters that take a number or a 0-d device
# array alike, so the same kernel serves eager steps and steps captured in a CUDA graph (which
# must read them from device memory). Arithmetic is in double and rounded once to T.

SOURCE_DIR = Path(__file__).resolve().parent / "cuda"
SOURCE_FILES = ("primitives.cu", "losses.cu", "optimizers.cu", "metrics.cu")
_HEADER = re.compile(r"^//@(elementwise|looped|multi|snippet|kernel) (\w+)(.*)$")
_ELEMENTWISE_PARAMS = re.compile(r"^\((.*)\) -> \((.*)\)$")
_PARAMS = re.compile(r"^\((.*)\)$")


def _blocks(text: str, where: str) -> list[tuple[str, str, str, str]]:
    """(kind, name, parameters, body) of each ``//@`` block of a kernel file; the comment lines
    that close a block describe the next one and are not part of its body."""
    found: list = []
    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            found.append([match.group(1), match.group(2), match.group(3).strip(), []])
        elif found:
            found[-1][3].append(line)
    blocks = []
    for kind, name, rest, lines in found:
        while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("//")):
            lines.pop()
        if not lines:
            raise ValueError(f"{where}: kernel {name!r} has no body")
        blocks.append((kind, name, rest, "\n".join(lines)))
    return blocks


def _read_sources() -> tuple[dict, dict, dict, dict]:
    """The kernel files' blocks by kind: elementwise {name: (in, out, body)}, looped and multi
    {name: (parameters, body)}, text {name: body} for snippets and whole kernels."""
    elementwise: dict = {}
    looped: dict = {}
    multi: dict = {}
    text: dict = {}
    for file in SOURCE_FILES:
        for kind, name, rest, body in _blocks((SOURCE_DIR / file).read_text(encoding="utf-8"), file):
            if kind == "elementwise":
                match = _ELEMENTWISE_PARAMS.match(rest)
                if match is None:
                    raise ValueError(f"{file}: {name}: want '//@elementwise NAME(IN) -> (OUT)', got {rest!r}")
                elementwise[name] = (match.group(1), match.group(2), body)
            elif kind in ("looped", "multi"):
                match = _PARAMS.match(rest)
                if match is None:
                    raise ValueError(f"{file}: {name}: want '//@{kind} NAME(PARAMETERS)', got {rest!r}")
                (looped if kind == "looped" else multi)[name] = (match.group(1), body)
            else:
                text[name] = body
    return elementwise, looped, multi, text


ELEMENTWISE, _LOOPED, _MULTI_BODIES, _TEXT = _read_sources()


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
_FIND = "\n" + _TEXT["find_tensor"] + "\n"
_MULTI = {name: (scalars, _FIND + body + "\n") for name, (scalars, body) in _MULTI_BODIES.items()}


def _multi(name: str, ctype: str) -> str:
    scalars, body = _MULTI[name]
    return (f"extern \"C\" __global__ void {function_name(name, ctype)}(const devgrad_table t, {scalars}, "
            "const long long n) {\n"
            f"    typedef {ctype} T;\n    const double lr = lr_at ? *lr_at : lr_value;\n"
            "    DEVGRAD_NO_UNROLL\n"
            "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
            f"         i += (long long)blockDim.x * gridDim.x) {{{body}    }}\n}}\n")


# Capturable step counts: one launch adds 1 to every tensor's 0-d float64 step array.
_INCREMENT = _TEXT["increment_steps"] + "\n"

MULTI_KERNELS = tuple(_MULTI)

def _looped(name: str, ctype: str) -> str:
    params, body = _LOOPED[name]
    return (f"namespace {function_name(name, ctype)}_ns {{\ntypedef {ctype} T;\n"
            f"extern \"C\" __global__ void {function_name(name, ctype)}({params}, const long long n) {{\n"
            "    DEVGRAD_NO_UNROLL\n"
            "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
            f"         i += (long long)blockDim.x * gridDim.x) {{\n{body}\n    }}\n}}\n}}\n")


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


# -- ready-made modules: compiled without a GPU, for a named architecture ----------------------
# NVRTC needs no GPU, only the architecture to compile for; CuPy's own compile-and-cache path
# asks the GPU for it. ``devgrad warmup --arch`` (``devgrad.warmup.build_module``) compiles
# devgrad's module for ``sm_<arch>`` into the kernel cache folder (a Docker build, a login
# node), named by the source's digest, so a GPU of that architecture later loads it instead of
# compiling: nothing to compile on a fresh machine for a step that runs only devgrad's kernels
# (an MLP's training step with any of the runner's losses does).

NVRTC_OPTIONS = ("-std=c++17",)


@functools.cache
def source_digest(ctype: str, group: str = "step") -> str:
    """A digest of a group's module source for ``ctype`` and its compile options: a ready-made
    module is used only by the devgrad whose kernels it holds."""
    text = module_source((ctype,), group=group) + " ".join(NVRTC_OPTIONS)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prebuilt_path(folder, ctype: str, arch: str, group: str = "step") -> Path:
    """Where the ready-made module of ``group`` for ``ctype`` and compute capability ``arch``
    ("90") lives."""
    return Path(folder) / f"devgrad-kernels-{source_digest(ctype, group)}-{ctype}-{group}-sm_{arch}.cubin"

"""``devgrad warmup``: compile, once per machine, every GPU kernel a training step uses.

CuPy compiles each kernel with NVRTC the first time it is launched and keeps the result in
its on-disk kernel cache (``CUPY_CACHE_DIR``, by default ``~/.cupy/kernel_cache``); a fresh
container, CI machine or cluster worker starts with an empty cache and pays every compilation
in its first run. ``warmup(device)`` runs a few tiny training steps that reach every fused
kernel (each activation, both cross-entropies, every optimizer's update), the GEMM seam and
the reductions and index kernels of a step, in float32 and float64, then records in the cache
folder that it did (``devgrad info`` reads that record). On the CPU there is nothing to compile.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from devgrad import nn, optim
from devgrad.backend import cuda_available, cuda_unavailable_reason, cupy_version, kernel_cache_dir
from devgrad.backend.cuda_sources import GROUPS, NVRTC_OPTIONS, module_source, prebuilt_path
from devgrad.backend import device as resolve_device
from devgrad.core import tensor
from devgrad.experiment import _kernels  # noqa: F401 - registers class_sums, warmed below
from devgrad.io import atomic_write, atomic_write_text
from devgrad.nn import functional as F
from devgrad.version import __version__

RECORD = "devgrad-warmup.json"


def _steps(dev, dtype) -> None:
    """Tiny steps through every kernel family a training step launches."""
    rng = np.random.default_rng(0)
    x = tensor(rng.standard_normal((16, 4)), device=dev, dtype=dtype)
    labels = tensor(rng.integers(0, 3, 16), device=dev)
    binary = tensor((rng.random(16) > 0.5).astype(dtype), device=dev, dtype=dtype)
    with dev.activate():
        sums, hits = dev.xp.zeros((), dtype=np.float64), dev.xp.zeros((), dtype=np.int64)
    for activation in ("relu", "sigmoid", "tanh"):
        for name, options in (("sgd", {"momentum": 0.9, "nesterov": True}), ("sgd", {}), ("adam", {}),
                              ("adamw", {"amsgrad": True}), ("rmsprop", {}), ("adagrad", {})):
            model = nn.MLP([4, 8, 3], activation=activation, device=dev, dtype=dtype, generator=0)
            opt = optim.OPTIMIZERS[name](model.parameters(), capturable=True, **options)
            out = model(x)
            loss = F.cross_entropy(out, labels, label_smoothing=0.1) + F.binary_cross_entropy_with_logits(
                out[:, 0], binary) + F.mse_loss(out.softmax(axis=-1), out.softmax(axis=-1).detach())
            opt.zero_grad()
            loss.backward()
            optim.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            dev.kernels.class_sums(out.data, labels.data, loss.data, 16, 0.0, sums, hits)  # the runner's sums
    dev.synchronize()


def warmup(device: str | None = None) -> dict:
    """Compile devgrad's GPU kernels on ``device`` (default: cuda where CUDA works, else nothing to
    do) into CuPy's kernel cache; returns what was done."""
    if device is None and not cuda_available():
        return {"device": "cpu", "compiled": False,
                "why": f"CUDA is not available here ({cuda_unavailable_reason()}); on the CPU there is nothing "
                       "to compile"}
    dev = resolve_device(device or "cuda")
    if not dev.supports_graphs:  # the CPU: NumPy compiles nothing
        return {"device": dev.name, "compiled": False, "why": f"{dev} runs NumPy: there is nothing to compile"}
    start = time.perf_counter()
    for dtype in ("float32", "float64"):
        _steps(dev, dtype)
    record = {"devgrad": __version__, "cupy": cupy_version(), "device": dev.description(),
              "seconds": round(time.perf_counter() - start, 2), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    folder = kernel_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / RECORD, json.dumps(record, indent=2) + "\n")
    return {"device": dev.name, "compiled": True, "cache": str(folder), **record}


def parse_arches(text: str) -> list[str]:
    """``--arch`` values as compute capabilities: "90", "sm_90", "9.0" and "80,90" alike; a
    ValueError saying what is expected otherwise."""
    arches = []
    for part in str(text).split(","):
        value = part.strip().lower().removeprefix("sm_").replace(".", "")
        if not value.isdigit() or not 50 <= int(value) <= 130:
            raise ValueError(f"--arch {part.strip()!r} is not a GPU architecture: give its compute capability, "
                             "e.g. 90 (H100, H200), 80 (A100), 89 (L4, L40), 86 (RTX 30xx), or several as 80,90 "
                             "(nvidia-smi --query-gpu=compute_cap --format=csv shows a GPU's)")
        arches.append(value)
    return arches


def build_module(ctype: str, arch: str, folder=None, group: str = "step") -> Path:
    """Compile devgrad's kernel module of ``group`` for ``ctype`` ("float" or "double") and compute
    capability ``arch`` ("90") with NVRTC — no GPU needed — into ``folder`` (the kernel cache
    folder by default), where a GPU of that architecture loads it instead of compiling; returns
    its path."""
    try:
        from cupy_backends.cuda.libs import nvrtc  # noqa: PLC0415 - CuPy's NVRTC binding, with CuPy only
        nvrtc.getVersion()
    except Exception as exc:
        raise RuntimeError(f"building the GPU kernels needs CuPy and its NVRTC library ({type(exc).__name__}: "
                           f"{exc}); install CuPy for your CUDA version: pip install cupy-cuda12x "
                           "(or cupy-cuda13x)") from None
    program = nvrtc.createProgram(module_source((ctype,), group=group), "devgrad_kernels.cu", [], [])
    try:
        try:
            nvrtc.compileProgram(program, [f"-arch=sm_{arch}", *NVRTC_OPTIONS])
        except nvrtc.NVRTCError as exc:
            raise RuntimeError(f"NVRTC could not compile devgrad's kernels for sm_{arch} ({exc}); this NVRTC "
                               f"supports {', '.join(f'sm_{a}' for a in nvrtc.getSupportedArchs())}") from None
        cubin = nvrtc.getCUBIN(program)
    finally:
        nvrtc.destroyProgram(program)
    path = prebuilt_path(folder if folder is not None else kernel_cache_dir(), ctype, arch, group)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, cubin)
    return path


def build_modules(arches: list[str]) -> dict:
    """``devgrad warmup --arch``: devgrad's kernel modules, both groups in float and double, for
    each architecture, into the kernel cache folder, without a GPU; returns what was written."""
    start = time.perf_counter()
    files = [str(build_module(ctype, arch, group=group)) for arch in arches for ctype in ("float", "double")
             for group in GROUPS]
    return {"files": files, "seconds": round(time.perf_counter() - start, 2), "cache": str(kernel_cache_dir())}


def prebuilt_arches() -> list[str]:
    """The architectures this devgrad's kernel modules are ready-made for in the cache folder."""
    folder = Path(kernel_cache_dir())
    stem = prebuilt_path(folder, "float", "ARCH").name.split("ARCH")[0]  # devgrad-kernels-<digest>-float-step-sm_
    return sorted(p.name[len(stem):-len(".cubin")] for p in folder.glob(f"{stem}*.cubin")) if folder.is_dir() else []


def _gpu_arch(dev) -> str | None:
    try:
        return dev.architecture()
    except Exception:  # a GPU that cannot say: no ready-made module will match
        return None


def _record():
    """devgrad's warmup record in the kernel cache, or None."""
    record_file = Path(kernel_cache_dir()) / RECORD
    if not record_file.exists():
        return None
    try:
        return json.loads(record_file.read_text())
    except (OSError, ValueError):
        return None


def _current(record) -> bool:
    return bool(record) and record.get("devgrad") == __version__ and record.get("cupy") == cupy_version()


def cold_cache_notice(dev) -> str | None:
    """What a run on ``dev`` tells its user before a GPU run whose kernels are not compiled yet
    (no warmup record for this devgrad and CuPy, and no ready-made modules for the GPU's
    architecture): None on the CPU or with a warm cache."""
    if not dev.supports_graphs or _current(_record()) or _gpu_arch(dev) in prebuilt_arches():
        return None
    return (f"the GPU kernel cache ({kernel_cache_dir()}) was not warmed by this devgrad and CuPy: this run "
            "compiles its kernels first (seconds, once per machine); 'devgrad warmup' does that ahead of time")


def cache_state() -> str:
    """One line for ``devgrad info``: where the kernel cache is, whether devgrad warmed it, and
    the architectures its kernel modules are ready-made for."""
    folder = kernel_cache_dir()
    record = _record()
    arches = prebuilt_arches()
    ready = (f"; devgrad's kernels ready-made for {', '.join(f'sm_{a}' for a in arches)} (devgrad warmup --arch)"
             if arches else "")
    if record is None:
        entries = sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0
        then = ("devgrad's kernels for other architectures, and CuPy's own, compile on first use" if arches
                else "the first GPU run compiles its kernels")
        return (f"{folder}: not warmed by devgrad on a GPU ({entries} files){ready}; {then} (seconds): run "
                "'devgrad warmup' once per machine")
    state = "warm" if _current(record) else "stale (made by another devgrad or CuPy version: run 'devgrad warmup')"
    return (f"{folder}: {state}; devgrad warmup {record.get('date')} on {record.get('device')} "
            f"(devgrad {record.get('devgrad')}, CuPy {record.get('cupy')}, {record.get('seconds')} s){ready}")

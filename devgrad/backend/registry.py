"""Kernels by name and device kind, registered by the code that uses them.

The backend knows arrays, transfers, RNG, streams and memory; a *domain* kernel (a loss and
its gradient, an optimizer's update, a training metric) belongs to the layer that uses it and
is registered there, once per device kind::

    register_kernel("sq_err", "cpu", sq_err)                          # the function itself
    register_kernel("sq_err", "cuda", "devgrad.nn._cuda_kernels")     # imported on first use

A device finds it as ``device.kernels.sq_err`` (or ``device.kernel("sq_err")``): the first
lookup resolves the registration (importing a loader's module then, so nothing CUDA-related
is imported before a CUDA device runs a kernel) and keeps the function as an attribute of the
kind's ``KernelTable``, so later lookups cost one attribute read.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

KernelSource = Callable[..., Any] | str  # a function, or the dotted module path that defines it

_registry: dict[str, dict[str, KernelSource]] = {}  # device kind -> kernel name -> source
_tables: dict[str, KernelTable] = {}
_lock = threading.Lock()


def register_kernel(name: str, kind: str, source: KernelSource) -> None:
    """Register kernel ``name`` for devices of ``kind`` ("cpu", "cuda"): a function, or the
    dotted path of a module whose attribute ``name`` is the kernel, imported on first use.
    Registering a different kernel under a name already taken is an error (two owners)."""
    kernels = _registry.setdefault(kind, {})
    known = kernels.get(name)
    if known is not None and known is not source and known != source:
        raise ValueError(f"kernel {name!r} is already registered for {kind} devices by {_describe(known)}; "
                         f"{_describe(source)} cannot register it again (pick another name)")
    kernels[name] = source


def register_kernels(kind: str, sources: dict[str, KernelSource]) -> None:
    """``register_kernel`` for each name -> source of ``sources``."""
    for name, source in sources.items():
        register_kernel(name, kind, source)


def registered(kind: str) -> dict[str, KernelSource]:
    """The kernels registered for ``kind``: name -> function or loader path (a copy)."""
    return dict(_registry.get(kind, {}))


def resolve(name: str, kind: str) -> Callable[..., Any]:
    """The kernel function registered as ``name`` for ``kind`` (its loader imported now if it is one)."""
    source = _registry.get(kind, {}).get(name)
    if source is None:
        known = ", ".join(sorted(_registry.get(kind, {}))) or "none"
        raise AttributeError(f"no kernel {name!r} is registered for {kind} devices (registered: {known}); "
                             "register it with devgrad.backend.register_kernel next to the code that uses it")
    if isinstance(source, str):
        return getattr(importlib.import_module(source), name)
    return source


def _describe(source: KernelSource) -> str:
    if isinstance(source, str):
        return f"module {source}"
    return f"{getattr(source, '__module__', '?')}.{getattr(source, '__qualname__', source)}"


class KernelTable:
    """The kernels of one device kind as attributes (``table.sq_err(...)``), resolved on first use."""

    def __init__(self, kind: str):
        self.kind = kind

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):  # copy/pickle probes: not kernels
            raise AttributeError(name)
        fn = resolve(name, self.kind)
        setattr(self, name, fn)  # the next lookup is an instance attribute: no registry walk
        return fn

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_registry.get(self.kind, {})})

    def __repr__(self) -> str:
        return f"<kernels of {self.kind} devices>"


def kernel_table(kind: str) -> KernelTable:
    """The shared kernel table of device kind ``kind`` (what ``Device.kernels`` is)."""
    table = _tables.get(kind)
    if table is None:
        with _lock:
            table = _tables.setdefault(kind, KernelTable(kind))
    return table

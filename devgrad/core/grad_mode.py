"""Grad mode: whether ops record the graph, per thread (``no_grad``, ``enable_grad``)."""

from __future__ import annotations

import functools
import threading


class _Mode(threading.local):
    # a class default, so a thread that never set it reads True without a lookup miss
    enabled = True


# Read directly by Function.apply and the backward walk (their hot paths); everything else
# goes through is_grad_enabled / set_grad_enabled.
mode = _Mode()


def is_grad_enabled() -> bool:
    """True when ops record the graph (the default), False inside ``no_grad()``."""
    return mode.enabled


def set_grad_enabled(enabled: bool) -> None:
    """Turn graph recording on or off for this thread."""
    mode.enabled = bool(enabled)


class _GradMode:
    """Context manager and decorator that sets grad mode and restores it on exit."""

    enabled = True

    def __enter__(self):
        self._prev = mode.enabled
        mode.enabled = self.enabled
        return self

    def __exit__(self, *exc):
        mode.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):  # noqa: N801 - named like PyTorch's on purpose
    """Disable graph recording: ``with dg.no_grad(): ...`` or ``@dg.no_grad()``."""

    enabled = False


class enable_grad(_GradMode):  # noqa: N801
    """Re-enable graph recording inside a ``no_grad`` block."""

    enabled = True


class inference_mode(_GradMode):  # noqa: N801 - named like PyTorch's on purpose
    """PyTorch's ``inference_mode``: ``no_grad`` (devgrad's graph costs nothing more to skip);
    ``inference_mode(False)`` records as usual."""

    def __init__(self, mode: bool = True):
        self.enabled = not mode

    def __call__(self, fn):
        inference = not self.enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(inference):
                return fn(*args, **kwargs)

        return wrapper

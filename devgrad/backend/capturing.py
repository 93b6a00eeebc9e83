"""Capture state: which device's step this thread is recording, and what a recording refuses.

A step recorded into a CUDA graph (``Device.capture``) or into the CPU's replay plan
(``devgrad.cpu_plan``) must not do work a replay cannot repeat: copy host data in, draw random
numbers, read a value back. Code that does such work asks ``refuse_while_capturing`` first.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any


class CaptureError(RuntimeError):
    """A step being captured into a CUDA graph did something a replay cannot repeat."""


class _Capturing(threading.local):
    # the Device whose capture this thread is running, if any (a class default: no lookup miss)
    device: Any = None
    # whether modules called now report themselves (``devgrad.capture``: a step being recorded, or
    # the eager step before its recording, learns which modules it depends on)
    watch: bool = False
    # while ``watch``: the optimizer given to the CapturedStep (its rate and step counts are refreshed
    # for each replay), None for none: another one stepped inside the step would replay its recorded
    # values (other recorders of a step set no ``watch`` and say nothing of optimizers)
    optimizer: Any = None


state = _Capturing()


def is_capturing() -> bool:
    """True while this thread is recording a step into a CUDA graph (``Device.capture``)."""
    return state.device is not None


def refuse_while_capturing(what: str, why_and_fix: str) -> None:
    """Raise CaptureError when this thread is recording a step into a CUDA graph: for work whose
    effect a replay would silently freeze (``what`` happened; ``why_and_fix`` says the rest)."""
    capturing = state.device
    if capturing is not None:
        how = "captured into a CUDA graph" if capturing.supports_graphs else "recorded for replay"
        raise CaptureError(f"{what} while a step was being {how} on {capturing}: {why_and_fix}")


@contextlib.contextmanager
def recording_for_replay(dev):
    """While the body runs, work a replay could not repeat raises CaptureError, as inside
    ``Device.capture``: the CPU's recorder of a step (``devgrad.cpu_plan``) runs the step in it."""
    previous = state.device
    state.device = dev
    try:
        yield
    finally:
        state.device = previous


def refuse_random_draws() -> None:
    """Raise CaptureError while capturing: a replay would repeat the same random numbers."""
    refuse_while_capturing("random numbers (a dropout mask) were drawn",
                           "every replay would reuse that one mask. Capture a step without dropout (p=0 or "
                           "model.eval()), or run it eagerly (CapturedStep(..., enabled=False))")

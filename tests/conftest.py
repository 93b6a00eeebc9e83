"""Test configuration: parametrize over the devices available here.

DEVGRAD_TEST_DEVICES=cpu,cuda overrides the list (e.g. ``DEVGRAD_TEST_DEVICES=cuda pytest``
on a GPU box). DEVGRAD_REQUIRE_ORACLE=1 turns a missing PyTorch oracle into a failure
instead of a skip (CI sets it, so oracle tests cannot silently stop running).

With $CI set, hypothesis draws the same examples every run (a CI result depends on the commit
alone); elsewhere it explores new ones each run, as it does by default.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import devgrad as dg

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def _test_devices() -> list[str]:
    env = os.environ.get("DEVGRAD_TEST_DEVICES", "").strip()
    if env:
        return [d.strip() for d in env.split(",") if d.strip()]
    return ["cpu"] + (["cuda"] if dg.cuda_available() else [])


DEVICES = _test_devices()


def pytest_configure(config) -> None:
    """A device named in DEVGRAD_TEST_DEVICES that cannot be used stops the suite at once with
    one message, instead of an error in every test that takes ``device``."""
    if not os.environ.get("DEVGRAD_TEST_DEVICES", "").strip() or hasattr(config, "workerinput"):
        return  # nothing named; or an xdist worker: the main process checked (a worker starts CUDA lazily)
    for name in DEVICES:
        try:
            dg.device(name)
        except (dg.DeviceError, ValueError) as exc:
            raise pytest.UsageError(
                f"DEVGRAD_TEST_DEVICES={os.environ['DEVGRAD_TEST_DEVICES']} names {name!r}, which this "
                f"machine cannot use: {exc}\nUnset DEVGRAD_TEST_DEVICES to test every device this "
                f"machine has, or name only those (cpu, cuda, cuda:N).") from exc


@pytest.fixture(params=DEVICES)
def device(request) -> dg.Device:
    """Each test that takes ``device`` runs once per available device."""
    return dg.device(request.param)


@pytest.fixture
def torch():  # the module itself is imported once; sys.modules keeps it
    """PyTorch, the independent oracle; skipped when absent unless CI requires it."""
    if os.environ.get("DEVGRAD_REQUIRE_ORACLE") == "1":
        import torch as _torch

        return _torch
    return pytest.importorskip("torch", reason="PyTorch oracle not installed (pip install torch==2.13.0)")

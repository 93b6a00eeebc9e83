"""What the experiment tests share: a small spec, the CLI in a subprocess, run-folder helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import devgrad as dg

ROOT = Path(__file__).resolve().parents[2]
try:
    import matplotlib  # noqa: F401
except ImportError:
    HAVE_MATPLOTLIB = False
else:
    HAVE_MATPLOTLIB = True
needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="plots need matplotlib (the plot extra)")

SMALL = {
    "name": "small",
    "seed": 3,
    "device": "cpu",
    "data": {"source": "triangle", "n_samples": 400},
    "model": {"hidden": [6], "activation": "tanh"},
    "optimizer": {"name": "adam", "lr": 0.05},
    "train": {"epochs": 6, "batch_size": 32, "checkpoint": {"every": 2}},
}


def write_spec(folder: Path, spec: dict, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def cli(*args, cwd=None, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "devgrad", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout, check=False)


def only_run_dir(root: Path, name: str) -> Path:
    dirs = sorted((root / name).iterdir())
    assert len(dirs) == 1, dirs
    return dirs[0]


def weights(run_dir: Path) -> dict:
    state = dg.load(run_dir / "checkpoints" / "last.npz")
    return {k: v.numpy() for k, v in state["model"].items()}


LONG = {**SMALL, "name": "long", "data": {"source": "triangle", "n_samples": 3000},
        "model": {"hidden": [32, 32], "activation": "tanh", "dropout": 0.1},
        "schedule": {"name": "cosine"},
        "train": {"epochs": 60, "batch_size": 16, "checkpoint": {"every": 3}}}

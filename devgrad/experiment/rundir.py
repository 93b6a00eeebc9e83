"""The run folder: a fresh folder per run, meta.json, and whether a run's process is alive."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import secrets
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devgrad.backend import cupy_version
from devgrad.experiment.errors import RunError
from devgrad.version import __version__


@dataclass
class RunResult:
    """What a run produced: its folder, one dict per epoch, and the summary."""

    run_dir: Path
    history: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")


def new_run_dir(root: Path, name: str) -> Path:
    """runs/<name>/<YYYYmmdd-HHMMSS>-<random>/, created fresh (never an existing folder)."""
    parent = Path(root) / name
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        candidate = parent / f"{stamp}-{secrets.token_hex(3)}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RunError(f"could not create a new run folder under {parent}")


def missing_parents(path: Path) -> list[Path]:
    """The folders above and including ``path`` that do not exist yet, nearest first: what making
    ``path`` creates, so that a setup that fails can take exactly those away again."""
    missing = []
    for folder in (Path(path), *Path(path).parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def remove_half_made(folder: Path, parents: Sequence[Path] = ()) -> None:
    """Take away a run or sweep folder whose setup failed before anything ran in it, and the
    parents made for it (``missing_parents``, before it was made) once they are empty."""
    shutil.rmtree(folder, ignore_errors=True)
    for parent in parents:
        try:
            parent.rmdir()
        except OSError:  # not empty (another run is there) or already gone
            break


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def run_meta(spec, dev, run_dir: Path, status: str, started: str, ended: str | None = None,
          previous: dict | None = None) -> dict:
    """meta.json: versions, device, seed, host, times and status (earlier fields kept on resume),
    and the spec the run started with (what a resume checks config.yaml against)."""
    meta = dict(previous or {})
    meta.update({
        "name": spec.name, "run_dir": str(run_dir), "status": status, "seed": spec.seed,
        "device": dev.name, "device_description": dev.description(), "devgrad": __version__,
        "numpy": np.__version__, "cupy": cupy_version(), "python": platform.python_version(),
        "host": socket.gethostname(), "pid": os.getpid(), "started": meta.get("started", started),
        "ended": ended,
    })
    meta.setdefault("spec", spec.to_dict())
    return meta


def why_not_completed(run_dir: Path) -> str | None:
    """Why a run did not complete: meta.json's error, else the last divergence, interruption or
    error its train.log reports (None when neither says)."""
    run_dir = Path(run_dir)
    try:
        meta = json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    if meta.get("error"):
        return meta["error"]
    log = run_dir / "train.log"
    if log.exists():
        for line in reversed(log.read_text(encoding="utf-8", errors="replace").splitlines()):
            if "diverged" in line or "interrupted" in line or "error" in line.lower():
                return line.split(" ", 2)[-1]
    return None


def still_running(meta: dict) -> bool:
    """Is the process that wrote this meta.json alive on this host (so the run is not stale)?"""
    pid = meta.get("pid")
    if not isinstance(pid, int) or meta.get("host") != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process whose parent died stays a zombie until it is reaped: not running
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")

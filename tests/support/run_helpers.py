"""What the experiment tests share: a small spec, the CLI in this process or in a subprocess,
run-folder helpers."""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import yaml

import devgrad as dg
from devgrad.cli import main as cli_main

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
# for the runs whose pictures no test looks at: drawing them costs a run of SMALL thirty times its training
SMALL_NO_PLOTS = {**SMALL, "plots": {"enabled": False}}


def write_spec(folder: Path, spec: dict, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


class Finished(NamedTuple):
    """What a ``devgrad`` command left: its exit status and what it printed (as CompletedProcess has)."""

    returncode: int
    stdout: str
    stderr: str


def cli_process(*args, cwd=None, env=None, timeout=240) -> subprocess.CompletedProcess:
    """``devgrad ARGS`` in a fresh interpreter (``python -m devgrad``): for what only a process
    shows (its exit through the console script, signals, kill -9, what a new interpreter imports,
    the working folder). Each costs the interpreter's start and devgrad's import (about 0.4 s)."""
    return subprocess.run([sys.executable, "-m", "devgrad", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout, check=False)


def cli(*args, env=None, timeout=None) -> Finished:
    """``devgrad ARGS`` run in this process by ``devgrad.cli.main``, as ``python -m devgrad`` runs
    it: stdout and stderr captured (no terminal, as through a pipe), warnings shown as a fresh
    interpreter shows them, a SystemExit's status returned. ``env`` is set for the call only; the
    process-wide state a command may change (environment, warning filters, NumPy's error state,
    the random generators, signal handlers, logging, the umask, matplotlib's settings) is put back
    after it. What a process the command forks prints (one drawing a run's figures) does not come back here:
    a test of that output uses ``cli_process``. ``timeout`` is accepted for the calls that also run
    as a process and is not enforced."""
    del timeout
    with _process_state_kept(env), _STDOUT.capture() as out, _STDERR.capture() as err:
        try:
            code = cli_main([str(a) for a in args])
        except SystemExit as exc:  # argparse's usage errors and --help, as the interpreter would exit
            code = _exit_status(exc.code)
    return Finished(code, out.getvalue(), err.getvalue())


class _Switched(io.TextIOBase):
    """sys.stdout or sys.stderr during ``cli``: writes go to the running call's buffer. A stream
    handler a library creates during a call keeps this object, so what it logs in a later call
    goes to that call's output, as it would in each call's own process; between calls, to the
    process's stream."""

    def __init__(self, name: str):
        self.name = name
        self.buffers: list[io.StringIO] = []

    @contextlib.contextmanager
    def capture(self):
        buffer = io.StringIO()
        self.buffers.append(buffer)
        saved = getattr(sys, self.name)
        setattr(sys, self.name, self)
        try:
            yield buffer
        finally:
            setattr(sys, self.name, saved)
            self.buffers.remove(buffer)

    @property
    def encoding(self) -> str:
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False  # as through a pipe

    def write(self, text: str) -> int:
        if self.buffers:
            return self.buffers[-1].write(text)
        return getattr(sys, f"__{self.name}__").write(text)


_STDOUT, _STDERR = _Switched("stdout"), _Switched("stderr")


def _exit_status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"): printed, status 1
    return 1


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


@contextlib.contextmanager
def _process_state_kept(env: dict | None):
    """What a command may change for the whole process, as it was before, whatever the command did."""
    environ = dict(os.environ)
    cwd = os.getcwd()
    handlers = {s: signal.getsignal(s) for s in _SIGNALS}
    numpy_errors, numpy_random, python_random = np.geterr(), np.random.get_state(), random.getstate()
    loggers = _logging_state()
    umask = os.umask(0o022)
    os.umask(umask)
    rc = _matplotlib_settings()
    frozen = gc.get_freeze_count()
    os.environ.update({k: str(v) for k, v in (env or {}).items()})
    try:
        with warnings.catch_warnings():
            _fresh_interpreter_warnings()
            yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        np.seterr(**numpy_errors)
        np.random.set_state(numpy_random)
        random.setstate(python_random)
        _restore_logging(loggers)
        os.umask(umask)
        if rc is not None:
            _restore_matplotlib(rc)
        if not frozen:
            gc.unfreeze()  # the CLI freezes the collector's objects when it exits on Ctrl-C
        assert os.getcwd() == cwd, f"devgrad changed the working folder to {os.getcwd()}"


def _fresh_interpreter_warnings() -> None:
    """Python's default warning filters (not pytest's), but every warning shown each time it is
    raised: a warning a test forbids is seen even when an earlier call raised it already."""
    warnings.resetwarnings()
    warnings.simplefilter("always")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("always", category=DeprecationWarning, module="__main__")


def _logging_state() -> dict:
    every = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                    if isinstance(v, logging.Logger))]
    return {"disable": logging.root.manager.disable,
            "loggers": [(lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled) for lg in every]}


def _restore_logging(state: dict) -> None:
    logging.disable(state["disable"])
    for lg, level, handlers, propagate, disabled in state["loggers"]:
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate, lg.disabled = propagate, disabled


def _matplotlib_settings():
    matplotlib = sys.modules.get("matplotlib")
    return None if matplotlib is None else (matplotlib.get_backend(), dict(matplotlib.rcParams))


def _restore_matplotlib(rc) -> None:
    matplotlib = sys.modules["matplotlib"]
    backend, params = rc
    if matplotlib.get_backend() != backend:
        matplotlib.use(backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rcParams that are deprecated warn when set
        matplotlib.rcParams.update(params)


def wait_until(what: str, ready, proc: subprocess.Popen | None = None, timeout: float = 120.0):
    """Poll ``ready()`` until it returns something true, and return that. At the deadline, or when
    ``proc`` ends first, the test fails naming ``what`` (and ``proc`` is killed): the caller never
    goes on as if the state it waits for had come (a signal sent too early or too late). An
    assertion ``ready()`` fails (the process got past that state) kills ``proc`` too."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = ready()
        except BaseException:  # ready() found the process too far already
            if proc is not None:
                kill_process(proc)
            raise
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the process ended (status {proc.returncode}) before {what}; its stderr: {err}")
        if time.monotonic() > deadline:
            if proc is not None:
                kill_process(proc)
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


def kill_process(proc: subprocess.Popen) -> None:
    """kill -9 of ``proc`` (its whole process group when it leads one), then wait for it."""
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:
        pass
    proc.communicate()


def only_run_dir(root: Path, name: str) -> Path:
    dirs = sorted((root / name).iterdir())
    assert len(dirs) == 1, dirs
    return dirs[0]


def weights(run_dir: Path) -> dict:
    state = dg.load(run_dir / "checkpoints" / "last.npz")
    return {k: v.numpy() for k, v in state["model"].items()}


# A run of many short epochs (a few milliseconds each): interrupted after a few, it is surely still
# training when the signal comes, even on a loaded machine, and training it whole stays cheap.
LONG = {**SMALL, "name": "long", "data": {"source": "triangle", "n_samples": 300},
        "model": {"hidden": [32, 32], "activation": "tanh", "dropout": 0.1},
        "schedule": {"name": "cosine"},
        "train": {"epochs": 300, "batch_size": 64, "checkpoint": {"every": 3}}}

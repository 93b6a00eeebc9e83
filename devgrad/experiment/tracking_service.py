"""MLflow tracking in a process of its own, so that it never slows training.

Importing MLflow takes seconds of CPU, and its client (SQLAlchemy, HTTP) is Python that would
hold the GIL the training loop needs. So a training process never imports MLflow: it starts one
tracker process (``serve``), which imports MLflow while the run loads its data, and tells it two
things per run, over the tracker's stdin, one JSON line each: ``open`` (the run folder and where
to log it) and ``close``. The tracker reads the run folder's ``metrics.jsonl`` itself (the folder
is the source of truth), logs the new epochs in one batch every ``FLUSH_SECONDS``, and on
``close`` logs the rest of the folder with ``tracking.sync_run``. It answers on its stdout: a
run opened, a run's failure (the training process prints one warning; the run goes on untracked
and ``devgrad track`` logs it later), a run's end. The tracker serves every run of its training
process (a pool worker's runs one after another) and ends when that process does.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment import tracking

FLUSH_SECONDS = 1.0  # how often the tracker looks for new epochs (one batch per look)
# The end of a run waits for the tracker at most OPEN_SECONDS to have opened the MLflow run (its
# start: importing MLflow, a new store's tables; slow on a busy machine), then CLOSE_SECONDS for
# the last uploads.
OPEN_SECONDS = 120.0
CLOSE_SECONDS = 30.0
# what starts the tracker: no module of its own, so that ``-m`` never runs a module twice
SERVE = "from devgrad.experiment.tracking_service import serve; serve()"


class MlflowTracker:
    """A run's MLflow tracking, done by this process's tracker process (a trainer callback).

    Opening it tells the tracker to open (or, for a resumed run, reopen) the run's MLflow run;
    each epoch it reads whatever the tracker has answered (without waiting); ``close`` tells the
    tracker to log the rest of the run folder and waits for that (see OPEN_SECONDS). The first
    failure prints one warning; the run goes on untracked."""

    def __init__(self, run_dir: Path, chosen: dict):
        self.run_dir, self.chosen = Path(run_dir).resolve(), chosen
        self.failed: str | None = None
        self.opened = self.closed = False
        self.service = _service()
        self.service.send(self, {"do": "open", "run": str(self.run_dir), "chosen": chosen, "cwd": os.getcwd()})

    def __call__(self, trainer, epoch: int, row: dict) -> None:
        self.service.poll(0.0)  # a failure's warning when it happens, not at the end

    def close(self) -> None:
        """Have the tracker log the rest of the run folder, and wait for it (see OPEN_SECONDS)."""
        self.service.send(self, {"do": "close", "run": str(self.run_dir)})
        if not self.service.wait(lambda: self.opened, OPEN_SECONDS):
            self._give_up(f"the MLflow run was not opened within {OPEN_SECONDS:.0f} s")
        elif not self.service.wait(lambda: self.closed, CLOSE_SECONDS):
            self._give_up(f"the MLflow server did not take the run's last uploads within {CLOSE_SECONDS:.0f} s")

    def _give_up(self, why: str) -> None:
        self.warn(why)
        # the tracker ends after the MLflow call it is in (never cut short: a store's tables half
        # made would be broken); devgrad track waits for it, through the run folder's lock
        self.service.stop()

    def warn(self, why: str) -> None:
        """The one warning of a run whose tracking stopped."""
        if self.failed is None:
            self.failed = why
            print(f"devgrad: warning: MLflow tracking stopped ({why}); the run goes on and its folder is complete: "
                  f"log it later with: devgrad track {self.run_dir}", file=sys.stderr, flush=True)


class _Service:
    """The training process's side of its tracker process: starts it, sends it lines and reads
    its answers when asked, with no thread of its own (a run forks processes to draw its figures
    only from a process without other threads)."""

    def __init__(self):
        package = Path(tracking.__file__).resolve().parents[2]  # the tracker runs this devgrad
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package), *filter(None, [os.environ.get(
            "PYTHONPATH")])])}
        self.process = subprocess.Popen([sys.executable, "-c", SERVE], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.trackers: dict[str, MlflowTracker] = {}
        self.owner = os.getpid()
        self.lock = threading.RLock()
        self.pending = b""  # the start of an answer not read to its end yet
        self.ended = False

    def alive(self) -> bool:
        """Whether this process can use the tracker (a forked child starts its own)."""
        return self.owner == os.getpid() and not self.ended and self.process.poll() is None

    def send(self, tracker: MlflowTracker, message: dict) -> None:
        with self.lock:
            self.trackers[message["run"]] = tracker
            try:
                assert self.process.stdin is not None
                self.process.stdin.write((json.dumps(message) + "\n").encode())
                self.process.stdin.flush()
            except (OSError, ValueError):  # the tracker has ended: reading says so to every run
                pass

    def stop(self) -> None:
        """Close the tracker's stdin: it ends once the MLflow call it is in returns."""
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()

    def wait(self, done, seconds: float) -> bool:
        """Read answers until ``done()`` (True) or for ``seconds`` (False)."""
        deadline = time.monotonic() + seconds
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.poll(min(left, 0.1))  # in slices: another thread's run may be waiting too
        return True

    def poll(self, timeout: float) -> None:
        """Handle the answers that arrive within ``timeout`` seconds (0: those already there)."""
        with self.lock:
            if self.ended:
                return
            assert self.process.stdout is not None
            if not _readable(self.process.stdout, timeout):
                return
            chunk = os.read(self.process.stdout.fileno(), 1 << 16)
            if not chunk:
                self._end()
                return
            *lines, self.pending = (self.pending + chunk).split(b"\n")
            for line in lines:
                self._handle(json.loads(line))

    def _handle(self, answer: dict) -> None:
        tracker = self.trackers.get(answer["run"])
        if tracker is None:
            return
        if answer.get("failed"):
            tracker.warn(answer["failed"])
        tracker.opened = tracker.opened or bool(answer.get("opened"))
        if answer.get("closed"):
            self.trackers.pop(answer["run"], None)
            tracker.closed = True

    def _end(self) -> None:
        self.ended = True
        code = self.process.wait()
        left, self.trackers = list(self.trackers.values()), {}
        for tracker in left:
            tracker.warn(f"the MLflow tracker process ended (exit status {code})")
            tracker.opened = tracker.closed = True


def _readable(pipe, timeout: float) -> bool:
    """Whether ``pipe`` has something to read (or has ended) within ``timeout`` seconds."""
    if os.name == "nt":  # select takes no pipes there: read what was answered at the end
        time.sleep(timeout)
        return timeout > 0
    return bool(select.select([pipe], [], [], timeout)[0])


_SERVICE: list[_Service] = []  # this process's tracker, once a tracked run has started one
_SERVICE_LOCK = threading.Lock()


def _service() -> _Service:
    with _SERVICE_LOCK:
        if not _SERVICE or not _SERVICE[0].alive():
            if not _SERVICE:
                atexit.register(_stop_service)
            _SERVICE[:] = [_Service()]
        return _SERVICE[0]


def _stop_service() -> None:
    """At exit: the tracker ends (at once when idle; after its MLflow call when busy, then not waited for)."""
    if _SERVICE and _SERVICE[0].owner == os.getpid():
        _SERVICE[0].stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            _SERVICE[0].process.wait(timeout=5)


def tracker_cpu_seconds() -> float | None:
    """The CPU seconds this process's tracker has used so far (None: no tracker, or not on Linux)."""
    if not _SERVICE or not _SERVICE[0].alive():
        return None
    try:
        fields = Path(f"/proc/{_SERVICE[0].process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def prepare() -> None:
    """Start this process's tracker now, so that it imports MLflow while the run loads its data."""
    _service()


# -- the tracker process ------------------------------------------------------------------------------

class _Run:
    """One open run in the tracker: its MLflow run and the epochs logged so far."""

    def __init__(self, message: dict):
        self.run_dir, self.chosen, self.cwd = Path(message["run"]), message["chosen"], message["cwd"]
        self.failed = False
        self.client: Any = None
        self.uri = self.run_id = ""  # set by open (a run whose open failed does nothing more)
        self.skip: dict = {}  # metric -> the steps MLflow holds (a resumed run's are read once)
        self.seen = 0  # epochs of metrics.jsonl already logged
        self.fresh = False  # the MLflow run was made here: no need to ask which steps it holds
        # a killed training process's tracker may still be in an MLflow call (making a store's
        # tables) when the resumed run's tracker starts: the folder's lock makes this one wait
        self.lock = contextlib.ExitStack()

    def open(self) -> None:
        self.lock.enter_context(tracking.folder_lock(self.run_dir))  # held until the run closes
        self.client, self.uri = tracking.open_client(tracking.import_mlflow(), self.chosen.get("uri"))
        self.fresh = self.uri not in tracking.held_runs(self.run_dir)  # a new MLflow run holds no step yet
        self.run_id = tracking.mlflow_run(self.client, self.uri, self.run_dir, self.chosen["experiment"],
                                          self.chosen.get("parent_run_id"), tracking.run_name(self.run_dir))
        tracking.log_params(self.client, self.run_id, self.run_dir)

    def flush(self) -> None:
        rows = ckpt.read_jsonl(self.run_dir / "metrics.jsonl")
        new = rows[self.seen:]
        if new:
            if self.fresh:
                self.skip.update({key: set() for row in new for key in row if key not in self.skip})
            tracking.log_epochs(self.client, self.run_id, new, self.skip)
            self.seen = len(rows)

    def close(self) -> None:
        self.flush()
        tracking.sync_run(self.client, self.uri, self.run_dir, self.chosen["experiment"],
                          self.chosen.get("parent_run_id"), self.skip)

    def release(self) -> None:
        self.lock.close()


def serve() -> None:
    """The tracker process: open, log and close runs as the training process says (see above)."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # MLflow's prints must not mix in
    lines: queue.Queue = queue.Queue()
    ended = threading.Event()  # the training process has ended (killed: what it asked is dropped)
    threading.Thread(target=_listen, args=(lines, ended), daemon=True).start()
    with contextlib.suppress(Exception):  # a missing client is reported by the first run that needs it
        tracking.import_mlflow()
    runs: dict[str, _Run] = {}
    while True:
        try:
            message = lines.get(timeout=FLUSH_SECONDS if runs else None)
        except queue.Empty:
            message = {"do": "flush"}
        if ended.is_set():
            return
        do = message["do"]
        if do == "flush":
            targets = list(runs.values())
        elif do == "open":
            targets = [runs.setdefault(message["run"], _Run(message))]
        elif message["run"] in runs:
            targets = [runs.pop(message["run"])]
        else:  # a close of a run that never opened here: nothing to wait for
            answers.write(json.dumps({"run": message["run"], "closed": True}) + "\n")
            targets = []
        for run in targets:
            _step(run, do, answers)
            if do == "close":
                run.release()


def _step(run: _Run, do: str, answers) -> None:
    """One piece of a run's work; its first failure is answered once and ends its tracking."""
    answer: dict = {"run": str(run.run_dir)}
    if not run.failed:
        try:
            os.chdir(run.cwd)  # a local store is relative to where the training process is
            getattr(run, do)()
        except Exception as exc:  # the server's failure is never the run's
            run.failed = True
            answer["failed"] = tracking.why(exc)
    if do in ("open", "close"):
        answer["opened" if do == "open" else "closed"] = True
    if len(answer) > 1:
        answers.write(json.dumps(answer) + "\n")


def _listen(lines: queue.Queue, ended: threading.Event) -> None:
    for line in sys.stdin:
        lines.put(json.loads(line))
    ended.set()
    lines.put({"do": "end"})

"""Checkpoints and the small JSON/CSV files of a run folder, all written atomically.

The checkpoint policy (``Checkpointer``): after every epoch the run's state is copied where it
lives (``snapshot``: on a GPU a device-to-device copy, which neither transfers anything nor
waits for the GPU; on the CPU a copy in memory); ``last.npz`` is written from that copy at most
every ``seconds`` (or every ``every`` epochs, when set), and always at the end, on Ctrl-C and
when a run diverges (then from the last finite epoch); ``best.npz`` is kept as such a copy when
the monitored metric improves and written on the same clock. Only a write brings a copy to the
host (``to_host``, on the training thread: the one thread that uses the GPU); one background
thread then writes the file, so training does not wait for the disk, atomically, so a kill -9
leaves the previous file intact: it loses at most ``seconds`` of training, which
``devgrad resume`` recomputes exactly.
"""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TextIO

from devgrad.backend import device_of
from devgrad.experiment.errors import RunError
from devgrad.io import atomic_write_text, load, save
from devgrad.optim.optimizer import state_dict_to_host

METRIC_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy")


def snapshot(*, parameters, optimizer, scheduler, epoch: int, extra: dict) -> dict:
    """Model parameters ((name, Tensor) pairs) + optimizer + scheduler + epoch + run state, as
    copies that training will not change, made on the device the state lives on (no transfer,
    no host sync); ``to_host`` gives what a checkpoint file holds."""
    return {"model": {name: p.device.copy(p.data) for name, p in parameters},
            "optimizer": optimizer.state_dict(keep_on_device=True),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "epoch": int(epoch), **extra}


def to_host(state: dict) -> dict:
    """A ``snapshot`` with its arrays copied to host memory (NumPy, as ``dg.load`` returns them)."""
    host = dict(state)
    host["model"] = {name: device_of(a).to_host(a) for name, a in state["model"].items()}
    if state.get("optimizer") is not None:
        host["optimizer"] = state_dict_to_host(state["optimizer"])
    return host


class Checkpointer:
    """When ``last.npz`` and ``best.npz`` are written, and the thread that writes them (see the
    module doc). ``clock`` is for tests."""

    def __init__(self, folder: Path, *, seconds: float, every: int | None = None, save_best: bool = True,
                 clock=time.monotonic):
        self.folder = Path(folder)
        self.seconds = seconds
        self.every = every
        self.save_best = save_best
        self.clock = clock
        self.latest: dict | None = None  # the newest finite epoch's state
        self.best: dict | None = None
        self._dirty = {"last.npz": False, "best.npz": False}
        self._written_at = {"last.npz": clock(), "best.npz": clock()}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devgrad-checkpoint")
        # The writer thread starts now, before training: started by the first write, the new
        # thread would run that write at once and keep the GIL from the training thread (about
        # 1-2 ms at the end of a small CPU run, which is all of its final flush).
        self._pending: list = [self._writer.submit(int)]
        self._host: tuple = (None, None)  # (the snapshot last brought to the host, its host copy)
        self.writes = {"last.npz": 0, "best.npz": 0}
        self.epoch_written: dict = {"last.npz": None, "best.npz": None}  # the epoch each file holds (or will)

    def epoch_done(self, state: dict, improved: bool) -> None:
        """Record a finished (finite) epoch's snapshot; write what the policy says is due."""
        self.latest = state
        self._dirty["last.npz"] = True
        if improved:  # kept in memory either way: early stopping's restore_best reads it
            self.best = state
            self._dirty["best.npz"] = self.save_best
        epoch = state["epoch"]
        if self.every and epoch % self.every == 0:
            self._write("last.npz", background=True)
        for name in ("last.npz", "best.npz"):
            if self._dirty[name] and self.clock() - self._written_at[name] >= self.seconds:
                self._write(name, background=True)

    def flush(self, wait: bool = True) -> None:
        """Write whatever is newer than the files (the end of a run, Ctrl-C, divergence); with
        ``wait`` (the default) return once every write is on disk, else let the writer thread
        finish them while the caller goes on (``close`` waits)."""
        for name in ("last.npz", "best.npz"):
            if self._dirty[name]:
                self._write(name, background=not wait)
        if wait:
            self._wait()

    def close(self) -> None:
        self._wait()
        self._writer.shutdown(wait=True)

    def end_writer(self) -> None:
        """Let the writes under way finish and end the writer thread, so that the process has no
        other thread when it forks to draw the plots; a failed write is still raised by ``close``."""
        wait(self._pending)
        self._writer.shutdown(wait=True)

    def _write(self, name: str, background: bool) -> None:
        state = self.latest if name == "last.npz" else self.best
        if state is None:
            return
        self._dirty[name] = False
        self._written_at[name] = self.clock()
        self.writes[name] += 1
        self.epoch_written[name] = state["epoch"]
        # To the host here, on the training thread (the disk is the writer thread's), once per
        # snapshot: at the end last.npz and best.npz often hold the same epoch.
        if self._host[0] is not state:
            self._host = (state, to_host(state))
        state = self._host[1]
        if background:
            self._raise_failed()
            self._pending.append(self._writer.submit(save, state, self.folder / name))
        else:
            self._wait()  # an older background write of the same file must not land after this one
            save(state, self.folder / name)

    def _raise_failed(self) -> None:
        """A background write that failed (a full disk) stops the run here, on the training thread,
        at the next write: it is never dropped unseen."""
        failed = [f.exception() for f in self._pending if f.done() and f.exception() is not None]
        self._pending = [f for f in self._pending if not f.done()]
        if failed:
            raise failed[0]

    def _wait(self) -> None:
        for future in self._pending:
            future.result()  # re-raises a failed write (a full disk) here, on the training thread
        self._pending = []


class DamagedCheckpointError(RunError):
    """A checkpoint file that cannot be read back (cut short by a full disk, overwritten, corrupted)."""


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's contents with arrays on the CPU (load_state_dict moves them); a file that
    cannot be read as one is a DamagedCheckpointError naming it."""
    path = Path(path)
    try:
        state = load(path, device="cpu")
    except (ValueError, OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile, zlib.error) as exc:
        # np.load and zipfile say what broke in their own words (BadZipFile, a bad CRC, a short read)
        raise DamagedCheckpointError(f"{path} is damaged and cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or "epoch" not in state:
        raise DamagedCheckpointError(f"{path} is not a devgrad run checkpoint (no model weights and epoch in it)")
    return state


def write_json(path: Path, payload: dict | list) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, default=_json_default) + "\n")


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def read_jsonl(path: Path, after_torn: str = "stop") -> list[dict]:
    """The JSON lines of ``path`` ([] when it does not exist). A line cut short by a kill ends
    the file for ``after_torn="stop"`` (what follows it is unreliable: metrics, hidden units);
    ``"skip"`` passes over it (sweep results, whose writer starts a fresh line after one)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        text = raw.strip()
        if not text:
            continue
        try:
            rows.append(json.loads(text))
        except json.JSONDecodeError:
            if after_torn == "stop":
                break
    return rows


class Appender:
    """A text file that a run appends lines to, kept open between appends: each ``write`` is in
    the file, as far as the operating system is concerned, when it returns (one write and one
    flush, no open and close per epoch). ``header`` is written first when the file is new or
    empty. ``close`` ends that; writing again opens the file again."""

    def __init__(self, path: Path, header: str = ""):
        self.path = Path(path)
        self.header = header
        self._fh: TextIO | None = None

    def write(self, text: str) -> None:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8", newline="")  # open until close()
            if self.header and self._fh.tell() == 0:
                self._fh.write(self.header)
        try:
            self._fh.write(text)
            self._fh.flush()
        except OSError as exc:
            if exc.filename is None:
                exc.filename = str(self.path)  # "No space left on device" alone does not say where
            raise

    def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fh.close()


class MetricsLog:
    """metrics.jsonl and metrics.csv: one row per epoch, appended as epochs finish (the files
    stay open while a run appends; ``close`` closes them)."""

    def __init__(self, run_dir: Path, columns=METRIC_COLUMNS):
        self.jsonl = Path(run_dir) / "metrics.jsonl"
        self.csv = Path(run_dir) / "metrics.csv"
        self.columns = tuple(columns)  # metrics.csv's header: the run's task's metrics
        self._jsonl = Appender(self.jsonl)
        self._csv = Appender(self.csv, header=self._table_text([]))
        self._rows = self._table(self._csv)  # writes each row with one write() call

    def rows(self) -> list[dict]:
        return read_jsonl(self.jsonl)

    def rewrite(self, rows: list[dict]) -> None:
        """Replace both files with exactly ``rows`` (used when a resumed run rewinds)."""
        self.close()  # the files are replaced: later rows go to the new ones
        atomic_write_text(self.jsonl, "".join(json.dumps(r, default=_json_default) + "\n" for r in rows))
        atomic_write_text(self.csv, self._table_text(rows))

    def append(self, row: dict) -> None:
        self._jsonl.write(json.dumps(row, default=_json_default) + "\n")
        self._rows.writerow({k: _csv_value(row.get(k)) for k in self.columns})

    def close(self) -> None:
        """Close the files ``append`` keeps open."""
        self._jsonl.close()
        self._csv.close()

    def _table(self, fh) -> csv.DictWriter:
        return csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")

    def _table_text(self, rows: list[dict]) -> str:
        """metrics.csv's whole text for ``rows``: the header, then a line per row."""
        buffer = io.StringIO()
        writer = self._table(buffer)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _csv_value(r.get(k)) for k in self.columns})
        return buffer.getvalue()


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value

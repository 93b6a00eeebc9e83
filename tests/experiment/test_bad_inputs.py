"""Bad inputs a new user types, across every command: each is refused with exit 2 and one
message that names the thing, with no traceback and no warning text, nothing made on disk
and nothing the user had changed.

One table of cases, run through ``devgrad.cli.main`` in-process (a few through a real
``python -m devgrad`` process, and a few through the Python API). Every case snapshots its
folder and the shared trained runs before and after: a refusal leaves both exactly as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

import numpy as np
import pytest
import yaml

from devgrad import cli
from devgrad.backend import DeviceError
from devgrad.data import DataError
from devgrad.experiment import RunError, load, run, sweep
from devgrad.experiment.spec import SpecError
from tests.support.run_helpers import cli_process

USER_ERRORS = (SpecError, DataError, RunError, DeviceError)

BASE = {"name": "t", "seed": 1, "device": "cpu", "data": {"source": "triangle", "n_samples": 200},
        "model": {"hidden": [4]}, "train": {"epochs": 1, "batch_size": 32}, "plots": {"enabled": False}}


def spec_text(**changes) -> str:
    """BASE with top-level keys replaced (None removes one), as YAML."""
    spec = {**BASE, **changes}
    return yaml.safe_dump({k: v for k, v in spec.items() if v is not None}, sort_keys=False)


def csv_spec(target: str = "label", path: str = "d.csv", **data) -> str:
    return spec_text(data={"source": "csv", "path": path, "target": target, **data})


def npz_spec(path: str = "d.npz") -> str:
    return spec_text(data={"source": "npz", "path": path})


def npz_bytes(**arrays) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with path.open("wb") as f:
            np.savez(f, **arrays)
    return write


def numbers_csv(rows: int = 40, classes: int = 2) -> str:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(rows, 2))
    lines = ["a,b,label"] + [f"{x:.3f},{z:.3f},{i % classes}" for i, (x, z) in enumerate(points)]
    return "\n".join(lines) + "\n"


def continuous_csv() -> str:
    rng = np.random.default_rng(1)
    lines = ["a,b,label"] + [f"{x:.3f},{z:.3f},{int(v)}" for x, z, v in rng.normal(size=(300, 3)) * 100 + 500]
    return "\n".join(lines) + "\n"


_RX = numbers_csv(40)


@dataclass
class Case:
    """``argv`` (formatted with {tmp}, {run}, {reg}) for ``devgrad``, or ``api(tmp, runs)`` for the
    Python API; ``files`` to write first (relative path -> text, bytes or a writer of the path);
    ``prepare(tmp, runs)`` for anything else; ``expect``: a substring of the message."""

    id: str
    expect: str
    argv: list = field(default_factory=list)
    files: dict = field(default_factory=dict)
    prepare: Callable | None = None
    api: Callable | None = None
    process: bool = False
    keep: tuple = ()  # files of the user's whose bytes must not change


def copy_run(name: str, changes: Callable[[Path], None]) -> Callable:
    """A copy of a shared trained run under tmp/``name``, then ``changes`` applied to it."""
    def prepare(tmp: Path, runs: dict) -> None:
        shutil.copytree(runs["run"], tmp / name)
        changes(tmp / name)
    return prepare


def _meta(folder: Path, **fields) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, **fields}))


def _damaged_last(folder: Path) -> None:
    _meta(folder, status="interrupted")
    (folder / "checkpoints" / "last.npz").write_bytes(b"PK\x03\x04 not really a zip file")


def _truncated_last(folder: Path) -> None:
    _meta(folder, status="interrupted")
    last = folder / "checkpoints" / "last.npz"
    last.write_bytes(last.read_bytes()[:200])


def _running(folder: Path) -> None:
    _meta(folder, status="running", pid=os.getppid(), host=socket.gethostname())


def _no_checkpoints(folder: Path) -> None:
    shutil.rmtree(folder / "checkpoints")


CASES = [
    # the spec file itself
    Case("yaml-syntax", "invalid YAML at line 3",
         ["validate", "{tmp}/s.yaml"], {"s.yaml": "name: t\nmodel: {hidden: [4]\ndata: x\n"}),
    Case("yaml-not-a-mapping", "must be a mapping of keys", ["run", "{tmp}/s.yaml"], {"s.yaml": "- 1\n- 2\n"}),
    Case("empty-spec", "data.source: is required", ["validate", "{tmp}/s.yaml"], {"s.yaml": ""}),
    Case("missing-spec", "file not found: {tmp}/nope.yaml", ["run", "{tmp}/nope.yaml"]),
    Case("folder-as-spec", "is a folder", ["run", "{tmp}/d"], {"d/x.txt": "x"}),
    Case("spec-not-utf8", "is not UTF-8 text", ["validate", "{tmp}/s.yaml"], {"s.yaml": b"name: \xff\xfe\n"}),
    Case("unknown-bundled-name", "did you mean 'triangle'", ["run", "trianglee"]),
    Case("unknown-top-key", "did you mean 'train.epochs'", ["validate", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(epochs=3)}),
    Case("misspelt-nested-key", "did you mean 'hidden'", ["run", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(model={"hiden": [4]})}),
    Case("set-misspelt-key", "did you mean 'lr'", ["run", "{tmp}/s.yaml", "--set", "optimizer.lrr=0.1"],
         {"s.yaml": spec_text()}),
    Case("set-misspelt-nested", "did you mean 'epochs'", ["validate", "{tmp}/s.yaml", "--set", "train.epoch=3"],
         {"s.yaml": spec_text()}),
    Case("set-without-equals", "expected key.path=value", ["run", "{tmp}/s.yaml", "--set", "train.epochs"],
         {"s.yaml": spec_text()}),
    Case("epochs-text", "must be of type integer, got str 'ten'", ["run", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(train={"epochs": "ten"})}),
    Case("hidden-text", "must be a list of positive integers",
         ["run", "{tmp}/s.yaml"], {"s.yaml": spec_text(model={"hidden": [4, "x"]})}),
    Case("negative-lr", "lr must be >= 0, got -0.1",
         ["run", "{tmp}/s.yaml"], {"s.yaml": spec_text(optimizer={"name": "adam", "lr": -0.1})}),
    Case("lr-infinite", "optimizer.lr (from --set): must be a finite number",
         ["run", "{tmp}/s.yaml", "--set", "optimizer.lr=.inf"], {"s.yaml": spec_text()}),
    Case("set-bad-yaml", "model.hidden=[4", ["run", "{tmp}/s.yaml", "--set", "model.hidden=[4"],
         {"s.yaml": spec_text()}),
    Case("epochs-zero", "train.epochs (from --set): must be > 0",
         ["run", "{tmp}/s.yaml", "--set", "train.epochs=0"], {"s.yaml": spec_text()}),
    Case("split-not-summing", "train + val + test must sum to 1, got 0.7", ["validate", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(data={"source": "triangle", "split": {"train": 0.5, "val": 0.1, "test": 0.1}})}),
    Case("seed-negative", "must be >= 0, got -1", ["run", "{tmp}/s.yaml"], {"s.yaml": spec_text(seed=-1)}),
    Case("dropout-1.5", "must be in [0, 1), got 1.5",
         ["run", "{tmp}/s.yaml"], {"s.yaml": spec_text(model={"dropout": 1.5})}),
    Case("batch-size-zero", "train.batch_size (from --set): must be > 0",
         ["run", "{tmp}/s.yaml", "--set", "train.batch_size=0"],
         {"s.yaml": spec_text()}),
    Case("unknown-activation", "unknown value 'rleu'", ["run", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(model={"activation": "rleu"})}),
    Case("unknown-optimizer", "did you mean 'adam'", ["run", "{tmp}/s.yaml"], {"s.yaml": spec_text(optimizer="adamm")}),
    Case("unknown-source", "did you mean 'triangle'", ["run", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(data={"source": "trianglee"})}),
    Case("unknown-loss", "unknown loss 'crossentropyy'",
         ["run", "{tmp}/s.yaml"], {"s.yaml": spec_text(loss="crossentropyy")}),
    Case("n-classes-ignored", "data.source triangle does not take n_classes",
         ["run", "{tmp}/s.yaml", "--set", "data.n_classes=5"], {"s.yaml": spec_text()}),
    Case("more-classes-than-rows", "data.n_classes (line 6): 500 classes in 200 rows", ["validate", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(data={"source": "blobs", "n_classes": 500, "n_samples": 200})}),
    Case("sweep-block-in-run", "run it with 'devgrad sweep SPEC'", ["run", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(sweep={"grid": {"optimizer.lr": [0.1, 0.2]}})}),
    # sizes that cannot fit, devices that are not there
    Case("billion-samples", "the largest part is the data: use fewer data.n_samples", ["validate", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(data={"source": "triangle", "n_samples": 1_000_000_000})}),
    Case("huge-hidden", "make model.hidden [100000, 100000] smaller",
         ["run", "{tmp}/s.yaml"], {"s.yaml": spec_text(model={"hidden": [100000, 100000]})}),
    Case("device-cuda", "device 'cuda' was requested but CUDA is not available",
         ["run", "{tmp}/s.yaml", "--device", "cuda"], {"s.yaml": spec_text()}),
    Case("device-unknown", "unknown device 'tpu'", ["run", "{tmp}/s.yaml", "--device", "tpu"], {"s.yaml": spec_text()}),
    Case("out-is-a-file", "is a file", ["run", "{tmp}/s.yaml", "--out", "{tmp}/f"],
         {"s.yaml": spec_text(), "f": "mine\n"}, keep=("f",)),
    # CSV data
    Case("csv-missing", "missing.csv", ["run", "{tmp}/s.yaml"], {"s.yaml": csv_spec(path="missing.csv")}),
    Case("csv-empty", "d.csv: the file is empty", ["run", "{tmp}/s.yaml"], {"s.yaml": csv_spec(), "d.csv": ""}),
    Case("csv-folder", "dd is a folder", ["validate", "{tmp}/s.yaml"], {"s.yaml": csv_spec(path="dd"), "dd/x": "x"}),
    Case("csv-bom-misspelt-target", "columns are: a, b, label; did you mean 'label'?", ["run", "{tmp}/s.yaml"],
         {"s.yaml": csv_spec(target="labl"), "d.csv": "\ufeff" + _RX}),
    Case("csv-semicolons", "separated by ';'", ["run", "{tmp}/s.yaml"],
         {"s.yaml": csv_spec(), "d.csv": _RX.replace(",", ";")}),
    Case("csv-no-target-column", "no column", ["validate", "{tmp}/s.yaml"],
         {"s.yaml": csv_spec(target="species"), "d.csv": _RX}),
    Case("csv-empty-target-cell", "column 'label': the target is empty", ["run", "{tmp}/s.yaml"],
         {"s.yaml": csv_spec(), "d.csv": _RX.replace(",1\n", ",\n", 1)}),
    Case("csv-duplicate-header", "names 'a' more than once", ["run", "{tmp}/s.yaml"],
         {"s.yaml": csv_spec(), "d.csv": _RX.replace("a,b,label", "a,a,label")}),
    Case("csv-only-target", "the only column is the target 'label'", ["run", "{tmp}/s.yaml"],
         {"s.yaml": csv_spec(), "d.csv": "label\n" + "".join(f"{i % 2}\n" for i in range(40))}),
    Case("csv-text-in-numbers", "column 'b': 'abc' is not a number", ["run", "{tmp}/s.yaml"],
         {"s.yaml": csv_spec(), "d.csv": _RX.replace(",1\n", ",1\n1.0,abc,1\n", 1)}),
    Case("csv-nan", "column 'a': 'nan' is not a finite number", ["run", "{tmp}/s.yaml"],
         {"s.yaml": csv_spec(), "d.csv": _RX.replace(",1\n", ",1\nnan,1.0,1\n", 1)}),
    Case("csv-one-row", "single class", ["run", "{tmp}/s.yaml"], {"s.yaml": csv_spec(), "d.csv": "a,b,label\n1,2,0\n"}),
    Case("csv-two-rows", "2 classes in 2 rows",
         ["run", "{tmp}/s.yaml"], {"s.yaml": csv_spec(), "d.csv": "a,b,label\n1,2,0\n3,4,1\n"}),
    Case("csv-ragged", "line 4: 2 values but the header has 3", ["run", "{tmp}/s.yaml"],
         {"s.yaml": csv_spec(), "d.csv": _RX.replace(",1\n", ",1\n1.0,2.0\n", 1)}),
    Case("csv-header-only", "no data rows after the header",
         ["validate", "{tmp}/s.yaml"], {"s.yaml": csv_spec(), "d.csv": "a,b,label\n"}),
    Case("csv-too-many-classes", "30 classes in 30 rows", ["run", "{tmp}/s.yaml"],
         {"s.yaml": csv_spec(), "d.csv": numbers_csv(30, classes=30)}),
    Case("csv-continuous-as-classes", "look like a continuous quantity", ["run", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(task="classification", data={"source": "csv", "path": "d.csv", "target": "label"}),
          "d.csv": continuous_csv()}),
    # NPZ data
    Case("npz-is-text", "not an NPZ", ["run", "{tmp}/s.yaml"], {"s.yaml": npz_spec(), "d.npz": "a,b\n1,2\n"}),
    Case("npz-is-npy", "a single .npy array, not an NPZ archive", ["run", "{tmp}/s.yaml"],
         {"s.yaml": npz_spec("d.npy"), "d.npy": lambda p: np.save(p, np.zeros((10, 2)))}),
    Case("npz-missing-X", "'X'", ["run", "{tmp}/s.yaml"],
         {"s.yaml": npz_spec(), "d.npz": npz_bytes(x=np.zeros((20, 2)), y=np.zeros(20))}),
    Case("npz-2d-y-not-one-hot", "y has shape (20, 3), which is not labels", ["run", "{tmp}/s.yaml"],
         {"s.yaml": npz_spec(), "d.npz": npz_bytes(X=np.zeros((20, 2)), y=np.arange(60.0).reshape(20, 3))}),
    Case("npz-complex-X", "X is complex", ["run", "{tmp}/s.yaml"],
         {"s.yaml": npz_spec(), "d.npz": npz_bytes(X=np.ones((20, 2)) * (1 + 1j), y=np.arange(20) % 2)}),
    Case("npz-no-rows", "no samples", ["run", "{tmp}/s.yaml"],
         {"s.yaml": npz_spec(), "d.npz": npz_bytes(X=np.zeros((0, 2)), y=np.zeros(0))}),
    Case("npz-lengths-differ", "X has 20 rows but y has 19", ["run", "{tmp}/s.yaml"],
         {"s.yaml": npz_spec(), "d.npz": npz_bytes(X=np.zeros((20, 2)), y=np.arange(19) % 2)}),
    # sweeps
    Case("grid-misspelt-key", "did you mean 'lr'", ["sweep", "{tmp}/s.yaml", "--grid", "optimizer.lrr=0.1,0.2"],
         {"s.yaml": spec_text()}),
    Case("grid-repeated-key", "--grid train.epochs is given twice",
         ["sweep", "{tmp}/s.yaml", "--grid", "train.epochs=2,3",
                                               "--grid", "train.epochs=4"], {"s.yaml": spec_text()}),
    Case("grid-bad-value", "train.epochs (from --grid): must be > 0",
         ["sweep", "{tmp}/s.yaml", "--grid", "train.epochs=0,2"],
         {"s.yaml": spec_text()}),
    Case("grid-no-values", "every value must be non-empty", ["sweep", "{tmp}/s.yaml", "--grid", "train.epochs="],
         {"s.yaml": spec_text()}),
    Case("grid-in-file-misspelt", "did you mean 'hidden'", ["sweep", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(sweep={"grid": {"model.hiden": [[4], [8]]}})}),
    Case("dask-web-address", "--address http://x", ["sweep", "{tmp}/s.yaml", "--executor", "dask", "--address",
                                                    "http://x"], {"s.yaml": spec_text()}),
    Case("address-without-dask", "--address is for --executor dask",
         ["sweep", "{tmp}/s.yaml", "--address", "tcp://127.0.0.1:1"],
         {"s.yaml": spec_text()}),
    Case("sweep-jobs-zero", "--jobs must be >= 1", ["sweep", "{tmp}/s.yaml", "--jobs", "0"], {"s.yaml": spec_text()}),
    Case("sweep-resume-not-a-sweep", "is not a sweep folder", ["sweep", "--resume", "{tmp}/d"], {"d/x.txt": "x"}),
    Case("search-trials-zero", "--trials must be >= 1",
         ["sweep", "{tmp}/s.yaml", "--search", "tpe", "--trials", "0", "--space",
                                            "optimizer.lr=loguniform(1e-3,1e-1)"], {"s.yaml": spec_text()}),
    Case("search-space-misspelt", "did you mean 'lr'", ["sweep", "{tmp}/s.yaml", "--search", "random", "--trials", "2",
                                                        "--space", "optimizer.lrr=loguniform(1e-3,1e-1)"],
         {"s.yaml": spec_text()}),
    Case("search-space-bad-range", "the bounds are in the wrong order",
         ["sweep", "{tmp}/s.yaml", "--search", "random", "--trials", "2",
                                                    "--space", "optimizer.lr=loguniform(0.1,0.001)"],
         {"s.yaml": spec_text()}),
    Case("search-storage-unknown-kind", "--storage nosuch://x", ["sweep", "{tmp}/s.yaml", "--search", "random",
                                                                  "--trials", "2", "--space",
                                                                  "optimizer.lr=loguniform(1e-3,1e-1)", "--storage",
                                                                  "nosuch://x"], {"s.yaml": spec_text()}),
    # resume
    Case("resume-not-a-run", "not a run folder", ["resume", "{tmp}/d"], {"d/x.txt": "x"}),
    Case("resume-missing-folder", "nowhere is not a run folder (no such folder)", ["resume", "{tmp}/nowhere"]),
    Case("resume-completed", "already completed", ["resume", "{run}"]),
    Case("resume-damaged-last", "last.npz", ["resume", "{tmp}/r"], prepare=copy_run("r", _damaged_last)),
    Case("resume-truncated-last", "last.npz", ["resume", "{tmp}/r"], prepare=copy_run("r", _truncated_last)),
    Case("resume-damaged-meta", "meta.json is damaged", ["resume", "{tmp}/r"],
         prepare=copy_run("r", lambda folder: (folder / "meta.json").write_text("{"))),
    Case("resume-running", "still being trained", ["resume", "{tmp}/r"], prepare=copy_run("r", _running)),
    # predict
    Case("predict-missing-column", "'b'", ["predict", "{run}", "{tmp}/x.csv"], {"x.csv": "a,c\n1,2\n"}),
    Case("predict-wrong-width", "the model takes 2 features per row",
         ["predict", "{run}", "{tmp}/x.npz"], {"x.npz": npz_bytes(X=np.zeros((4, 3)))}),
    Case("predict-text-cell", "column 'a': 'foo' is not a number",
         ["predict", "{run}", "{tmp}/x.csv"], {"x.csv": "a,b\nfoo,2\n"}),
    Case("predict-empty-csv", "x.csv: the file is empty", ["predict", "{run}", "{tmp}/x.csv"], {"x.csv": ""}),
    Case("predict-missing-data", "nodata.csv: no such file", ["predict", "{run}", "{tmp}/nodata.csv"]),
    Case("predict-out-under-a-file", "{tmp}/f is a file, not a folder",
         ["predict", "{run}", "{tmp}/x.csv", "--out", "{tmp}/f/p.csv"],
         {"x.csv": "a,b\n1,2\n", "f": "mine\n"}, keep=("f",)),
    Case("predict-out-unwritable", "/proc/p.csv", ["predict", "{run}", "{tmp}/x.csv", "--out", "/proc/p.csv"],
         {"x.csv": "a,b\n1,2\n"}),
    Case("predict-out-exists", "p.csv already exists", ["predict", "{run}", "{tmp}/x.csv", "--out", "{tmp}/p.csv"],
         {"x.csv": "a,b\n1,2\n", "p.csv": "mine\n"}, keep=("p.csv",)),
    Case("predict-proba-regression", "which has no class probabilities", ["predict", "{reg}", "{tmp}/x.csv", "--proba"],
         {"x.csv": "a,label\n1,0\n"}),
    Case("predict-no-checkpoint", "has no checkpoint", ["predict", "{tmp}/r", "{tmp}/x.csv"],
         {"x.csv": "a,b\n1,2\n"}, prepare=copy_run("r", _no_checkpoints)),
    Case("predict-damaged-best", "best.npz is not a readable .npz file (not a zip archive)",
         ["predict", "{tmp}/r", "{tmp}/x.csv"], {"x.csv": "a,b\n1,2\n"},
         prepare=copy_run("r", lambda folder: (folder / "checkpoints" / "best.npz").write_bytes(b"PK garbage"))),
    Case("predict-not-a-run", "not a run folder", ["predict", "{tmp}/d", "{tmp}/x.csv"],
         {"x.csv": "a,b\n1,2\n", "d/x.txt": "x"}),
    # export, report, examples
    Case("export-out-exists", "m.onnx already exists",
         ["export", "{run}", "--out", "{tmp}/m.onnx"], {"m.onnx": "mine\n"},
         keep=("m.onnx",)),
    Case("export-not-a-run", "not a run folder", ["export", "{tmp}/d"], {"d/x.txt": "x"}),
    Case("export-no-checkpoint", "has no checkpoint", ["export", "{tmp}/r", "--out", "{tmp}/m.onnx"],
         prepare=copy_run("r", _no_checkpoints)),
    Case("export-bad-opset", "opset 2 cannot be used", ["export", "{run}", "--out", "{tmp}/m.onnx", "--opset", "2"]),
    Case("report-not-a-run", "neither a run folder", ["report", "{tmp}/d"], {"d/x.txt": "x"}),
    Case("report-missing-folder", "nowhere: no such folder", ["report", "{tmp}/nowhere"]),
    Case("examples-copy-onto-edited", "triangle.yaml already exists with other content",
         ["examples", "--copy", "{tmp}/ex"],
         {"ex/triangle.yaml": "name: mine\n"}, keep=("ex/triangle.yaml",)),
    Case("examples-copy-to-a-file", "{tmp}/f is a file, not a folder",
         ["examples", "--copy", "{tmp}/f"], {"f": "mine\n"}, keep=("f",)),
    # a real process
    Case("process-yaml-syntax", "invalid YAML at line 3", ["validate", "{tmp}/s.yaml"],
         {"s.yaml": "name: t\nmodel: {hidden: [4]\ndata: x\n"}, process=True),
    Case("process-billion-samples", "the largest part is the data: use fewer data.n_samples", ["run", "{tmp}/s.yaml"],
         {"s.yaml": spec_text(data={"source": "triangle", "n_samples": 1_000_000_000})}, process=True),
    Case("process-device-cuda", "device 'cuda' was requested but CUDA is not available",
         ["run", "{tmp}/s.yaml", "--device", "cuda", "--quiet"],
         {"s.yaml": spec_text()}, process=True),
    # the Python API
    Case("api-run-misspelt-key", "did you mean 'epochs'",
         api=lambda tmp, runs: run({**BASE, "train": {"epoch": 2}}, out=tmp / "runs", quiet=True)),
    Case("api-run-set-misspelt", "did you mean 'lr'",
         api=lambda tmp, runs: run(BASE, overrides=["optimizer.lrr=0.1"], out=tmp / "runs", quiet=True)),
    Case("api-sweep-misspelt-grid-key", "did you mean 'lr'",
         api=lambda tmp, runs: sweep(BASE, grid={"optimizer.lrr": [0.1, 0.2]}, out=tmp / "sweeps", quiet=True)),
    Case("api-run-overrides-one-string", "did you mean 'lr'",
         api=lambda tmp, runs: run(BASE, overrides="optimizer.lrr=0.1", out=tmp / "runs", quiet=True)),
    Case("api-predict-dict-missing-column", "the dict: no column 'b'",
         api=lambda tmp, runs: load(runs["run"], quiet=True).predict({"a": [1.0], "c": [2.0]})),
    Case("api-predict-dict-ragged", "different lengths",
         api=lambda tmp, runs: load(runs["run"], quiet=True).predict({"a": [1.0, 2.0], "b": [2.0]})),
    Case("api-load-not-a-run", "not a run folder", files={"d/x.txt": "x"},
         api=lambda tmp, runs: load(tmp / "d")),
    Case("api-predict-wrong-width", "the model takes 2 features per row",
         api=lambda tmp, runs: load(runs["run"], quiet=True).predict(np.zeros((4, 3)))),
]


def _write(tmp: Path, files: dict) -> None:
    for name, content in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def snapshot(*roots: Path) -> dict:
    """Every file and folder under ``roots``: its size and modification time (folders: None)."""
    seen = {}
    for root in roots:
        for path in [root, *sorted(root.rglob("*"))]:
            stat = path.stat()
            seen[str(path)] = None if path.is_dir() else (stat.st_size, stat.st_mtime_ns)
    return seen


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """One tiny classification run (features a, b) and one regression run, trained once."""
    root = tmp_path_factory.mktemp("bad_inputs_runs")
    (root / "c.csv").write_text(numbers_csv(60))
    cls = {**BASE, "name": "cls", "data": {"source": "csv", "path": str(root / "c.csv"), "target": "label"},
           "train": {"epochs": 2, "batch_size": 16}}
    reg = {**cls, "name": "reg", "task": "regression", "data": {"source": "csv", "path": str(root / "c.csv"),
                                                                  "target": "b"}}
    return {"run": run(cls, out=root / "runs", quiet=True).run_dir,
            "reg": run(reg, out=root / "runs", quiet=True).run_dir}


def _params():
    for case in CASES:
        # a fresh interpreter imports devgrad: a couple of seconds
        yield pytest.param(case, id=case.id, marks=[pytest.mark.slow] if case.process else [])


@pytest.mark.parametrize("case", _params())
def test_a_bad_input_is_refused_cleanly(case: Case, runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # default output folders (./runs, ./sweeps) land here, and would show
    _write(tmp_path, case.files)
    if case.prepare:
        case.prepare(tmp_path, runs)
    kept = {name: (tmp_path / name).read_bytes() for name in case.keep}
    before = snapshot(tmp_path, runs["run"], runs["reg"])
    names = {"tmp": str(tmp_path), "run": str(runs["run"]), "reg": str(runs["reg"])}
    expect = case.expect.format(**names)
    argv = [a.format(**names) for a in case.argv]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if case.api:
            with pytest.raises(USER_ERRORS) as info:
                case.api(tmp_path, runs)
            code, err = 2, str(info.value)
        elif case.process:
            done = cli_process(*argv, cwd=tmp_path, env={"PYTHONWARNINGS": "always"}, timeout=120)
            code, err = done.returncode, done.stderr
        else:
            code = cli.main(argv)
            err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip() and expect.lower() in err.lower(), err
    assert "Traceback" not in err and "Warning" not in err, err
    assert not [str(w.message) for w in caught]
    assert snapshot(tmp_path, runs["run"], runs["reg"]) == before, "a refusal changed files on disk"
    assert {name: (tmp_path / name).read_bytes() for name in case.keep} == kept


def test_the_table_covers_sixty_distinct_bad_inputs():
    assert len({case.id for case in CASES}) == len(CASES) >= 60


def test_a_run_that_fails_under_quiet_still_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, {"s.yaml": spec_text()})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = cli.main(["run", "s.yaml", "--quiet", "--set", "optimizer.lr=1e30"])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == "" and not [str(w.message) for w in caught]
    assert "failed: " in captured.err and "diverged" in captured.err and "optimizer.lr" in captured.err

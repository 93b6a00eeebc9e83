"""The experiment runner end to end, driven through the CLI in subprocesses as a user would."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import devgrad as dg
from devgrad.experiment import RunError, SpecError, resolve, run
from tests.helpers import block_import

ROOT = Path(__file__).parents[1]
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


def test_completed_run_folder_has_every_file(tmp_path):
    spec = write_spec(tmp_path, SMALL)
    result = cli("run", spec, "--out", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "runs", "small")
    assert run_dir.name[:8].isdigit() and len(run_dir.name.split("-")) == 3
    expected = ["config.yaml", "meta.json", "metrics.csv", "metrics.jsonl", "summary.json", "train.log",
                "checkpoints/last.npz", "checkpoints/best.npz"]
    if HAVE_MATPLOTLIB:
        expected += ["plots/learning_curves.png", "plots/decision_boundary.png"]
    else:
        assert "plots skipped" in result.stdout and "devgrad[plot]" in result.stdout
    for name in expected:
        assert (run_dir / name).is_file(), name
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["device"] == "cpu" and meta["seed"] == 3
    assert meta["numpy"] == np.__version__ and meta["devgrad"] == dg.__version__ and meta["ended"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 7))
    csv_lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,lr,train_loss") and len(csv_lines) == 7
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 6
    assert 0.5 < summary["test"]["test_accuracy"] <= 1.0 and summary["train_samples_per_second"] > 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["train"]["epochs"] == 6 and config["optimizer"]["betas"] == [0.9, 0.999]  # resolved defaults
    state = dg.load(run_dir / "checkpoints" / "last.npz")
    assert state["epoch"] == 6 and set(state) >= {"model", "optimizer", "scheduler", "rng", "epoch"}
    assert "epoch 6/6" in (run_dir / "train.log").read_text()


def test_non_tty_output_is_plain_lines_without_progress_bar_noise(tmp_path):
    result = cli("run", write_spec(tmp_path, SMALL), "--out", tmp_path / "runs")
    assert "\r" not in result.stdout and "it/s" not in result.stdout and "%|" not in result.stdout
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 6 and "train_loss" in epoch_lines[0]
    quiet = cli("run", write_spec(tmp_path, SMALL), "--out", tmp_path / "runs", "--quiet")
    assert quiet.returncode == 0 and "epoch " not in quiet.stdout


def test_same_seed_gives_identical_metrics_on_cpu(tmp_path):
    spec = write_spec(tmp_path, SMALL)
    for out in ("a", "b"):
        assert cli("run", spec, "--out", tmp_path / out, "-q").returncode == 0
    a, b = only_run_dir(tmp_path / "a", "small"), only_run_dir(tmp_path / "b", "small")
    assert (a / "metrics.jsonl").read_text() == (b / "metrics.jsonl").read_text()
    wa, wb = weights(a), weights(b)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_set_overrides_and_print_config(tmp_path):
    spec = write_spec(tmp_path, SMALL)
    printed = cli("run", spec, "--set", "train.epochs=2", "--set", "model.hidden=[4, 4]", "--print-config",
                  "--out", tmp_path / "runs")
    assert printed.returncode == 0
    config = yaml.safe_load(printed.stdout)
    assert config["train"]["epochs"] == 2 and config["model"]["hidden"] == [4, 4]
    assert not (tmp_path / "runs").exists(), "--print-config must not start a run"
    result = cli("run", spec, "--set", "train.epochs=2", "--set", "optimizer.lr=0.01", "--out", tmp_path / "runs",
                 "-q")
    assert result.returncode == 0
    run_dir = only_run_dir(tmp_path / "runs", "small")
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["optimizer"]["lr"] == 0.01


@pytest.mark.skipif(dg.cuda_available(), reason="checks the no-GPU fallback")
def test_auto_device_falls_back_to_cpu_with_a_notice(tmp_path):
    result = cli("run", write_spec(tmp_path, {**SMALL, "device": "auto"}), "--out", tmp_path / "runs", "-q",
                 "--set", "train.epochs=1")
    assert result.returncode == 0
    assert "device auto: CUDA is not available" in result.stderr and "running on the CPU" in result.stderr
    run_dir = only_run_dir(tmp_path / "runs", "small")
    assert "running on the CPU" in (run_dir / "train.log").read_text()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["device"] == "cpu"
    forced = cli("run", write_spec(tmp_path, SMALL), "--device", "cuda", "--out", tmp_path / "runs2")
    assert forced.returncode == 2 and "CUDA is not available" in forced.stderr
    assert "Traceback" not in forced.stderr and not (tmp_path / "runs2").exists()


BAD_SPECS = [
    ("unknown key", "name: x\ndata: {source: triangle}\nmodle: {hidden: [3]}\n",
     ["modle (line 3): unknown key; did you mean 'model'?"]),
    ("wrong type", "data: {source: triangle}\ntrain: {epochs: ten}\n",
     ["train.epochs (line 2): must be of type integer, got str 'ten'"]),
    ("negative lr", "data: {source: triangle}\noptimizer: {name: sgd, lr: -0.1}\n",
     ["optimizer.lr (line 2): SGD: lr must be >= 0, got -0.1"]),
    ("split sum", "data:\n  source: triangle\n  split: {train: 0.8, val: 0.3, test: 0.1}\n",
     ["data.split (line 3): train + val + test must sum to 1, got 1.2"]),
    ("unknown activation", "data: {source: triangle}\nmodel: {activation: sigmoidd}\n",
     ["model.activation (line 2): unknown value 'sigmoidd'", "did you mean 'sigmoid'?"]),
    ("unknown optimizer", "data: {source: triangle}\noptimizer: {name: adan}\n",
     ["optimizer.name (line 2): unknown optimizer 'adan'", "did you mean 'adam'?"]),
    ("unknown loss", "data: {source: triangle}\nloss: crossentropy\n",
     ["loss (line 2): unknown loss 'crossentropy'", "did you mean 'cross_entropy'?"]),
    ("unknown dataset", "data: {source: spiral}\n", ["data.source (line 1): unknown dataset 'spiral'",
                                                     "did you mean 'spirals'?"]),
    ("missing file", "data: {source: csv, path: nowhere.csv, target: label}\n",
     ["data.path (line 1): file not found:", "nowhere.csv"]),
    ("duplicate key", "data: {source: triangle}\nseed: 1\nseed: 2\n",
     ["seed (line 3): duplicate key, first defined on line 2"]),
    ("invalid yaml", "data: {source: triangle\nseed: [1\n", ["invalid YAML at line"]),
    ("not a mapping", "- just\n- a list\n", ["the spec must be a mapping"]),
    ("missing source", "model: {hidden: [3]}\n", ["data.source: is required"]),
    ("bad hidden", "data: {source: triangle}\nmodel: {hidden: [3, -1]}\n",
     ["model.hidden (line 2): must be a list of positive integers"]),
    ("bad device", "data: {source: triangle}\ndevice: gpu7\n", ["device (line 2): unknown device 'gpu7'"]),
    ("wrong optimizer option", "data: {source: triangle}\noptimizer: {name: sgd, betas: [0.9, 0.99]}\n",
     ["optimizer.betas (line 2): unknown option for optimizer 'sgd'"]),
    ("cuda graph with dropout", "data: {source: triangle}\nmodel: {dropout: 0.2}\ntrain: {cuda_graph: true}\n",
     ["train.cuda_graph (line 3): cannot be used with model.dropout = 0.2", "set model.dropout: 0"]),
]


@pytest.mark.parametrize("label,text,expected", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_specs_exit_2_with_a_clear_message(tmp_path, label, text, expected):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    for command in ("validate", "run"):
        result = cli(command, spec, "--out", tmp_path / "runs") if command == "run" else cli(command, spec)
        assert result.returncode == 2, (label, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        for piece in expected:
            assert piece in result.stderr, (label, piece, result.stderr)
    assert not (tmp_path / "runs").exists(), "a bad spec must not leave a run folder"


def test_all_problems_are_reported_at_once(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("data: {source: triangel}\nmodel: {activation: rellu}\noptimizer: {name: sgd, lr: -1}\n"
                    "train: {epochs: 0}\n")
    result = cli("validate", spec)
    assert result.returncode == 2 and "4 problems" in result.stderr


def test_unknown_override_key_and_incompatible_loss(tmp_path):
    spec = write_spec(tmp_path, SMALL)
    result = cli("run", spec, "--set", "optimiser.lr=0.1")
    assert result.returncode == 2 and "did you mean 'optimizer'?" in result.stderr
    multi = write_spec(tmp_path, {**SMALL, "data": {"source": "blobs", "n_classes": 3}, "loss": "hinge"}, "m.yaml")
    result = cli("run", multi, "--out", tmp_path / "runs")
    assert result.returncode == 2 and "loss 'hinge' is for two classes but the data has 3" in result.stderr
    assert not (tmp_path / "runs").exists()


def _wait_for_rows(run_root: Path, name: str, count: int, proc, timeout=120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        folders = list((run_root / name).glob("*")) if (run_root / name).exists() else []
        if folders:
            metrics = folders[0] / "metrics.jsonl"
            if metrics.exists() and len(metrics.read_text().splitlines()) >= count:
                return folders[0]
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.02)
    raise AssertionError("the run made no progress")


LONG = {**SMALL, "name": "long", "data": {"source": "triangle", "n_samples": 3000},
        "model": {"hidden": [32, 32], "activation": "tanh", "dropout": 0.1},
        "schedule": {"name": "cosine"},
        "train": {"epochs": 60, "batch_size": 16, "checkpoint": {"every": 3}}}


@pytest.mark.parametrize("how", ["kill -9", "ctrl-c"])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, how):
    spec = write_spec(tmp_path, LONG)
    assert cli("run", spec, "--out", tmp_path / "straight", "-q").returncode == 0
    reference = only_run_dir(tmp_path / "straight", "long")

    proc = subprocess.Popen([sys.executable, "-m", "devgrad", "run", str(spec), "--out", str(tmp_path / "cut"), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = _wait_for_rows(tmp_path / "cut", "long", 8, proc)
    proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    meta = json.loads((run_dir / "meta.json").read_text())
    if how == "ctrl-c":
        assert proc.returncode == 130 and meta["status"] == "stopped", err
        assert "devgrad resume" in err or "devgrad resume" in (run_dir / "train.log").read_text()
    else:
        assert meta["status"] == "running"  # killed: nobody could write anything
    done_before = len((run_dir / "metrics.jsonl").read_text().splitlines())
    assert done_before < 60

    resumed = cli("resume", run_dir, "-q")
    assert resumed.returncode == 0, resumed.stderr
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 61)), "no epoch missing or duplicated"
    csv_epochs = [int(line.split(",")[0]) for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert csv_epochs == list(range(1, 61))
    assert (run_dir / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
    w_resumed, w_ref = weights(run_dir), weights(reference)
    assert all(np.array_equal(w_resumed[k], w_ref[k]) for k in w_ref), "resume must reproduce the weights"
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and len(meta["resumed"]) == 1
    again = cli("resume", run_dir)
    assert again.returncode == 2 and "already completed" in again.stderr


def test_divergence_fails_cleanly_and_keeps_the_last_good_checkpoint(tmp_path):
    spec = write_spec(tmp_path, {**SMALL, "loss": "mse", "optimizer": {"name": "sgd", "lr": 1e8},
                                 "model": {"hidden": [16], "activation": "relu"},
                                 "train": {"epochs": 30, "batch_size": 8, "checkpoint": {"every": 1}}})
    result = cli("run", spec, "--out", tmp_path / "runs")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "diverged" in result.stdout
    run_dir = only_run_dir(tmp_path / "runs", "small")
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "failed"
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    if rows:  # every checkpoint written holds finite weights
        state = dg.load(run_dir / "checkpoints" / "last.npz")
        assert all(np.isfinite(v.numpy()).all() for v in state["model"].values())


def test_early_stopping_and_restore_best(tmp_path):
    spec = {**SMALL, "train": {"epochs": 200, "batch_size": 32,
                               "early_stopping": {"enabled": True, "monitor": "val_loss", "patience": 3,
                                                  "restore_best": True}},
            "optimizer": {"name": "sgd", "lr": 2.0}}
    result = run(spec, out=tmp_path, quiet=True)
    assert result.status == "completed" and result.summary["epochs_run"] < 200
    best = result.summary["best_epoch"]
    assert result.summary["epochs_run"] == best + 3, "stops exactly `patience` epochs after the best"


def test_library_run_result_is_picklable_and_folders_never_collide(tmp_path):
    first = run({**SMALL, "train": {"epochs": 1}}, out=tmp_path, quiet=True)
    second = run({**SMALL, "train": {"epochs": 1}}, out=tmp_path, quiet=True)
    assert first.run_dir != second.run_dir and first.run_dir.parent == second.run_dir.parent
    clone = pickle.loads(pickle.dumps(first))
    assert clone.summary == first.summary and clone.history == first.history and clone.status == "completed"


def test_library_errors_are_typed():
    with pytest.raises(SpecError):
        resolve({"data": {"source": "nope"}})
    with pytest.raises(RunError, match="not a run folder"):
        dg.experiment.resume("/nonexistent/run")


@needs_matplotlib
def test_plot_command_redraws(tmp_path):
    result = run(SMALL, out=tmp_path, quiet=True)
    for png in (result.run_dir / "plots").iterdir():
        png.unlink()
    redraw = cli("plot", result.run_dir)
    assert redraw.returncode == 0, redraw.stderr
    assert (result.run_dir / "plots" / "decision_boundary.png").stat().st_size > 1000


def test_every_shipped_experiment_validates():
    specs = sorted((ROOT / "experiments").glob("*.yaml"))
    names = {p.stem for p in specs}
    assert {"linear_classifier", "logistic_regression", "triangle", "triangle_linear_activation",
            "zero_init_symmetry", "random_init", "xor", "spirals", "digits", "gpu_large"} <= names
    for path in specs:
        spec = resolve(path)
        assert spec["name"] == path.stem


@pytest.mark.parametrize("name,minimum,maximum", [
    ("triangle", 0.97, 1.0), ("triangle_linear_activation", 0.0, 0.85), ("zero_init_symmetry", 0.0, 0.85),
    ("xor", 0.9, 1.0), ("logistic_regression", 0.85, 1.0), ("linear_classifier", 0.95, 1.0),
])
def test_lecture_experiments_show_what_the_lecture_says(tmp_path, name, minimum, maximum):
    result = run(ROOT / "experiments" / f"{name}.yaml", out=tmp_path, quiet=True, device="cpu")
    accuracy = result.summary["test"]["test_accuracy"]
    assert minimum <= accuracy <= maximum, (name, accuracy)


def _schema_paths(schema: dict, prefix: str = "") -> list[str]:
    paths = []
    for key, value in schema.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in ("train.early_stopping", "train.checkpoint", "data.split"):
            paths += _schema_paths(value, path + ".")
        else:
            paths.append(path)
    return paths


def test_readme_documents_every_spec_key():
    from devgrad.experiment.spec import SCHEMA

    readme = (ROOT / "README.md").read_text()
    missing = [p for p in _schema_paths(SCHEMA) if f"`{p}`" not in readme]
    assert not missing, f"README's spec reference lacks: {missing}"


def test_readme_newcomer_command_runs_the_triangle(tmp_path):
    readme = (ROOT / "README.md").read_text()
    first = readme.split("```bash\n", 1)[1].split("\n", 1)[0]
    assert first == "pip install '.[plot,progress]' && devgrad run experiments/triangle.yaml"
    result = cli("run", ROOT / "experiments" / "triangle.yaml", "--out", tmp_path, "-q", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path, "triangle")
    assert (run_dir / "plots" / "decision_boundary.png").exists() or not HAVE_MATPLOTLIB
    assert json.loads((run_dir / "summary.json").read_text())["test"]["test_accuracy"] >= 0.97


def test_runs_without_matplotlib_say_plots_were_skipped(tmp_path, monkeypatch):
    block_import(monkeypatch, "matplotlib")
    result = run({**SMALL, "train": {"epochs": 1}}, out=tmp_path, quiet=True)
    assert result.status == "completed" and result.summary["plots"] == []
    assert "plots skipped" in (result.run_dir / "train.log").read_text()


def test_missing_scikit_learn_is_a_clear_error(tmp_path, monkeypatch):
    block_import(monkeypatch, "sklearn")
    with pytest.raises(dg.data.DataError, match=r"needs scikit-learn: pip install 'devgrad\[sklearn\]'"):
        run({**SMALL, "data": {"source": "sklearn:iris"}}, out=tmp_path, quiet=True)
    assert not (tmp_path / "small").exists()


def test_progress_bar_on_a_terminal(tmp_path):
    pytest.importorskip("tqdm")
    import pty

    spec = write_spec(tmp_path, {**SMALL, "train": {"epochs": 3}})
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI with a terminal (100 columns) as stdout
        import fcntl
        import struct
        import termios

        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        os.execv(sys.executable, [sys.executable, "-m", "devgrad", "run", str(spec), "--out", str(tmp_path / "r")])
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "epoch" in text and "3/3" in text and "\r" in text, text  # tqdm redraws its bar in place


def test_resume_refuses_a_run_that_is_still_training(tmp_path):
    result = run({**SMALL, "train": {"epochs": 2}}, out=tmp_path, quiet=True)
    meta_path = result.run_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        meta.update(status="running", pid=sleeper.pid)
        meta_path.write_text(json.dumps(meta))
        refused = cli("resume", result.run_dir)
        assert refused.returncode == 2 and "still being trained by process" in refused.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    # once that process is gone the folder is stale and resumable
    assert cli("resume", result.run_dir, "-q").returncode == 0


ISSUE_EXAMPLE = """
name: triangle
seed: 0
device: auto              # auto | cpu | cuda | cuda:N
dtype: float32
data:
  source: triangle        # a synthetic generator, or a file, or sklearn:<name>
  n_samples: 2000
  noise: 0.05
  split: {train: 0.7, val: 0.15, test: 0.15}
  standardize: true
model:
  hidden: [3]
  activation: sigmoid
  init: xavier_uniform
loss: bce                 # bce | logistic (±1 labels) | cross_entropy | mse | hinge
optimizer: {name: sgd, lr: 0.5, momentum: 0.9}
schedule: {name: cosine}
train:
  epochs: 300
  batch_size: 64
  early_stopping: {monitor: val_loss, mode: min, patience: 30, min_delta: 0.0}
  checkpoint: {every: 10, save_best: true}
metrics: [accuracy]
"""


def test_the_spec_from_the_issue_validates_and_means_what_it_says(tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(ISSUE_EXAMPLE)
    spec = resolve(path)
    es = spec["train"]["early_stopping"]
    assert es["enabled"] and es["patience"] == 30 and es["mode"] == "min"  # writing the block turns it on
    assert spec["optimizer"] == {"name": "sgd", "lr": 0.5, "momentum": 0.9, "dampening": 0.0, "nesterov": False,
                                 "weight_decay": 0.0}
    off = resolve({"data": {"source": "xor"}, "train": {"early_stopping": False}})
    assert not off["train"]["early_stopping"]["enabled"]
    on = resolve({"data": {"source": "xor"}, "train": {"early_stopping": True}})
    assert on["train"]["early_stopping"]["enabled"] and on["train"]["early_stopping"]["patience"] == 10


def test_an_unexpected_error_marks_the_run_failed(tmp_path, monkeypatch):
    from devgrad.experiment import trainer

    def explode(self, epoch):
        raise MemoryError("out of device memory")

    monkeypatch.setattr(trainer.Trainer, "_train_epoch", explode)
    with pytest.raises(MemoryError):
        run(SMALL, out=tmp_path, quiet=True)
    run_dir = only_run_dir(tmp_path, "small")
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "failed" and "out of device memory" in meta["error"]
    assert "run failed" in (run_dir / "train.log").read_text()


def test_unreadable_spec_and_unwritable_out_are_clean_errors(tmp_path):
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    result = cli("validate", latin)
    assert result.returncode == 2 and "not UTF-8" in result.stderr and "Traceback" not in result.stderr
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("run", write_spec(tmp_path, SMALL), "--out", blocker / "runs")
    assert result.returncode == 2 and "cannot access" in result.stderr and "Traceback" not in result.stderr


def test_without_a_validation_split_the_monitor_falls_back_to_train(tmp_path):
    spec = {**SMALL, "data": {"source": "xor", "n_samples": 300, "split": {"train": 0.8, "val": 0.0, "test": 0.2}},
            "train": {"epochs": 3, "early_stopping": {"patience": 1}}}
    result = run(spec, out=tmp_path, quiet=True)
    assert result.status == "completed" and result.summary["monitor"] == "train_loss"
    assert all("val_loss" not in row for row in result.history)

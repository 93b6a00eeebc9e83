"""A resumed run trains the spec it started with: a config.yaml edited since then in a way that
changes the training is refused, naming each key; edits that change nothing computed may pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devgrad.cli import main
from devgrad.experiment import resolve, run
from devgrad.experiment.resuming import changed_training
from tests.support.run_helpers import SMALL, only_run_dir

SPEC = {**SMALL, "plots": {"enabled": False}, "train": {**SMALL["train"], "epochs": 2}}


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> Path:
    """A run stopped after its first epoch (its stop file was there from the start)."""
    root = tmp_path_factory.mktemp("stopped")
    stop = root / "stop"
    stop.touch()
    with pytest.raises(KeyboardInterrupt):
        run(SPEC, out=root / "runs", quiet=True, stop_file=stop)
    return only_run_dir(root / "runs", "small")


def _files(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _edit(run_dir: Path, edit) -> None:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    edit(config)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))


def _set(path: str, value):
    def edit(config):
        *parents, last = path.split(".")
        block = config
        for key in parents:
            block = block[key]
        block[last] = value
    return edit


@pytest.mark.parametrize("edit, named", [
    (_set("optimizer", {"name": "sgd", "lr": 0.05}), ['optimizer.name: "adam" -> "sgd"',
                                                      "optimizer.betas: [0.9, 0.999] -> (not set)"]),
    (_set("optimizer.lr", 0.01), ["optimizer.lr: 0.05 -> 0.01"]),
    (_set("loss.name", "mse"), ['loss.name: "auto" -> "mse"']),
    (_set("train.batch_size", 8), ["train.batch_size: 32 -> 8"]),
    (_set("schedule", {"name": "cosine"}), ['schedule.name: "none" -> "cosine"']),
], ids=["optimizer", "lr", "loss", "batch_size", "schedule"])
def test_a_config_edited_to_train_differently_is_refused_and_nothing_is_written(stopped_run, tmp_path, capsys,
                                                                                edit, named):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name, data in _files(stopped_run).items():
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_bytes(data)
    _edit(run_dir, edit)
    before = _files(run_dir)
    assert main(["resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"devgrad: error: cannot resume {run_dir}: its config.yaml was edited")
    assert err.count("\n") == 1 and "Traceback" not in err
    for text in named:
        assert text in err
    assert "put config.yaml back as it was" in err and f"devgrad run {run_dir / 'config.yaml'}" in err
    assert _files(run_dir) == before


def test_edits_that_change_nothing_computed_resume_as_before(stopped_run, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name, data in _files(stopped_run).items():
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_bytes(data)

    def edit(config):
        config["description"] = "edited"
        config["plots"]["enabled"] = False
        config["train"]["threads"] = 1
        config["train"]["checkpoint"]["seconds"] = 5.0
    _edit(run_dir, edit)
    assert main(["resume", str(run_dir), "--quiet"]) == 0


def test_a_key_added_to_devgrad_since_the_run_started_counts_only_when_set_away_from_its_default():
    now = resolve(SPEC).to_dict()
    started = resolve(SPEC).to_dict()
    del started["train"]["clip_grad_norm"], started["optimizer"]["amsgrad"]  # as an older devgrad recorded it
    assert changed_training(started, now) == []
    now["train"]["clip_grad_norm"] = 1.0
    now["optimizer"]["amsgrad"] = True
    assert [key for key, _, _ in changed_training(started, now)] == ["optimizer.amsgrad", "train.clip_grad_norm"]

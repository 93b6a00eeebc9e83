"""devgrad.experiment.spec and schema: a spec is checked whole, every problem with its key path and
line, through the CLI as a user runs it."""

from __future__ import annotations

import inspect

import pytest
import yaml

import devgrad as dg
from devgrad import optim
from devgrad.experiment import SpecError, resolve
from devgrad.experiment import spec as devgrad_spec
from tests.support.run_helpers import ROOT, SMALL, SMALL_NO_PLOTS, cli, only_run_dir, write_spec


@pytest.mark.slow
def test_set_overrides_and_print_config(tmp_path):
    spec = write_spec(tmp_path, SMALL_NO_PLOTS)
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


def test_an_override_merges_into_the_default_of_a_block_the_spec_leaves_out(tmp_path):
    no_optimizer = {k: v for k, v in SMALL.items() if k != "optimizer"}
    spec = resolve(no_optimizer, ["optimizer.lr=0.1"])
    assert spec.optimizer.name == "adam" and spec.optimizer.options["lr"] == 0.1
    grid_point = resolve(no_optimizer, [("--grid", "optimizer.lr=0.01"), ("--grid", "schedule.name=step")])
    assert grid_point.optimizer.options["lr"] == 0.01 and grid_point.schedule.name == "step"
    printed = cli("run", write_spec(tmp_path, no_optimizer), "--set", "optimizer.lr=0.1", "--print-config")
    assert printed.returncode == 0, printed.stderr
    assert yaml.safe_load(printed.stdout)["optimizer"]["lr"] == 0.1


def test_a_misspelt_override_of_a_defaulted_block_is_an_unknown_key_with_a_suggestion(tmp_path):
    no_optimizer = {k: v for k, v in SMALL.items() if k != "optimizer"}
    with pytest.raises(SpecError) as info:
        resolve(no_optimizer, ["optimizer.lrr=0.1"])
    assert info.value.problems == ["optimizer.lrr (from --set): unknown option for optimizer 'adam'; "
                                   "did you mean 'lr'?"]
    result = cli("run", write_spec(tmp_path, no_optimizer), "--set", "optimizer.lrr=0.1", "--out", tmp_path / "runs")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "did you mean 'lr'?" in result.stderr and not (tmp_path / "runs").exists()


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
    ("negative seed", "data: {source: triangle}\nseed: -1\n", ["seed (line 2): must be >= 0, got -1"]),
    ("bad device", "data: {source: triangle}\ndevice: gpu7\n", ["device (line 2): unknown device 'gpu7'"]),
    ("wrong optimizer option", "data: {source: triangle}\noptimizer: {name: sgd, betas: [0.9, 0.99]}\n",
     ["optimizer.betas (line 2): unknown option for optimizer 'sgd'"]),
    ("cuda graph with dropout", "data: {source: triangle}\nmodel: {dropout: 0.2}\ntrain: {cuda_graph: true}\n",
     ["train.cuda_graph (line 3): cannot be used with model.dropout = 0.2", "set model.dropout: 0"]),
]


@pytest.mark.slow
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


@pytest.mark.slow
def test_unknown_override_key_and_incompatible_loss(tmp_path):
    spec = write_spec(tmp_path, SMALL_NO_PLOTS)
    result = cli("run", spec, "--set", "optimiser.lr=0.1")
    assert result.returncode == 2 and "did you mean 'optimizer'?" in result.stderr
    multi = write_spec(tmp_path, {**SMALL_NO_PLOTS, "data": {"source": "blobs", "n_classes": 3}, "loss": "hinge"},
                       "m.yaml")
    result = cli("run", multi, "--out", tmp_path / "runs")
    assert result.returncode == 2 and "loss 'hinge' is for two classes but the data has 3" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_every_shipped_experiment_validates():
    specs = sorted((ROOT / "experiments").glob("*.yaml"))
    names = {p.stem for p in specs}
    assert {"linear_classifier", "logistic_regression", "triangle", "triangle_linear_activation",
            "zero_init_symmetry", "random_init", "xor", "spirals", "digits", "gpu_large"} <= names
    for path in specs:
        spec = resolve(path)
        assert spec.name == path.stem


FULL_EXAMPLE = """
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


def test_a_spec_with_every_section_validates_and_means_what_it_says(tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(FULL_EXAMPLE)
    spec = resolve(path)
    es = spec.train.early_stopping
    assert es.enabled and es.patience == 30 and es.mode == "min"  # writing the block turns it on
    assert spec.optimizer.to_dict() == {"name": "sgd", "lr": 0.5, "momentum": 0.9, "dampening": 0.0,
                                        "nesterov": False, "weight_decay": 0.0}
    off = resolve({"data": {"source": "xor"}, "train": {"early_stopping": False}})
    assert not off.train.early_stopping.enabled
    on = resolve({"data": {"source": "xor"}, "train": {"early_stopping": True}})
    assert on.train.early_stopping.enabled and on.train.early_stopping.patience == 10
    assert resolve(spec) == spec and resolve(spec.to_dict()) == spec  # a resolved spec resolves to itself


def test_optimizer_and_schedule_options_come_from_the_constructors():
    """One vocabulary: a spec's names are the registries' and its defaults the constructors'."""
    for name, cls in optim.OPTIMIZERS.items():
        resolved = resolve({**SMALL, "optimizer": {"name": name}}).optimizer.to_dict()
        signature = {k: p.default for k, p in inspect.signature(cls).parameters.items()
                     if k not in ("params", "capturable", "maximize")}
        assert set(resolved) - {"name"} == set(signature), name
        assert all(resolved[k] == (list(v) if isinstance(v, tuple) else v) for k, v in signature.items())
    assert set(devgrad_spec.LOSSES) == {"auto", *dg.nn.functional.LOSSES}
    assert set(devgrad_spec.INITS) == set(dg.nn.init.INITIALIZERS)


@pytest.mark.parametrize(("schedule", "expected"), [
    ({"name": "cosine", "T_max": 7}, {"t_max": 7}),
    ({"name": "linear", "total_epochs": 4, "end_factor": 0.5}, {"total_iters": 4, "end_factor": 0.5}),
    ({"name": "cosine"}, {"t_max": None}),
])
def test_schedule_aliases_keep_working_and_resolve_to_one_spelling(schedule, expected):
    resolved = resolve({**SMALL, "schedule": schedule}).schedule.to_dict()
    assert {k: resolved[k] for k in expected} == expected
    assert "T_max" not in resolved and "total_epochs" not in resolved


@pytest.mark.parametrize(("block", "where", "message"), [
    ({"optimizer": {"name": "sgd", "lr": 0.1, "nesterov": True}}, "optimizer.nesterov",
     "SGD: nesterov needs momentum > 0 and dampening = 0"),
    ({"optimizer": {"name": "adam", "betas": [0.9, 1.5]}}, "optimizer.betas", "betas must be in [0, 1)"),
    ({"schedule": {"name": "cosine", "t_max": 0}}, "schedule.t_max", "t_max (the period in epochs) must be >= 1"),
    ({"schedule": {"name": "linear", "start_factor": 0}}, "schedule.start_factor", "start_factor must be in (0, 1]"),
])
def test_options_are_judged_by_the_class_they_configure(block, where, message):
    with pytest.raises(SpecError) as info:
        resolve({**SMALL, **block})
    assert where in str(info.value) and message in str(info.value)


def test_every_float_spelling_is_a_number_in_files_and_in_set(tmp_path):
    """YAML 1.1 reads 1e-3 as a string; a spec reads it as the number a person meant."""
    path = tmp_path / "spec.yaml"
    path.write_text("data: {source: xor}\noptimizer: {name: adam, lr: 1e-3, eps: 1E-8}\n"
                    "train: {epochs: 2, clip_grad_norm: .5}\nschedule: {name: cosine, eta_min: 5.e-5}\n")
    resolved = resolve(path, ["optimizer.weight_decay=1e-4"])
    assert resolved.optimizer.options["lr"] == 0.001 and resolved.optimizer.options["eps"] == 1e-8
    assert resolved.optimizer.options["weight_decay"] == 1e-4 and resolved.train.clip_grad_norm == 0.5
    assert resolved.schedule.options["eta_min"] == 5e-5


def test_integers_are_decimal_in_files_and_in_set_never_octal_or_base_60(tmp_path, capsys):
    """YAML 1.1 reads 010 as octal 8 and 1:30 as base 60 (90); a spec reads 010 as 10, and 1:30
    as the text it is, which the type check refuses with the usual message."""
    from devgrad import cli as devgrad_cli
    from devgrad.experiment.schema import loads, to_yaml

    path = tmp_path / "spec.yaml"
    path.write_text("data: {source: xor, n_samples: 0100}\ntrain: {epochs: 010}\nseed: 0123\n")
    resolved = resolve(path, ["train.batch_size=016"])
    assert (resolved.train.epochs, resolved.seed, resolved.data.n_samples, resolved.train.batch_size) == (10, 123,
                                                                                                         100, 16)
    assert resolve(path, ["seed=0x10"]).seed == 16  # a prefix says its base
    with pytest.raises(SpecError) as info:
        resolve(path, ["train.epochs=1:30"])
    assert info.value.problems == ["train.epochs (from --set): must be of type integer, got str '1:30'"]
    path.write_text("data: {source: xor}\ntrain: {epochs: 1:30}\n")
    capsys.readouterr()
    assert devgrad_cli.main(["validate", str(path)]) == 2
    assert "train.epochs (line 2): must be of type integer, got str '1:30'" in capsys.readouterr().err
    written = {"name": "08", "description": "1:30", "seed": 10}
    assert loads(to_yaml(written)).data == written  # text that reads as a number is quoted when written


XOR = "data: {source: xor}\n"
IGNORED_OPTIONS = [
    (XOR + "loss: {name: bce, label_smoothing: 0.2}", "loss.label_smoothing (line 2): loss bce does not use "
     "label_smoothing, which would be ignored: it is an option of cross_entropy only; remove it, or set loss.name: "
     "cross_entropy"),
    (XOR + "loss: {name: logistic, pos_weight: 5}", "loss.pos_weight (line 2): loss logistic does not use "
     "pos_weight"),
    (XOR + "loss: {name: hinge, pos_weight: 5}", "loss.pos_weight (line 2): loss hinge does not use pos_weight"),
    (XOR + "loss: {name: cross_entropy, pos_weight: 5}", "loss.pos_weight (line 2): loss cross_entropy does not use"),
    (XOR + "loss: {name: mse, delta: 0.5}", "loss.delta (line 2): loss mse does not use delta"),
    (XOR + "loss: {delta: 0.5}", "loss.delta (line 2): loss auto (bce or cross_entropy for classes) does not use "
     "delta"),
    (XOR + "task: regression\nloss:\n  label_smoothing: 0.1", "loss.label_smoothing (line 4): loss auto (mse for a "
     "regression) does not use label_smoothing, which would be ignored: it is an option of cross_entropy only; "
     "remove it\n"),
    ("seed: 1\ndata: {source: xor, path: no_such_file.csv}", "data.path (line 2): data.source xor does not read "
     "path, which would be ignored: it is for data.source csv or npz only; remove it, or set data.source: csv or npz"),
    ("seed: 1\ndata:\n  source: sklearn:iris\n  noise: 0.5", "data.noise (line 4): data.source sklearn:iris does not "
     "read noise, which would be ignored: it is for a synthetic source only; remove it\n"),
]


@pytest.mark.parametrize(("text", "message"), IGNORED_OPTIONS)
def test_an_option_the_loss_or_the_source_would_ignore_is_an_error_naming_it(tmp_path, capsys, text, message):
    from devgrad import cli as devgrad_cli

    path = tmp_path / "spec.yaml"
    path.write_text(text + "\n")
    capsys.readouterr()
    assert devgrad_cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: 1 problem" in err and message in err and "Traceback" not in err


def test_a_csv_source_refuses_synthetic_keys_and_keeps_the_defaults_config_yaml_writes(tmp_path):
    (tmp_path / "d.csv").write_text("a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    csv_data = {"source": "csv", "path": str(tmp_path / "d.csv"), "target": "label"}
    with pytest.raises(SpecError) as info:
        resolve({**SMALL, "data": {**csv_data, "n_samples": 10, "noise": 0.5}})
    assert [p.split(":")[0] for p in info.value.problems] == ["data.n_samples", "data.noise"]
    resolved = resolve({**SMALL, "data": csv_data}).to_dict()
    assert resolve(resolved).to_dict() == resolved  # a run's config.yaml holds every default: still valid


def test_loss_auto_refuses_an_option_the_loss_the_data_chose_would_ignore(tmp_path, capsys):
    """loss auto is bce for two classes (no label_smoothing) and cross_entropy for more (no
    pos_weight); which one is known once the data is, so the check comes with the data's."""
    from devgrad import cli as devgrad_cli

    def validate(data: str, loss: str) -> tuple[int, str]:
        path = tmp_path / "spec.yaml"
        path.write_text(f"data: {data}\nloss: {loss}\n")
        capsys.readouterr()
        return devgrad_cli.main(["validate", str(path)]), capsys.readouterr().err

    code, err = validate("{source: xor, n_samples: 40}", "{label_smoothing: 0.2}")
    assert code == 2 and ("loss.label_smoothing is 0.2, but loss auto is bce for this data (2 classes), which does "
                          "not use label_smoothing") in err and "set loss.name: cross_entropy to use it" in err
    code, err = validate("{source: blobs, n_samples: 60, n_classes: 3}", "{pos_weight: 2}")
    assert code == 2 and "loss auto is cross_entropy for this data (3 classes)" in err
    assert "remove it (bce is for two classes)" in err
    assert validate("{source: blobs, n_samples: 60, n_classes: 3}", "{label_smoothing: 0.2}")[0] == 0


def test_a_device_spelling_the_backend_accepts_is_a_valid_spec():
    assert resolve({**SMALL, "device": "gpu:1"}).device == "gpu:1"  # checked for spelling, not presence
    with pytest.raises(SpecError, match="unknown device 'tpu'"):
        resolve({**SMALL, "device": "tpu"})


def test_losses_and_batch_sizes_a_run_cannot_train_with_are_refused_before_any_folder(tmp_path, capsys):
    from devgrad import cli as devgrad_cli

    def refused(spec: dict) -> str:
        path = write_spec(tmp_path, spec, "s.yaml")
        capsys.readouterr()
        assert devgrad_cli.main(["validate", str(path)]) == 2
        assert devgrad_cli.main(["run", str(path), "--out", str(tmp_path / "runs"), "-q"]) == 2
        assert not (tmp_path / "runs").exists()
        return capsys.readouterr().err

    three = {**SMALL, "data": {"source": "blobs", "n_samples": 60, "n_classes": 3}}
    assert "loss 'mae' is a regression loss, but the task is classification" in refused({**three, "loss": "mae"})
    assert "use loss: bce, logistic, hinge, cross_entropy or mse" in refused({**SMALL, "loss": "huber"})
    # 400 rows, 70% for training: 280 = 3 * 93 + 1 leaves a batch of one row, which has no variance
    err = refused({**SMALL, "model": {"hidden": [6], "norm": "batch"}, "train": {"epochs": 1, "batch_size": 93}})
    assert "train.batch_size: 93 leaves a last batch of 1 row of the 280 training rows" in err
    assert "(e.g. 94)" in err and "model.norm: layer" in err


def test_a_misspelt_devgrad_device_is_named_as_the_environment_variable(tmp_path, monkeypatch, capsys):
    from devgrad import cli as devgrad_cli

    monkeypatch.setenv("DEVGRAD_DEVICE", "cpux")
    spec = write_spec(tmp_path, {k: v for k, v in SMALL.items() if k != "device"})
    assert devgrad_cli.main(["validate", str(spec)]) == 2
    assert "device (from the environment variable DEVGRAD_DEVICE): unknown device 'cpux'" in capsys.readouterr().err

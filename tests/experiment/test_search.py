"""Hyperparameter search: an Optuna study of runs on the local pool or Dask, with pruning and resume.

All on 127.0.0.1. A seeded random search gives the same trials on two workers (local pool or
a Dask LocalCluster) as serially; the median pruner stops trials with a hopeless learning rate
before their last epoch, each keeping its checkpoint; kill -9 of a search then --resume ends
with exactly its trial count; bad spaces exit 2 before anything runs.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

optuna = pytest.importorskip("optuna")

from devgrad.experiment import RunError, SpecError, resume_sweep, sweep  # noqa: E402
from devgrad.experiment.space import check_space, parse_space_option  # noqa: E402
from devgrad.experiment.sweepdir import read_results  # noqa: E402
from devgrad.experiment.schema import Loaded  # noqa: E402
from tests.support.run_helpers import HAVE_MATPLOTLIB, ROOT, cli, write_spec  # noqa: E402

BASE = {"name": "search", "seed": 3, "device": "cpu",
        "data": {"source": "classification", "n_samples": 300, "n_features": 8, "n_classes": 2},
        "model": {"hidden": [6], "activation": "tanh"}, "optimizer": {"name": "adam", "lr": 0.05},
        "train": {"epochs": 3, "batch_size": 32}, "plots": {"enabled": False}}
LR = {"optimizer.lr": {"loguniform": [1.0e-3, 1.0]}}


@pytest.fixture
def no_sweep_plots(monkeypatch):
    """A search without its sweep's pictures (seconds of matplotlib a test of its tables never looks at)."""
    from devgrad.experiment import search

    monkeypatch.setattr(search, "draw", lambda *args: [])
    monkeypatch.setattr(search.search_plots, "draw", lambda *args: [])


def _study(sweep_dir):
    config = yaml.safe_load((sweep_dir / "sweep.yaml").read_text())
    storage = optuna.storages.journal.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sweep_dir / "study.journal")))
    return optuna.load_study(study_name=config["study"], storage=storage)


def _trials(result):
    return [(r["trial"], r["params"], r["status"], r["final"]) for r in result.results]


# -- the space ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("optimizer.lr=loguniform(1e-4,1e-1)", ("optimizer.lr", {"loguniform": [1e-4, 1e-1]})),
    ("model.hidden=choice([32],[64,64])", ("model.hidden", {"choice": [[32], [64, 64]]})),
    ("train.batch_size=int(16,256,log)", ("train.batch_size", {"int": [16, 256], "log": True})),
    ("model.dropout=uniform(0, 0.5)", ("model.dropout", {"uniform": [0, 0.5]})),
])
def test_a_space_option_reads_as_the_spec_writes_it(text, expected):
    assert parse_space_option(text) == expected


@pytest.mark.parametrize(("space", "message"), [
    ({"optimizer.lr": {"loguniform": [0.1, 0.001]}}, "wrong order"),
    ({"optimizer.lr": {"loguniform": [0.0, 0.1]}}, "positive low bound"),
    ({"optimizer.lr": {"normal": [0.0, 0.1]}}, "unknown distribution 'normal'"),
    ({"optimiser.lr": {"uniform": [0.0, 0.1]}}, "unknown spec key 'optimiser'; did you mean 'optimizer'"),
    ({"model.hidden": {"choice": [[32], [-1]]}}, "value [-1]: model.hidden"),
    ({"model.hiden": {"choice": [[32]]}}, "unknown key; did you mean 'hidden'"),
    ({"train.batch_size": {"int": [16.5, 32]}}, "whole numbers"),
    ({"model.dropout": {"uniform": [0.0, 0.5], "log": True}}, "goes with int only"),
    ({"model.hidden": {"choice": []}}, "non-empty list"),
    ({"train.epochs": {"uniform": [1, 5]}},
     "train.epochs takes whole numbers, and uniform samples fractional ones (every trial would fail); use the int "
     "distribution instead: train.epochs: {int: [1, 5]}"),
    ({"data.n_samples": {"loguniform": [100, 1000]}}, "instead: data.n_samples: {int: [100, 1000], log: true}"),
    ({"train.batch_size": {"int": [0, 64], "log": True}}, "int with log needs a low bound of at least 1"),
])
def test_a_bad_space_is_one_clear_problem(space, message):
    with pytest.raises(SpecError) as caught:
        check_space(space, Loaded(json.loads(json.dumps(BASE))))
    assert len(caught.value.problems) == 1 and message in caught.value.problems[0]


def test_bad_spaces_exit_2_before_anything_runs(tmp_path):
    spec = write_spec(tmp_path, BASE)
    out = tmp_path / "sweeps"
    done = cli("sweep", spec, "--search", "random", "--trials", "3", "--space", "optimizer.lr=loguniform(1,0.1)",
               "--space", "model.hidden=choice([4],[0])", "--out", out)
    assert done.returncode == 2 and "2 problems" in done.stderr and "wrong order" in done.stderr
    assert "model.hidden value [0]" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize(("options", "message"), [
    (["--search", "random", "--trials", "2", "--space", "train.epochs=uniform(1,5)"],
     "--space train.epochs: train.epochs takes whole numbers, and uniform samples fractional ones (every trial would "
     "fail); use the int distribution instead: --space 'train.epochs=int(1,5)'"),
    (["--search", "random", "--trials", "2", "--space", "train.batch_size=int(0,64,log)"],
     "--space train.batch_size: int with log needs a low bound of at least 1 (it samples the logarithm), got 0"),
    (["--search", "grid", "--trials", "5", "--space", "model.hidden=choice([4],[8])"],
     "--trials 5: the grid sampler's grid has 2 points, and more trials would train points again as separate "
     "trials; give 2 or fewer"),
])
def test_a_space_its_trials_cannot_take_exits_2_before_any_folder(tmp_path, options, message):
    out = tmp_path / "sweeps"
    done = cli("sweep", write_spec(tmp_path, BASE), *options, "--out", out)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_a_grid_sampler_needs_a_finite_grid(tmp_path):
    with pytest.raises(SpecError, match="grid sampler needs choice or int"):
        sweep(BASE, search="grid", space={"optimizer.lr": {"uniform": [0.1, 0.2]}}, out=tmp_path)
    with pytest.raises(SpecError, match="unknown distribution 'normal'"):
        sweep(BASE, search="random", trials=2, space={"optimizer.lr": {"normal": [0.1, 0.2]}}, out=tmp_path)
    assert not (tmp_path / "search").exists()


def test_a_search_block_without_trials_is_refused_with_the_fix(tmp_path):
    with pytest.raises(SpecError, match="trials: how many trials"):
        sweep({**BASE, "sweep": {"search": {"space": LR}}}, out=tmp_path)
    with pytest.raises(SpecError, match="does not combine with a grid"):
        sweep({**BASE, "sweep": {"grid": {"optimizer.lr": [0.1]}, "search": {"trials": 2, "space": LR}}},
              out=tmp_path)
    assert not (tmp_path / "search").exists()


# -- the study ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_search_records_trials_params_and_the_study(tmp_path):
    spec = {**BASE, "sweep": {"search": {"trials": 3, "sampler": "random", "pruner": "none",
                                         "space": {**LR, "model.hidden": {"choice": [[4], [8, 8]]}}}}}
    result = sweep(spec, jobs=1, out=tmp_path, quiet=True)
    assert result.status == "completed" and [r["trial"] for r in result.results] == [0, 1, 2]
    study = _study(result.sweep_dir)
    assert len(study.trials) == 3 and all(t.state.name == "COMPLETE" for t in study.trials)
    for line, trial in zip(result.results, study.trials):
        assert line["params"]["optimizer.lr"] == trial.params["optimizer.lr"]
        assert line["params"]["model.hidden"] == json.loads(trial.params["model.hidden"])
        config = yaml.safe_load(open(os.path.join(line["run_dir"], "config.yaml")))
        assert config["model"]["hidden"] == line["params"]["model.hidden"]
        assert trial.value == line["best"]["val_loss"]
    assert result.best["trial"] == study.best_trial.number
    header = (result.sweep_dir / "results.csv").read_text().splitlines()[0]
    assert "optimizer.lr" in header and "model.hidden" in header
    if HAVE_MATPLOTLIB:
        assert (result.sweep_dir / "plots" / "optuna_history.png").exists()
        assert "optuna history" in (result.sweep_dir / "report.html").read_text()


@pytest.mark.slow
def test_the_median_pruner_stops_hopeless_learning_rates_early(tmp_path):
    space = {"optimizer.lr": {"choice": [0.05, 0.02, 30.0, 80.0, 50.0]}}
    spec = {**BASE, "train": {"epochs": 4, "batch_size": 32}}
    result = sweep(spec, search="grid", space=space, pruner="median", jobs=1, out=tmp_path, quiet=True)
    study = _study(result.sweep_dir)
    finished_good = 0
    for line, trial in zip(result.results, study.trials):
        lr = line["params"]["optimizer.lr"]
        summary = json.loads(open(os.path.join(line["run_dir"], "summary.json")).read())
        if lr < 1:
            assert line["status"] == "completed"
            finished_good += 1
        elif finished_good >= 2:  # the median pruner judges a trial once two have finished
            assert line["status"] == "pruned" and trial.state.name == "PRUNED"
            assert summary["status"] == "pruned" and summary["epochs_run"] < 4
            assert os.path.exists(os.path.join(line["run_dir"], "checkpoints", "last.npz"))
    assert sum(r["status"] == "pruned" for r in result.results) >= 1



@pytest.mark.parametrize(("epochs", "spared"), [(4, 1), (10, 2), (30, 6)])
def test_the_median_pruner_never_prunes_in_the_first_fifth_of_the_epochs(epochs, spared):
    """Epochs are reported as 1-based steps: the first fifth (at least the first) is never pruned,
    the epoch after it is."""
    from devgrad.experiment.study import _pruner

    study = optuna.create_study(pruner=_pruner(optuna, "median", trials=10, epochs=epochs))
    for _ in range(5):
        trial = study.ask()
        for epoch in range(1, epochs + 1):
            trial.report(0.1, epoch)
        study.tell(trial, 0.1)
    hopeless = study.ask()
    for epoch in range(1, spared + 2):
        hopeless.report(1e9, epoch)
        assert bool(hopeless.should_prune()) is (epoch > spared), epoch

@pytest.mark.slow
def test_a_seeded_random_search_gives_the_serial_trials_on_two_workers(tmp_path):
    options = {"search": "random", "trials": 10, "space": LR, "pruner": "none", "quiet": True}
    serial = sweep(BASE, jobs=1, out=tmp_path / "serial", **options)
    pool = sweep(BASE, jobs=2, out=tmp_path / "pool", **options)
    assert len({r["worker"] for r in pool.results}) >= 2
    assert _trials(pool) == _trials(serial) and len(serial.results) == 10


@pytest.mark.slow
def test_a_random_search_on_a_dask_local_cluster_gives_the_serial_trials(tmp_path):
    pytest.importorskip("dask.distributed")
    options = {"search": "random", "trials": 6, "space": LR, "pruner": "none", "quiet": True}
    serial = sweep(BASE, jobs=1, out=tmp_path / "serial", **options)
    dask = sweep(BASE, jobs=2, executor="dask", out=tmp_path / "dask", **options)
    assert _trials(dask) == _trials(serial)


# The search's process, killed (SIGKILL) right after it wrote its second trial's line and before it
# told the study: a kill at a known point, not at whatever moment a timer falls on.
KILLED_AFTER_TWO_LINES = """
import os, signal, sys
from devgrad.experiment import search
from devgrad.cli import main
written = []
def append_then_die(path, line, append=search.append_line):
    append(path, line)
    written.append(line)
    if len(written) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
search.append_line = append_then_die
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_kill_9_then_resume_ends_with_exactly_the_trial_count(tmp_path):
    spec = write_spec(tmp_path, {**BASE, "data": {**BASE["data"], "n_samples": 1500}, "train": {"epochs": 6}})
    out = tmp_path / "sweeps"
    command = [sys.executable, "-c", KILLED_AFTER_TWO_LINES, "sweep", spec, "--search", "random", "--trials", "6",
               "--space", "optimizer.lr=loguniform(1e-3,1)", "--pruner", "median", "--jobs", "2", "--out", out, "-q"]
    killed = subprocess.run(list(map(str, command)), cwd=ROOT, capture_output=True, text=True, timeout=300,
                            check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    sweep_dir = next(out.glob("search/*"))
    assert len(read_results(sweep_dir)) == 2
    assert sum(t.state.is_finished() for t in _study(sweep_dir).trials) == 1  # the second was never told
    result = resume_sweep(sweep_dir, jobs=2, quiet=True)
    study = _study(sweep_dir)
    assert len(study.trials) == 6 and all(t.state.is_finished() for t in study.trials)
    assert sorted(r["trial"] for r in read_results(sweep_dir)) == list(range(6)) == [r["trial"] for r in result.results]
    for line in result.results:  # every epoch of every trial trained and recorded once
        epochs = [json.loads(t)["epoch"] for t in open(os.path.join(line["run_dir"], "metrics.jsonl"))]
        assert epochs == list(range(1, len(epochs) + 1))


def test_without_optuna_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    with pytest.raises(RunError, match=r"optuna added to its list of extras, e\.g\. pip install -e '\.\[test,optuna\]"):
        sweep(BASE, search="random", trials=2, space=LR, out=tmp_path)
    assert not tmp_path.joinpath("search").exists()


def test_parameters_the_spec_refuses_together_make_a_failed_trial(tmp_path):
    spec = {**BASE, "optimizer": {"name": "sgd", "lr": 0.1}}
    space = {"optimizer.name": {"choice": ["adam"]}, "optimizer.momentum": {"uniform": [0.0, 0.9]}}
    result = sweep(spec, search="random", trials=2, space=space, pruner="none", jobs=1, out=tmp_path, quiet=True)
    assert result.status == "failed" and [r["status"] for r in result.results] == ["failed", "failed"]
    assert all("momentum" in r["error"] for r in result.results)
    assert [t.state.name for t in _study(result.sweep_dir).trials] == ["FAIL", "FAIL"]


@pytest.mark.slow
def test_a_tpe_search_finds_at_least_the_grids_best_over_the_same_budget(tmp_path):
    # two keys, three values each on the grid: nine runs either way
    grid = sweep(BASE, grid={"optimizer.lr": [0.001, 0.03, 1.0], "model.dropout": [0.0, 0.25, 0.5]}, jobs=2,
                 out=tmp_path / "grid", quiet=True)
    space = {"optimizer.lr": {"loguniform": [0.001, 1.0]}, "model.dropout": {"uniform": [0.0, 0.5]}}
    search = sweep(BASE, search="tpe", trials=9, space=space, pruner="none", jobs=1, out=tmp_path / "search",
                   quiet=True)
    assert search.best["best"]["val_loss"] <= grid.best["best"]["val_loss"]


@pytest.mark.slow
def test_the_search_bench_compares_a_study_with_a_grid_and_times_tracking(monkeypatch):
    pytest.importorskip("mlflow")
    from devgrad.bench import search_bench as sb

    monkeypatch.setattr(sb, "DIGITS", BASE)
    monkeypatch.setattr(sb, "LRS", [0.01, 0.1])
    monkeypatch.setattr(sb, "HIDDEN", [[4]])
    monkeypatch.setattr(sb, "SPIRALS", {**BASE, "train": {"epochs": 2, "batch_size": 64}})
    rows = sb.search_bench(tracking_rounds=1)
    grid, study, tracked = rows
    assert (grid["sweep"], grid["runs"], study["sweep"], study["runs"]) == ("grid", 2, "tpe+median", 2)
    assert 0 < grid["picked_test_accuracy"] <= grid["best_test_accuracy"] <= 1
    assert tracked["per_epoch_on"] > 0 and tracked["per_epoch_off"] > 0
    table = sb.format_search(rows)
    assert "tpe+median" in table and "ms/epoch" in table


@pytest.mark.slow
def test_an_interrupted_search_says_what_finished_and_how_to_continue(tmp_path, monkeypatch):
    """Ctrl-C during a search ends in the sweep's own message (with the --resume command)."""
    from types import SimpleNamespace

    from devgrad.experiment import search

    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(search, "time", SimpleNamespace(sleep=interrupt))
    spec = {**BASE, "sweep": {"search": {"trials": 2, "sampler": "random", "pruner": "none", "space": LR}}}
    with pytest.raises(KeyboardInterrupt, match="sweep interrupted: .*devgrad sweep --resume"):
        sweep(spec, jobs=1, out=tmp_path, quiet=True)


@pytest.mark.slow
def test_a_study_in_an_rdb_storage_with_the_hyperband_pruner_resumes_there(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = sweep(BASE, search="random", trials=3, space=LR, pruner="hyperband", storage=url, jobs=1,
                   out=tmp_path / "sweeps", quiet=True)
    assert not (result.sweep_dir / "study.journal").exists()
    name = yaml.safe_load((result.sweep_dir / "sweep.yaml").read_text())["study"]
    study = optuna.load_study(study_name=name, storage=url)
    assert [t.number for t in study.trials] == [r["trial"] for r in result.results] == [0, 1, 2]
    resumed = resume_sweep(result.sweep_dir, jobs=1, quiet=True)  # nothing left to run: the same three trials
    assert [r["trial"] for r in resumed.results] == [0, 1, 2] and len(optuna.load_study(
        study_name=name, storage=url).trials) == 3


def test_the_cmaes_sampler_without_its_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cmaes", None)  # import cmaes raises ImportError
    with pytest.raises(RunError, match=r"sampler cmaes needs the cmaes package.*pip install -e '\.\[test,optuna\]"):
        sweep(BASE, search="cmaes", trials=2, space=LR, out=tmp_path / "sweeps")
    assert not (tmp_path / "sweeps").exists()  # nothing half-made is left


@pytest.mark.slow
def test_a_cmaes_search_runs_end_to_end_and_picks_the_studys_best_trial(tmp_path):
    pytest.importorskip("cmaes")
    space = {"optimizer.lr": {"loguniform": [1.0e-3, 0.3]}, "model.dropout": {"uniform": [0.0, 0.5]}}
    spec = {**BASE, "data": {**BASE["data"], "n_samples": 200}, "train": {"epochs": 1, "batch_size": 64},
            "sweep": {"search": {"trials": 3, "sampler": "cmaes", "pruner": "none", "space": space}}}
    result = sweep(spec, jobs=1, out=tmp_path, quiet=True)
    assert result.status == "completed" and [r["trial"] for r in result.results] == [0, 1, 2]
    study = _study(result.sweep_dir)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    # after its one random start, CMA-ES itself proposed the trials (it marks them with its generation)
    assert all(any(k.startswith("cma:") for k in t.system_attrs) for t in study.trials[1:])
    assert result.best["trial"] == study.best_trial.number
    assert result.best["best"]["val_loss"] == study.best_value


def test_a_trial_whose_sweep_never_answers_trains_on_and_asks_only_once(tmp_path):
    from types import SimpleNamespace

    from devgrad.experiment.pruning import PruningReporter

    warnings = []
    trainer = SimpleNamespace(monitor="val_loss", log=SimpleNamespace(warning=lambda *a: warnings.append(a)))
    reporter = PruningReporter(str(tmp_path / ".pruning"), timeout=0.05)
    assert [reporter(trainer, epoch, {"val_loss": 1.0}) for epoch in (1, 2, 3)] == [None, None, None]
    assert len(warnings) == 1 and sorted(p.name for p in (tmp_path / ".pruning").iterdir()) == ["report-1.json"]
    answered = PruningReporter(str(tmp_path / "answered"), timeout=5)
    (tmp_path / "answered").mkdir()
    (tmp_path / "answered" / "decision-1").write_text("prune")
    assert answered(trainer, 1, {"val_loss": 1.0}) == "pruned"


@pytest.mark.slow
def test_the_median_pruner_reaches_trials_on_a_dask_local_cluster(tmp_path):
    pytest.importorskip("dask.distributed")
    space = {"optimizer.lr": {"choice": [0.05, 0.02, 30.0, 80.0, 50.0]}}
    spec = {**BASE, "train": {"epochs": 4, "batch_size": 32}}
    result = sweep(spec, search="grid", space=space, pruner="median", jobs=1, executor="dask", out=tmp_path,
                   quiet=True)
    pruned = [r for r in result.results if r["status"] == "pruned"]
    assert pruned and all(r["params"]["optimizer.lr"] > 1 for r in pruned)
    for line in pruned:
        assert json.loads(open(os.path.join(line["run_dir"], "summary.json")).read())["epochs_run"] < 4


def test_a_searched_seed_is_the_seed_each_trial_runs_with_and_the_tables_show(tmp_path, no_sweep_plots):
    space = {"seed": {"choice": [5, 6]}}
    result = sweep({**BASE, "train": {"epochs": 1, "batch_size": 64}}, search="grid", space=space, pruner="none",
                   jobs=1, out=tmp_path, quiet=True)
    trained = {r["index"]: yaml.safe_load(open(os.path.join(r["run_dir"], "config.yaml")))["seed"]
               for r in result.results}
    assert sorted(trained.values()) == [5, 6]
    assert all(r["seed"] == r["params"]["seed"] == trained[r["index"]] for r in result.results)
    with open(result.sweep_dir / "results.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0].count("seed") == 1
    column = rows[0].index("seed")
    assert {int(row[0]): int(row[column]) for row in rows[1:]} == trained
    summary = (result.sweep_dir / "summary.txt").read_text()
    assert all(f"seed={seed} (seed {seed})" in summary for seed in (5, 6))


@pytest.mark.parametrize("option", [["--pruner", "median"], ["--storage", "sqlite:///study.db"]])
def test_a_search_option_on_a_grid_sweep_exits_2_naming_it(tmp_path, option):
    out = tmp_path / "sweeps"
    done = cli("sweep", write_spec(tmp_path, BASE), "--grid", "optimizer.lr=0.1", *option, "--out", out)
    assert done.returncode == 2 and f"{option[0]} {option[1]}: a " in done.stderr, done.stderr
    assert "this sweep is a grid" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists() and not (tmp_path / "study.db").exists()


def test_a_relative_sqlite_storage_is_kept_absolute_and_a_storage_without_the_study_is_refused(
        tmp_path, monkeypatch, no_sweep_plots):
    """A relative sqlite:/// URL read from another folder would open another (new, empty) study, where
    every finished trial would be counted again."""
    for folder in ("started", "elsewhere"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path / "started")
    result = sweep({**BASE, "train": {"epochs": 1, "batch_size": 64}}, search="random", trials=2, space=LR,
                   pruner="none", storage="sqlite:///study.db", jobs=1, out=tmp_path / "sweeps", quiet=True)
    config_file = result.sweep_dir / "sweep.yaml"
    config = yaml.safe_load(config_file.read_text())
    assert config["storage"] == f"sqlite:///{tmp_path / 'started' / 'study.db'}"
    monkeypatch.chdir(tmp_path / "elsewhere")
    resumed = resume_sweep(result.sweep_dir, jobs=1, quiet=True)  # nothing left to run
    assert [r["trial"] for r in resumed.results] == [0, 1] and len(read_results(result.sweep_dir)) == 2
    assert list((tmp_path / "elsewhere").iterdir()) == []
    before = (result.sweep_dir / "results.jsonl").read_text()
    for storage, why in ((f"sqlite:///{tmp_path / 'started' / 'other.db'}", "no such file"),
                         ("sqlite:///study.db", "no such file"),
                         (f"sqlite:///{tmp_path / 'empty.db'}", f"holds no study named '{config['study']}'")):
        optuna.create_study(study_name="another", storage=f"sqlite:///{tmp_path / 'empty.db'}", load_if_exists=True)
        config_file.write_text(yaml.safe_dump({**config, "storage": storage}))
        with pytest.raises(RunError, match=f"cannot resume {result.sweep_dir}: the storage {storage} is not the "
                                           f"study this search ran \\(({why}|it {why})"):
            resume_sweep(result.sweep_dir, jobs=1, quiet=True)
        assert list((tmp_path / "elsewhere").iterdir()) == [] and not (tmp_path / "started" / "other.db").exists()
    assert (result.sweep_dir / "results.jsonl").read_text() == before

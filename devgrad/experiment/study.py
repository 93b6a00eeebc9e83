"""A search's Optuna study: its seeded sampler, its pruner, its storage, and how a trial's result
line is told to it."""

from __future__ import annotations

from pathlib import Path

from devgrad.experiment.errors import RunError
from devgrad.experiment.ranking import value as monitored_value
from devgrad.experiment.space import Dimension
from devgrad.experiment.sweep_point import NOT_STARTED
from devgrad.version import extra_hint

__all__ = ["OPTUNA_HINT", "check_storage", "dims_of", "import_optuna", "open_study", "resume_study", "tell"]

OPTUNA_HINT = extra_hint("optuna", "optuna cmaes")


def import_optuna():
    """Optuna, or a RunError naming the extra that installs it."""
    try:
        import optuna  # noqa: PLC0415 - optional (the optuna extra)
    except ImportError:
        raise RunError(f"a hyperparameter search uses Optuna, which is not installed: {OPTUNA_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _sampler(optuna, name: str, seed: int, dims: list[Dimension], trials: int):
    if name == "tpe":
        # Optuna's TPE samples at random for its first 10 trials: in a small study, a third of it
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401, PLC0415 - Optuna's CMA-ES sampler needs it (the optuna extra)
        except ImportError:
            raise RunError(f"sampler cmaes needs the cmaes package, which is not installed: {OPTUNA_HINT}") from None
        return optuna.samplers.CmaEsSampler(seed=seed)
    return optuna.samplers.GridSampler({d.key: d.grid_values() for d in dims}, seed=seed)


def _pruner(optuna, name: str, trials: int, epochs: int):
    if name == "median":
        # Optuna's defaults (5 trials before any pruning, none in the first epochs) scaled to the study:
        # a fifth of its trials (2 to 5), and no pruning in the first fifth of a run's epochs (at least 1).
        # Steps are 1-based epochs, and Optuna spares the steps below n_warmup_steps: epochs 1..spared.
        spared = max(1, epochs // 5)
        return optuna.pruners.MedianPruner(n_startup_trials=max(2, min(5, trials // 5)), n_warmup_steps=spared + 1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def _storage(optuna, sweep_dir: Path, url: str | None):
    if url:
        return url
    journal = optuna.storages.journal
    return journal.JournalStorage(journal.JournalFileBackend(str(sweep_dir / "study.journal")))


def check_storage(url: str | None) -> str | None:
    """An Optuna RDB storage URL whose database kind and driver are installed, checked before the
    sweep folder exists (Optuna would fail only when it opens the study, inside the folder).
    Returns the URL to record: a relative SQLite path made absolute (it names a file in the
    current folder), so that a resume from any folder opens the same database."""
    if not url:
        return url
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - optional (Optuna's dependency)
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError  # noqa: PLC0415 - optional (as above)

    try:
        parsed = make_url(url)
        parsed.get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise RunError(f"--storage {url}: not a database URL Optuna can open ({type(exc).__name__}: {exc}); give "
                       "e.g. sqlite:///study.db, or leave --storage out to keep the study in the sweep "
                       "folder") from None
    path = _sqlite_file(parsed)
    if path is None or path.is_absolute():
        return url
    return parsed.set(database=str(path.resolve())).render_as_string(hide_password=False)


def _sqlite_file(parsed) -> Path | None:
    """The database file of a SQLite URL (None: another database, or SQLite in memory)."""
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _study_options(optuna, sweep_dir: Path, config: dict, dims: list[Dimension]) -> dict:
    """The study's name, storage, seeded sampler and pruner, as sweep.yaml records them."""
    return {"study_name": config["study"], "storage": _storage(optuna, sweep_dir, config.get("storage")),
            "sampler": _sampler(optuna, config["sampler"], config["seed"], dims, config["trials"]),
            "pruner": _pruner(optuna, config["pruner"], config["trials"], config.get("epochs") or 1)}


def open_study(optuna, sweep_dir: Path, config: dict, dims: list[Dimension]):
    """The new search's study with its seeded sampler and its pruner."""
    return optuna.create_study(**_study_options(optuna, sweep_dir, config, dims),
                               direction="maximize" if config["monitor"][1] == "max" else "minimize")


def resume_study(optuna, sweep_dir: Path, config: dict, dims: list[Dimension], recorded):
    """The study a sweep folder records, loaded (never made: a new empty study would count every
    finished trial again), holding every trial of ``recorded`` (results.jsonl's trial numbers);
    else a RunError naming the storage and the sweep folder."""
    url = config.get("storage")
    where = f"the storage {url}" if url else f"{sweep_dir / 'study.journal'}"
    missing = _missing_database(sweep_dir, url)
    study = None
    if missing is None:
        try:
            study = optuna.load_study(**_study_options(optuna, sweep_dir, config, dims))
        except KeyError:
            missing = f"it holds no study named {config['study']!r}"
    if study is not None:
        held = len(study.get_trials(deepcopy=False))
        stray = sorted(i for i in recorded if i >= held)
        if stray:
            missing = (f"its study {config['study']!r} holds {held} trials, and results.jsonl records trial "
                       f"{stray[0]}")
    if missing is None:
        return study
    raise RunError(f"cannot resume {sweep_dir}: {where} is not the study this search ran ({missing}). A resume "
                   "continues the sweep folder's own study, so that no trial is counted twice; "
                   + ("give sweep.yaml's storage the URL of the database that holds it (a relative sqlite:/// path "
                      "is read from the current folder)" if url else "put the study.journal back"))


def _missing_database(sweep_dir: Path, url: str | None) -> str | None:
    """Why the study's database cannot hold it: its file does not exist (opening it would make
    an empty one), else None."""
    if not url:
        return None if (sweep_dir / "study.journal").exists() else "no such file"
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - optional (Optuna's dependency)

    path = _sqlite_file(make_url(url))
    if path is not None and not path.exists():
        return f"no such file: {path.resolve()}"
    return None


def dims_of(config: dict) -> list[Dimension]:
    """The space's dimensions as sweep.yaml records them."""
    return [Dimension(d["key"], d["kind"], d.get("low"), d.get("high"), d.get("log", False),
                      tuple(d.get("choices", ()))) for d in config["dimensions"]]


def tell(optuna, study, line: dict, monitor: tuple) -> None:
    """The study learns how a finished trial ended (a stopped one is not finished: it runs again)."""
    states = optuna.trial.TrialState
    status = line["status"]
    if status in ("stopped", NOT_STARTED):
        return
    value = monitored_value(line, monitor[0]) if status == "completed" else None
    if status == "completed" and value is not None:
        told = {"values": value}
    else:
        told = {"state": states.PRUNED if status == "pruned" else states.FAIL}
    try:
        study.tell(line["index"], skip_if_finished=True, **told)
    except RuntimeError as exc:
        # The grid sampler calls study.stop() once its grid is covered, which only an optimize()
        # loop may do; the trial's result is stored before that (Optuna stores it in a finally).
        if "Study.stop" not in str(exc):
            raise

"""Tracking in MLflow: a run's params, per-epoch metrics, tags and artifacts, from its run folder.

The run folder stays the source of truth; MLflow gets a copy. ``sync`` logs whatever of a run
folder the MLflow run does not hold yet (params, every epoch of metrics.jsonl with ``step`` =
epoch, the test metrics, tags, artifacts), so it can be called again and again: ``devgrad track``
and the end of a run both use it. During training, a tracker process logs the run as it goes
(``tracking_service``): training never waits for MLflow, and a server that fails costs one
warning, after which the run goes on untracked (``devgrad track`` logs it later). Which MLflow
run belongs to a run folder is kept in its ``tracking.json``, per tracking URI, so a resumed run
continues its MLflow run and skips the steps it already holds.
"""

from __future__ import annotations

import json
import os
import sys
import contextlib
import importlib.util
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

import yaml

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.errors import RunError
from devgrad.experiment.schema import dotted
from devgrad.version import __version__, extra_hint

MLFLOW_HINT = extra_hint("mlflow", "mlflow-skinny")
STATE_FILE = "tracking.json"
ARTIFACTS = ("config.yaml", "summary.json", "metrics.csv", "report.html", "model.json")


def import_mlflow():
    """MLflow's client, or a RunError naming the extra that installs it."""
    try:
        import mlflow  # noqa: PLC0415 - optional (the mlflow extra)
    except ImportError:
        raise RunError(f"tracking in MLflow needs the mlflow client, which is not installed: {MLFLOW_HINT}") from None
    return mlflow


def parse_track_option(text: str) -> dict:
    """``--track mlflow`` or ``--track mlflow=URI`` -> the spec's ``tracking`` block."""
    name, _, uri = text.partition("=")
    if name.strip() != "mlflow":
        raise RunError(f"--track {text}: devgrad tracks in MLflow; give --track mlflow or --track mlflow=URI")
    return {"mlflow": {"uri": uri.strip() or None}}


def settings(spec: dict) -> dict | None:
    """Where a resolved spec's run is tracked: {uri, experiment, parent_run_id}, or None (not tracked)."""
    block = (spec.get("tracking") or {})
    if "mlflow" not in block:
        return None
    given = block["mlflow"] or {}
    return {"uri": given.get("uri") or os.environ.get("MLFLOW_TRACKING_URI") or None,
            "experiment": given.get("experiment") or spec["name"], "parent_run_id": given.get("parent_run_id")}


def flatten(data: dict, prefix: str = "") -> dict:
    """A nested spec as ``a.b.c`` keys with text values (MLflow's params)."""
    return {name: value if isinstance(value, str) else json.dumps(value)
            for name, value in dotted(data, prefix).items()}


def available() -> None:
    """Nothing when MLflow's client is installed, else a RunError naming the extra (without
    importing MLflow: that takes seconds, and a training process never needs it)."""
    try:  # find_spec reads sys.modules first (None there: not installed)
        found = importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise RunError(f"tracking in MLflow needs the mlflow client, which is not installed: {MLFLOW_HINT}")


def open_client(mlflow, uri: str | None):
    # A server that does not answer must fail fast (MLflow retries for minutes by default); a
    # user's own settings of these win.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    uri = uri or mlflow.get_tracking_uri()  # $MLFLOW_TRACKING_URI, else MLflow's default
    return mlflow.tracking.MlflowClient(tracking_uri=uri), uri


def _experiment(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _state(folder: Path) -> dict:
    path = folder / STATE_FILE
    return ckpt.read_json(path) if path.exists() else {}


@contextlib.contextmanager
def folder_lock(folder: Path):
    """``folder`` locked against other trackers (waiting for the one that holds it): one process
    at a time logs a run folder, so that no step is logged twice and no store's tables are made
    by two at once. A lock of the operating system: it ends with the process that holds it."""
    if fcntl is None:  # Windows: folders cannot be locked this way, and no kill -9 leaves a tracker behind
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def held_runs(folder: Path) -> dict:
    """The MLflow runs of a run or sweep folder, by tracking URI (its tracking.json)."""
    return _state(Path(folder)).get("mlflow", {})


def mlflow_run(client, uri: str, folder: Path, experiment: str, parent: str | None, name: str) -> str:
    """The MLflow run of a run or sweep folder at ``uri``: the one tracking.json names, else a new one."""
    state = _state(folder)
    known = state.get("mlflow", {}).get(uri)
    if known:
        try:
            client.get_run(known["run_id"])
            return known["run_id"]
        except Exception:  # deleted on the server, or another server at the same URI: start afresh
            pass
    tags = {"mlflow.runName": name, "devgrad.folder": str(folder.resolve())}
    if parent:
        tags["mlflow.parentRunId"] = parent
    run_id = client.create_run(_experiment(client, experiment), tags=tags, run_name=name).info.run_id
    state.setdefault("mlflow", {})[uri] = {"run_id": run_id, "experiment": experiment}
    ckpt.write_json(folder / STATE_FILE, state)
    return run_id


def _logged_steps(client, run_id: str, key: str) -> set:
    return {m.step for m in client.get_metric_history(run_id, key)}


def log_epochs(client, run_id: str, rows: list, skip: dict | None = None) -> None:
    """Per-epoch metrics (``step`` = epoch) in batches; steps already in MLflow are skipped."""
    mlflow = import_mlflow()
    metrics, now = [], int(time.time() * 1000)
    for row in rows:
        for key, value in row.items():
            if key == "epoch" or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if skip is not None:
                if key not in skip:
                    skip[key] = _logged_steps(client, run_id, key)
                if row["epoch"] in skip[key]:
                    continue
                skip[key].add(row["epoch"])
            metrics.append(mlflow.entities.Metric(key, float(value), now, int(row["epoch"])))
    for start in range(0, len(metrics), 1000):  # MLflow's limit per batch
        client.log_batch(run_id, metrics=metrics[start:start + 1000], synchronous=True)


def _params(client, run_id: str, params: dict) -> None:
    mlflow = import_mlflow()
    held = client.get_run(run_id).data.params
    new = [mlflow.entities.Param(k, str(v)[:6000]) for k, v in params.items() if k not in held]
    for start in range(0, len(new), 100):  # MLflow's limit per batch
        client.log_batch(run_id, params=new[start:start + 100], synchronous=True)


def log_params(client, run_id: str, run_dir: Path) -> None:
    """The run's resolved spec (config.yaml, less its tracking block) as flattened params."""
    spec = _read_yaml(Path(run_dir) / "config.yaml")
    _params(client, run_id, flatten({k: v for k, v in spec.items() if k != "tracking"}))


def _artifacts(client, run_id: str, folder: Path, names) -> None:
    """Upload the files of ``folder`` named in ``names`` (a sub-folder: its files) that MLflow lacks."""
    held = {f.path for f in client.list_artifacts(run_id)}
    for name in names:
        path = folder / name
        if path.is_file() and name not in held:
            client.log_artifact(run_id, str(path), str(Path(name).parent) if "/" in name else None)
        elif path.is_dir() and any(path.iterdir()):
            inside = {f.path for f in client.list_artifacts(run_id, name)}
            for file in sorted(p for p in path.iterdir() if p.is_file()):
                if f"{name}/{file.name}" not in inside:
                    client.log_artifact(run_id, str(file), name)


def sync_run(client, uri: str, run_dir: Path, experiment: str | None = None, parent: str | None = None,
             skip: dict | None = None) -> str:
    """Log whatever of a finished (or stopped) run folder the MLflow run does not hold yet
    (``skip``: the steps of each metric known to be held, as ``log_epochs`` keeps them)."""
    run_dir = Path(run_dir)
    spec = _read_yaml(run_dir / "config.yaml")
    chosen = settings(spec) or {}
    experiment = experiment or chosen.get("experiment") or spec["name"]
    parent = parent or chosen.get("parent_run_id")
    run_id = mlflow_run(client, uri, run_dir, experiment, parent, run_name(run_dir))
    log_params(client, run_id, run_dir)
    log_epochs(client, run_id, ckpt.MetricsLog(run_dir).rows(), skip={} if skip is None else skip)
    summary = ckpt.read_json(run_dir / "summary.json") if (run_dir / "summary.json").exists() else {}
    _final(client, run_id, summary)
    _artifacts(client, run_id, run_dir, [*ARTIFACTS, "plots", *_best_checkpoint(run_dir), *_onnx(run_dir)])
    status = summary.get("status", "running")
    client.set_terminated(run_id, "FINISHED" if status in ("completed", "pruned") else
                          "KILLED" if status == "stopped" else "FAILED")
    return run_id


def _final(client, run_id: str, summary: dict) -> None:
    """The test metrics, the best monitored value and the wall time (step: the last epoch), and
    the tags. A value MLflow holds that summary.json no longer has (a resumed run's best and wall
    time grow) is logged again, at a step no earlier than the one held, so that it is the latest."""
    mlflow = import_mlflow()
    step = int(summary.get("epochs_run") or 0)
    values = dict(summary.get("test") or {})
    monitor, best = summary.get("monitor"), summary.get("best") or {}
    if monitor and isinstance(best.get(monitor), (int, float)):
        values[f"best_{monitor}"] = best[monitor]
    if isinstance(summary.get("wall_seconds"), (int, float)):
        values["wall_seconds"] = summary["wall_seconds"]
    held = client.get_run(run_id).data.metrics
    now = int(time.time() * 1000)
    metrics = []
    for key, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or held.get(key) == float(value):
            continue
        at = step if key not in held else max([step, *(m.step for m in client.get_metric_history(run_id, key))])
        metrics.append(mlflow.entities.Metric(key, float(value), now, at))
    tags = {"devgrad.version": __version__, "devgrad.device": str(summary.get("device")),
            "devgrad.status": str(summary.get("status")), "devgrad.task": str(summary.get("task"))}
    client.log_batch(run_id, metrics=metrics, tags=[mlflow.entities.RunTag(k, v) for k, v in tags.items()],
                     synchronous=True)


def _best_checkpoint(run_dir: Path) -> list[str]:
    for name in ("best.npz", "last.npz"):
        if (run_dir / "checkpoints" / name).exists():
            return [f"checkpoints/{name}"]
    return []


def _onnx(run_dir: Path) -> list[str]:
    return [f"export/{p.name}" for p in sorted((run_dir / "export").glob("*.onnx"))] if (run_dir / "export").is_dir() \
        else []


def run_name(folder: Path) -> str:
    return f"{folder.parent.name}/{folder.name}" if folder.parent.name not in ("runs", "") else folder.name


def _read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# -- sweeps: a parent run with the runs nested in it -------------------------------------------------

SWEEP_ARTIFACTS = ("sweep.yaml", "results.csv", "results.jsonl", "summary.txt", "report.html", "sweep.json")


def start_parent(sweep_dir: Path, spec: dict) -> str | None:
    """The MLflow run of a sweep (its runs nest in it), when ``spec`` is tracked; a failing server
    costs one warning and the sweep goes on untracked."""
    chosen = settings(spec)
    if chosen is None:
        return None
    try:
        client, uri = open_client(import_mlflow(), chosen["uri"])
        return mlflow_run(client, uri, Path(sweep_dir), chosen["experiment"], None, run_name(Path(sweep_dir)))
    except Exception as exc:  # the server's failure is never the sweep's
        _warn_sweep(sweep_dir, exc)
        return None


def nest(spec: dict, parent_run_id: str | None) -> dict:
    """``spec`` (a resolved spec dict) with its MLflow run nested under ``parent_run_id``."""
    if parent_run_id and "mlflow" in (spec.get("tracking") or {}):
        spec["tracking"]["mlflow"] = {**(spec["tracking"]["mlflow"] or {}), "parent_run_id": parent_run_id}
    return spec


def finish_parent(sweep_dir: Path, spec: dict) -> None:
    """Log a tracked sweep's tables, page and plots to its parent run, and end that run."""
    chosen = settings(spec)
    if chosen is None:
        return
    try:
        client, uri = open_client(import_mlflow(), chosen["uri"])
        sync_sweep(client, uri, Path(sweep_dir), chosen["experiment"], runs=False)
    except Exception as exc:  # the server's failure is never the sweep's
        _warn_sweep(sweep_dir, exc)


def sync_sweep(client, uri: str, sweep_dir: Path, experiment: str | None = None, runs: bool = True) -> str:
    """Log a sweep folder: its parent run (tables, page, plots) and, with ``runs``, every run in it."""
    config = _read_yaml(sweep_dir / "sweep.yaml")
    experiment = experiment or config["name"]
    parent = mlflow_run(client, uri, sweep_dir, experiment, None, run_name(sweep_dir))
    _artifacts(client, parent, sweep_dir, [*SWEEP_ARTIFACTS, "plots"])
    client.set_tag(parent, "devgrad.kind", "search" if "search" in config else "grid")
    if runs and (sweep_dir / "runs").is_dir():
        for run_dir in sorted(p for p in (sweep_dir / "runs").iterdir() if (p / "config.yaml").exists()):
            with folder_lock(run_dir):
                sync_run(client, uri, run_dir, experiment, parent)
    state = ckpt.read_json(sweep_dir / "sweep.json") if (sweep_dir / "sweep.json").exists() else {}
    if state.get("status") in ("completed", "failed", "stopped"):
        client.set_terminated(parent, "FINISHED" if state["status"] == "completed" else "FAILED")
    return parent


def track(folder, uri: str | None = None) -> str:
    """``devgrad track``: log a finished run folder or sweep folder to MLflow (again: it adds only
    what is missing). Returns the MLflow run id (the parent's, for a sweep)."""
    folder = Path(folder)
    is_sweep = (folder / "sweep.yaml").exists()
    if not is_sweep and not (folder / "config.yaml").exists():
        raise RunError(f"{folder} is neither a run folder (config.yaml) nor a sweep folder (sweep.yaml)")
    mlflow = import_mlflow()
    chosen = settings(_read_yaml(folder / ("base.json" if (folder / "base.json").exists() else "config.yaml"))) \
        if not is_sweep or (folder / "base.json").exists() else None
    uri = uri or (chosen or {}).get("uri") or os.environ.get("MLFLOW_TRACKING_URI")
    try:
        client, uri = open_client(mlflow, uri)
        if is_sweep:
            return sync_sweep(client, uri, folder)
        with folder_lock(folder):
            return sync_run(client, uri, folder)
    except RunError:
        raise
    except Exception as exc:
        raise RunError(f"cannot log {folder} to MLflow at {uri}: {why(exc)}; check that the tracking server is up "
                       "(or give --uri), then run devgrad track again: it adds only what is missing") from None


def why(exc: Exception) -> str:
    """An exception in one short line (MLflow's messages run to paragraphs)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:240]}{'...' if len(text) > 240 else ''}"


def _warn_sweep(sweep_dir, exc: Exception) -> None:
    print(f"devgrad: warning: MLflow tracking of the sweep failed ({why(exc)}); the sweep goes on and its folder "
          f"is complete: log it later with: devgrad track {sweep_dir}", file=sys.stderr, flush=True)

"""report.html: one self-contained page per run (and per sweep), readable offline in any browser.

Everything is inside the file: the images as base64 data URIs, the styles, and the few lines
of script that sort a table. Nothing is fetched from the network, so the page still works
when the run folder is copied, mailed or archived. ``devgrad report RUN_DIR`` writes it again.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import yaml

from devgrad.experiment.checkpoint import MetricsLog
from devgrad.experiment.errors import RunError
from devgrad.experiment.ranking import ranked, unmeasured_note, value
from devgrad.experiment.rundir import why_not_completed
from devgrad.experiment.sweepdir import read_results
from devgrad.io import atomic_write_text

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #1d2330; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #dde; padding-bottom: 0.2em; }
.status { display: inline-block; padding: 0.15em 0.7em; border-radius: 1em; font-weight: 600; }
.completed { background: #dff3e4; color: #17622e; } .failed, .diverged { background: #fbe0e0; color: #8a1c1c; }
.stopped, .running { background: #fff2cc; color: #7a5a00; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.6em 0; }
th, td { border: 1px solid #dde; padding: 0.25em 0.6em; text-align: right; }
td:not(.text) { white-space: nowrap; font-variant-numeric: tabular-nums; }
th { background: #f3f4f8; cursor: pointer; user-select: none; } td.text, th.text { text-align: left; }
.scroll { max-height: 28em; overflow: auto; display: inline-block; }
pre { background: #f6f7fa; padding: 0.8em; overflow: auto; font-size: 0.85em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #445; font-size: 0.95em; }
.note { color: #556; }
"""

SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.getAttribute('data-order') !== 'asc';
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute('data-value') || a.cells[col].textContent;
      var y = b.cells[col].getAttribute('data-value') || b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-order'); });
    th.setAttribute('data-order', asc ? 'asc' : 'desc');
  });
});
"""

CAPTIONS = {
    "learning_curves.png": "Loss and metrics per epoch, train and validation.",
    "decision_boundary.png": "The model's class probabilities over the input plane, with the data on top.",
    "neurons.png": "Each first-layer unit's activation over the input plane, with its line w·x + b = 0 in the "
                   "data's own coordinates x₁, x₂, beside the network's output.",
    "hidden_units.png": "The first layer's weights and biases, unit by unit, after every epoch (in the data's own "
                        "coordinates, as in neurons.png).",
    "predictions.png": "Predicted against true values (the diagonal is a perfect model).",
    "training.gif": "The decision boundary epoch by epoch (plots.animate).",
}


def image_tag(path: Path, alt: str) -> str:
    """An <img> with the PNG or SVG at ``path`` embedded as a data URI."""
    data = Path(path).read_bytes()
    mime = {".svg": "image/svg+xml", ".gif": "image/gif"}.get(Path(path).suffix, "image/png")
    return (f'<img src="data:{mime};base64,{base64.b64encode(data).decode()}" alt="{html.escape(alt)}" '
            f'loading="eager">')


def figure(path: Path, caption: str) -> str:
    return f"<figure>{image_tag(path, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value)) if value is not None else ""


def table(rows: list[dict], columns: list[str], sortable: bool = True) -> str:
    """An HTML table of ``rows`` (a row's ``_links``, {column: href}, makes those cells links)."""
    head = "".join(f'<th class="{"text" if c in ("status", "overrides", "run", "error") else ""}">'
                   f"{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            value = f' data-value="{v}"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            css = ' class="text"' if not isinstance(v, (int, float)) or isinstance(v, bool) else ""
            link = (r.get("_links") or {}).get(c)
            text = f'<a href="{html.escape(link)}">{_fmt(v)}</a>' if link else _fmt(v)
            cells.append(f"<td{css}{value}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = "sortable" if sortable else ""
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>"
            f"<body>{body}<script>{SORT_SCRIPT}</script></body></html>\n")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def write_run_report(run_dir) -> Path:
    """Write ``RUN_DIR/report.html`` from the run folder's files; returns its path."""
    run_dir = Path(run_dir)
    meta = _read_json(run_dir / "meta.json")
    summary = _read_json(run_dir / "summary.json")
    config_text = (run_dir / "config.yaml").read_text(encoding="utf-8") if (run_dir / "config.yaml").exists() else ""
    config = yaml.safe_load(config_text) if config_text else {}
    status = summary.get("status") or meta.get("status") or "unknown"
    name = config.get("name") or run_dir.parent.name
    parts = [f"<h1>{html.escape(name)}</h1>",
             f'<p><span class="status {html.escape(status)}">{html.escape(status)}</span> '
             f"<span class=\"note\">{html.escape(str(run_dir))}</span></p>"]
    if config.get("description"):
        parts.append(f"<p>{html.escape(config['description'])}</p>")
    if status != "completed":
        why = why_not_completed(run_dir)
        resume = f"Continue it with <code>devgrad resume {html.escape(str(run_dir))}</code>." \
            if status in ("stopped", "running", "failed") else ""
        parts.append(f"<p><b>This run did not complete</b>: {html.escape(why or 'no reason was recorded')}. "
                     f"{resume}</p>")
    facts = {"device": meta.get("device_description") or meta.get("device"), "seed": meta.get("seed"),
             "task": summary.get("task"), "epochs run": summary.get("epochs_run"),
             "best epoch": summary.get("best_epoch"), "monitor": summary.get("monitor"),
             "wall seconds": summary.get("wall_seconds"), "parameters": summary.get("n_parameters"),
             "started": meta.get("started"), "ended": meta.get("ended"), "devgrad": meta.get("devgrad"),
             "numpy": meta.get("numpy"), "cupy": meta.get("cupy")}
    parts.append("<h2>Summary</h2>" + table([{"what": k, "value": v} for k, v in facts.items() if v is not None],
                                            ["what", "value"], sortable=False))
    if summary.get("test"):
        parts.append("<h2>Test split</h2>" + table([summary["test"]], list(summary["test"]), sortable=False))
    if summary.get("linear_map"):
        parts.append("<h2>The composed linear map</h2><p>Without a nonlinearity the layers multiply out to one "
                     f"affine map of the (standardised) inputs: <code>{html.escape(summary['linear_map']['text'])}"
                     "</code>.</p>")
    plots = sorted([*(run_dir / "plots").glob("*.png"), *(run_dir / "plots").glob("*.gif")]) \
        if (run_dir / "plots").is_dir() else []
    if plots:
        captions = {**CAPTIONS, "learning_curves.png": _curves_caption(summary, config)}
        parts.append("<h2>Plots</h2>" + "".join(figure(p, captions.get(p.name, p.stem.replace("_", " ")))
                                                 for p in plots))
    rows = MetricsLog(run_dir).rows()
    if rows:
        columns = [c for c in rows[0] if all(isinstance(r.get(c), (int, float, type(None))) for r in rows)]
        parts.append(f"<h2>Metrics per epoch</h2><p class=\"note\">{len(rows)} epochs; click a column to sort."
                     f"</p>{table(rows, columns)}")
    parts.append(f"<h2>Configuration</h2><pre>{html.escape(config_text)}</pre>")
    path = run_dir / "report.html"
    atomic_write_text(path, page(f"devgrad run {name}", "".join(parts)))
    return path


def _curves_caption(summary: dict, config: dict) -> str:
    """learning_curves.png's caption: what the picture marks for this run, and only that."""
    caption = CAPTIONS["learning_curves.png"]
    marks = []
    if summary.get("best_epoch"):
        marks.append(f"the best epoch ({summary['best_epoch']}) marked")
    planned = (config.get("train") or {}).get("epochs")
    run = summary.get("epochs_run")
    if summary.get("status") == "completed" and planned and run and run < planned:
        marks.append(f"training stopped early at epoch {run} of {planned} (early stopping)")
    return caption[:-1] + "; " + ", ".join(marks) + "." if marks else caption


def write_sweep_report(sweep_dir) -> Path:
    """Write ``SWEEP_DIR/report.html``: every run in a table sortable by any metric, the comparison plots."""
    sweep_dir = Path(sweep_dir)
    resolved = yaml.safe_load((sweep_dir / "sweep.yaml").read_text(encoding="utf-8"))
    state = _read_json(sweep_dir / "sweep.json")
    monitor, mode = resolved["monitor"][0], resolved["monitor"][1]
    results = ranked(read_results(sweep_dir), monitor, mode)
    rows = []
    for r in results:
        row = {"index": r["index"], "status": r["status"],
               "overrides": ", ".join(f"{k}={json.dumps(v)}" for k, v in r["overrides"].items()) or "(base)",
               "seed": r["seed"], monitor: value(r, monitor), **(r.get("test") or {}),
               "seconds": r.get("wall_seconds"), "error": r.get("error") or ""}
        run_dir = Path(r["run_dir"])
        row["run"] = run_dir.name
        if (run_dir / "report.html").exists():
            row["_links"] = {"run": _relative(run_dir / "report.html", sweep_dir)}
        rows.append(row)
    columns = ["index", "status", "overrides", "seed", monitor,
               *sorted({k for r in results for k in (r.get("test") or {})}), "seconds", "run", "error"]
    status = state.get("status", "running")
    parts = [f"<h1>sweep {html.escape(resolved['name'])}</h1>",
             f'<p><span class="status {html.escape(status)}">{html.escape(status)}</span> '
             f"{len(results)} of {len(resolved['points'])} runs finished; grid "
             f"<code>{html.escape(json.dumps(resolved['grid']))}</code> × {resolved['seeds']} seed(s). "
             f"<span class=\"note\">{html.escape(str(sweep_dir))}</span></p>",
             f"<h2>Runs</h2><p class=\"note\">Completed runs first, best {html.escape(monitor)} first "
             f"({'highest' if mode == 'max' else 'lowest'} is best), as in results.csv; click a column to "
             "sort by it, a run's name to open its report.</p>",
             table(rows, columns)]
    note = unmeasured_note(results, monitor, "an empty cell")
    if note:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    plots = sorted((sweep_dir / "plots").glob("*.png")) if (sweep_dir / "plots").is_dir() else []
    if plots:
        parts.append("<h2>Plots</h2>" + "".join(figure(p, p.stem.replace("_", " ")) for p in plots))
    path = sweep_dir / "report.html"
    atomic_write_text(path, page(f"devgrad sweep {resolved['name']}", "".join(parts)))
    return path


def _relative(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` as a link (a run folder given elsewhere keeps its full path)."""
    try:
        return Path(path).relative_to(start).as_posix()
    except ValueError:
        return Path(path).resolve().as_uri()


def write_report(folder) -> Path:
    """report.html for a run folder or a sweep folder (``devgrad report``)."""
    folder = Path(folder)
    if (folder / "sweep.yaml").exists():
        return write_sweep_report(folder)
    if (folder / "config.yaml").exists():
        return write_run_report(folder)
    if not folder.exists():
        raise RunError(f"{folder}: no such folder; give a run folder (runs/<name>/<date-time>-<id>) or a sweep folder")
    raise RunError(f"{folder} is neither a run folder (config.yaml) nor a sweep folder (sweep.yaml)")

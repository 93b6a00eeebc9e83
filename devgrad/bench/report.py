"""The table ``devgrad bench`` prints, and its JSON file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from devgrad.io import atomic_write_text


def _ms(entry) -> str:
    return f"{entry['median_ms']:.3f}"


def _time_cell(key: str) -> Callable[[dict], str]:
    """A row's median for ``key``, or '-' where the row has none."""
    return lambda r: _ms(r[key]) if key in r else "-"


# (result key, column head): the timed columns, in the order shown
_TIMES = (("devgrad", "devgrad ms"), ("devgrad_graph", "captured ms"), ("handwritten", "hand ms"),
          ("tight", "tight ms"), ("jax", "jax ms"), ("pytorch", "torch ms"), ("torch_compile", "compiled ms"),
          ("pytorch_graph", "torch graph ms"))


def _has(rows: list, key: str) -> bool:
    return any(key in r or key in r.get("unavailable", {}) for r in rows)


def _columns(results: dict) -> list:
    """(head, cell(row)) for every column these results have."""
    rows_in = results["configs"]
    cols: list[tuple[str, Callable[[dict], str]]] = [("config", lambda r: r["config"]),
            ("devgrad ms", lambda r: f"{_ms(r['devgrad'])} ±{r['devgrad']['iqr_ms']:.3f}")]
    for key, head in _TIMES[1:]:
        if _has(rows_in, key):
            cols.append((head, _time_cell(key)))
    cols.append(("vs hand", lambda r: f"{r['ratio_vs_handwritten']:.2f}×"))
    if any("vs_tight" in r for r in rows_in):
        cols.append(("vs tight", lambda r: f"{r['vs_tight']['devgrad']:.2f}×" if "vs_tight" in r else "-"))
        if _has(rows_in, "devgrad_graph"):
            cols.append(("captured vs tight", lambda r: f"{r['vs_tight']['devgrad_graph']:.2f}×"
                         if "devgrad_graph" in r.get("vs_tight", {}) else "-"))
    if any("pytorch" in r for r in rows_in):
        cols.append(("vs torch", lambda r: f"{r['ratio_vs_pytorch']:.2f}×" if "pytorch" in r else "-"))
    if _has(rows_in, "devgrad_graph") and any("pytorch" in r for r in rows_in):
        cols.append(("captured vs torch", lambda r: f"{r['graph_ratio_vs_pytorch']:.2f}×"
                     if "graph_ratio_vs_pytorch" in r else "-"))
    if any("graph_ratio_vs_jax" in r for r in rows_in):
        cols.append(("captured vs jax", lambda r: f"{r['graph_ratio_vs_jax']:.2f}×"
                     if "graph_ratio_vs_jax" in r else "-"))
    if _has(rows_in, "pytorch_graph"):
        cols.append(("captured vs torch graph", lambda r: f"{r['graph_ratio_vs_pytorch_graph']:.2f}×"
                     if "graph_ratio_vs_pytorch_graph" in r else "-"))
    peak = results["matmul_peak_gflops"]
    cols += [("GFLOP/s", lambda r: f"{r['devgrad']['gflops']:.1f}"),
             ("% peak", lambda r: f"{100 * r['devgrad']['gflops'] / peak:.0f}%"),
             ("peak MiB dg/hand", _peak_mib)]
    return cols


def _peak_mib(r: dict) -> str:
    d, h = r["devgrad"], r["handwritten"]
    if d.get("peak_step_bytes") is None:
        return "-"
    return f"{d['peak_step_bytes'] / 2**20:.2f}/{h['peak_step_bytes'] / 2**20:.2f}"


def _peer(results: dict, name: str) -> str:
    """A peer's version, or why it has none: left out on the command line, or not installed."""
    if results.get(name):
        return results[name]
    return f"not measured (--no-{name})" if name in results.get("skipped", ()) else "not installed"


def _title(results: dict) -> str:
    load = results.get("load_average")
    return (f"devgrad bench on {results['device_description']}, numpy {results['numpy']}, "
            f"torch {_peer(results, 'torch')}, jax {_peer(results, 'jax')}; "
            f"float32 matmul peak {results['matmul_peak_gflops']:.1f} GFLOP/s"
            + (f"; load average {load[0]:.2f} at the start" if load else ""))


def _notes(results: dict) -> list[str]:
    rows_in = results["configs"]
    notes = [f"{r['config']}: {column} not measured: {why}" for r in rows_in
             for column, why in r.get("unavailable", {}).items()]
    compiled = [f"{r['config']} {name} {seconds:.2f} s" for r in rows_in
                for name, seconds in r.get("compile_s", {}).items()]
    if compiled:
        notes.append("compile time (apart from the step times): " + "; ".join(compiled))
    if any("jax" in r for r in rows_in):
        notes.append("jax: its calls return before the step has run (asynchronous dispatch), so within a block "
                     "it issues one step while the previous one computes, on another core where one is free; "
                     "each block ends with block_until_ready")
    if results.get("peak_note"):
        notes.append(results["peak_note"])
    return notes


def format_table(results: dict) -> str:
    """One row per config: devgrad eager (and captured), the hand-written steps, the peers; a
    column that could not be measured is '-', and why is said under the table."""
    rows_in = results["configs"]
    cols = _columns(results)
    rows = [[head for head, _ in cols]] + [[cell(r) for _, cell in cols] for r in rows_in]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(cols))]
    lines = [_title(results)]
    for i, row in enumerate(rows):
        lines.append("  ".join(str(c).rjust(w) if j else str(c).ljust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    counted = [f"{r['config']} {c['kernels']} kernels + {c['gemms']} GEMMs" for r in rows_in
               if (c := r.get("launches_per_step"))]
    if counted:
        lines.append("launches per eager devgrad step (devgrad's kernels, cuBLAS): " + "; ".join(counted))
    host = [f"{r['config']} {r['host_ms_per_step']:.3f} of {r['devgrad']['median_ms']:.3f} ms" for r in rows_in
            if r.get("host_ms_per_step") is not None and "devgrad" in r]
    if host:
        lines.append("host time to issue one eager devgrad step, of the step's time (about equal: bound by "
                     "the host's Python; much less: by the GPU): " + "; ".join(host))
    return "\n".join(lines + _notes(results))


def format_markdown(results: dict, command: str) -> str:
    """The results as a Markdown page: the machine, the date, the command, the table, the notes."""
    cols = _columns(results)
    lines = ["# devgrad bench results", "",
             f"Measured with `{command}` on {results['device_description']} ({results.get('cpus')} CPUs, "
             f"{results['machine']}), {results['date']}; Python {results['python']}, devgrad {results['devgrad']}, "
             f"NumPy {results['numpy']}, PyTorch {_peer(results, 'torch')}, "
             f"JAX {_peer(results, 'jax')}.", ""]
    load, after = results.get("load_average"), results.get("load_average_after")
    if load:
        lines += [f"Load average (1, 5, 15 min) at the start {load}, at the end {after}: other programs shared "
                  "the machine: times wobble from block to block (devgrad's ± is the interquartile range), and "
                  "on a busy machine the ratios between columns do too, though the blocks were interleaved.", ""]
    threads = results.get("thread_settings") or {}
    lines += [f"Medians of timed blocks in milliseconds per step, float32, a pause of {results.get('pause_s')} s "
              f"before each block; float32 matmul peak {results['matmul_peak_gflops']:.1f} GFLOP/s"
              + (f"; thread settings {', '.join(f'{k}={v}' for k, v in threads.items())}" if threads else "")
              + ".", ""]
    lines.append("| " + " | ".join(head for head, _ in cols) + " |")
    lines.append("|" + "---|" * len(cols))
    lines += ["| " + " | ".join(str(cell(r)) for _, cell in cols) + " |" for r in results["configs"]]
    notes = _notes(results)
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write_markdown(results: dict, path, command: str) -> None:
    """Write ``format_markdown`` to ``path`` (atomically)."""
    atomic_write_text(Path(path), format_markdown(results, command))


def rows_table(heading: list[str], rows: list[dict], name: str, width: int, format_row) -> str:
    """``heading`` lines, then one line per row: ``format_row(row)``, or for a row that was
    skipped (``"skipped"``: why) its ``name`` column and the reason."""
    lines = list(heading)
    for r in rows:
        lines.append(f"{r[name]:<{width}} skipped: {r['skipped']}" if "skipped" in r else format_row(r))
    return "\n".join(lines)


def write_json(results: dict, path) -> None:
    atomic_write_text(Path(path), json.dumps(results, indent=2) + "\n")

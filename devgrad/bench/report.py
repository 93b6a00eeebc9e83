"""The table ``devgrad bench`` prints, and its JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from devgrad.io import atomic_write_text


def _ms(entry) -> str:
    return f"{entry['median_ms']:.3f}"


def format_table(results: dict) -> str:
    """One row per config: devgrad eager, the hand-written step, PyTorch eager, and on a GPU the
    captured step beside PyTorch's CUDA graph; columns that could not be measured are '-', and
    why is said under the table."""
    rows_in = results["configs"]
    has_torch = any("pytorch" in r for r in rows_in)
    has_graph = any("devgrad_graph" in r or "devgrad_graph" in r.get("unavailable", {}) for r in rows_in)
    has_torch_graph = has_graph and any("pytorch_graph" in r or "pytorch_graph" in r.get("unavailable", {})
                                        for r in rows_in)
    head = ["config", "devgrad ms", "hand ms", "vs hand"]
    if has_torch:
        head += ["torch ms", "vs torch"]
    if has_graph:
        head += ["graph ms"] + (["graph vs torch"] if has_torch else ["graph vs hand"])
    if has_torch_graph:
        head += ["torch graph ms", "graph vs torch graph"]
    head += ["GFLOP/s", "% peak", "peak MiB dg/hand"]
    rows = [head]
    notes = []
    for r in rows_in:
        d, h = r["devgrad"], r["handwritten"]
        row = [r["config"], f"{_ms(d)} ±{d['iqr_ms']:.3f}", _ms(h), f"{r['ratio_vs_handwritten']:.2f}×"]
        if has_torch:
            row += [_ms(r["pytorch"]), f"{r['ratio_vs_pytorch']:.2f}×"] if "pytorch" in r else ["-", "-"]
        if has_graph:
            ratio = r.get("graph_ratio_vs_pytorch" if has_torch else "graph_ratio_vs_handwritten")
            row += ([_ms(r["devgrad_graph"]), f"{ratio:.2f}×" if ratio is not None else "-"]
                    if "devgrad_graph" in r else ["-", "-"])
        if has_torch_graph:
            ratio = r.get("graph_ratio_vs_pytorch_graph")
            row += ([_ms(r["pytorch_graph"]), f"{ratio:.2f}×" if ratio is not None else "-"]
                    if "pytorch_graph" in r else ["-", "-"])
        row += [f"{d['gflops']:.1f}", f"{100 * d['gflops'] / results['matmul_peak_gflops']:.0f}%"]
        if d.get("peak_step_bytes") is not None:
            row.append(f"{d['peak_step_bytes'] / 2**20:.2f}/{h['peak_step_bytes'] / 2**20:.2f}")
        else:
            row.append("-")
        rows.append(row)
        notes += [f"{r['config']}: {column} not measured: {why}" for column, why in r.get("unavailable", {}).items()]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = [f"devgrad bench on {results['device_description']}, numpy {results['numpy']}, "
             f"torch {results['torch'] or 'not installed'}; float32 matmul peak "
             f"{results['matmul_peak_gflops']:.1f} GFLOP/s"]
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
    return "\n".join(lines + notes)


def rows_table(heading: list[str], rows: list[dict], name: str, width: int, format_row) -> str:
    """``heading`` lines, then one line per row: ``format_row(row)``, or for a row that was
    skipped (``"skipped"``: why) its ``name`` column and the reason."""
    lines = list(heading)
    for r in rows:
        lines.append(f"{r[name]:<{width}} skipped: {r['skipped']}" if "skipped" in r else format_row(r))
    return "\n".join(lines)


def write_json(results: dict, path) -> None:
    atomic_write_text(Path(path), json.dumps(results, indent=2) + "\n")

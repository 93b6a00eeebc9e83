"""Pictures of the computational graph: Graphviz DOT text, rendered when ``dot`` is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from devgrad.core import Function
from devgrad.io import atomic_write
from devgrad.core import Tensor

DOT_HINT = ("the Graphviz 'dot' program is not installed; install Graphviz "
            "(Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz, "
            "conda: conda install graphviz) or paste the text of dg.viz.to_dot(t) into an online viewer")


def _shape(shape) -> str:
    return "×".join(str(s) for s in shape) if shape else "scalar"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _op_label(fn) -> str:
    """The op's name, with the constants it was given when it kept them (e.g. ``Mul (·, 0.7)``)."""
    inputs = fn.inputs
    if not inputs or all(isinstance(x, Tensor) for x in inputs):
        return fn.name
    parts = ["·" if isinstance(x, Tensor) else f"{x:g}" if isinstance(x, float) else str(x) for x in inputs]
    return _escape(f"{fn.name} ({', '.join(parts)})")


def to_dot(tensor: Tensor, names: dict | None = None, title: str | None = None) -> str:
    """Graphviz DOT text of the graph that produced ``tensor``.

    Ops are boxes (name and output shape), leaves are ellipses labelled with their name
    (``Tensor.name``, or ``names={"w": tensor}`` such as ``dict(model.named_parameters())``)
    and shape. Edges point the way the forward
    pass went: inputs -> ops -> output.
    """
    labels = {id(t): n for n, t in (names or {}).items()}
    lines = ["digraph devgrad {", '  rankdir="LR";', '  node [fontname="Helvetica", fontsize=11];']
    if title:
        lines.append(f'  label="{_escape(title)}"; labelloc="t";')
    ids: dict = {}

    def node_id(obj) -> str:
        key = id(obj)
        if key not in ids:
            ids[key] = f"n{len(ids)}"
        return ids[key]

    def leaf_label(t: Tensor) -> str:
        name = labels.get(id(t)) or t.name or ("param" if t.requires_grad else "input")
        return f"{_escape(name)}\\n{_shape(t.shape)}"

    out_id = "out"
    lines.append(f'  {out_id} [label="output\\n{_shape(tensor.shape)}", shape=doublecircle, '
                 'style=filled, fillcolor="#fde0c5"];')
    if tensor.grad_fn is None:
        lines.append(f'  {node_id(tensor)} [label="{leaf_label(tensor)}", shape=ellipse, '
                     'style=filled, fillcolor="#d5e8d4"];')
        lines.append(f"  {node_id(tensor)} -> {out_id};")
        lines.append("}")
        return "\n".join(lines)

    lines.append(f"  {node_id(tensor.grad_fn)} -> {out_id};")
    seen = set()
    stack = [tensor.grad_fn]
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        lines.append(f'  {node_id(fn)} [label="{_op_label(fn)}\\n{_shape(fn.shape)}", shape=box, '
                     'style="rounded,filled", fillcolor="#dae8fc"];')
        inputs = fn.inputs if fn.inputs is not None else (None,) * len(fn.next)
        for target, inp in zip(fn.next, inputs):
            if isinstance(target, Function):
                lines.append(f"  {node_id(target)} -> {node_id(fn)};")
                stack.append(target)
            elif isinstance(target, Tensor):
                lines.append(f'  {node_id(target)} [label="{leaf_label(target)}", shape=ellipse, '
                             'style=filled, fillcolor="#d5e8d4"];')
                lines.append(f"  {node_id(target)} -> {node_id(fn)};")
            elif isinstance(inp, Tensor):
                lines.append(f'  {node_id(inp)} [label="{leaf_label(inp)}", shape=ellipse, '
                             'style=dashed];')
                lines.append(f"  {node_id(inp)} -> {node_id(fn)};")
    lines.append("}")
    return "\n".join(dict.fromkeys(lines))  # a leaf used twice is declared once


def render(tensor: Tensor, path, names: dict | None = None, title: str | None = None) -> Path:
    """Write the graph of ``tensor`` as SVG/PNG/PDF (by ``path``'s suffix) using Graphviz ``dot``."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "svg"
    if fmt not in {"svg", "png", "pdf", "dot", "gv"}:
        raise ValueError(f"render: unsupported file type '.{fmt}' for {path}; use .svg, .png, .pdf or .dot")
    text = to_dot(tensor, names=names, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in {"dot", "gv"}:
        atomic_write(path, text.encode())
        return path
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(f"cannot render {path}: {DOT_HINT}")
    result = subprocess.run([dot, f"-T{fmt}"], input=text.encode(), capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"dot failed to render {path}: {result.stderr.decode(errors='replace').strip()}")
    atomic_write(path, result.stdout)
    return path

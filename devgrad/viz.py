"""Pictures of the computational graph: Graphviz DOT text, rendered when ``dot`` is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from devgrad import viz_draw
from devgrad.core import Function, Tensor, no_grad
from devgrad.core.function import Absent
from devgrad.io import atomic_write
from devgrad.version import extra_hint

DOT_HINT = ("the Graphviz 'dot' program is not installed; install Graphviz "
            "(Debian/Ubuntu: apt-get install graphviz, macOS: brew install graphviz, "
            "conda: conda install graphviz) or paste the text of dg.viz.to_dot(t) into an online viewer")


def _shape(shape) -> str:
    return "×".join(str(s) for s in shape) if shape else "scalar"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _inputs(fn) -> tuple:
    """Each input of node ``fn``: the Tensor or constant it was given where it saved its inputs,
    else what it remembers of those whose gradient goes nowhere (``Function.given``: a constant, a
    tensor, an ``Absent`` one that was freed) and None for the others (their node or leaf is in
    ``fn.next``)."""
    if fn.inputs is not None:
        return tuple(fn.inputs)
    given = getattr(fn, "given", None) or (None,) * len(fn.next)
    return tuple(_alive(x) if isinstance(x, Absent) else x for x in given)


def _alive(x: Absent):
    """The tensor an ``Absent`` input refers to while it lives, else the ``Absent`` itself."""
    tensor = x.ref() if x.ref is not None else None
    return x if tensor is None else tensor


def _constant(x) -> bool:
    return x is not None and not isinstance(x, Tensor | Absent)


def _op_text(fn) -> str:
    """The op's name, with the constants it was given (e.g. ``Mul (·, 0.7)``, ``Add (·, 3)``)."""
    inputs = _inputs(fn)
    if not any(_constant(x) for x in inputs):
        return fn.name
    parts = [f"{x:g}" if isinstance(x, float) else str(x) if _constant(x) else "·" for x in inputs]
    return f"{fn.name} ({', '.join(parts)})"


def _op_label(fn) -> str:
    return _escape(_op_text(fn))


def _absent_label(x: Absent) -> str:
    """A tensor input the graph no longer reaches (freed), or a constant array: its shape."""
    return f"{'input (freed)' if x.ref is not None else 'constant'}\\n{_shape(x.shape)}"


def _graph_nodes(tensor: Tensor):
    """Every node (Function) of the graph that made ``tensor``, each once, from the output back
    (an iterative walk: deep graphs do not hit the recursion limit)."""
    if tensor.grad_fn is None:
        return
    seen = set()
    stack = [tensor.grad_fn]
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        yield fn
        stack.extend(parent for parent in fn.next if isinstance(parent, Function))


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
    for fn in _graph_nodes(tensor):
        lines.append(f'  {node_id(fn)} [label="{_op_label(fn)}\\n{_shape(fn.shape)}", shape=box, '
                     'style="rounded,filled", fillcolor="#dae8fc"];')
        for target, inp in zip(fn.next, _inputs(fn)):
            if isinstance(target, Function):
                lines.append(f"  {node_id(target)} -> {node_id(fn)};")
            elif isinstance(target, Tensor):
                lines.append(f'  {node_id(target)} [label="{leaf_label(target)}", shape=ellipse, '
                             'style=filled, fillcolor="#d5e8d4"];')
                lines.append(f"  {node_id(target)} -> {node_id(fn)};")
            elif isinstance(inp, Tensor):
                lines.append(f'  {node_id(inp)} [label="{leaf_label(inp)}", shape=ellipse, '
                             'style=dashed];')
                lines.append(f"  {node_id(inp)} -> {node_id(fn)};")
            elif isinstance(inp, Absent):
                lines.append(f'  {node_id(inp)} [label="{_absent_label(inp)}", shape=ellipse, style=dashed];')
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


# -- the lecture's derivative graph and the chain rule as a sum over paths ----------------------

PATH_LIMIT = 10_000  # paths grow exponentially with the graph's depth: the reason backprop exists

# The local rule of each op's edges, for edges that carry tensors (scalar edges carry numbers).
_RULES = {
    "Add": ("1", "1"), "Sub": ("1", "−1"), "Mul": ("∂/∂a = b", "∂/∂b = a"), "Div": ("1/b", "−a/b²"),
    "Pow": ("b·a^(b−1)", "a^b·ln a"), "Neg": ("−1",), "Exp": ("exp(a)",), "Log": ("1/a",), "Sqrt": ("1/(2√a)",),
    "MatMul": ("g·bᵀ", "aᵀ·g"), "Linear": ("g·W", "gᵀ·x", "Σ g"), "LinearAct": ("act′·W", "act′ᵀ·x", "Σ act′"),
    "Sigmoid": ("σ(1−σ)",), "Tanh": ("1−tanh²",), "ReLU": ("[a > 0]",), "Sum": ("1",), "Mean": ("1/n",),
}


def _name_of(target, names: dict) -> str:
    if isinstance(target, Tensor):
        return names.get(id(target)) or target.name or ("param" if target.requires_grad else "input")
    return target.name


def _local_derivatives(node: Function) -> list:
    """∂(node's output)/∂(each input) at the current values, as host arrays (None where an input
    takes no gradient): the node's backward with an upstream gradient of ones."""
    if node.released:
        raise RuntimeError(f"the graph's saved values were freed by backward() ({node.name}): draw or sum the "
                           "paths before calling backward(), or call it with retain_graph=True")
    ones = Tensor._make(node.device.xp.ones(node.shape, dtype=np.float64), node.device)
    # Every tensor input gets its derivative, also those that take no gradient in training (the
    # lecture labels the x edges too): backward is asked for all of them, then told the truth again.
    wanted = node.next
    node.next = _parents(node)
    try:
        with no_grad():
            grads = node.backward(ones)
    finally:
        node.next = wanted
    grads = grads if isinstance(grads, tuple) else (grads,)
    return [None if g is None else node.device.to_host(g.data) for g in grads]


def _parents(node: Function) -> tuple:
    """Where each input of ``node`` comes from: its node or leaf (``next``), or the tensor itself
    when its gradient goes nowhere (an input without grad); None for a constant."""
    return tuple(n if n is not None or not isinstance(x, Tensor) else x for n, x in zip(node.next, _inputs(node)))


def _edges(node, cache: dict) -> list:
    """(parent, local derivative as a number) for each input of ``node`` that has a derivative; the
    derivatives are computed once per node (``cache``)."""
    if id(node) not in cache:
        cache[id(node)] = _local_derivatives(node)
    edges = []
    for parent, local in zip(_parents(node), cache[id(node)]):
        if parent is None or local is None:
            continue
        if np.size(local) != 1:
            raise ValueError(f"path_sum works on graphs of single numbers; {node.name} has an input of shape "
                             f"{np.shape(local)}: use backward() for tensors")
        edges.append((parent, float(np.reshape(local, -1)[0])))
    return edges


def _count_paths(start, target, cache: dict) -> int:
    """How many paths lead from ``target`` to ``start`` (a node), counted once per node in reverse
    topological order: as many steps as the graph has edges, however many paths there are."""
    counts: dict = {}
    stack = [(start, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in counts:
            continue
        edges = _edges(node, cache)
        if ready:
            counts[id(node)] = sum(1 if parent is target else counts.get(id(parent), 0)
                                   for parent, _ in edges if parent is target or isinstance(parent, Function))
            continue
        stack.append((node, True))
        stack += [(parent, False) for parent, _ in edges
                  if parent is not target and isinstance(parent, Function) and id(parent) not in counts]
    return counts[id(start)]


def path_sum(output: Tensor, wrt: Tensor, limit: int = PATH_LIMIT, names: dict | None = None):
    """The lecture's chain rule on a graph of scalars: ∂output/∂wrt as the sum, over every path from
    ``wrt`` to ``output``, of the product of the local derivatives on its edges.

    Returns ``(gradient, [(path, product), ...])`` where a path is the list of names from ``wrt``
    to ``output``. It equals what ``backward()`` computes; backprop gets there without listing the
    paths, whose number grows exponentially with depth — beyond ``limit`` this refuses.
    """
    labels = {id(t): n for n, t in (names or {}).items()}
    if output.grad_fn is None:
        raise ValueError("path_sum: the output is not computed from anything (no graph)")
    if output.size != 1 or wrt.size != 1:
        raise ValueError(f"path_sum works on graphs of single numbers; the output has shape {output.shape} and "
                         f"wrt {wrt.shape}: use backward() for tensors")
    target = wrt.grad_fn if wrt.grad_fn is not None else wrt
    cache: dict = {}
    if _count_paths(output.grad_fn, target, cache) > limit:  # counted node by node: refused before listing any
        raise ValueError(f"path_sum: more than {limit} paths from {_name_of(wrt, labels)} to the output (their "
                         "number grows exponentially with depth, which is why backprop accumulates products node "
                         "by node instead); use backward()")
    paths = []
    # Depth-first from the output back to wrt; each stack entry is (node, product so far, names so far).
    stack = [(output.grad_fn, 1.0, [output.grad_fn.name])]
    while stack:
        node, product, trail = stack.pop()
        for parent, local in _edges(node, cache):
            step = product * local
            if parent is target:
                paths.append(([_name_of(wrt, labels), *reversed(trail)], step))
            elif isinstance(parent, Function):
                stack.append((parent, step, [*trail, parent.name]))
    paths.reverse()
    return float(sum(p for _, p in paths)), paths


class DerivativeGraph:
    """The computational graph with every edge labelled by the local derivative ∂child/∂parent at
    the current values (a number on scalar edges, the op's rule on tensor edges)."""

    def __init__(self, output: Tensor, names: dict | None = None):
        self.output = output
        self.labels = {id(t): n for n, t in (names or {}).items()}
        # named intermediate results: their op's node shows the name and the value
        self.results = {id(t.grad_fn): (n, t) for n, t in (names or {}).items()
                        if isinstance(t, Tensor) and t.grad_fn is not None}
        self.nodes: dict = {}  # id -> (label, kind)
        self.edges: list = []  # (parent id, child id, label, value: the number on a scalar edge, else None)
        self._walk()

    def _walk(self) -> None:
        out = self.output
        # A named output (``names={"L": loss}``) is its op's node, drawn as the output: a second
        # "L" box after it would say the same thing again.
        named_out = out.grad_fn is not None and id(out.grad_fn) in self.results
        if not named_out:
            self.nodes["out"] = (f"L = {self._value(out)}" if out.size == 1 else f"output\n{_shape(out.shape)}",
                                 "out")
        if out.grad_fn is None:
            self.nodes[f"t{id(out)}"] = (self._leaf(out), "leaf")
            self.edges.append((f"t{id(out)}", "out", "1", 1.0))
            return
        if not named_out:
            self.edges.append((f"f{id(out.grad_fn)}", "out", "1", 1.0))
        for node in _graph_nodes(out):
            self.nodes[f"f{id(node)}"] = (self._op_box(node), "out" if named_out and node is out.grad_fn else "op")
            self._in_edges(node)

    def _op_box(self, node: Function) -> str:
        """An op's box: its name and constants, with the name and value of a named result, else its
        value (one number) or shape."""
        value, name = node.out_data, _op_text(node)
        named = self.results.get(id(node))
        if named is not None and named[1].size == 1:
            return f"{name}\n{named[0]} = {self._value(named[1])}"
        if named is not None:
            return f"{name}\n{named[0]} {_shape(node.shape)}"
        return name + (f"\n= {float(np.reshape(node.device.to_host(value), -1)[0]):.4g}"
                       if value is not None and np.size(value) == 1 else f"\n{_shape(node.shape)}")

    def _in_edges(self, node: Function) -> None:
        """An edge from each input of ``node`` (a node, a leaf, a tensor without grad, or one the
        graph no longer reaches), labelled with ∂node/∂input: a number where node and input are
        single numbers, else the op's rule (per element)."""
        local = _local_derivatives(node)
        rules = _RULES.get(node.name, ())
        inputs = _inputs(node)
        for i, (parent, derivative) in enumerate(zip(_parents(node), local)):
            given = inputs[i] if parent is None else None
            if isinstance(given, Absent):
                key = f"a{id(given)}"
                self.nodes[key] = (_absent_label(given).replace("\\n", "\n"), "leaf")
            elif isinstance(parent, Function | Tensor):
                key = f"f{id(parent)}" if isinstance(parent, Function) else f"t{id(parent)}"
                if isinstance(parent, Tensor):
                    self.nodes[key] = (self._leaf(parent), "leaf")
            else:
                continue
            # a number where node and input are single numbers; a one-element input broadcast into a
            # larger op gets the rule (∂zᵢ/∂b), not the sum over the broadcast that backward gives
            if derivative is not None and np.size(derivative) == 1 and int(np.prod(node.shape)) == 1:
                number = float(np.reshape(derivative, -1)[0])
                label = f"{number:.4g}"
            else:
                number, label = None, rules[i] if i < len(rules) else f"∂{node.name}/∂in{i}"
            self.edges.append((key, f"f{id(node)}", label, number))

    def _value(self, t: Tensor) -> str:
        return f"{float(t.item()):.4g}"

    def _leaf(self, t: Tensor) -> str:
        name = _name_of(t, self.labels)
        return f"{name} = {self._value(t)}" if t.size == 1 else f"{name}\n{_shape(t.shape)}"

    def to_dot(self) -> str:
        """Graphviz DOT text: leaves as ellipses, ops as boxes, every edge with its local derivative."""
        style = {"leaf": 'shape=ellipse, style=filled, fillcolor="#d5e8d4"',
                 "op": 'shape=box, style="rounded,filled", fillcolor="#dae8fc"',
                 "out": 'shape=doublecircle, style=filled, fillcolor="#fde0c5"'}
        lines = ["digraph derivatives {", '  rankdir="LR";', '  node [fontname="Helvetica", fontsize=11];',
                 '  edge [fontname="Helvetica", fontsize=10, fontcolor="#b85450"];']
        for key, (text, kind) in self.nodes.items():
            lines.append(f'  {key} [label="{_escape(text).replace(chr(10), chr(92) + "n")}", {style[kind]}];')
        for parent, child, label, _ in self.edges:
            lines.append(f'  {parent} -> {child} [label="{_escape(label)}"];')
        lines.append("}")
        return "\n".join(lines)

    def render(self, path) -> Path:
        """Write the picture (.svg/.png/.pdf with Graphviz's dot when installed, else with a layered
        matplotlib drawing; .dot writes the text)."""
        path = Path(path)
        fmt = path.suffix.lstrip(".").lower() or "svg"
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt in {"dot", "gv"}:
            return atomic_write(path, self.to_dot().encode())
        dot = shutil.which("dot")
        if dot is not None:
            result = subprocess.run([dot, f"-T{fmt}"], input=self.to_dot().encode(), capture_output=True, check=False)
            if result.returncode == 0:
                return atomic_write(path, result.stdout)
        return self._draw(path, fmt)

    def _draw(self, path: Path, fmt: str) -> Path:
        """A layered drawing without Graphviz (``viz_draw``): columns by distance from the inputs."""
        if fmt not in {"svg", "png", "pdf"}:
            raise ValueError(f"cannot render {path} without Graphviz: use .png, .svg, .pdf or .dot ({DOT_HINT})")
        if not viz_draw.available():
            raise RuntimeError(f"cannot render {path}: {DOT_HINT}; or {extra_hint('plot', 'matplotlib')}")
        return atomic_write(path, viz_draw.layered_picture(self.nodes, self.edges, fmt))


def derivative_graph(output: Tensor, inputs=None, names: dict | None = None) -> DerivativeGraph:
    """The lecture's derivative graph of ``output``: ``.to_dot()`` and ``.render(path)``. Leaves keep
    their ``name=`` (or ``names={"α": tensor}``); ``inputs`` is accepted for symmetry with
    ``dg.grad`` (every leaf is drawn)."""
    return DerivativeGraph(output, names=names)

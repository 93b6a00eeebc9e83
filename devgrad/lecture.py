"""``devgrad lecture``: the lecture on deep-learning frameworks, runnable, as one HTML page.

It runs the lecture's specs (seconds on a CPU), builds the one-neuron derivative graph with its
edge derivatives, checks the chain rule as a sum over paths against backprop, and writes
``DIR/index.html``: linear classifier, logistic regression, the triangle (three lines and a
combiner), an MLP, collapse without a nonlinearity, the derivative graph, the chain rule as
path sums, backprop, and zero against random initialisation — each with its picture and the
numbers devgrad measured. The page embeds its images; each run's own report is linked.
"""

from __future__ import annotations

import html
import math
import os
import time
from pathlib import Path

from devgrad import viz
from devgrad.backend import device as resolve_device
from devgrad.core import grad, tensor
from devgrad.experiment.commands import run
from devgrad.experiment.errors import RunError
from devgrad.experiment.examples import EXAMPLES
from devgrad.experiment.figures import fork_is_safe
from devgrad.experiment.html_report import figure, page, table
from devgrad.experiment.report import PLOT_HINT, can_plot
from devgrad.io import atomic_write_text
from devgrad.lecture_pool import train_side_by_side

SPECS = ("linear_classifier", "logistic_regression", "triangle", "xor", "triangle_linear_activation",
         "zero_init_symmetry", "random_init")


def _spec_path(name: str) -> Path:
    """A lecture spec: the current directory's experiments/ copy (a clone of the repository, where
    it may have been edited), else the one devgrad ships (any install, a wheel's too)."""
    local = Path.cwd() / "experiments" / f"{name}.yaml"
    return local if local.exists() else EXAMPLES / f"{name}.yaml"


def one_neuron(x1: float = 1.5, x2: float = -0.5, alpha: float = 0.8, beta: float = 0.3):
    """The lecture's neuron: z = α·x₁ + β·x₂, p = σ(z), and the loss L = −log σ(z) of the label 1.
    Returns the leaves and the named intermediate tensors (the graph is kept for drawing)."""
    t = {"x₁": tensor(x1, dtype="float64", name="x₁"), "x₂": tensor(x2, dtype="float64", name="x₂"),
         "α": tensor(alpha, dtype="float64", requires_grad=True, name="α"),
         "β": tensor(beta, dtype="float64", requires_grad=True, name="β")}
    t["αx₁"] = t["α"] * t["x₁"]
    t["βx₂"] = t["β"] * t["x₂"]
    t["z"] = t["αx₁"] + t["βx₂"]
    t["σ(z)"] = t["z"].sigmoid()
    t["log σ(z)"] = t["σ(z)"].log()
    t["L"] = -t["log σ(z)"]
    return t


def _diamonds(depth: int):
    """x → (x·a, x·b) → sum, ``depth`` times: 2^depth paths from x to the output."""
    x = tensor(0.9, dtype="float64", requires_grad=True, name="x")
    h = x
    for _ in range(depth):
        h = (h * 0.7).tanh() + (h * 1.1).sigmoid()
    return x, h


def build(out, device: str = "cpu", quiet: bool = False) -> Path:
    """Run the lecture's specs into ``out/runs`` and write ``out/index.html``; returns its path."""
    if not can_plot():
        raise RunError(f"devgrad lecture draws its pictures with matplotlib, which is not installed: {PLOT_HINT}")
    try:
        resolve_device(device)  # a device this machine lacks is refused before any folder or line is made
    except ValueError as exc:
        raise RunError(f"--device: {exc}") from None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a folder: give the folder for index.html and the runs")
    out.mkdir(parents=True, exist_ok=True)
    replaced = (out / "index.html").exists()
    started = time.perf_counter()
    graph: dict = {}  # the derivative graph's picture and numbers, made here while the runs train
    try:
        runs = _run_specs(run, out / "runs", device, quiet, meanwhile=lambda: graph.update(_neuron_and_paths(out)))
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the lecture stopped before writing its page ({out / 'index.html'}); run devgrad "
                                f"lecture again (the runs it trained stay under {out / 'runs'})") from None
    html_text = _page(out, runs, **graph)
    index = out / "index.html"
    atomic_write_text(index, html_text)
    if not quiet:
        what = "replaced the page of an earlier run of devgrad lecture" if replaced else "wrote"
        print(f"lecture: {what} {index} in {time.perf_counter() - started:.1f}s (the runs are kept under "
              f"{out / 'runs'})", flush=True)
    return index


def _neuron_and_paths(out: Path) -> dict:
    """The one-neuron derivative graph (drawn into ``out``), its paths and backprop's numbers, and the
    diamonds' path counts: what sections 6-8 show (``_page``'s keyword arguments)."""
    neuron = one_neuron()
    names = {k: v for k, v in neuron.items()}
    graph_png = viz.derivative_graph(neuron["L"], names=names).render(out / "one_neuron.png")
    path_rows, checks = [], []
    for leaf in ("α", "β"):
        total, paths = viz.path_sum(neuron["L"], neuron[leaf], names=names)
        for trail, product in paths:
            path_rows.append({"derivative": f"∂L/∂{leaf}", "path": " → ".join(trail),
                              "product of edge derivatives": product})
        checks.append((leaf, total))
    forward = {k: float(v.item()) for k, v in neuron.items()}
    neuron["L"].backward(retain_graph=True)
    backprop = {leaf: float(neuron[leaf].grad.item()) for leaf in ("α", "β")}
    inner = ("αx₁", "βx₂", "z", "σ(z)", "log σ(z)")
    grads = grad(neuron["L"], [neuron[k] for k in inner], retain_graph=True)
    node_grads = dict(zip(inner, (float(g.item()) for g in grads)))
    node_grads.update(backprop)
    node_grads["L"] = 1.0
    growth = []
    for depth in (2, 5, 10, 14):
        x, h = _diamonds(depth)
        try:
            total, paths = viz.path_sum(h, x)
            listed = len(paths)
            refused = ""
        except ValueError as exc:
            listed, total = None, None
            refused = str(exc).split(";")[0]
        (g,) = grad(h, [x])
        growth.append({"depth": depth, "paths": 2 ** depth, "listed by path_sum": listed or "refused",
                       "path sum": total, "backprop": float(g.item()), "note": refused})
    return {"graph_png": graph_png, "path_rows": path_rows, "checks": checks, "backprop": backprop,
            "forward": forward, "node_grads": node_grads, "growth": growth}


def _run_specs(run, runs_dir: Path, device: str, quiet: bool, meanwhile=None) -> dict:
    """The lecture's runs, each in its own folder under ``runs_dir``. They are independent: on a
    CPU of several cores, where ``fork_is_safe`` (Linux, no other thread, no CUDA context), forked
    processes train them side by side, the longest first, while this process calls ``meanwhile``
    (if given: work of its own, which fills a core the last runs leave idle); elsewhere one after
    the other, then ``meanwhile``. A Ctrl-C stops the run in flight and starts no other."""
    paths = {name: _spec_path(name) for name in SPECS}  # a missing spec fails before any run starts
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    kwargs = {"out": runs_dir, "device": device, "quiet": True}
    if cores < 2 or device != "cpu" or not fork_is_safe():
        results = {}
        for name in SPECS:
            if not quiet:
                print(f"lecture: {name}", flush=True)
            results[name] = run(paths[name], **kwargs)
        if meanwhile is not None:
            meanwhile()
        return results
    jobs = [(name, paths[name], kwargs) for name in sorted(SPECS, key=lambda n: -_EFFORT.get(n, 1))]
    results = train_side_by_side(run, jobs, min(cores, len(SPECS)), quiet, meanwhile)
    return {name: results[name] for name in SPECS}


# How long each spec trains, relative to the others (the longest start first).
_EFFORT = {"zero_init_symmetry": 3, "random_init": 3, "triangle": 3, "triangle_linear_activation": 2, "xor": 2}


def _metric(result, key="test_accuracy"):
    value = (result.summary.get("test") or {}).get(key)
    return f"{value:.3f}" if isinstance(value, float) else "—"


def _plot(result, name: str, caption: str) -> str:
    path = Path(result.run_dir) / "plots" / name
    return figure(path, caption) if path.exists() else f"<p class=\"note\">({name} was not drawn: matplotlib?)</p>"


def _link(result, out: Path, label: str = "the run's report") -> str:
    report = Path(result.run_dir) / "report.html"
    rel = report.relative_to(out) if report.exists() else None
    return f' <a href="{html.escape(str(rel))}">{html.escape(label)}</a>' if rel else ""


def _page(out, runs, graph_png, path_rows, checks, backprop, forward, node_grads, growth) -> str:
    """The lecture's HTML page: the runs' sections (1-5), the derivative graph's (6-8), initialisation's (9)."""
    sections = (_run_sections(runs, out) + _graph_sections(graph_png, path_rows, checks, backprop, forward,
                                                              node_grads, growth) + [_init_section(runs, out)])
    return page("devgrad: the lecture", "".join(sections))


def _run_sections(r: dict, out: Path) -> list[str]:
    """Sections 1-5: the linear classifier, logistic regression, the triangle, MLPs, the collapse
    without a nonlinearity, each with its run's picture and numbers."""
    collapsed = r["triangle_linear_activation"].summary.get("linear_map", {})
    linear_map = collapsed.get("input_text") or collapsed.get("text", "")
    return [
        "<h1>The lecture, runnable</h1><p>Every picture and number on this page was produced by devgrad "
        "just now (<code>devgrad lecture</code>). Each section links to the run that made it.</p>",

        "<h2>1. A linear classifier</h2><p>A linear classifier scores a point with d(x) = w·x + b and predicts "
        "the sign of d. The points where d(x) = 0 form a line in the plane (a hyperplane in general): one side "
        "is one class, the other side the other. Trained with the hinge loss max(0, 1 − y·d(x)) on labels y = ±1, "
        f"it separates linearly separable data: test accuracy {_metric(r['linear_classifier'])}."
        f"{_link(r['linear_classifier'], out)}</p>"
        + _plot(r["linear_classifier"], "decision_boundary.png",
                "The learned line d(x) = 0 (solid), its margin d(x) = ±1 (dashed) and the two classes; the "
                "colours are the score d(x): a hinge-loss classifier gives no probabilities."),

        "<h2>2. Logistic regression</h2><p>Logistic regression reads the same score as a probability: "
        "P(y = 1 | x) = σ(w·x + b) with σ(d) = 1/(1 + e^(−d)). With labels ±1 its loss is log(1 + e^(−y·d)), "
        "small when the score has the right sign and a large margin. On noisy data it still draws one line, "
        f"with a soft band of uncertainty: test accuracy {_metric(r['logistic_regression'])}."
        f"{_link(r['logistic_regression'], out)}</p>"
        + _plot(r["logistic_regression"], "decision_boundary.png",
                "P(class 1) = σ(w·x + b) over the plane, with the learned line w·x + b = 0 where it is ½."),

        "<h2>3. The triangle: three logistic regressions and a fourth</h2><p>Inside versus outside a triangle "
        "is not linearly separable: no single line does it. Three logistic regressions each learn one side "
        "(a line); a fourth combines their three outputs. That is the simplest neural network, with a "
        f"hidden layer of three sigmoid units: test accuracy {_metric(r['triangle'])}."
        f"{_link(r['triangle'], out)}</p>"
        + _plot(r["triangle"], "neurons.png", "Each hidden unit: its activation over the plane and its line "
                "w·x + b = 0; last, the output with the three lines. Every formula and axis on this page is in "
                "the data's own coordinates x₁, x₂ (the network itself sees them standardised).")
        + _plot(r["triangle"], "decision_boundary.png", "The decision boundary with the three hidden units' lines."),

        "<h2>4. MLPs</h2><p>A multilayer perceptron stacks such layers: h = act(W₁x + b₁), then out = W₂h + b₂, "
        "and so on. XOR, which no line separates, needs a hidden layer: test accuracy "
        f"{_metric(r['xor'])}.{_link(r['xor'], out)}</p>"
        + _plot(r["xor"], "decision_boundary.png", "XOR learned by an MLP."),

        "<h2>5. Why nonlinearities matter</h2><p>Without a nonlinearity every layer is affine, and a composition "
        "of affine maps is affine: W₂(W₁x + b₁) + b₂ = (W₂W₁)x + (W₂b₁ + b₂). The same triangle network with "
        "identity activations (two hidden layers) is one linear classifier, whatever its depth. devgrad "
        f"multiplied its trained layers out (in x₁, x₂, the plots' coordinates): <code>{html.escape(linear_map)}"
        "</code>; test accuracy "
        f"{_metric(r['triangle_linear_activation'])} against {_metric(r['triangle'])} with sigmoids."
        f"{_link(r['triangle_linear_activation'], out)}</p>"
        + _plot(r["triangle_linear_activation"], "decision_boundary.png",
                "The collapsed network: its boundary is the one line of the composed map."),

    ]


def _graph_sections(graph_png, path_rows, checks, backprop, forward, node_grads, growth) -> list[str]:
    """Sections 6-8: the one-neuron derivative graph, the chain rule as path sums, backpropagation."""
    check_text = "; ".join(f"∂L/∂{leaf}: path sum {total:.6f}, backprop {backprop[leaf]:.6f}" for leaf, total in checks)
    agree = all(math.isclose(total, backprop[leaf], rel_tol=1e-12, abs_tol=1e-15) for leaf, total in checks)
    return [
        "<h2>6. The computational graph and its derivative graph</h2><p>One neuron, as the lecture draws it: "
        "inputs x₁, x₂ (placeholders), weights α, β (variables), z = αx₁ + βx₂, σ(z), and the loss "
        "L = −log σ(z) for the label y = 1 (logistic regression's loss). Every edge carries the local "
        "derivative of the child with respect to the parent, at the current values: ∂z/∂(αx₁) = 1, "
        "∂(αx₁)/∂α = x₁, ∂σ/∂z = σ(z)(1 − σ(z)), ∂ log σ/∂σ = 1/σ(z), ∂L/∂ log σ = −1.</p>"
        + figure(graph_png, "The one-neuron derivative graph, edges labelled with their local derivatives "
                            "(values at x₁ = 1.5, x₂ = −0.5, α = 0.8, β = 0.3)."),

        "<h2>7. The chain rule as a sum over paths</h2><p>∂L/∂α is the sum, over every path from α to L, of the "
        "product of the edge derivatives along the path. Here each weight has one path, so ∂L/∂α = x₁ · 1 · "
        "σ(z)(1 − σ(z)) · 1/σ(z) · (−1) = −x₁(1 − σ(z)). A graph where a value is used twice has several "
        "paths, and their products add up (section 8). devgrad's <code>dg.viz.path_sum</code> lists the paths "
        "and their products:</p>"
        + table(path_rows, ["derivative", "path", "product of edge derivatives"], sortable=False)
        + f"<p>{html.escape(check_text)}: {'equal' if agree else 'NOT equal'}.</p>",

        "<h2>8. Backpropagation</h2><p>The forward pass computes every node's value from the inputs; the backward "
        "pass starts from ∂L/∂L = 1 and walks the graph in reverse, multiplying each node's gradient by the "
        "local derivatives of its edges and adding what arrives along different edges. Each edge is used once, "
        "so the cost is that of the forward pass, while the number of paths can grow exponentially with depth:</p>"
        + table([{"node": k, "value (forward)": forward[k],
                  "∂L/∂node (backward)": node_grads.get(k, "— (an input: no gradient needed)")}
                 for k in ("x₁", "x₂", "α", "β", "αx₁", "βx₂", "z", "σ(z)", "log σ(z)", "L")],
                ["node", "value (forward)", "∂L/∂node (backward)"], sortable=False)
        + "<p>A stack of 'diamonds' (each layer feeds the next through two branches) doubles the paths at "
        "every layer; path_sum refuses beyond 10,000 paths, backprop does not care:</p>"
        + table(growth, ["depth", "paths", "listed by path_sum", "path sum", "backprop", "note"], sortable=False),
    ]


def _init_section(r: dict, out: Path) -> str:
    """Section 9: zero against random initialisation."""
    return (
        "<h2>9. Why weights must not start at zero</h2><p>If every weight starts at zero, every hidden unit "
        "computes the same function and receives the same gradient, so they stay identical forever: the "
        "network has, in effect, one hidden unit. Random initialisation breaks the symmetry. Same network, "
        f"same data: all-zero start, test accuracy {_metric(r['zero_init_symmetry'])}; random start "
        f"{_metric(r['random_init'])}.{_link(r['zero_init_symmetry'], out, 'the zero-start run')},"
        f"{_link(r['random_init'], out, 'the random-start run')}.</p>"
        + _plot(r["zero_init_symmetry"], "hidden_units.png", "Zero start: the three units' weights over training "
                "(one line: they never differ).")
        + _plot(r["random_init"], "hidden_units.png", "Random start: the units go their own ways.")
    )

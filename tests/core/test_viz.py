"""Graph pictures: DOT text with ops, leaves, names and shapes; rendering or a clear hint."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import devgrad as dg


def _neuron():
    x = dg.tensor([[1.0, 2.0]], name="x")
    w = dg.tensor([[0.5], [-0.3]], requires_grad=True)
    b = dg.tensor([0.1], requires_grad=True, name="b")
    z = (x @ w + b).sigmoid()
    return z, w


def test_to_dot_lists_ops_leaves_names_and_shapes():
    z, w = _neuron()
    text = dg.viz.to_dot(z, names={"alpha_beta": w}, title="one neuron")
    assert text.startswith("digraph devgrad {") and text.rstrip().endswith("}")
    for expected in ("Sigmoid\\n1×1", "Add\\n1×1", "MatMul\\n1×1", "alpha_beta\\n2×1", "b\\n1",
                     "x\\n1×2", "one neuron", "output\\n1×1"):
        assert expected in text, expected
    assert text.count("->") == 6  # x, w -> MatMul -> Add <- b; Add -> Sigmoid -> out


def test_to_dot_of_a_leaf():
    x = dg.tensor([1.0], requires_grad=True, name="lonely")
    assert "lonely" in dg.viz.to_dot(x)


def test_render_writes_dot_text(tmp_path):
    z, _ = _neuron()
    path = dg.viz.render(z, tmp_path / "graph.dot")
    assert path.read_text().startswith("digraph")


def test_render_svg_or_explains_how_to_get_graphviz(tmp_path, monkeypatch):
    z, _ = _neuron()
    if shutil.which("dot"):
        out = dg.viz.render(z, tmp_path / "graph.svg")
        assert "<svg" in out.read_text()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="Graphviz.*apt-get install graphviz"):
        dg.viz.render(z, tmp_path / "graph2.svg")
    with pytest.raises(ValueError, match="unsupported file type"):
        dg.viz.render(z, tmp_path / "graph.jpg")


def test_constants_show_in_op_labels():
    a = dg.tensor(0.4, requires_grad=True, name="alpha")
    text = dg.viz.to_dot((a * 0.7) ** 2)
    assert "Mul (·, 0.7)" in text and "Pow (·, 2)" in text


def _one_neuron():
    """The lecture's neuron: placeholders x₁, x₂, variables α, β, z = αx₁ + βx₂, L = −log σ(z)."""
    x1 = dg.tensor(2.0, name="x₁", dtype="float64")
    x2 = dg.tensor(-1.0, name="x₂", dtype="float64")
    alpha = dg.tensor(0.5, requires_grad=True, name="α", dtype="float64")
    beta = dg.tensor(1.5, requires_grad=True, name="β", dtype="float64")
    return -(alpha * x1 + beta * x2).sigmoid().log(), alpha, beta


def test_path_sum_is_what_backprop_computes():
    loss, alpha, beta = _one_neuron()
    (ga, paths_a), (gb, _) = dg.viz.path_sum(loss, alpha), dg.viz.path_sum(loss, beta)
    assert [names for names, _ in paths_a] == [["α", "Mul", "Add", "Sigmoid", "Log", "Neg"]]
    loss.backward()
    assert ga == pytest.approx(alpha.grad.item(), rel=1e-12) and gb == pytest.approx(beta.grad.item(), rel=1e-12)
    # a shared subexpression: y = t·t + t has three paths (t is both inputs of Mul)
    t = dg.tensor(1.5, requires_grad=True, name="t", dtype="float64")
    total, paths = dg.viz.path_sum(t * t + t, t)
    assert len(paths) == 3 and sorted(p for _, p in paths) == [1.0, 1.5, 1.5] and total == 4.0
    # several paths through different ops
    a = dg.tensor(0.3, requires_grad=True, dtype="float64")
    u = a * 2.0
    y = u * a.exp() + u.tanh()
    total, paths = dg.viz.path_sum(y, a)
    y.backward()
    assert len(paths) == 3 and total == pytest.approx(a.grad.item(), rel=1e-12)


def test_path_sum_refuses_when_the_paths_explode_and_after_backward():
    x = dg.tensor(1.0, requires_grad=True, dtype="float64")
    y = x
    for _ in range(15):  # 2**15 paths
        y = y + y
    with pytest.raises(ValueError, match="more than 10000 paths"):
        dg.viz.path_sum(y, x)
    with pytest.raises(ValueError, match="single numbers"):
        dg.viz.path_sum(dg.tensor([1.0, 2.0], requires_grad=True) * 2.0, x)
    loss, alpha, _ = _one_neuron()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        dg.viz.path_sum(loss, alpha)


def test_derivative_graph_edges_carry_the_local_derivatives(tmp_path):
    loss, _, _ = _one_neuron()
    graph = dg.viz.derivative_graph(loss)
    labels = {graph.nodes[parent][0].split(" =")[0].split("\n")[0] + "->" + graph.nodes[child][0].split("\n")[0]:
              value for parent, child, _, value in graph.edges}
    z = 0.5 * 2.0 + 1.5 * -1.0
    s = 1 / (1 + np.exp(-z))
    eps = 1e-6

    def sig(v):
        return 1 / (1 + np.exp(-v))

    assert labels["α->Mul"] == pytest.approx(2.0) and labels["x₁->Mul"] == pytest.approx(0.5)  # ∂(αx₁)/∂α = x₁
    assert labels["β->Mul"] == pytest.approx(-1.0)
    assert labels["Add->Sigmoid"] == pytest.approx((sig(z + eps) - sig(z - eps)) / (2 * eps), rel=1e-6)
    assert labels["Sigmoid->Log"] == pytest.approx((np.log(s + eps) - np.log(s - eps)) / (2 * eps), rel=1e-6)
    text = graph.to_dot()
    assert text.startswith("digraph derivatives") and "α = 0.5" in text and 'label="2"' in text
    picture = graph.render(tmp_path / "neuron.png")  # Graphviz when installed, else matplotlib
    assert picture.stat().st_size > 2000
    dot = graph.render(tmp_path / "neuron.dot")
    assert dot.read_text() == text
    tensor_graph = dg.viz.derivative_graph((dg.tensor([[1.0, 2.0]]) @ dg.tensor([[1.0], [2.0]], requires_grad=True))
                                           .sum())
    assert "aᵀ·g" in tensor_graph.to_dot()  # tensor edges show the op's rule


def test_a_named_output_is_drawn_once():
    loss, alpha, beta = _one_neuron()
    graph = dg.viz.derivative_graph(loss, names={"L": loss, "α": alpha, "β": beta})
    shown = [text for text, _ in graph.nodes.values()]
    assert sum("L =" in text for text in shown) == 1, shown  # its op's box says L = ..., no second "L" box
    assert [kind for _, kind in graph.nodes.values()].count("out") == 1
    unnamed = dg.viz.derivative_graph(loss)
    assert [kind for _, kind in unnamed.nodes.values()].count("out") == 1 and "out" in unnamed.nodes


def test_the_matplotlib_picture_is_drawn_once_and_cropped_as_savefig_would(tmp_path, monkeypatch):
    """Without Graphviz: one drawing of the figure (savefig's tight bounding box draws it twice), cut
    to the same box as savefig's (its picture, within a pixel of rounding); a PDF is a PDF; a
    picture type it cannot write is refused."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    from PIL import Image

    monkeypatch.setattr(shutil, "which", lambda name: None)
    draws = []
    original = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: draws.append(1) or original(self, renderer))
    loss, alpha, beta = _one_neuron()
    graph = dg.viz.derivative_graph(loss, names={"L": loss, "α": alpha, "β": beta})
    once = np.asarray(Image.open(graph.render(tmp_path / "neuron.png")).convert("L"), dtype=float)
    assert len(draws) == 1
    monkeypatch.setattr(dg.viz_draw, "_tight_pixels", lambda fig, canvas: None)  # savefig's own tight box
    tight = np.asarray(Image.open(graph.render(tmp_path / "tight.png")).convert("L"), dtype=float)
    assert abs(once.shape[0] - tight.shape[0]) <= 2 and abs(once.shape[1] - tight.shape[1]) <= 2
    rows, cols = min(once.shape[0], tight.shape[0]) - 2, min(once.shape[1], tight.shape[1]) - 2
    best = min(np.abs(once[dy:dy + rows, dx:dx + cols] - tight[:rows, :cols]).mean()
               for dy in range(3) for dx in range(3))
    assert best < 2.0, best  # grey levels out of 255: the same picture, up to anti-aliasing
    assert graph.render(tmp_path / "neuron.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError, match=r"\.jpg without Graphviz: use \.png"):
        graph.render(tmp_path / "neuron.jpg")


def _leaf_names(dot: str) -> list:
    return sorted(line.split('label="')[1].split("\\n")[0] for line in dot.splitlines() if "shape=ellipse" in line)


def test_every_input_of_an_op_that_saves_none_is_drawn():
    """Add and Sub keep no inputs for backward: a tensor without grad, a constant and a freed
    tensor are still drawn, each with its edge; the graph keeps no larger array alive for it."""
    import gc
    import weakref

    X = dg.tensor([[1.0, 2.0], [3.0, 4.0]], dtype="float64", name="X")
    y = dg.tensor([1.0, 0.0], dtype="float64", name="y")
    w = dg.tensor([0.5, -0.2], dtype="float64", requires_grad=True, name="w")
    dot = dg.viz.to_dot(((X @ w - y) ** 2).mean())
    assert _leaf_names(dot) == ["X", "w", "y"]
    assert dot.count("->") == 7  # X, w -> MatMul -> Sub <- y; Sub -> Pow -> Mean -> out
    assert "Add (·, 3)" in dg.viz.to_dot(w + 3.0)
    temporary = w + dg.tensor([1.0, 2.0], dtype="float64")
    assert "input (freed)\\n2" in dg.viz.to_dot(temporary)  # its shape, dashed
    big = dg.tensor(np.ones(1000), dtype="float64")
    gone = weakref.ref(big)
    kept = dg.tensor(np.ones(1000), dtype="float64", requires_grad=True) + big
    del big
    gc.collect()
    assert gone() is None and kept.grad_fn is not None  # the graph held no reference to it


def test_the_derivative_graph_of_an_input_used_twice_sums_to_torch():
    torch = pytest.importorskip("torch")
    x = dg.tensor(0.7, dtype="float64", name="x")  # an input without grad, as the lecture's x₁, x₂
    a = dg.tensor(-1.3, dtype="float64", requires_grad=True, name="a")
    out = x * a + x
    graph = dg.viz.derivative_graph(out)
    key = f"t{id(x)}"
    leaving = sorted((graph.nodes[c][0].split("\n")[0], v) for p, c, _, v in graph.edges if p == key)
    assert leaving == [("Add", 1.0), ("Mul", -1.3)]
    children: dict = {}
    for p, c, _, v in graph.edges:
        children.setdefault(p, []).append((c, v))

    def paths(k):
        return 1.0 if k == "out" else sum(v * paths(c) for c, v in children.get(k, []))

    tx = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    (tx * -1.3 + tx).backward()
    assert paths(key) == pytest.approx(tx.grad.item()) and dg.viz.path_sum(out, x)[0] == pytest.approx(-0.3)
    constant = dg.viz.derivative_graph(a + 3.0)
    assert any(text.startswith("Add (·, 3)") for text, _ in constant.nodes.values())


def test_two_edges_between_the_same_nodes_are_drawn_apart(tmp_path, monkeypatch):
    """x*x: both inputs of Mul are x; the matplotlib picture shows two arrows, each with its own
    label, so the picture's chain rule gives 0.7 + 0.7 (torch: 1.4)."""
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    monkeypatch.setattr(shutil, "which", lambda name: None)
    arrows, texts = [], []
    annotate, text = Axes.annotate, Axes.text
    monkeypatch.setattr(Axes, "annotate", lambda ax, s, xy, xytext, **k: arrows.append((xytext, xy))
                        or annotate(ax, s, xy, xytext=xytext, **k))
    monkeypatch.setattr(Axes, "text", lambda ax, x, y, s, **k: texts.append(((x, y), s)) or text(ax, x, y, s, **k))
    x = dg.tensor(0.7, dtype="float64", requires_grad=True, name="x")
    dg.viz.derivative_graph(x * x).render(tmp_path / "xx.png")
    assert len(arrows) == 3 and len(set(arrows)) == 3  # x -> Mul twice, Mul -> L
    labels = [(where, s) for where, s in texts if s == "0.7"]
    assert len(labels) == 2 and labels[0][0] != labels[1][0]
    torch = pytest.importorskip("torch")
    t = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    (t * t).backward()
    assert sum(float(s) for _, s in labels) == pytest.approx(t.grad.item())


def test_a_broadcast_one_element_input_is_labelled_per_element():
    """z = X @ w + b with b of shape (1,): ∂zᵢ/∂b = 1 for every i (torch's Jacobian), as the
    MatMul -> Add edge says; not 5, the sum over the broadcast."""
    torch = pytest.importorskip("torch")
    X = dg.tensor(np.arange(10.0).reshape(5, 2), dtype="float64", name="X")
    w = dg.tensor([0.5, -1.0], dtype="float64", requires_grad=True, name="w")
    b = dg.tensor([0.0], dtype="float64", requires_grad=True, name="b")
    graph = dg.viz.derivative_graph((X @ w + b).sum())
    into_add = {graph.nodes[p][0].split("\n")[0].split(" =")[0]: (label, v) for p, c, label, v in graph.edges
                if graph.nodes[c][0].startswith("Add")}
    jacobian = torch.autograd.functional.jacobian(lambda bb: torch.zeros(5, dtype=torch.float64) + bb,
                                                  torch.zeros(1, dtype=torch.float64))
    assert set(jacobian.reshape(-1).tolist()) == {1.0}
    assert into_add == {"MatMul": ("1", None), "b": ("1", None)}

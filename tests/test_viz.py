"""Graph pictures: DOT text with ops, leaves, names and shapes; rendering or a clear hint."""

from __future__ import annotations

import shutil

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

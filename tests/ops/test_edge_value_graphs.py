"""Random graphs of ops on edge values (0, -0.0, ±inf, NaN, kinks, ties, tiny and huge magnitudes),
against PyTorch in float64: the same values, the same gradients (inf and NaN where PyTorch has them),
and the first-order and graph-building backward paths agree. No NumPy warning on the way."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import devgrad as dg
import devgrad.nn.functional as F

pytestmark = [pytest.mark.oracle, pytest.mark.filterwarnings("error::RuntimeWarning")]

EDGE = [1.0, -1.0, 0.5, -2.0, 3.0, np.inf, -np.inf, np.nan, 1e-300, -1e-300, 1e300, -1e300]


# name: (devgrad fn of tensors, PyTorch fn of (the torch module, tensors))
UNARY = {
    "neg": (lambda a: -a, lambda th, a: -a),
    "exp": (dg.exp, lambda th, a: a.exp()),
    "log": (dg.log, lambda th, a: a.log()),
    "sqrt": (dg.sqrt, lambda th, a: a.sqrt()),
    "abs": (dg.abs, lambda th, a: a.abs()),
    "relu": (dg.relu, lambda th, a: a.relu()),
    "leaky_relu": (lambda a: dg.leaky_relu(a, 0.1), lambda th, a: th.nn.functional.leaky_relu(a, 0.1)),
    "sigmoid": (dg.sigmoid, lambda th, a: a.sigmoid()),
    "tanh": (dg.tanh, lambda th, a: a.tanh()),
    "softplus": (dg.softplus, lambda th, a: th.nn.functional.softplus(a)),
    "log_sigmoid": (dg.log_sigmoid, lambda th, a: th.nn.functional.logsigmoid(a)),
    "square": (lambda a: a * a, lambda th, a: a * a),
    "pow2": (lambda a: a**2, lambda th, a: a**2),
    "pow3": (lambda a: a**3, lambda th, a: a**3),
    "pow_half": (lambda a: a**0.5, lambda th, a: a**0.5),
    "pow_minus1": (lambda a: a**-1, lambda th, a: a**-1),
    "rpow": (lambda a: 2.0**a, lambda th, a: 2.0**a),
    "zero_pow": (lambda a: 0.0**a, lambda th, a: 0.0**a),
    "recip": (lambda a: 1.0 / a, lambda th, a: 1.0 / a),
    "clip": (lambda a: a.clip(-1.0, 1.0), lambda th, a: a.clamp(-1.0, 1.0)),
    "clip_lo": (lambda a: a.clip(0.0, None), lambda th, a: a.clamp(min=0.0)),
    "sum": (lambda a: a.sum(axis=-1, keepdims=True), lambda th, a: a.sum(-1, keepdim=True)),
    "mean": (lambda a: a.mean(axis=-1, keepdims=True), lambda th, a: a.mean(-1, keepdim=True)),
    "amax": (lambda a: a.max(axis=-1, keepdims=True), lambda th, a: a.amax(-1, keepdim=True)),
    "amin": (lambda a: a.min(axis=-1, keepdims=True), lambda th, a: a.amin(-1, keepdim=True)),
    "max_dim": (lambda a: a.max(dim=-1, keepdim=True).values, lambda th, a: a.max(dim=-1, keepdim=True).values),
    "logsumexp": (lambda a: a.logsumexp(axis=-1, keepdims=True), lambda th, a: a.logsumexp(-1, keepdim=True)),
    "softmax": (lambda a: a.softmax(axis=-1), lambda th, a: a.softmax(-1)),
    "log_softmax": (lambda a: a.log_softmax(axis=-1), lambda th, a: a.log_softmax(-1)),
}
BINARY = {
    "add": (lambda a, b: a + b, lambda th, a, b: a + b),
    "sub": (lambda a, b: a - b, lambda th, a, b: a - b),
    "mul": (lambda a, b: a * b, lambda th, a, b: a * b),
    "div": (lambda a, b: a / b, lambda th, a, b: a / b),
    "pow": (lambda a, b: a**b, lambda th, a, b: a**b),
    "maximum": (dg.maximum, lambda th, a, b: a.maximum(b)),
    "minimum": (dg.minimum, lambda th, a, b: a.minimum(b)),
    "where": (lambda a, b: dg.where(a > b, a, b), lambda th, a, b: th.where(a > b, a, b)),
    "mse": (lambda a, b: F.mse_loss(a, b, "none"), lambda th, a, b: th.nn.functional.mse_loss(a, b, reduction="none")),
    "l1": (lambda a, b: F.l1_loss(a, b, "none"), lambda th, a, b: th.nn.functional.l1_loss(a, b, reduction="none")),
    "huber": (lambda a, b: F.huber_loss(a, b, "none"),
              lambda th, a, b: th.nn.functional.huber_loss(a, b, reduction="none")),
}
OPS = sorted(UNARY) + sorted(BINARY)
LOSSES = ("mse", "l1", "huber")


@st.composite
def graphs(draw):
    """Inputs of one shape drawn from the edge values, and a chain of ops over them and earlier results."""
    shape = draw(st.sampled_from([(3,), (2, 3), (1,)]))
    # one zero per graph, 0.0 or -0.0: which of two tied zeros a max returns is not specified
    values = st.sampled_from([*EDGE, draw(st.sampled_from([0.0, -0.0]))])
    inputs = [draw(hnp.arrays(np.float64, shape, elements=values))
              for _ in range(draw(st.integers(1, 2)))]
    steps = draw(st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 7), st.integers(0, 7)), min_size=1,
                          max_size=4))
    return inputs, steps


def _run(values, steps, torch=None):
    """The graph's output from devgrad tensors, or with ``torch`` given from PyTorch's."""
    nodes = list(values)
    for name, i, j in steps:
        a, b = nodes[-1 - i % len(nodes)], nodes[j % len(nodes)]
        ours, theirs = UNARY[name] if name in UNARY else BINARY[name]
        if name in LOSSES:  # losses do not broadcast: give them operands of one shape
            shape = np.broadcast_shapes(a.shape, b.shape)
            a, b = (x.broadcast_to(shape) if torch is None else x.expand(shape) for x in (a, b))
        args = (a,) if name in UNARY else (a, b)
        nodes.append(ours(*args) if torch is None else theirs(torch, *args))
    return nodes[-1]


def _same(actual, expected, what):
    np.testing.assert_allclose(actual, expected, rtol=1e-7, atol=1e-12, equal_nan=True, err_msg=what)
    # the same infinities, sign included
    np.testing.assert_array_equal(np.isposinf(actual), np.isposinf(expected), err_msg=what)
    np.testing.assert_array_equal(np.isneginf(actual), np.isneginf(expected), err_msg=what)


@pytest.mark.slow  # 250 graphs: about 10 s on a 2-core CPU
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=graphs())
def test_edge_value_graphs_match_pytorch(torch, device, graph):
    values, steps = graph
    xs = [dg.tensor(v, device=device, dtype="float64", requires_grad=True) for v in values]
    ts = [torch.tensor(v, requires_grad=True) for v in values]
    out = _run(xs, steps)  # no op warns about the edge values it meets (the module's filter makes it an error)
    expected = _run(ts, steps, torch)
    _same(out.numpy(), expected.detach().numpy(), f"forward of {steps}")
    cot = np.linspace(-1.0, 2.0, out.size).reshape(out.shape)
    fast = dg.grad(out, xs, dg.tensor(cot, device=device, dtype="float64"), retain_graph=True, allow_unused=True)
    graph_path = dg.grad(out, xs, dg.tensor(cot, device=device, dtype="float64"), create_graph=True,
                         allow_unused=True)
    want = torch.autograd.grad(expected, ts, torch.tensor(cot), allow_unused=True) if expected.requires_grad \
        else [None] * len(ts)
    for k, (f, g, w) in enumerate(zip(fast, graph_path, want)):
        if w is None:
            assert f is None or not np.any(f.numpy()), f"input {k} of {steps}: torch has no gradient"
            continue
        _same(f.numpy(), w.numpy(), f"gradient of input {k} of {steps}")
        _same(g.numpy(), f.numpy(), f"graph-building gradient of input {k} of {steps}")

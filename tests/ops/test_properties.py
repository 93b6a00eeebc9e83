"""Property tests on random shapes: elementwise ops, broadcasting and reductions."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import devgrad as dg
from tests.conftest import DEVICES

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=5)
floats = st.floats(-3, 3, allow_nan=False, width=64)
devices = st.sampled_from(DEVICES)

UNARY = {
    "exp": (dg.exp, np.exp, np.exp),
    "tanh": (dg.tanh, np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "sigmoid": (dg.sigmoid, lambda x: 1 / (1 + np.exp(-x)), lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
    "softplus": (dg.softplus, lambda x: np.log1p(np.exp(x)), lambda x: 1 / (1 + np.exp(-x))),
    "neg": (lambda t: -t, np.negative, lambda x: -np.ones_like(x)),
    "square": (lambda t: t * t, np.square, lambda x: 2 * x),
}


@SETTINGS
@given(data=st.data(), name=st.sampled_from(sorted(UNARY)), device=devices)
def test_unary_forward_and_gradient(data, name, device):
    x_np = data.draw(hnp.arrays(np.float64, shapes, elements=floats))
    fn, ref, deriv = UNARY[name]
    x = dg.tensor(x_np, requires_grad=True, device=device)
    y = fn(x)
    assert y.shape == x_np.shape and y.dtype == np.float64
    np.testing.assert_allclose(y.numpy(), ref(x_np), rtol=1e-12, atol=1e-12)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), deriv(x_np), rtol=1e-10, atol=1e-12)


@SETTINGS
@given(shapes_=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4), data=st.data(),
       op=st.sampled_from(["+", "-", "*", "/"]), device=devices)
def test_binary_broadcasting_matches_numpy_and_reduces_gradients(shapes_, data, op, device):
    sa, sb = shapes_.input_shapes
    a_np = data.draw(hnp.arrays(np.float64, sa, elements=floats))
    b_np = data.draw(hnp.arrays(np.float64, sb, elements=st.floats(0.5, 3, width=64)))
    a = dg.tensor(a_np, requires_grad=True, device=device)
    b = dg.tensor(b_np, requires_grad=True, device=device)
    out = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
    expected = {"+": a_np + b_np, "-": a_np - b_np, "*": a_np * b_np, "/": a_np / b_np}[op]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    out.sum().backward()
    assert a.grad.shape == sa and b.grad.shape == sb
    ones = np.ones(shapes_.result_shape)
    da = {"+": ones, "-": ones, "*": ones * b_np, "/": ones / b_np}[op]
    db = {"+": ones, "-": -ones, "*": ones * a_np, "/": -ones * a_np / b_np**2}[op]

    def reduce_to(g, shape):
        while g.ndim > len(shape):
            g = g.sum(axis=0)
        for i, s in enumerate(shape):
            if s == 1 and g.shape[i] != 1:
                g = g.sum(axis=i, keepdims=True)
        return g

    np.testing.assert_allclose(a.grad.numpy(), reduce_to(da, sa), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), reduce_to(db, sb), rtol=1e-10, atol=1e-12)


@st.composite
def array_and_axes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    axes = draw(st.one_of(st.none(), st.lists(st.integers(0, len(shape) - 1), unique=True, min_size=1)
                          .map(tuple)))
    # distinct values so max/min have a unique winner
    values = draw(st.permutations(list(range(int(np.prod(shape))))))
    return np.array(values, dtype=np.float64).reshape(shape) * 0.37 - 1.0, axes


@SETTINGS
@given(case=array_and_axes(), keepdims=st.booleans(), name=st.sampled_from(["sum", "mean", "max", "min"]),
       device=devices)
def test_reductions_match_numpy_with_correct_gradients(case, keepdims, name, device):
    x_np, axes = case
    x = dg.tensor(x_np, requires_grad=True, device=device)
    y = getattr(x, name)(axis=axes, keepdims=keepdims)
    expected = getattr(np, name)(x_np, axis=axes, keepdims=keepdims)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12)
    y.sum().backward()
    if name == "sum":
        grad = np.ones_like(x_np)
    elif name == "mean":
        grad = np.ones_like(x_np) * expected.size / x_np.size
    else:
        grad = (x_np == getattr(np, name)(x_np, axis=axes, keepdims=True)).astype(np.float64)
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-12)


@st.composite
def matmul_operands(draw):
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    a_shape = draw(st.sampled_from([(k,), (m, k), (*batch, m, k)]))
    b_shape = draw(st.sampled_from([(k,), (k, n), (*batch, k, n)]))
    elements = st.floats(-2, 2, allow_nan=False, width=64)
    return draw(hnp.arrays(np.float64, a_shape, elements=elements)), draw(hnp.arrays(np.float64, b_shape,
                                                                                      elements=elements))


@SETTINGS
@given(operands=matmul_operands(), device=devices)
def test_matmul_matches_numpy_and_gradcheck(operands, device):
    a_np, b_np = operands
    a = dg.tensor(a_np, requires_grad=True, device=device)
    b = dg.tensor(b_np, requires_grad=True, device=device)
    out = a @ b
    np.testing.assert_allclose(out.numpy(), a_np @ b_np, rtol=1e-12, atol=1e-12)
    assert dg.gradcheck(lambda x, y: x @ y, [a, b])

"""NumPy's trigonometric, hyperbolic, exponential and logarithmic functions: values as NumPy's,
derivatives of first and second order by finite differences, and PyTorch as the oracle, at the
edges (0, ±1, ±inf, NaN) included."""

from __future__ import annotations

import math

import numpy as np
import pytest

import devgrad as dg
from tests.support.helpers import check_op

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

rng = np.random.default_rng(34)
NAN, INF = np.nan, np.inf

# name -> (low, high) of the random inputs: inside the domain, away from the kinks
UNARY = {
    "sin": (-3, 3), "cos": (-3, 3), "tan": (-1.2, 1.2), "arcsin": (-0.9, 0.9), "arccos": (-0.9, 0.9),
    "arctan": (-3, 3), "sinh": (-2, 2), "cosh": (-2, 2), "arcsinh": (-3, 3), "arccosh": (1.2, 3),
    "arctanh": (-0.9, 0.9), "sinc": (-2, 2), "deg2rad": (-200, 200), "rad2deg": (-3, 3),
    "exp2": (-3, 3), "expm1": (-2, 2), "log1p": (-0.8, 3), "log2": (0.2, 4), "log10": (0.2, 4),
}
BINARY = {"arctan2": (-2, 2), "hypot": (-2, 2), "logaddexp": (-3, 3), "logaddexp2": (-3, 3)}
ALIASES = {"degrees": "rad2deg", "radians": "deg2rad"}
# where the derivative is infinite, NaN, or chosen by convention; PyTorch gives the reference
UNARY_EDGES = [0.0, -0.0, 1.0, -1.0, 2.0, INF, -INF, NAN]
BINARY_EDGES = [(0.0, 0.0), (-0.0, 0.0), (0.0, -1.0), (1e-170, 0.0), (INF, 1.0), (INF, INF), (-INF, -INF),
                (NAN, 1.0), (2.0, 2.0)]


def _draw(bounds, shape=(5,)):
    return rng.uniform(*bounds, size=shape)


def t64(values, device, requires_grad=True):
    return dg.tensor(np.asarray(values, dtype=np.float64), device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("name", [*UNARY, *ALIASES])
def test_unary_values_are_numpys_and_keep_float32(device, name):
    numpy_name = ALIASES.get(name, name)
    x = _draw(UNARY[numpy_name]).astype(np.float32)
    out = getattr(dg, name)(dg.tensor(x, device=device))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), getattr(np, numpy_name)(x), rtol=1e-6, atol=1e-6)
    assert np.array_equal(getattr(dg.tensor(x, device=device), numpy_name)().numpy(), out.numpy())


@pytest.mark.parametrize("name", UNARY)
def test_unary_first_and_second_derivatives(device, name):
    x = t64(_draw(UNARY[name]), device)
    fn = getattr(dg, name)
    assert dg.gradcheck(fn, [x])
    assert dg.gradgradcheck(fn, [x])


@pytest.mark.parametrize("name", BINARY)
def test_binary_values_and_derivatives_broadcast(device, name):
    a, b = _draw(BINARY[name], (2, 1)), _draw(BINARY[name], (3,))
    fn = getattr(dg, name)
    out = fn(t64(a, device, False), t64(b, device, False))
    np.testing.assert_allclose(out.numpy(), getattr(np, name)(a, b), rtol=1e-12)
    assert dg.gradcheck(fn, [t64(a, device), t64(b, device)])
    assert dg.gradgradcheck(fn, [t64(a, device), t64(b, device)])
    np.testing.assert_allclose(fn(2.0, t64(b, device)).numpy(), getattr(np, name)(2.0, b), rtol=1e-12)
    np.testing.assert_allclose(getattr(t64(a, device), name)(0.5).numpy(), getattr(np, name)(a, 0.5), rtol=1e-12)


@pytest.mark.oracle
@pytest.mark.parametrize("name", [*UNARY, *BINARY])
def test_matches_torch(torch, device, name):
    bounds = UNARY.get(name) or BINARY[name]
    arrays = [_draw(bounds, (2, 3))] if name in UNARY else [_draw(bounds, (2, 1)), _draw(bounds, (3,))]
    check_op(torch, getattr(dg, name), getattr(torch, name), arrays, device, gradcheck=False)


def _first_derivatives(fn, arrays, device):
    xs = [t64(a, device) for a in arrays]
    out = fn(*xs)  # a cotangent of ones, not .sum(): the sum of inf and -inf values would warn
    return [g.numpy() for g in dg.grad(out, xs, dg.ones_like(out))]


def _torch_first_derivatives(torch, fn, arrays):
    ts = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*ts)
    return [g.numpy() for g in torch.autograd.grad(out, ts, torch.ones_like(out))]


@pytest.mark.oracle
@pytest.mark.parametrize("name", [*UNARY, *BINARY])
def test_derivatives_at_the_edges_are_pytorchs(torch, device, name):
    arrays = [np.array(UNARY_EDGES)] if name in UNARY else [np.array(v) for v in zip(*BINARY_EDGES)]
    if name == "sinc":  # at 0 PyTorch's formula is masked; both give 0 there (the true value)
        assert _first_derivatives(dg.sinc, [np.zeros(1)], device)[0][0] == 0.0
    values = getattr(dg, name)(*(t64(a, device, False) for a in arrays)).numpy()
    with np.errstate(all="ignore"):  # NumPy warns about the NaN it returns; devgrad must not
        expected = getattr(np, name)(*arrays)
    np.testing.assert_array_equal(values, expected)
    ours = _first_derivatives(getattr(dg, name), arrays, device)
    theirs = _torch_first_derivatives(torch, getattr(torch, name), arrays)
    for got, want in zip(ours, theirs):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)


def test_sinc_is_smooth_at_zero_to_every_order(device):
    """Near 0 sinc' is the Taylor polynomial: sinc''(0) = -π²/3, sinc''''(0) = π⁴/5 (PyTorch: NaN)."""
    x = t64(0.0, device)
    derivatives = [dg.sinc(x)]
    for _ in range(4):
        (d,) = dg.grad(derivatives[-1], x, create_graph=True)
        derivatives.append(d)
    got = [float(d.item()) for d in derivatives]
    assert got == pytest.approx([1.0, 0.0, -math.pi**2 / 3, 0.0, math.pi**4 / 5], rel=1e-12, abs=1e-12)
    both_sides = t64([-0.011, -0.009, -1e-7, 1e-7, 0.009, 0.011], device)
    assert dg.gradgradcheck(dg.sinc, [both_sides])

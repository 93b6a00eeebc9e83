"""NumPy's rounding and piecewise functions and its other names of arithmetic: values as NumPy's
(ties, ±0, ±inf and NaN included), zero gradients where constant (to every order), finite
differences of first and second order where smooth, and PyTorch's gradients at the edges."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

rng = np.random.default_rng(35)
NAN, INF = np.nan, np.inf

FLAT = ["sign", "floor", "ceil", "round", "rint", "trunc"]
SMOOTH = {"square": (-2, 2), "reciprocal": (0.5, 2), "cbrt": (0.3, 2), "nan_to_num": (-2, 2)}
BINARY = ["mod", "remainder", "fmod", "fmax", "fmin"]
TORCH_NAMES = {"mod": "remainder", "rint": "round", "nan_to_num": "nan_to_num"}
EDGES = [0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 1.0, 3.7, -3.7, INF, -INF, NAN]
# (a, b): signs, a zero divisor, ties, NaN on either side or both, infinities
PAIRS = [(5.5, 2.0), (-5.5, 2.0), (5.5, -2.0), (-5.5, -2.0), (5.5, 0.0), (0.0, 2.0), (-0.0, 0.0), (2.0, 2.0),
         (NAN, 1.0), (1.0, NAN), (NAN, NAN), (INF, 2.0), (2.0, INF), (-INF, INF), (3.0, 1.5)]


def t64(values, device, requires_grad=True):
    return dg.tensor(np.asarray(values, dtype=np.float64), device=device, requires_grad=requires_grad)


def numpy_value(name, *arrays):
    with np.errstate(all="ignore"):  # NumPy warns about the NaN it returns; devgrad must not
        return getattr(np, name)(*arrays)


def first_derivatives(fn, arrays, device):
    xs = [t64(a, device) for a in arrays]
    out = fn(*xs)
    return [g.numpy() for g in dg.grad(out, xs, dg.ones_like(out))]


@pytest.mark.parametrize("name", [*FLAT, *SMOOTH, "absolute", "fabs", "negative"])
def test_unary_values_are_numpys_at_ties_zeros_and_non_finite_inputs(device, name):
    x = np.array(EDGES)
    np.testing.assert_array_equal(getattr(dg, name)(t64(x, device, False)).numpy(), numpy_value(name, x))
    x32 = x.astype(np.float32)
    out = getattr(dg, name)(dg.tensor(x32, device=device))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), numpy_value(name, x32))


@pytest.mark.parametrize("name", [*BINARY, "true_divide"])
def test_binary_values_are_numpys(device, name):
    a, b = (np.array(v) for v in zip(*PAIRS))
    np.testing.assert_array_equal(getattr(dg, name)(t64(a, device, False), t64(b, device, False)).numpy(),
                                  numpy_value(name, a, b))
    np.testing.assert_array_equal(getattr(dg, name)(2.5, t64(b, device, False)).numpy(), numpy_value(name, 2.5, b))


def test_round_takes_numpys_decimals(device):
    x = np.array([1.2345, -2.675, 0.125, 12345.0])
    for decimals in (0, 1, 2, -2):
        np.testing.assert_array_equal(dg.round(t64(x, device), decimals).numpy(), np.round(x, decimals))
        np.testing.assert_array_equal(t64(x, device).round(decimals=decimals).numpy(), x.round(decimals))


def test_percent_is_numpys_mod_on_either_side(device):
    a, b = np.array([5.5, -5.5, 3.0]), np.array([2.0, 2.0, -1.25])
    np.testing.assert_array_equal((t64(a, device) % t64(b, device)).numpy(), a % b)
    np.testing.assert_array_equal((t64(a, device) % 2.0).numpy(), a % 2.0)
    np.testing.assert_array_equal((7.0 % t64(b, device)).numpy(), 7.0 % b)


@pytest.mark.parametrize("name", FLAT)
def test_constant_pieces_have_zero_gradient_at_every_order(device, name):
    x = t64(EDGES, device)
    out = getattr(dg, name)(x)
    (g,) = dg.grad(out, x, dg.ones_like(out), create_graph=True)  # not .sum(): inf + -inf would warn
    assert np.array_equal(g.numpy(), np.zeros(len(EDGES)))
    (gg,) = dg.grad(g, x, dg.ones_like(g))  # zero again, not "does not require grad"
    assert np.array_equal(gg.numpy(), np.zeros(len(EDGES)))


@pytest.mark.parametrize("name", SMOOTH)
def test_smooth_first_and_second_derivatives(device, name):
    x = t64(rng.uniform(*SMOOTH[name], size=5), device)
    assert dg.gradcheck(getattr(dg, name), [x])
    assert dg.gradgradcheck(getattr(dg, name), [x])


@pytest.mark.parametrize("name", BINARY)
def test_binary_first_and_second_derivatives_away_from_jumps_and_ties(device, name):
    a = t64([[3.3], [-4.1]], device)
    b = t64([1.3, -0.7, 2.9], device)
    assert dg.gradcheck(getattr(dg, name), [a, b])
    assert dg.gradgradcheck(getattr(dg, name), [a, b])


def test_cbrt_is_real_for_negative_inputs_and_steep_at_zero(device):
    x = t64([-8.0, 0.0, 27.0], device)
    assert dg.cbrt(x).numpy().tolist() == pytest.approx([-2.0, 0.0, 3.0], rel=1e-15)
    assert first_derivatives(dg.cbrt, [[-8.0, 0.0, 27.0]], device)[0].tolist() == pytest.approx([1 / 12, INF, 1 / 27],
                                                                                              rel=1e-15)


def test_nan_to_num_takes_numpys_replacements(device):
    x = np.array([NAN, INF, -INF, 1.5])
    got = dg.nan_to_num(t64(x, device), nan=-1.0, posinf=9.0, neginf=-9.0).numpy()
    np.testing.assert_array_equal(got, np.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0))
    np.testing.assert_array_equal(t64(x, device).nan_to_num().numpy(), np.nan_to_num(x))


@pytest.mark.oracle
@pytest.mark.parametrize("name", [*FLAT, *(n for n in SMOOTH if n != "cbrt"), "absolute", "negative"])
def test_unary_derivatives_at_the_edges_are_pytorchs(torch, device, name):  # PyTorch has no cbrt
    torch_fn = getattr(torch, TORCH_NAMES.get(name, name))
    x = np.array(EDGES)
    t = torch.tensor(x, requires_grad=True)
    out = torch_fn(t)
    (want,) = torch.autograd.grad(out, t, torch.ones_like(out))
    np.testing.assert_allclose(first_derivatives(getattr(dg, name), [x], device)[0], want.numpy(), rtol=1e-12,
                               atol=0, equal_nan=True)


@pytest.mark.oracle
@pytest.mark.parametrize("name", BINARY)
def test_binary_derivatives_at_the_edges_are_pytorchs(torch, device, name):
    a, b = (np.array(v) for v in zip(*PAIRS))
    ts = [torch.tensor(v, requires_grad=True) for v in (a, b)]
    out = getattr(torch, TORCH_NAMES.get(name, name))(*ts)
    wants = torch.autograd.grad(out, ts, torch.ones_like(out))
    for got, want in zip(first_derivatives(getattr(dg, name), [a, b], device), wants):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=0, equal_nan=True)

"""No devgrad op emits a NumPy RuntimeWarning, forward or backward: inf and NaN are values, not events."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import devgrad as dg

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

NAN, INF = np.nan, np.inf

# name: (function, input values)
CASES = {
    "sqrt_at_0": (dg.sqrt, [0.0, 1.0]),
    "norm_at_0": (lambda x: (x * x).sum().sqrt(), [0.0, 0.0]),
    "pow_half_at_0": (lambda x: x**0.5, [0.0, 4.0]),
    "pow_minus_1_at_0": (lambda x: x**-1, [0.0, 2.0]),
    "pow_tensor_exponent": (lambda x: x**x, [0.0, -1.0, 2.0]),
    "zero_to_the_x": (lambda x: 0.0**x, [-0.3, 0.0, 2.0]),
    "rdiv_by_0": (lambda x: 1.0 / x, [0.0, -0.0, 1.0]),
    "div_0_by_0": (lambda x: x / x, [0.0, 1.0]),
    "sqrt_relu": (lambda x: x.relu().sqrt(), [-1.0, 0.0, 1.0]),
    "sqrt_clip": (lambda x: x.clip(0.0, None).sqrt(), [-1.0, 0.0, 1.0]),
    "sqrt_maximum": (lambda x: dg.maximum(x, 0.0).sqrt(), [-1.0, 0.0, 1.0]),
    "sqrt_std": (lambda x: x.reshape(1, -1).std(axis=1).sqrt(), [0.5]),
    "max_of_nan": (lambda x: x.max(), [NAN, 1.0]),
    "min_of_nan": (lambda x: x.min(axis=0), [NAN, 1.0]),
    "logsumexp_all_minus_inf": (lambda x: x.logsumexp(), [-INF, -INF]),
    "log_domain": (dg.log, [-1.0, 0.0, 1.0]),
    "sqrt_domain": (dg.sqrt, [-1.0, 4.0]),
    "exp_overflow": (dg.exp, [1000.0, 0.0]),
    "softmax_inf": (lambda x: x.softmax(), [INF, INF, 0.0]),
    "log_softmax_inf": (lambda x: x.log_softmax(), [INF, -INF, 0.0]),
    "softplus_nan_inf": (dg.softplus, [NAN, INF, -INF]),
    "log_sigmoid_nan_inf": (dg.log_sigmoid, [NAN, INF, -INF]),
    "sigmoid_inf": (dg.sigmoid, [INF, -INF, 800.0]),
    "tanh_inf": (dg.tanh, [INF, -INF]),
    "abs_sqrt": (lambda x: x.abs().sqrt(), [0.0, -4.0]),
    "cast_overflow": (lambda x: x.astype("float32").astype("float64"), [1e300, 1.0]),
}

# The cheapest arithmetic skips the quiet error state in its forward (a microsecond a call
# matters there), so only its backward is held to silence.
ARITHMETIC = {
    "mul_inf_by_0": (lambda x: x * x[::-1], [INF, 0.0]),
    "sub_inf_inf": (lambda x: x - x, [INF, 1.0]),
    "sum_overflow": (lambda x: x.sum(), [1e308, 1e308]),
    "mean_overflow": (lambda x: x.mean(), [1e308, 1e308]),
    "matmul_overflow": (lambda x: x @ x, [1e300, 1e300]),
    "var_of_inf": (lambda x: x.var(), [INF, 1.0]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_op_is_silent_forward_and_backward(device, name):
    fn, values = CASES[name]
    x = dg.tensor(values, device=device, dtype="float64", requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fn(x)
        out.backward(dg.ones_like(out))
        (g,) = dg.grad(fn(x), x, dg.ones_like(out), create_graph=True)
        if g.requires_grad:
            dg.grad(g, x, dg.ones_like(g), allow_unused=True)


@pytest.mark.parametrize("name", list(ARITHMETIC))
def test_arithmetic_backward_is_silent_at_inf_and_overflow(device, name):
    fn, values = ARITHMETIC[name]
    x = dg.tensor(values, device=device, dtype="float64", requires_grad=True)
    with np.errstate(all="ignore"):
        out = fn(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out.sum().backward()
    assert x.grad.shape == x.shape


def test_the_users_numpy_error_state_is_left_as_it_was(device):
    x = dg.tensor([0.0], device=device, dtype="float64", requires_grad=True)
    with np.errstate(divide="raise"):
        x.sqrt().sum().backward()
        with pytest.raises(FloatingPointError):
            np.float64(1.0) / np.zeros(1)
    assert np.geterr()["divide"] == "warn"

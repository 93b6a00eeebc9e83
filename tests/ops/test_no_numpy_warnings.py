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

# The cheapest arithmetic, forward and backward, on inf, NaN and values that overflow: as silent
# as every other op (a NumPy warning here would otherwise come from the forward itself).
ARITHMETIC = {
    "add_overflow": (lambda x: x + x, [1e308, 1.0]),
    "add_inf_minus_inf": (lambda x: x + x[::-1], [INF, -INF]),
    "sub_inf_inf": (lambda x: x - x, [INF, 1.0]),
    "mul_inf_by_0": (lambda x: x * x[::-1], [INF, 0.0]),
    "mul_overflow": (lambda x: x * 1e308, [1e308, 1.0]),
    "neg_nan": (lambda x: -x, [NAN, INF]),
    "sum_overflow": (lambda x: x.sum(), [1e308, 1e308]),
    "sum_inf_minus_inf": (lambda x: x.sum(), [INF, -INF]),
    "mean_overflow": (lambda x: x.mean(), [1e308, 1e308]),
    "mean_nan": (lambda x: x.mean(), [NAN, INF]),
    "matmul_overflow": (lambda x: x @ x, [1e300, 1e300]),
    "matmul_inf_by_0": (lambda x: x @ x[::-1], [INF, 0.0]),
    "linear_overflow": (lambda x: dg.nn.functional.linear(x.reshape(1, 2), x.reshape(1, 2) * 1e10, x[:1]),
                        [1e300, 1e300]),
    "linear_relu_inf": (lambda x: dg.nn.functional.relu(dg.nn.functional.linear(x.reshape(1, 2), x.reshape(1, 2))),
                        [INF, 0.0]),
    "var_of_inf": (lambda x: x.var(), [INF, 1.0]),
}


@pytest.mark.parametrize("name", list(ARITHMETIC))
def test_arithmetic_is_silent_at_inf_nan_and_overflow_forward_and_backward(device, name):
    fn, values = ARITHMETIC[name]
    for dtype in ("float64", "float32"):
        x = dg.tensor(values, device=device, dtype=dtype, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = fn(x)
            out.sum().backward()
            (g,) = dg.grad(fn(x).sum(), x, create_graph=True)
            if g.requires_grad:
                dg.grad(g.sum(), x, allow_unused=True)
        assert x.grad.shape == x.shape


def test_the_ieee_value_comes_back(device):
    """Silent is not different: the result is the IEEE value, as NumPy and PyTorch compute it."""
    x = dg.tensor([1e308, INF, -INF, 0.0], device=device, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (x * 10).numpy().tolist()[:3] == [INF, INF, -INF]
        assert np.isnan((x[1:3].sum()).item()) and np.isnan((x[1:2] * x[3:]).item())
        assert (x[:1] @ x[:1]).item() == INF


def test_in_place_updates_and_integer_casts_are_silent(device):
    w = dg.tensor([1e308, 1.0, NAN], device=device, dtype="float64", requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with dg.no_grad():
            w *= 10.0
            w += dg.tensor([-INF, 1.0, 1.0], device=device, dtype="float64")  # inf - inf
        assert w.astype("int64").shape == (3,)
    assert np.isnan(w.numpy()).tolist() == [True, False, True] and w.numpy()[1] == 11.0


def test_the_users_numpy_error_state_is_left_as_it_was(device):
    x = dg.tensor([0.0, 1e308], device=device, dtype="float64", requires_grad=True)
    with np.errstate(divide="raise", over="raise"):
        (x.sqrt() + x * 10).sum().backward()
        with pytest.raises(FloatingPointError):
            np.float64(1.0) / np.zeros(1)
        with pytest.raises(FloatingPointError):
            np.full(1, 1e308) * 10
    assert np.geterr()["divide"] == "warn" and np.geterr()["over"] == "warn"

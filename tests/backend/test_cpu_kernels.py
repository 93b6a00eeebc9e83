"""The NumPy backend's fused kernels against the plain NumPy they stand for."""

from __future__ import annotations

import numpy as np
import pytest

from devgrad.backend import cpu_kernels


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_relu_gradient_is_numpys_selection_bit_for_bit(dtype):
    """The ReLU gradient from its output y is np.where(y <= 0, 0, g): inf and NaN in g pass where kept
    and vanish where dropped (no inf·0 = NaN), a NaN output (of either sign) keeps g, an output of
    +0.0 or -0.0 drops it, -0.0 in g stays -0.0 where kept."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((33, 17)).astype(dtype)
    g = rng.standard_normal((33, 17)).astype(dtype)
    x.flat[:8] = [0.0, -0.0, 1.0, np.nan, 2.0, -1.0, -np.nan, -np.inf]
    g.flat[:8] = [np.inf, np.nan, -0.0, 3.0, np.nan, -np.inf, -np.inf, np.nan]
    y = cpu_kernels.relu(x)  # what act_grad is given: the activation's output
    got = cpu_kernels.act_grad("relu", g, y)
    want = np.where(y <= 0, 0, g)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    strided = cpu_kernels.act_grad("relu", g[:, ::2], y[:, ::2])  # views with strides: the same selection
    np.testing.assert_array_equal(strided, np.where(y[:, ::2] <= 0, 0, g[:, ::2]))


def test_relu_gradient_of_other_kinds_falls_back_to_where():
    y32, g64 = np.array([0.0, 1.0], np.float32), np.array([5.0, 6.0])
    np.testing.assert_array_equal(cpu_kernels.act_grad("relu", g64, y32), [0.0, 6.0])
    np.testing.assert_array_equal(cpu_kernels.act_grad("relu", np.float64(2.0), np.float64(1.0)), 2.0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.int64])
def test_relu_is_pytorchs_bit_for_bit_on_every_lane(dtype):
    # np.maximum is used where it keeps -0.0 and NaN as where(a < 0, 0, a) does (PyTorch's relu)
    specials = [-0.0, np.nan, -np.nan, -1.0, 1.0, 0.0, np.inf, -np.inf] if np.dtype(dtype).kind == "f" else [-3, 0, 2]
    for n in (1, 7, 16, 33, 257):
        for shift in range(len(specials)):
            a = np.resize(np.roll(np.array(specials), shift), n).astype(dtype)
            want = np.where(a < 0, 0, a)
            got = cpu_kernels.relu(a)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (dtype, n, shift)
    a = np.random.default_rng(0).standard_normal((64, 128)).astype(dtype)
    assert cpu_kernels.relu(a[:, ::3]).tobytes() == np.where(a[:, ::3] < 0, 0, a[:, ::3]).tobytes()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_kernels_constants_give_the_bits_of_python_numbers(dtype):
    """The kernels pass 0 and 1 to ufuncs as read-only 0-d arrays of the operand's dtype: the same
    bits as the Python numbers NumPy would convert (-0.0, inf and NaN included), never writable."""
    for table, value in ((cpu_kernels.ZERO, 0), (cpu_kernels.ONE, 1)):
        const = table[np.dtype(dtype)]
        assert const.shape == () and const.dtype == dtype and const == value and not const.flags.writeable
    a = np.array([-0.0, 0.0, np.nan, -np.inf, np.inf, -3.5, 2.0, 1e4], dtype)
    sigmoid = a.copy()
    cpu_kernels.bias_act_(sigmoid, None, "sigmoid")
    relu = a.copy()
    cpu_kernels.bias_act_(relu, None, "relu")
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(sigmoid.view(np.uint8), (1 / (np.exp(-a) + 1)).view(np.uint8))
        np.testing.assert_array_equal(relu.view(np.uint8), np.maximum(a, 0).view(np.uint8))
        g = a[::-1].copy()
        for act, formula in (("sigmoid", (1 - a) * a * g), ("tanh", (1 - a * a) * g)):
            np.testing.assert_array_equal(cpu_kernels.act_grad(act, g, a).view(np.uint8), formula.view(np.uint8))

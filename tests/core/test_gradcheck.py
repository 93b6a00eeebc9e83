"""gradcheck itself: it passes correct gradients and catches wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg


class WrongSquare(dg.Function):
    """x**2 with a deliberately wrong backward (3x instead of 2x)."""

    save_inputs = True

    def forward(self, a):
        return a * a

    def backward(self, g):
        return g * self.inputs[0] * 3.0


def test_gradcheck_passes_correct_gradients(device):
    x = dg.tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True, device=device)
    assert dg.gradcheck(lambda t: (t * t).tanh(), [x])


def test_gradcheck_catches_wrong_gradient_and_names_the_element(device):
    x = dg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, device=device)
    with pytest.raises(dg.GradcheckError, match=r"input 0 \(shape \(2, 2\)\) at element \(\d, \d\)"):
        dg.gradcheck(lambda t: WrongSquare.apply(t), [x])


def test_gradcheck_uses_float64_even_for_float32_inputs(device):
    x = dg.tensor([0.1, 0.2], dtype="float32", requires_grad=True, device=device)
    seen = []

    def fn(t):
        seen.append(t.dtype)
        return t.exp()

    assert dg.gradcheck(fn, [x])
    assert set(seen) == {np.dtype(np.float64)}


def test_gradcheck_only_checks_inputs_requiring_grad(device):
    a = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    b = dg.tensor([3.0, 4.0], device=device)
    calls = []

    def fn(x, y):
        calls.append(1)
        return x * y

    dg.gradcheck(fn, [a, b])
    assert len(calls) == 1 + 2 * 2  # one analytic pass, two evaluations per element of a only


def test_gradcheck_catches_a_gradient_that_ignores_broadcasting():
    class BadAdd(dg.Function):
        def forward(self, a, b):
            return a + b

        def backward(self, g):
            return g, g.mean(axis=0)  # wrong: should be a sum over the broadcast axis

    a = dg.tensor(np.ones((3, 2)), requires_grad=True, dtype="float64")
    b = dg.tensor(np.ones(2), requires_grad=True, dtype="float64")
    with pytest.raises(dg.GradcheckError, match="input 1"):
        dg.gradcheck(lambda x, y: BadAdd.apply(x, y), [a, b])


class DetachedSquare(dg.Function):
    """x**2 whose backward is right to first order but detached from x (so second order is wrong)."""

    save_inputs = True

    def forward(self, a):
        return a * a

    def backward(self, g):
        return g * self.inputs[0].detach() * 2.0


def test_gradgradcheck_passes_correct_second_derivatives(device):
    x = dg.tensor(np.random.default_rng(1).standard_normal((2, 3)), requires_grad=True, device=device)
    assert dg.gradgradcheck(lambda t: (t * t).tanh(), [x])
    assert dg.gradgradcheck(lambda t: t * 3.0, [x])  # a gradient that does not depend on x: zeros


def test_gradgradcheck_catches_a_wrong_second_derivative(device):
    x = dg.tensor([0.5, -1.5], requires_grad=True, device=device)
    assert dg.gradcheck(lambda t: DetachedSquare.apply(t), [x])
    with pytest.raises(dg.GradcheckError, match="input 0"):
        dg.gradgradcheck(lambda t: DetachedSquare.apply(t), [x])


def test_gradcheck_perturbs_a_transposed_input_itself(device):
    """A Fortran-ordered input (x.T) is perturbed, not a copy of it: a wrong (zero) backward fails,
    a right one passes."""

    class ZeroGradSquare(dg.Function):
        def forward(self, a):
            return a * a

        def backward(self, g):
            return g * 0.0

    x = dg.tensor(np.random.default_rng(0).standard_normal((4, 3)).T, requires_grad=True, device=device)
    assert dg.gradcheck(lambda t: t * t, [x])
    with pytest.raises(dg.GradcheckError, match="backward gives 0.0"):
        dg.gradcheck(lambda t: ZeroGradSquare.apply(t), [x])


def test_a_nan_finite_difference_is_a_failure_not_a_pass(device):
    """max() of differences holding a NaN is NaN, and NaN > 0 is False: a NaN must still fail."""
    x = dg.tensor([0.5, 1.0, 0.0], requires_grad=True, device=device)
    # the finite difference at 0 takes a power of -1e-6: NaN
    with pytest.raises(dg.GradcheckError, match=r"element \(2,\).*finite differences give nan"):
        dg.gradcheck(lambda t: WrongSquare.apply(t).sum() + (t ** 1.5).sum(), [x])
    with pytest.raises(dg.GradcheckError, match=r"element \(2,\).*finite differences give nan"):
        dg.gradgradcheck(lambda t: (t * t * t).sum() + (t ** 2.5).sum(), [x])

"""PyTorch idioms whose NumPy reading would differ silently: with PyTorch's keywords they get
PyTorch's meaning (max/min with keepdim=, std/var with dim=), and a positional call both libraries
read differently (x.max(1), x.max(1, True), x.std(1, True), x.argsort(1, True), dg.max(x, y)) is an
error that shows both spellings. Also ``//`` (floor division, zero gradient)."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from tests.support.helpers import check_op

RNG = np.random.default_rng(11)
A = RNG.standard_normal((3, 4))


@pytest.mark.oracle
@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("call", [lambda t, op: getattr(t, op)(1, keepdim=True),
                                  lambda t, op: getattr(t, op)(dim=0), lambda t, op: getattr(t, op)(-1, keepdim=False)],
                         ids=["positional_keepdim", "dim", "keepdim_false"])
def test_max_min_with_pytorchs_keywords_give_values_and_indices(torch, device, op, call):
    out = call(dg.tensor(A, device=device), op)
    expected = call(torch.tensor(A), op)
    np.testing.assert_array_equal(out.indices.numpy(), expected.indices.numpy())
    check_op(torch, lambda t: call(t, op).values, lambda t: call(t, op).values, [A], device)


def test_max_function_with_dim_gives_values_and_indices(device):
    values, indices = dg.max(dg.tensor(A, device=device), dim=1)
    np.testing.assert_array_equal(values.numpy(), A.max(axis=1))
    np.testing.assert_array_equal(indices.numpy(), A.argmax(axis=1))
    assert dg.max(dg.tensor(A, device=device), 1).shape == (3,)  # the function is NumPy's: the values


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_method_with_one_positional_axis_is_refused(device, op):
    """``x.max(1)``: PyTorch's (values, indices), NumPy's values; ``_, pred = out.max(1)`` or
    ``out.max(1)[1]`` would silently take the values apart. Refused with both spellings; each
    spelling that says which is meant works."""
    x = dg.tensor(A, device=device)
    for axis in (1, -1, np.int64(0)):
        with pytest.raises(TypeError, match=rf"x\.{op}\({int(axis)}\) means two things.*x\.{op}\(dim={int(axis)}\)"):
            getattr(x, op)(axis)
    assert getattr(x, op)(axis=1).shape == (3,) and getattr(x, op)(1, keepdims=True).shape == (3, 1)
    assert getattr(x, op)(dim=1).indices.shape == (3,) and getattr(x, op)((0, 1)).shape == ()


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_refuse_a_tensor_as_the_axis(device, op):
    x = dg.tensor(A, device=device)
    for other in (dg.tensor(A, device=device), dg.tensor(3.0, device=device), np.ones(4)):
        with pytest.raises(TypeError, match=rf"dg\.{op}imum\(x, y\)"):
            getattr(dg, op)(x, other)
        with pytest.raises(TypeError, match=rf"x\.{op}imum\(y\)"):
            getattr(x, op)(other)


def test_max_refuses_keepdim_given_by_position(device):
    with pytest.raises(TypeError, match=r"x\.max\(dim=1, keepdim=True\).*x\.max\(axis=1, keepdims=True\)"):
        dg.tensor(A, device=device).max(1, True)
    assert dg.tensor(A, device=device).max(1, keepdims=True).shape == (3, 1)


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["std", "var"])
@pytest.mark.parametrize("kwargs", [{"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": 1, "correction": 0},
                                    {"dim": 1, "unbiased": False}, {"dim": None}], ids=str)
def test_std_var_with_dim_are_pytorchs_unbiased(torch, device, name, kwargs):
    check_op(torch, lambda t: getattr(t, name)(**kwargs), lambda t: getattr(t, name)(**kwargs), [A], device)


def test_std_var_with_axis_stay_numpys(device):
    x = dg.tensor(A, device=device)
    np.testing.assert_allclose(x.std(axis=1).numpy(), A.std(axis=1), rtol=1e-12)
    np.testing.assert_allclose(x.var(1).numpy(), A.var(axis=1), rtol=1e-12)
    np.testing.assert_allclose(x.var(1, keepdims=True, ddof=1).numpy(), A.var(axis=1, keepdims=True, ddof=1))


@pytest.mark.parametrize("name", ["std", "var"])
def test_std_var_refuse_options_given_by_position(device, name):
    x = dg.tensor(A, device=device)
    with pytest.raises(TypeError, match=rf"x\.{name}\(dim=1\).*x\.{name}\(axis=1\)"):
        getattr(x, name)(1, True)
    with pytest.raises(TypeError, match="unbiased"):
        getattr(dg, name)(x, 0, True)


@pytest.mark.parametrize("call", [lambda x: x.argsort(1, True), lambda x: dg.argsort(x, 1, True),
                                  lambda x: dg.sort(x, 1, True), lambda x: x.argsort(1, False),
                                  lambda x: x.sort(axis=1, kind=True)],
                         ids=["method", "function", "sort", "false", "sort_method_kind"])
def test_sorts_refuse_a_bool_where_numpy_takes_kind(device, call):
    with pytest.raises(TypeError, match=r"descending=(True|False)\).*kind='stable'"):
        call(dg.tensor(A, device=device))


def test_sorts_take_numpys_kind_and_pytorchs_descending(device):
    x = dg.tensor(A, device=device)
    np.testing.assert_array_equal(x.argsort(1, "stable").numpy(), A.argsort(axis=1, kind="stable"))
    np.testing.assert_array_equal(x.argsort(dim=1, descending=True).numpy(), (-A).argsort(axis=1))
    with pytest.raises(ValueError, match="kind must be one of"):
        dg.sort(x, 1, "fastest")


DIVIDENDS = np.array([[5.0, -5.0, 7.5, -0.5], [3.0, 0.25, -7.0, 9.0]])
DIVISORS = np.array([2.0, 2.0, -2.0, 0.75])


@pytest.mark.oracle
def test_floor_divide_matches_pytorch_and_numpy(torch, device):
    a, b = dg.tensor(DIVIDENDS, device=device), dg.tensor(DIVISORS, device=device)
    expected = (torch.tensor(DIVIDENDS) // torch.tensor(DIVISORS)).numpy()
    for out in (a // b, dg.floor_divide(a, b), a.floor_divide(b), DIVIDENDS // b):
        np.testing.assert_array_equal(out.numpy(), expected)
    np.testing.assert_array_equal((7.0 // b).numpy(), 7.0 // DIVISORS)
    ints = dg.tensor([5, -5, 7, 0], device=device) // dg.tensor([2, 2, -2, 3], device=device)
    assert ints.dtype == np.int64 and ints.numpy().tolist() == (torch.tensor([5, -5, 7, 0]) // torch.tensor(
        [2, 2, -2, 3])).tolist()
    assert (dg.tensor([5, -5], device=device) // 2.5).dtype == np.float64  # NumPy's promotion
    assert (dg.tensor([5.0], device=device, dtype="float32") // 2).dtype == np.float32
    # an integer division by zero raises, as in Python and PyTorch (NumPy's silent 0 is no answer)
    for divide in (lambda x, y: x // y, lambda x, y: x % y, dg.fmod, lambda x, y: x.floor_divide(y)):
        with pytest.raises(ZeroDivisionError, match="integer division by zero"):
            divide(dg.tensor([5, -5], device=device), dg.tensor([2, 0], device=device))
        with pytest.raises(ZeroDivisionError, match="integer division by zero"):
            divide(dg.tensor([5, -5], device=device), 0)
    assert np.isinf((dg.tensor([5.0], device=device) // 0.0).numpy()).all()  # floats: inf, as both libraries


def test_floor_divide_has_zero_gradient(device):
    a = dg.tensor(DIVIDENDS, device=device, dtype="float64", requires_grad=True)
    b = dg.tensor(DIVISORS + 0.01, device=device, dtype="float64", requires_grad=True)  # off the jumps
    assert dg.gradcheck(lambda u, v: u // v, [a, b])
    (ga, gb) = dg.grad((a // b).sum(), [a, b], create_graph=True)
    assert not ga.numpy().any() and not gb.numpy().any() and ga.shape == a.shape and gb.shape == b.shape


SORTS = {
    "method_descending": (lambda x: x.sort(descending=True), lambda t: t.sort(descending=True, stable=True)),
    "method_stable": (lambda x: x.sort(stable=True), lambda t: t.sort(stable=True)),
    "function_dim": (lambda x: dg.sort(x, dim=0), lambda t: t.sort(dim=0, stable=True)),
    "function_descending": (lambda x: dg.sort(x, descending=True), lambda t: t.sort(descending=True, stable=True)),
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", SORTS)
def test_sort_with_pytorchs_keywords_is_torch_sort(torch, device, name):
    """PyTorch's keywords give torch.sort: (values, indices) along the last dimension unless dim=
    says otherwise (``_, order = dg.sort(x, dim=1)`` unpacks what it does in PyTorch)."""
    ours, theirs = SORTS[name]
    _, indices = ours(dg.tensor(A, device=device))
    np.testing.assert_array_equal(indices.numpy(), theirs(torch.tensor(A)).indices.numpy())
    check_op(torch, lambda t: ours(t).values, lambda t: theirs(t).values, [A], device)
    assert dg.sort(dg.tensor(A, device=device), axis=0).shape == A.shape  # NumPy's: the values alone


@pytest.mark.oracle
def test_transpose_function_with_two_axes_swaps_them(torch, device):
    """``dg.transpose(x, 0, 1)`` is torch.transpose (NumPy's takes its axes as one sequence, so it
    cannot mean the identity permutation); ``dg.transpose(x, (0, 1))`` stays NumPy's."""
    b3 = RNG.standard_normal((2, 3, 4))
    for dims in ((0, 1), (2, 0), (-1, -2)):
        check_op(torch, lambda t, d=dims: dg.transpose(t, *d), lambda t, d=dims: torch.transpose(t, *d), [b3], device)
    assert dg.transpose(dg.tensor(A, device=device), (0, 1)).shape == A.shape


@pytest.mark.parametrize("call", [lambda x: x.sum(dim=()), lambda x: x.mean(dim=[]), lambda x: x.std(dim=()),
                                  lambda x: x.amax(dim=()), lambda x: dg.logsumexp(x, dim=())],
                         ids=["sum", "mean", "std", "amax", "logsumexp"])
def test_an_empty_dim_is_refused_with_both_meanings(device, call):
    """PyTorch reduces every axis for dim=() (and dim=[]); NumPy's axis=() reduces none."""
    with pytest.raises(TypeError, match=r"reduces every axis in PyTorch but none in NumPy"):
        call(dg.tensor(A, device=device))
    assert dg.tensor(A, device=device).sum(axis=()).shape == A.shape

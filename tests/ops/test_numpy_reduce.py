"""NumPy's reductions and scans: values as NumPy's, gradients of order 1 and 2 by finite differences,
PyTorch as the oracle where it has the function (ties and zeros included)."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from tests.support.helpers import check_op
from tests.support.grad_orders import check_orders

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

rng = np.random.default_rng(34)
A = rng.standard_normal((3, 4))
WITH_ZEROS = np.array([[1.5, 0.0, 2.0, -1.0], [0.0, 3.0, 0.0, 0.5], [1.0, -2.0, 0.5, 2.0]])
NAN_ROWS = np.array([[1.0, np.nan, 0.0, 2.0], [np.nan, 3.0, np.nan, -1.0]])
TIES = np.array([[1.0, 3.0, 3.0, -2.0, 1.0], [2.0, 2.0, 2.0, 0.5, 0.5]])

# name: (devgrad call, NumPy call); each runs on A and on the array with zeros
FUNCTIONS = {
    "prod": (lambda x: dg.prod(x), np.prod),
    "prod_axis1": (lambda x: dg.prod(x, axis=1, keepdims=True), lambda a: np.prod(a, axis=1, keepdims=True)),
    "prod_axes": (lambda x: dg.prod(x, axis=(1, 0)), lambda a: np.prod(a, axis=(1, 0))),
    "cumsum": (lambda x: dg.cumsum(x), np.cumsum),
    "cumsum_axis0": (lambda x: dg.cumsum(x, axis=0), lambda a: np.cumsum(a, axis=0)),
    "cumprod": (lambda x: dg.cumprod(x, axis=1), lambda a: np.cumprod(a, axis=1)),
    "cumprod_flat": (lambda x: dg.cumprod(x), np.cumprod),
    "diff": (lambda x: dg.diff(x), np.diff),
    "diff_2_axis0": (lambda x: dg.diff(x, n=2, axis=0), lambda a: np.diff(a, n=2, axis=0)),
    "diff_pre_app": (lambda x: dg.diff(x, prepend=0.5, append=[[1.0], [2.0], [3.0]]),
                     lambda a: np.diff(a, prepend=0.5, append=[[1.0], [2.0], [3.0]])),
    "sort": (lambda x: dg.sort(x), np.sort),
    "sort_axis0": (lambda x: dg.sort(x, axis=0), lambda a: np.sort(a, axis=0)),
    "sort_flat": (lambda x: dg.sort(x, axis=None), lambda a: np.sort(a, axis=None)),
    "amax": (lambda x: dg.amax(x, axis=0), lambda a: np.amax(a, axis=0)),
    "amin": (lambda x: dg.amin(x, axis=(0, 1), keepdims=True), lambda a: np.amin(a, axis=(0, 1), keepdims=True)),
    "nansum": (lambda x: dg.nansum(x, axis=1), lambda a: np.nansum(a, axis=1)),
    "nanmean": (lambda x: dg.nanmean(x, axis=0), lambda a: np.nanmean(a, axis=0)),
    "average": (lambda x: dg.average(x, axis=1, weights=[1.0, 2.0, 0.5, 3.0]),
                lambda a: np.average(a, axis=1, weights=[1.0, 2.0, 0.5, 3.0])),
    "average_all": (lambda x: dg.average(x), np.average),
    "median": (lambda x: dg.median(x), np.median),
    "median_axis0": (lambda x: dg.median(x, axis=0), lambda a: np.median(a, axis=0)),
    "median_axis1": (lambda x: dg.median(x, axis=1, keepdims=True), lambda a: np.median(a, axis=1, keepdims=True)),
}


# products are smooth at 0 (their gradients there are exact); orderings are not smooth at ties
CASES = [(name, "random") for name in FUNCTIONS] + [(name, "zeros") for name in FUNCTIONS if "prod" in name]


@pytest.mark.parametrize("name,values", CASES, ids=[f"{n}-{v}" for n, v in CASES])
def test_values_as_numpy_and_gradients_of_two_orders(device, name, values):
    ours, numpys = FUNCTIONS[name]
    a = A if values == "random" else WITH_ZEROS
    out = ours(dg.tensor(a, device=device, dtype="float64"))
    expected = numpys(a)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-15)
    check_orders(ours, [a], device)


def test_cumprod_gradient_of_a_long_slice_with_a_zero_takes_linear_memory(device):
    n, z = 100_001, 50_000  # every product of the other factors would be n² = 10^10 numbers
    ones = np.ones(n)
    ones[z] = 0.0
    x = dg.tensor(ones, device=device, requires_grad=True)
    (g,) = dg.grad(dg.cumprod(x).sum(), x)
    expected = np.where(np.arange(n) < z, z - np.arange(n), 0.0)
    expected[z] = n - z
    np.testing.assert_array_equal(g.numpy(), expected)


def test_float32_stays_float32(device):
    x = dg.tensor(A.astype(np.float32), device=device, requires_grad=True)
    for fn in (dg.prod, dg.cumsum, dg.cumprod, dg.diff, dg.sort, dg.median, dg.nanmean, dg.average):
        out = fn(x)
        assert out.dtype == np.float32, fn.__name__
        assert dg.grad(out.sum(), x)[0].dtype == np.float32


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_nan_handling_as_numpy(device, axis):
    a = WITH_ZEROS.copy()
    a[0, 1] = a[2, 3] = np.nan
    x = dg.tensor(a, device=device, requires_grad=True)
    np.testing.assert_allclose(dg.nansum(x, axis=axis).numpy(), np.nansum(a, axis=axis))
    np.testing.assert_allclose(dg.nanmean(x, axis=axis).numpy(), np.nanmean(a, axis=axis))
    np.testing.assert_array_equal(dg.median(x, axis=axis).numpy(), np.median(a, axis=axis))
    (g,) = dg.grad(dg.nansum(x, axis=axis).sum() + dg.nanmean(x, axis=axis).sum(), x)
    assert np.all(g.numpy()[np.isnan(a)] == 0) and np.all(np.isfinite(g.numpy()))


def test_integer_inputs_give_numpys_dtypes(device):
    ints = np.array([[3, 1, 2], [4, 4, 0]])
    x = dg.tensor(ints, device=device)
    for ours, numpys in ((dg.median, np.median), (dg.prod, np.prod), (dg.cumsum, np.cumsum), (dg.sort, np.sort),
                         (dg.nanmean, np.nanmean), (dg.average, np.average)):
        out, expected = ours(x), numpys(ints)
        assert out.dtype == expected.dtype, ours.__name__
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-15)


def test_nanmean_of_an_all_nan_slice_is_nan_silently(device):
    x = dg.tensor([[np.nan, np.nan], [1.0, 2.0]], device=device, requires_grad=True)
    out = dg.nanmean(x, axis=1)
    assert np.isnan(out.numpy()[0]) and out.numpy()[1] == 1.5
    assert dg.grad(out[1], x)[0].numpy().tolist() == [[0.0, 0.0], [0.5, 0.5]]


def test_average_weights_are_differentiable_and_returned(device):
    check_orders(lambda x, w: dg.average(x, axis=0, weights=w), [A, rng.random(3) + 0.5], device)
    check_orders(lambda x, w: dg.average(x, axis=(1, 0), weights=w), [A, rng.random((4, 3)) + 0.5], device)
    x = dg.tensor(A, device=device)
    avg, total = dg.average(x, axis=1, weights=np.arange(1.0, 5.0), returned=True)
    expected_avg, expected_total = np.average(A, axis=1, weights=np.arange(1.0, 5.0), returned=True)
    np.testing.assert_allclose(avg.numpy(), expected_avg)
    np.testing.assert_allclose(total.numpy(), expected_total)


def test_average_errors_name_the_problem(device):
    x = dg.tensor(A, device=device)
    with pytest.raises(ZeroDivisionError, match="weights sum to zero"):
        dg.average(x, axis=1, weights=[1.0, -1.0, 0.0, 0.0])
    with pytest.raises(TypeError, match="give the axis"):
        dg.average(x, weights=[1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"weights of shape \(3,\)"):
        dg.average(x, axis=1, weights=[1.0, 2.0, 3.0])


def test_scan_and_sort_errors(device):
    x = dg.tensor(A, device=device)
    with pytest.raises(ValueError, match="k=5 is out of range"):
        dg.topk(x, 5)
    with pytest.raises(TypeError, match="one axis"):
        dg.cumsum(x, axis=(0, 1))
    with pytest.raises(ValueError, match="empty"):
        dg.median(dg.zeros(0, 2, device=device), axis=0)


def test_tensor_sort_is_pytorchs_with_its_keywords_numpys_with_axis_and_else_an_error(device):
    x = dg.tensor(A, device=device, requires_grad=True)
    values, indices = x.sort(dim=1)
    np.testing.assert_array_equal(values.numpy(), np.sort(A, axis=1))
    np.testing.assert_array_equal(indices.numpy(), np.argsort(A, axis=1))
    for ambiguous in ((), (0,)):
        with pytest.raises(TypeError, match=r"x.sort\(dim=-1\) .* x.sort\(axis=-1\)"):
            x.sort(*ambiguous)
    with pytest.raises(RuntimeError, match="inside dg.no_grad"):
        x.sort(axis=0)
    with dg.no_grad():
        assert x.sort(axis=0) is None
    np.testing.assert_array_equal(x.numpy(), np.sort(A, axis=0))
    assert dg.tensor([3, 1, 2], device=device).sort(dim=0, descending=True).values.numpy().tolist() == [3, 2, 1]


def test_pytorch_keywords_on_methods(device):
    x = dg.tensor(A, device=device)
    values, indices = x.sort(dim=0, descending=True)
    np.testing.assert_array_equal(values.numpy(), -np.sort(-A, axis=0))
    np.testing.assert_array_equal(indices.numpy(), np.argsort(-A, axis=0, kind="stable"))
    np.testing.assert_array_equal(x.argsort(dim=1).numpy(), np.argsort(A, axis=1))
    np.testing.assert_allclose(x.cumsum(dim=1).numpy(), np.cumsum(A, axis=1))
    np.testing.assert_allclose(x.prod(dim=1, keepdim=True).numpy(), np.prod(A, axis=1, keepdims=True))
    np.testing.assert_allclose(x.cumprod(1).numpy(), np.cumprod(A, axis=1))
    np.testing.assert_allclose(dg.amax(x, dim=1, keepdim=True).numpy(), A.max(axis=1, keepdims=True))
    np.testing.assert_allclose(x.amin(dim=(0, 1)).numpy(), A.min())
    np.testing.assert_allclose(x.nansum(1).numpy(), np.nansum(A, axis=1))
    np.testing.assert_allclose(x.nanmean(dim=0).numpy(), np.nanmean(A, axis=0))
    assert x.topk(2).values.shape == (3, 2)


def test_transpose_by_the_identity_permutation_has_a_second_derivative(device):
    check_orders(lambda x: dg.transpose(x, (0, 1)) * x, [A], device)


# -- PyTorch as the oracle: ties, zeros ------------------------------------------------------

ORACLE = {
    "cumsum": (lambda x: dg.cumsum(x, axis=1), lambda t: t.cumsum(1), A),
    "cumprod_zeros": (lambda x: dg.cumprod(x, axis=1), lambda t: t.cumprod(1), WITH_ZEROS),
    "prod_zeros": (lambda x: dg.prod(x, axis=1), lambda t: t.prod(1), WITH_ZEROS),
    "prod_two_zeros": (lambda x: dg.prod(x, axis=0), lambda t: t.prod(0), WITH_ZEROS.T),
    "diff": (lambda x: dg.diff(x, axis=0), lambda t: t.diff(dim=0), A),
    "sort_ties": (lambda x: dg.sort(x), lambda t: t.sort(stable=True).values, TIES),
    "sort_desc_ties": (lambda x: x.sort(dim=1, descending=True).values,
                       lambda t: t.sort(dim=1, descending=True, stable=True).values, TIES),
    "sort_nan": (lambda x: dg.sort(x, axis=1), lambda t: t.sort(dim=1, stable=True).values, NAN_ROWS),
    "sort_nan_desc": (lambda x: x.sort(dim=1, descending=True).values,
                      lambda t: t.sort(dim=1, descending=True, stable=True).values, NAN_ROWS),
    "topk": (lambda x: dg.topk(x, 2).values, lambda t: t.topk(2).values, A),
    "topk_smallest": (lambda x: dg.topk(x, 3, dim=0, largest=False).values,
                      lambda t: t.topk(3, dim=0, largest=False).values, A),
    "amax_ties": (lambda x: dg.amax(x, axis=1), lambda t: t.amax(1), TIES),
    "amin_ties": (lambda x: dg.amin(x, axis=(0, 1)), lambda t: t.amin((0, 1)), TIES),
    "nansum": (lambda x: dg.nansum(x, axis=0), lambda t: t.nansum(0), A),
    "nanmean": (lambda x: dg.nanmean(x), lambda t: t.nanmean(), A),
    "median_even": (lambda x: dg.median(x, axis=1), lambda t: t.quantile(0.5, dim=1), A),
    "median_odd": (lambda x: dg.median(x, axis=0), lambda t: t.median(0).values, A),
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", ORACLE)
def test_against_pytorch(torch, device, name):
    ours, theirs, a = ORACLE[name]
    check_op(torch, ours, theirs, [a], device, gradcheck=False)


@pytest.mark.oracle
@pytest.mark.parametrize("values", [[2.0, 1.0, 2.0, 3.0, 2.0], [1.0, np.nan, 2.0, np.nan, 0.0], [4.0, 4.0, 4.0]])
def test_median_splits_the_gradient_among_ties_and_nans_as_pytorch(torch, device, values):
    check_op(torch, dg.median, lambda t: t.median(), [np.array(values)], device, gradcheck=False)


def test_median_of_an_even_count_shares_between_the_two_middles_and_their_ties(device):
    x = dg.tensor([3.0, 2.0, 1.0, 2.0, 5.0, 2.0], device=device, dtype="float64", requires_grad=True)
    (g,) = dg.grad(dg.median(x), x)
    assert g.numpy().tolist() == [0.0, 1 / 3, 0.0, 1 / 3, 0.0, 1 / 3]
    x = dg.tensor([4.0, 1.0, 2.0, 3.0], device=device, requires_grad=True)
    assert dg.grad(dg.median(x), x)[0].numpy().tolist() == [0.0, 0.0, 0.5, 0.5]


def test_median_of_an_empty_tensor_is_nan_and_of_an_empty_axis_refused():
    x = dg.tensor(np.zeros((0, 3)), requires_grad=True)
    m = dg.median(x)  # torch.median(torch.zeros(0, 3)) is nan
    assert np.isnan(m.numpy()) and m.shape == ()
    (g,) = dg.grad(m, x)
    assert g.shape == (0, 3)
    with pytest.raises(ValueError, match="axis 0 is empty"):
        dg.median(x, axis=0)  # PyTorch refuses an empty reduction dim

"""NumPy's products and matrix structure: values as NumPy's, gradients of order 1 and 2 by finite
differences, PyTorch as the oracle where it has the function."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from tests.support.grad_orders import check_orders
from tests.support.helpers import check_op

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

rng = np.random.default_rng(341)

EINSUM = [("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]),
          ("iij->j", [(3, 3, 2)]), ("iji->j", [(2, 3, 2)]), ("...ij,...jk->...ik", [(2, 2, 3), (3, 4)]),
          ("i...,i...", [(3, 2), (3, 1)]), ("ij->", [(2, 3)]), ("ij,k->ijk", [(2, 3), (2,)]), ("ba", [(2, 3)]),
          ("i,i", [(3,), (3,)]), ("ij,ij->ij", [(1, 3), (2, 3)]), (",i->i", [(), (3,)]),
          ("ab,bc,cd->ad", [(2, 3), (3, 2), (2, 2)]), ("...", [(2, 3)]), ("i...->...", [(2, 3, 4)]),
          ("bi,bj->bij", [(2, 3), (2, 2)]), ("ij,jk->", [(2, 3), (3, 1)])]


@pytest.mark.parametrize("subscripts,shapes", EINSUM, ids=[s for s, _ in EINSUM])
def test_einsum_as_numpy_with_gradients_of_two_orders(device, subscripts, shapes):
    arrays = [rng.standard_normal(s) for s in shapes]
    out = dg.einsum(subscripts, *[dg.tensor(a, device=device, dtype="float64") for a in arrays])
    expected = np.einsum(subscripts, *arrays)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-14)
    check_orders(lambda *ts: dg.einsum(subscripts, *ts), arrays, device)


def test_einsum_interleaved_form_and_errors(device):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    x, y = dg.tensor(a, device=device, dtype="float64"), dg.tensor(b, device=device, dtype="float64")
    np.testing.assert_allclose(dg.einsum(x, [0, 1], y, [1, 2], [0, 2]).numpy(), np.einsum(a, [0, 1], b, [1, 2], [0, 2]))
    np.testing.assert_allclose(dg.einsum(x, [0, Ellipsis]).numpy(), np.einsum(a, [0, Ellipsis]))
    with pytest.raises(ValueError, match="no '...' ellipsis"):
        dg.einsum("...ij->ij", dg.zeros(2, 3, 4, device=device))
    with pytest.raises(ValueError, match="subscript 'j' has sizes 3 and 5"):
        dg.einsum("ij,jk", x, dg.zeros(5, 2, device=device))
    with pytest.raises(ValueError, match="2 subscript groups for 1 operands"):
        dg.einsum("ij,jk", x)


PRODUCTS = {
    "outer": (dg.outer, np.outer, [(2, 3), (4,)]),
    "inner": (dg.inner, np.inner, [(2, 3), (4, 3)]),
    "inner_scalar": (dg.inner, np.inner, [(), (4, 3)]),
    "vdot": (dg.vdot, np.vdot, [(2, 3), (6,)]),
    "tensordot": (dg.tensordot, np.tensordot, [(2, 3, 4), (3, 4, 2)]),
    "tensordot_pairs": (lambda a, b: dg.tensordot(a, b, axes=([0, 2], [2, 0])),
                        lambda a, b: np.tensordot(a, b, axes=([0, 2], [2, 0])), [(2, 3, 4), (4, 3, 2)]),
    "tensordot_0": (lambda a, b: dg.tensordot(a, b, 0), lambda a, b: np.tensordot(a, b, 0), [(2,), (3,)]),
    "kron": (dg.kron, np.kron, [(2, 3), (2, 2)]),
    "kron_ranks": (dg.kron, np.kron, [(3,), (2, 2)]),
    "cross": (dg.cross, np.cross, [(4, 3), (3,)]),
    "cross_axes": (lambda a, b: dg.cross(a, b, axisa=0, axisc=0), lambda a, b: np.cross(a, b, axisa=0, axisc=0),
                   [(3, 4), (4, 3)]),
    "dot": (dg.dot, np.dot, [(2, 2, 3), (2, 3, 4)]),
    "diagonal": (dg.diagonal, np.diagonal, [(3, 4)]),
    "diagonal_offset": (lambda a: dg.diagonal(a, -2, 2, 0), lambda a: np.diagonal(a, -2, 2, 0), [(3, 4, 5)]),
    "trace": (dg.trace, np.trace, [(3, 3)]),
    "trace_axes": (lambda a: dg.trace(a, 1, 1, 2), lambda a: np.trace(a, 1, 1, 2), [(2, 3, 4)]),
    "diag_1d": (lambda a: dg.diag(a, -1), lambda a: np.diag(a, -1), [(3,)]),
    "diag_2d": (lambda a: dg.diag(a, 2), lambda a: np.diag(a, 2), [(3, 5)]),
    "diagflat": (dg.diagflat, np.diagflat, [(2, 2)]),
    "tril": (dg.tril, np.tril, [(3, 4)]),
    "triu_stacked": (lambda a: dg.triu(a, 1), lambda a: np.triu(a, 1), [(2, 3, 3)]),
    "tril_1d": (lambda a: dg.tril(a, -1), lambda a: np.tril(a, -1), [(4,)]),
}


@pytest.mark.parametrize("name", PRODUCTS)
def test_values_as_numpy_and_gradients_of_two_orders(device, name):
    ours, numpys, shapes = PRODUCTS[name]
    arrays = [rng.standard_normal(s) for s in shapes]
    out = ours(*[dg.tensor(a, device=device, dtype="float64") for a in arrays])
    expected = numpys(*arrays)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-14)
    check_orders(ours, arrays, device)


def test_planar_cross_products_as_numpy(device):
    a, b = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    with pytest.warns(DeprecationWarning):  # NumPy 2 deprecates 2-vectors; devgrad keeps them quietly
        expected = np.cross(a, b)
    out = dg.cross(dg.tensor(a, device=device, dtype="float64"), dg.tensor(b, device=device, dtype="float64"))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    check_orders(dg.cross, [a, rng.standard_normal((4, 3))], device)


def test_creation_helpers_and_methods(device):
    assert dg.identity(3, device=device).numpy().tolist() == np.identity(3).tolist()
    np.testing.assert_array_equal(dg.tri(2, 3, 1, device=device, dtype="float64").numpy(), np.tri(2, 3, 1))
    x = dg.tensor(rng.standard_normal((3, 3)), device=device)
    np.testing.assert_allclose(x.trace().numpy(), np.trace(x.numpy()), rtol=1e-6)
    np.testing.assert_array_equal(x.diagonal(1).numpy(), np.diagonal(x.numpy(), 1))
    np.testing.assert_array_equal(x.diagonal(dim1=1, dim2=0).numpy(), np.diagonal(x.numpy(), 0, 1, 0))
    np.testing.assert_allclose(x.dot(x).numpy(), x.numpy() @ x.numpy(), rtol=1e-6)
    np.testing.assert_allclose(x[0].outer(x[1]).numpy(), np.outer(x.numpy()[0], x.numpy()[1]), rtol=1e-6)
    # PyTorch's methods of the same meaning
    np.testing.assert_array_equal(x.tril(-1).numpy(), np.tril(x.numpy(), -1))
    np.testing.assert_array_equal(x.triu().numpy(), np.triu(x.numpy()))
    np.testing.assert_array_equal(x.diag(1).numpy(), np.diag(x.numpy(), 1))
    np.testing.assert_allclose(x.kron(x).numpy(), np.kron(x.numpy(), x.numpy()), rtol=1e-6)
    np.testing.assert_allclose(x.inner(x).numpy(), np.inner(x.numpy(), x.numpy()), rtol=1e-6)


def test_errors_name_the_problem(device):
    with pytest.raises(ValueError, match="shape-mismatch"):
        dg.tensordot(dg.zeros(2, 3, device=device), dg.zeros(3, 2, device=device))
    with pytest.raises(ValueError, match="4 components"):
        dg.cross(dg.zeros(4, device=device), dg.zeros(3, device=device))
    with pytest.raises(ValueError, match="6 and 5 elements"):
        dg.vdot(dg.zeros(6, device=device), dg.zeros(5, device=device))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        dg.diag(dg.zeros(2, 2, 2, device=device))


def _torch(name: str, *args, **kwargs):
    import torch

    return getattr(torch, name)(*args, **kwargs)


ORACLE = {
    "einsum": (lambda a, b: dg.einsum("bij,bjk->bki", a, b), lambda a, b: _torch("einsum", "bij,bjk->bki", a, b),
               [(2, 2, 3), (2, 3, 4)]),
    "einsum_ellipsis": (lambda a: dg.einsum("i...i", a), lambda a: _torch("einsum", "i...i", a), [(3, 2, 3)]),
    "outer": (dg.outer, lambda a, b: a.outer(b), [(3,), (4,)]),
    "inner": (dg.inner, lambda a, b: a.inner(b), [(2, 3), (4, 3)]),
    "tensordot": (lambda a, b: dg.tensordot(a, b, axes=([0, 2], [2, 0])),
                  lambda a, b: _torch("tensordot", a, b, dims=([0, 2], [2, 0])), [(2, 3, 4), (4, 3, 2)]),
    "kron": (dg.kron, lambda a, b: a.kron(b), [(2, 3), (3, 2)]),
    "cross": (dg.cross, lambda a, b: a.cross(b, dim=-1), [(4, 3), (4, 3)]),
    "vdot": (dg.vdot, lambda a, b: a.dot(b), [(5,), (5,)]),
    "trace": (dg.trace, lambda a: a.trace(), [(3, 3)]),
    "diagonal": (lambda a: dg.diagonal(a, 1, 1, 2), lambda a: a.diagonal(1, 1, 2), [(2, 3, 4)]),
    "diag": (lambda a: dg.diag(a, 1), lambda a: a.diag(1), [(3,)]),
    "tril": (lambda a: dg.tril(a, -1), lambda a: a.tril(-1), [(2, 3, 4)]),
    "triu": (lambda a: dg.triu(a, 1), lambda a: a.triu(1), [(3, 4)]),
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", ORACLE)
def test_against_pytorch(torch, device, name):
    ours, theirs, shapes = ORACLE[name]
    check_op(torch, ours, theirs, [rng.standard_normal(s) for s in shapes], device, gradcheck=False)

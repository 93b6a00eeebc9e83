"""dg.linalg: values as numpy.linalg's, gradients of order 1 and 2 by finite differences, PyTorch's
torch.linalg as the oracle; clear errors at singular and degenerate inputs."""

from __future__ import annotations

import types

import numpy as np
import pytest

import devgrad as dg
from devgrad.ops.linalg_solve import xp_linalg
from tests.support.grad_orders import check_orders
from tests.support.helpers import check_op

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

rng = np.random.default_rng(3434)
SQUARE = rng.standard_normal((3, 3)) + 3 * np.eye(3)
STACK = rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)
TALL, WIDE = rng.standard_normal((4, 3)), rng.standard_normal((2, 2, 4))
RANK_2 = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])  # singular, rank 2


def sym(x):
    """The symmetric part: what eigh and cholesky see, so finite differences stay on symmetric matrices."""
    return (x + dg.swapaxes(x, -1, -2)) * 0.5


def gauge_free(parts):
    """Eigen/singular vectors squared elementwise: free of the sign each library picks."""
    return tuple(p * p if p.ndim >= 2 else p for p in parts)


L = dg.linalg
CASES = {
    "inv": (L.inv, np.linalg.inv, [SQUARE]),
    "inv_stack": (L.inv, np.linalg.inv, [STACK]),
    "det_stack": (L.det, np.linalg.det, [STACK]),
    "det_singular": (L.det, np.linalg.det, [RANK_2]),
    "det_stack_one_singular": (L.det, np.linalg.det, [np.stack([RANK_2, SQUARE])]),
    "det_zero": (L.det, np.linalg.det, [np.zeros((2, 2))]),
    "logabsdet": (lambda a: L.slogdet(a)[1], lambda a: np.linalg.slogdet(a)[1], [STACK]),
    "solve": (L.solve, np.linalg.solve, [SQUARE, rng.standard_normal((3, 2))]),
    "solve_vector": (L.solve, np.linalg.solve, [STACK, rng.standard_normal(3)]),
    "solve_broadcast": (L.solve, np.linalg.solve, [SQUARE, rng.standard_normal((2, 3, 2))]),
    "solve_broadcast_a": (L.solve, np.linalg.solve, [STACK, rng.standard_normal((3, 2))]),
    "pinv_tall": (L.pinv, np.linalg.pinv, [TALL]),
    "pinv_wide_stack": (L.pinv, np.linalg.pinv, [WIDE]),
    "matrix_power_3": (lambda a: L.matrix_power(a, 3), lambda a: np.linalg.matrix_power(a, 3), [STACK]),
    "matrix_power_-2": (lambda a: L.matrix_power(a, -2), lambda a: np.linalg.matrix_power(a, -2), [SQUARE]),
    "matrix_power_0": (lambda a: L.matrix_power(a, 0), lambda a: np.linalg.matrix_power(a, 0), [SQUARE]),
    "lstsq_x": (lambda a, b: L.lstsq(a, b)[0], lambda a, b: np.linalg.lstsq(a, b)[0], [TALL, rng.standard_normal(4)]),
    "lstsq_residuals": (lambda a, b: L.lstsq(a, b)[1], lambda a, b: np.linalg.lstsq(a, b)[1],
                        [TALL, rng.standard_normal((4, 2))]),
    "lstsq_wide": (lambda a, b: L.lstsq(a, b)[0], lambda a, b: np.linalg.lstsq(a, b)[0],
                   [WIDE[0], rng.standard_normal(2)]),
    "cholesky": (lambda a: L.cholesky(sym(a)), lambda a: np.linalg.cholesky((a + a.T) / 2), [SQUARE]),
    "cholesky_upper": (lambda a: L.cholesky(sym(a), upper=True), lambda a: np.linalg.cholesky((a + a.T) / 2).T,
                       [SQUARE]),
    "eigh": (lambda a: gauge_free(L.eigh(sym(a))),
             lambda a: gauge_free(np.linalg.eigh((a + np.swapaxes(a, -1, -2)) / 2)), [STACK]),
    "svd_tall": (lambda a: gauge_free(L.svd(a, full_matrices=False)),
                 lambda a: gauge_free(np.linalg.svd(a, full_matrices=False)), [TALL]),
    "svd_wide_stack": (lambda a: gauge_free(L.svd(a, full_matrices=False)),
                       lambda a: gauge_free(np.linalg.svd(a, full_matrices=False)), [WIDE]),
    "svd_values": (lambda a: L.svd(a, compute_uv=False), lambda a: np.linalg.svd(a, compute_uv=False), [TALL]),
    "svd_hermitian": (lambda a: L.svd(sym(a), hermitian=True).S,
                      lambda a: np.linalg.svd((a + a.T) / 2, hermitian=True).S, [SQUARE]),
    "pinv_rtol": (lambda a: L.pinv(a, rtol=1e-3), lambda a: np.linalg.pinv(a, rtol=1e-3), [TALL]),
    "svd_full_square": (lambda a: gauge_free(L.svd(a)), lambda a: gauge_free(np.linalg.svd(a)), [SQUARE]),
    "qr_tall": (L.qr, np.linalg.qr, [TALL]),
    "qr_square_stack": (L.qr, np.linalg.qr, [STACK]),
    "qr_wide": (L.qr, np.linalg.qr, [WIDE[0]]),
    "qr_r": (lambda a: L.qr(a, mode="r"), lambda a: np.linalg.qr(a, mode="r"), [TALL]),
}


@pytest.mark.parametrize("name", CASES)
def test_values_as_numpy_and_gradients_of_two_orders(device, name):
    ours, numpys, arrays = CASES[name]
    out = ours(*[dg.tensor(a, device=device, dtype="float64") for a in arrays])
    expected = numpys(*arrays)
    for o, e in zip(out if isinstance(out, tuple) else [out], expected if isinstance(out, tuple) else [expected]):
        assert o.shape == np.shape(e)
        np.testing.assert_allclose(o.numpy(), e, rtol=1e-10, atol=1e-12)
    check_orders(ours, arrays, device)


NORMS = [(None, None), (2, None), (1, None), (np.inf, None), (-np.inf, None), (0, None), (3, None), (0.5, None),
         (-1, None), (None, (0, 1)), ("fro", (1, 0)), ("nuc", (0, 1)), (1, (0, 1)), (-1, (0, 1)), (2, (0, 1)),
         (-2, (1, 0)), (np.inf, (0, 1)), (-np.inf, (0, 1)), (None, 1), (3, 0)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("order,axis", NORMS, ids=[f"{o}-{a}" for o, a in NORMS])
def test_norm_as_numpy_with_gradients(device, order, axis, keepdims):
    a = TALL if axis is not None else TALL[:, 0]
    a = np.stack([a, -2 * a]) if axis is not None and keepdims else a  # a batch axis the matrix norm leaves
    axis = tuple(x + 1 for x in axis) if isinstance(axis, tuple) and keepdims else axis
    fn = lambda x: dg.linalg.norm(x, order, axis, keepdims)  # noqa: E731
    out = fn(dg.tensor(a, device=device, dtype="float64"))
    expected = np.linalg.norm(a, order, axis, keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    check_orders(fn, [a], device)


@pytest.mark.oracle
@pytest.mark.parametrize("order,axis", NORMS, ids=[f"{o}-{a}" for o, a in NORMS])
def test_norm_against_pytorch(torch, device, order, axis):
    a = TALL if axis is not None else TALL[:, 0]
    check_op(torch, lambda x: dg.linalg.norm(x, order, axis),
             lambda t: torch.linalg.norm(t, order, axis if axis is None or isinstance(axis, tuple) else (axis,)),
             [a], device, gradcheck=False)


def test_norm_kinks_follow_pytorch(device):
    zero = dg.tensor(np.zeros(3), device=device, requires_grad=True)
    assert dg.grad(dg.linalg.norm(zero), zero)[0].numpy().tolist() == [0.0, 0.0, 0.0]
    ties = dg.tensor([1.0, -3.0, 3.0], device=device, dtype="float64", requires_grad=True)
    assert dg.grad(dg.linalg.norm(ties, np.inf), ties)[0].numpy().tolist() == [0.0, -0.5, 0.5]
    assert dg.grad(dg.linalg.norm(ties, 0), ties)[0].numpy().tolist() == [0.0, 0.0, 0.0]


def test_float32_stays_float32(device):
    a = dg.tensor(SQUARE.astype(np.float32), device=device, requires_grad=True)
    for out in (L.inv(a), L.det(a), L.eigh(sym(a))[0], L.svd(a)[1], L.qr(a)[1], L.norm(a), L.pinv(a)):
        assert out.dtype == np.float32
        assert dg.grad(out.sum(), a)[0].dtype == np.float32


def test_results_have_numpys_names(device):
    a = dg.tensor(STACK, device=device)
    assert L.eigh(a).eigenvalues.shape == (2, 3) and L.eigh(a).eigenvectors.shape == (2, 3, 3)
    assert L.svd(a).Vh.shape == (2, 3, 3) and L.qr(a).R.shape == (2, 3, 3)
    sign, logabsdet = L.slogdet(a)
    np.testing.assert_allclose(sign.numpy() * np.exp(logabsdet.numpy()), np.linalg.det(STACK))
    assert L.lstsq(dg.tensor(TALL, device=device), dg.tensor(np.ones(4), device=device))[2] == 3


def test_errors_at_singular_and_degenerate_inputs(device):
    singular = dg.tensor(RANK_2, device=device, requires_grad=True)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        L.inv(singular)
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        L.cholesky(dg.tensor(-np.eye(2), device=device))
    with pytest.raises(np.linalg.LinAlgError, match="square matrices"):
        L.det(dg.tensor(TALL, device=device))
    with pytest.raises(ValueError, match=r"a of shape \(2, 3, 3\) and b of shape \(3, 3, 1\) do not fit"):
        L.solve(dg.tensor(STACK, device=device), dg.zeros(3, 3, 1, device=device))
    identity = dg.tensor(np.eye(3), device=device, requires_grad=True)
    values = L.eigh(identity).eigenvalues
    assert dg.grad(values.sum(), identity)[0].numpy().tolist() == np.eye(3).tolist()  # values alone: defined
    with pytest.raises(np.linalg.LinAlgError, match="repeated values"):
        dg.grad(L.eigh(identity).eigenvectors.sum(), identity)
    tall = dg.tensor(TALL, device=device, requires_grad=True)
    with pytest.raises(np.linalg.LinAlgError, match="full_matrices=False"):
        dg.grad(L.svd(tall).U.sum(), tall)
    assert dg.grad(L.svd(tall).S.sum(), tall)[0].shape == (4, 3)  # full_matrices=True is fine for S
    with pytest.raises(np.linalg.LinAlgError, match="mode='reduced'"):
        dg.grad(L.qr(tall, mode="complete").Q.sum(), tall)
    with pytest.raises(ValueError, match="invalid norm order 'nuc' for vectors"):
        L.norm(tall, "nuc", axis=0)


def test_det_of_a_singular_matrix_has_the_adjugate_as_gradient(device):
    """det is a polynomial: its gradient is the cofactor matrix everywhere (PyTorch 2.13 gives 0 at
    this rank-2 matrix; finite differences agree with devgrad, see CASES["det_singular"])."""
    a = dg.tensor(RANK_2, device=device, dtype="float64", requires_grad=True)
    (g,) = dg.grad(L.det(a), a)
    cofactors = [[4.0, 4.0, -4.0], [-2.0, -2.0, 2.0], [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(g.numpy(), cofactors, atol=1e-12)


def test_a_library_without_the_function_is_a_clear_error():
    device = types.SimpleNamespace(xp=types.SimpleNamespace(linalg=types.SimpleNamespace()))
    device.__str__ = lambda: "cuda:0"
    with pytest.raises(dg.DeviceError, match=r"no linalg.eigh; move the tensor to the CPU"):
        xp_linalg(device, "eigh")


def _torch_linalg(name: str, **kwargs):
    def call(*tensors):
        import torch

        return getattr(torch.linalg, name)(*tensors, **kwargs)

    return call


ORACLE = {
    "inv": (L.inv, _torch_linalg("inv"), [STACK]),
    "det": (L.det, _torch_linalg("det"), [STACK]),
    "slogdet": (lambda a: L.slogdet(a)[1], lambda t: _torch_linalg("slogdet")(t)[1], [STACK]),
    "solve": (L.solve, _torch_linalg("solve"), [STACK, rng.standard_normal((2, 3, 2))]),
    "pinv": (L.pinv, _torch_linalg("pinv"), [TALL]),
    "cholesky": (lambda a: L.cholesky(sym(a)), lambda t: _torch_linalg("cholesky")((t + t.mT) / 2), [STACK]),
    "eigh": (lambda a: gauge_free(L.eigh(sym(a))), lambda t: gauge_free(_torch_linalg("eigh")((t + t.mT) / 2)),
             [STACK]),
    "svd": (lambda a: gauge_free(L.svd(a, full_matrices=False)),
            lambda t: gauge_free(_torch_linalg("svd", full_matrices=False)(t)), [WIDE]),
    "qr": (lambda a: L.qr(a), _torch_linalg("qr"), [TALL]),
    "matrix_power": (lambda a: L.matrix_power(a, -3), _torch_linalg("matrix_power", n=-3), [SQUARE]),
    "norm_nuc": (lambda a: L.norm(a, "nuc"), _torch_linalg("norm", ord="nuc"), [TALL]),
    "norm_2": (lambda a: L.norm(a, 2), _torch_linalg("norm", ord=2), [TALL]),
    "norm_inf": (lambda a: L.norm(a, np.inf, axis=(0, 1)), _torch_linalg("norm", ord=np.inf, dim=(0, 1)), [TALL]),
    "norm_vector_3": (lambda a: L.norm(a, 3, axis=1), _torch_linalg("vector_norm", ord=3, dim=1), [TALL]),
    "lstsq": (lambda a, b: L.lstsq(a, b)[0], lambda a, b: _torch_linalg("lstsq")(a, b).solution,
              [TALL, rng.standard_normal((4, 2))]),
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", ORACLE)
def test_against_pytorch(torch, device, name):
    ours, theirs, arrays = ORACLE[name]

    def first(fn):  # check_op compares one output: the outputs of a decomposition concatenated
        def call(*xs):
            out = fn(*xs)
            if not isinstance(out, tuple):
                return out
            flat = [o.reshape(-1) for o in out]
            return dg.concatenate(flat) if isinstance(out[0], dg.Tensor) else torch.cat(flat)
        return call

    check_op(torch, first(ours), first(theirs), arrays, device, gradcheck=False)


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0), (2, 0, 3)])
@pytest.mark.parametrize("order", ["fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf])
def test_matrix_norms_of_empty_matrices_are_numpys(shape, order):
    a = np.zeros(shape)
    x = dg.tensor(a, requires_grad=True)
    try:
        want = np.linalg.norm(a, order, axis=(-2, -1))
    except ValueError:  # the smallest of nothing: NumPy and PyTorch refuse, and so does devgrad
        with pytest.raises(ValueError, match="empty matrix has no value"):
            dg.linalg.norm(x, order, axis=(-2, -1))
        return
    got = dg.linalg.norm(x, order, axis=(-2, -1))
    np.testing.assert_array_equal(got.numpy(), want)
    (g,) = dg.grad(got.sum(), x)
    assert g.shape == shape

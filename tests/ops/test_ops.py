"""Every op: forward and gradient against PyTorch (float64 and float32), plus gradcheck."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import devgrad as dg
from tests.support.helpers import check_op

# NumPy floating-point warnings from any op are errors here: inf and NaN are values, not events.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

rng = np.random.default_rng(1234)


def U(*shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape)


def P(*shape):
    """Positive values away from 0 (for log, sqrt, division, fractional powers)."""
    return rng.uniform(0.5, 2.0, shape)


def NZ(*shape):
    """Values away from 0 (kinks of abs/relu) and without ties (max, maximum)."""
    x = rng.permutation(np.linspace(0.2, 2.0, int(np.prod(shape)))) * rng.choice([-1.0, 1.0], int(np.prod(shape)))
    return x.reshape(shape)


# (id, devgrad fn, torch fn, input arrays)
CASES = [
    # arithmetic with broadcasting
    ("add", lambda a, b: a + b, lambda a, b: a + b, [U(3, 4), U(4)]),
    ("add_bcast_both", lambda a, b: a + b, lambda a, b: a + b, [U(2, 1, 3), U(4, 1)]),
    ("sub", lambda a, b: a - b, lambda a, b: a - b, [U(3, 1), U(1, 4)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [U(2, 3, 4), U(3, 1)]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [U(3, 4), P(4)]),
    ("pow_tensor", lambda a, b: a**b, lambda a, b: a**b, [P(3, 4), U(3, 4)]),
    ("neg", lambda a: -a, lambda a: -a, [U(5)]),
    ("scalar_mul", lambda a: a * 2.5, lambda a: a * 2.5, [U(3, 2)]),
    ("scalar_rsub", lambda a: 2.5 - a, lambda a: 2.5 - a, [U(3, 2)]),
    ("scalar_rdiv", lambda a: 3.0 / a, lambda a: 3.0 / a, [P(3, 2)]),
    ("scalar_radd", lambda a: 1 + a, lambda a: 1 + a, [U(3, 2)]),
    ("numpy_scalar", lambda a: a * np.float64(1.5), lambda a: a * 1.5, [U(3)]),
    ("pow_int", lambda a: a**3, lambda a: a**3, [U(4, 3)]),
    ("pow_square", lambda a: a**2, lambda a: a**2, [U(4, 3)]),
    ("pow_half", lambda a: a**0.5, lambda a: a**0.5, [P(4)]),
    ("rpow", lambda a: 2.0**a, lambda a: 2.0**a, [U(4)]),
    ("exp", dg.exp, lambda a: a.exp(), [U(3, 4)]),
    ("log", dg.log, lambda a: a.log(), [P(3, 4)]),
    ("sqrt", dg.sqrt, lambda a: a.sqrt(), [P(3, 4)]),
    ("abs", dg.abs, lambda a: a.abs(), [NZ(3, 4)]),
    ("maximum", dg.maximum, lambda a, b: a.maximum(b), [NZ(3, 4), NZ(4) * 0.9]),
    ("minimum", dg.minimum, lambda a, b: a.minimum(b), [NZ(3, 4), NZ(3, 1) * 0.9]),
    ("maximum_scalar", lambda a: dg.maximum(a, 0.3), lambda a: a.clamp(min=0.3), [NZ(7)]),
    ("where", lambda a, b: dg.where(a > 0, a, b), lambda a, b: a.where(a > 0, b), [NZ(3, 4), U(4)]),
    ("where_scalar", lambda a: dg.where(a > 0, a, 0.0), lambda a: a.where(a > 0, 0.0), [NZ(3, 4)]),
    ("clip", lambda a: a.clip(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7), [NZ(4, 5)]),
    ("clip_lo", lambda a: dg.clip(a, lo=-0.5), lambda a: a.clamp(min=-0.5), [NZ(6)]),
    # reductions
    ("sum_all", lambda a: a.sum(), lambda a: a.sum(), [U(3, 4)]),
    ("sum_axis", lambda a: a.sum(axis=1), lambda a: a.sum(dim=1), [U(3, 4, 2)]),
    ("sum_axes_keep", lambda a: a.sum(axis=(0, 2), keepdims=True), lambda a: a.sum(dim=(0, 2), keepdim=True),
     [U(3, 4, 2)]),
    ("sum_neg_axis", lambda a: a.sum(axis=-1), lambda a: a.sum(dim=-1), [U(3, 4)]),
    ("mean_all", lambda a: a.mean(), lambda a: a.mean(), [U(3, 4)]),
    ("mean_axis_keep", lambda a: a.mean(axis=0, keepdims=True), lambda a: a.mean(dim=0, keepdim=True), [U(3, 4)]),
    ("max_all", lambda a: a.max(), lambda a: a.amax(), [NZ(3, 4)]),
    ("max_axis", lambda a: a.max(axis=1), lambda a: a.amax(dim=1), [NZ(3, 4)]),
    ("min_axes_keep", lambda a: a.min(axis=(0, 1), keepdims=True), lambda a: a.amin(dim=(0, 1), keepdim=True),
     [NZ(3, 4, 2)]),
    ("logsumexp_axis", lambda a: dg.logsumexp(a, axis=1), lambda a: a.logsumexp(dim=1), [U(3, 5)]),
    ("logsumexp_all", lambda a: a.logsumexp(), lambda a: a.reshape(-1).logsumexp(dim=0), [U(3, 5)]),
    ("var_axis", lambda a: a.var(axis=0), lambda a: a.var(dim=0, unbiased=False), [U(5, 3)]),
    # matmul
    ("matmul_2d", lambda a, b: a @ b, lambda a, b: a @ b, [U(3, 4), U(4, 5)]),
    ("matmul_vec_mat", lambda a, b: a @ b, lambda a, b: a @ b, [U(4), U(4, 5)]),
    ("matmul_mat_vec", lambda a, b: a @ b, lambda a, b: a @ b, [U(3, 4), U(4)]),
    ("matmul_vec_vec", lambda a, b: dg.matmul(a, b), lambda a, b: a @ b, [U(4), U(4)]),
    ("matmul_batched", lambda a, b: a @ b, lambda a, b: a @ b, [U(2, 3, 4), U(2, 4, 5)]),
    ("matmul_batch_bcast", lambda a, b: a @ b, lambda a, b: a @ b, [U(2, 1, 3, 4), U(3, 4, 5)]),
    ("matmul_batch_mat", lambda a, b: a @ b, lambda a, b: a @ b, [U(2, 3, 4), U(4, 5)]),
    ("matmul_vec_batch", lambda a, b: a @ b, lambda a, b: a @ b, [U(4), U(2, 4, 5)]),
    # shape
    ("reshape", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1), [U(2, 3, 2)]),
    ("reshape_tuple", lambda a: a.reshape((3, 4)), lambda a: a.reshape(3, 4), [U(12)]),
    ("transpose", lambda a: a.transpose(1, 2, 0), lambda a: a.permute(1, 2, 0), [U(2, 3, 4)]),
    ("T", lambda a: a.T, lambda a: a.permute(*reversed(range(a.ndim))), [U(2, 3, 4)]),
    ("swapaxes", lambda a: a.swapaxes(0, 2), lambda a: a.transpose(0, 2), [U(2, 3, 4)]),
    ("broadcast_to", lambda a: a.broadcast_to((2, 3, 4)), lambda a: a.expand(2, 3, 4), [U(3, 1)]),
    ("expand", lambda a: a.expand(2, -1, 4), lambda a: a.expand(2, -1, 4), [U(3, 1)]),
    ("concatenate", lambda a, b: dg.concatenate([a, b, a], axis=1), lambda a, b: __import__("torch").cat([a, b, a], 1),
     [U(2, 3), U(2, 1)]),
    ("stack", lambda a, b: dg.stack([a, b], axis=1), lambda a, b: __import__("torch").stack([a, b], 1),
     [U(2, 3), U(2, 3)]),
    ("squeeze", lambda a: a.squeeze(), lambda a: a.squeeze(), [U(2, 1, 3, 1)]),
    ("squeeze_axis", lambda a: a.squeeze(axis=1), lambda a: a.squeeze(1), [U(2, 1, 3, 1)]),
    ("unsqueeze", lambda a: a.unsqueeze(1), lambda a: a.unsqueeze(1), [U(2, 3)]),
    ("unsqueeze_neg", lambda a: a.unsqueeze(-1), lambda a: a.unsqueeze(-1), [U(2, 3)]),
    ("flatten", lambda a: a.flatten(1), lambda a: a.flatten(1), [U(2, 3, 4)]),
    ("index_int", lambda a: a[1], lambda a: a[1], [U(3, 4)]),
    ("index_slices", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [U(3, 4)]),
    ("index_neg_step_none", lambda a: a[..., None, -1], lambda a: a[..., None, -1], [U(3, 4)]),
    ("index_int_array_repeats", lambda a: a[[0, 2, 0, 0]], lambda a: a[[0, 2, 0, 0]], [U(3, 4)]),
    ("index_int_array_pairs", lambda a: a[[0, 1, 1], [2, 3, 3]], lambda a: a[[0, 1, 1], [2, 3, 3]], [U(3, 4)]),
    ("index_mixed", lambda a: a[1:, [0, 0, 2]], lambda a: a[1:, [0, 0, 2]], [U(3, 4)]),
    ("index_bool_mask", lambda a: a[a > 0], lambda a: a[a > 0], [NZ(3, 4)]),
    ("index_bool_rows", lambda a: a[np.array([True, False, True])], lambda a: a[[True, False, True]], [U(3, 4)]),
    # activations
    ("relu", dg.relu, lambda a: a.relu(), [NZ(3, 4)]),
    ("leaky_relu", lambda a: dg.leaky_relu(a, 0.1), lambda a: __import__("torch").nn.functional.leaky_relu(a, 0.1),
     [NZ(3, 4)]),
    ("sigmoid", dg.sigmoid, lambda a: a.sigmoid(), [U(3, 4, lo=-6, hi=6)]),
    ("tanh", dg.tanh, lambda a: a.tanh(), [U(3, 4)]),
    ("softplus", dg.softplus, lambda a: __import__("torch").nn.functional.softplus(a), [U(3, 4, lo=-6, hi=6)]),
    ("log_sigmoid", dg.log_sigmoid, lambda a: __import__("torch").nn.functional.logsigmoid(a),
     [U(3, 4, lo=-6, hi=6)]),
    ("softmax", lambda a: a.softmax(axis=-1), lambda a: a.softmax(dim=-1), [U(3, 5)]),
    ("softmax_axis0", lambda a: dg.softmax(a, axis=0), lambda a: a.softmax(dim=0), [U(3, 5)]),
    ("log_softmax", lambda a: a.log_softmax(), lambda a: a.log_softmax(dim=-1), [U(3, 5)]),
    ("log_softmax_3d", lambda a: dg.log_softmax(a, axis=1), lambda a: a.log_softmax(dim=1), [U(2, 3, 4)]),
    # over several axes jointly (PyTorch's softmax takes one dim: x - logsumexp over the axes is the oracle)
    ("softmax_axes", lambda a: dg.softmax(a, axis=(0, 2)),
     lambda a: (a - a.logsumexp(dim=(0, 2), keepdim=True)).exp(), [U(2, 3, 4)]),
    ("log_softmax_axes", lambda a: dg.nn.functional.log_softmax(a, dim=(2, 0)),
     lambda a: a - a.logsumexp(dim=(0, 2), keepdim=True), [U(2, 3, 4)]),
    # fused layer ops
    ("linear", lambda x, w, b: dg.linear(x, w, b), lambda x, w, b: __import__("torch").nn.functional.linear(x, w, b),
     [U(5, 3), U(4, 3), U(4)]),
    ("linear_relu", lambda x, w, b: dg.ops.linalg.linear_act(x, w, b, "relu"),
     lambda x, w, b: __import__("torch").nn.functional.linear(x, w, b).relu(), [NZ(5, 3), NZ(4, 3), NZ(4) * 0.1]),
    ("linear_sigmoid", lambda x, w, b: dg.ops.linalg.linear_act(x, w, b, "sigmoid"),
     lambda x, w, b: __import__("torch").nn.functional.linear(x, w, b).sigmoid(), [U(5, 3), U(4, 3), U(4)]),
    ("linear_tanh_3d", lambda x, w, b: dg.ops.linalg.linear_act(x, w, b, "tanh"),
     lambda x, w, b: __import__("torch").nn.functional.linear(x, w, b).tanh(), [U(2, 5, 3), U(4, 3), U(4)]),
    # compositions (shared subexpressions, chains)
    ("composite", lambda a, b: ((a @ b).tanh() * (a @ b)).sum(axis=0) / 3.0,
     lambda a, b: ((a @ b).tanh() * (a @ b)).sum(dim=0) / 3.0, [U(3, 4), U(4, 2)]),
]


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_matches_torch(torch, device, dtype, case):
    _, dg_fn, torch_fn, arrays = case
    check_op(torch, dg_fn, torch_fn, arrays, device, dtype=dtype, gradcheck=False)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_gradient_matches_float64_finite_differences(device, case):
    """Every op's backward against central differences in float64: needs no PyTorch."""
    _, dg_fn, _, arrays = case
    inputs = [dg.tensor(np.asarray(a), device=device, requires_grad=np.asarray(a).dtype.kind == "f",
                        dtype=np.float64 if np.asarray(a).dtype.kind == "f" else None) for a in arrays]
    assert dg.gradcheck(dg_fn, inputs)


@pytest.mark.oracle
def test_integer_index_tensor(torch, device):
    idx = np.array([2, 0, 2])
    check_op(torch, lambda a, i: a[i], lambda a, i: a[i], [U(3, 2), idx], device)


@pytest.mark.oracle
def test_where_with_tensor_condition_broadcast(torch, device):
    cond = np.array([True, False, True, False])
    check_op(torch, lambda a, b, c: dg.where(c, a, b), lambda a, b, c: torch.where(c, a, b),
             [U(3, 4), U(3, 1), cond], device)


@pytest.mark.oracle
def test_max_ties_share_gradient_like_amax(torch, device):
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    check_op(torch, lambda x: x.max(axis=1), lambda x: x.amax(dim=1), [a], device, gradcheck=False)


def test_comparisons_are_boolean_and_not_differentiable(device):
    x = dg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    for result in (x > 2, x >= 2, x < 2, x <= 2, x == 2, x != 2, 2 < x):
        assert result.dtype == np.bool_
        assert not result.requires_grad
    assert (x > 1.5).numpy().tolist() == [False, True, True]
    assert (2 < x).numpy().tolist() == [False, False, True]
    assert (x == dg.tensor([1.0, 0.0, 3.0], device=device)).numpy().tolist() == [True, False, True]


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "@"])
def test_float32_stays_float32_with_python_and_numpy_scalars(device, op):
    x = dg.tensor(np.full((2, 2), 1.5), device=device, dtype="float32")
    for scalar in (2, 2.5, np.float64(2.5), np.int64(2)):
        if op == "@":
            result = x @ x
        else:
            result = eval(f"x {op} scalar")
            assert eval(f"scalar {op} x").dtype == np.float32
        assert result.dtype == np.float32, (op, type(scalar))


def test_float32_stays_float32_through_unary_ops_and_backward(device):
    x = dg.tensor([[0.5, -1.0], [2.0, 3.0]], requires_grad=True, device=device)
    y = (x.sigmoid() + x.tanh() + x.softplus() + x.log_sigmoid() + x.relu() + x.abs().sqrt() + x.exp()
         + x.softmax() + x.log_softmax() + x.leaky_relu() + x.clip(-1, 1) + x.mean() + x.max(axis=0))
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


STABLE = [
    ("sigmoid", dg.sigmoid), ("softplus", dg.softplus), ("log_sigmoid", dg.log_sigmoid),
    ("tanh", dg.tanh), ("softmax", lambda x: x.softmax()), ("log_softmax", lambda x: x.log_softmax()),
    ("logsumexp", lambda x: x.logsumexp()), ("relu", dg.relu),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,fn", STABLE, ids=[s[0] for s in STABLE])
def test_activations_finite_and_silent_at_extremes(device, dtype, name, fn):
    x = dg.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], requires_grad=True, device=device, dtype=dtype)
    # Overflow, invalid and divide-by-zero are errors (and any warning): underflow to 0 is harmless.
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(x)
        y.backward(dg.ones_like(y))
    assert np.all(np.isfinite(y.numpy())), y
    assert np.all(np.isfinite(x.grad.numpy())), x.grad


def test_stable_values_at_extremes(device):
    x = dg.tensor([-1e4, 1e4], device=device, dtype="float64")
    np.testing.assert_allclose(dg.sigmoid(x).numpy(), [0.0, 1.0])
    np.testing.assert_allclose(dg.softplus(x).numpy(), [0.0, 1e4])
    np.testing.assert_allclose(dg.log_sigmoid(x).numpy(), [-1e4, 0.0])
    np.testing.assert_allclose(x.log_softmax().numpy(), [-2e4, 0.0])
    np.testing.assert_allclose(x.logsumexp().numpy(), 1e4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_sigmoid_is_plus_zero_where_exp_underflows(device, dtype):
    """log(sigmoid(x)) → 0 from below; where exp(−x) underflows it is +0.0, as PyTorch gives."""
    x = dg.tensor([800.0, 1e4, np.inf, -np.inf, 0.0], device=device, dtype=dtype)
    out = dg.log_sigmoid(x).numpy()
    assert out[:3].tolist() == [0.0, 0.0, 0.0] and not np.signbit(out[:3]).any()
    assert out[3] == -np.inf and out[4] == pytest.approx(-np.log(2.0))
    assert dg.log_sigmoid(dg.tensor(np.inf, device=device, dtype=dtype)).item() == 0.0
    assert not np.signbit(dg.log_sigmoid(dg.tensor(np.inf, device=device, dtype=dtype)).item())


def test_matmul_shape_mismatch_message(device):
    a = dg.zeros(2, 3, device=device)
    b = dg.zeros(4, 5, device=device)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned: 3 .* != 4"):
        a @ b


def test_broadcast_mismatch_message(device):
    a = dg.zeros(2, 3, device=device)
    with pytest.raises(ValueError, match=r"cannot broadcast|could not be broadcast"):
        a + dg.zeros(4, device=device)
    with pytest.raises(ValueError, match=r"broadcast_to: shape \(2, 3\) cannot broadcast to \(4, 3\)"):
        a.broadcast_to((4, 3))


def test_reshape_mismatch_message(device):
    with pytest.raises(ValueError, match=r"cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4,\)"):
        dg.zeros(2, 3, device=device).reshape(4)


def test_repeated_integer_indices_accumulate(device):
    x = dg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    x[[0, 0, 2, 0]].sum().backward()
    assert x.grad.numpy().tolist() == [3.0, 0.0, 1.0]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_first_order_fast_path_equals_the_tensor_formula(device, case):
    """The first-order path (raw arrays, fused kernels, used when no graph of the gradient is
    needed) must agree with the graph-building one (Tensor ops) for every op."""
    _, dg_fn, _, arrays = case
    xs = [dg.tensor(np.asarray(a), device=device, dtype="float64", requires_grad=True) for a in arrays]
    out = dg_fn(*xs)
    cot = dg.tensor(np.random.default_rng(3).standard_normal(out.shape), device=device)
    fast = dg.grad(out, xs, cot, retain_graph=True, allow_unused=True)
    graph = dg.grad(out, xs, cot, create_graph=True, allow_unused=True)
    for f, g in zip(fast, graph):
        assert (f is None) == (g is None)
        if f is not None:
            assert not f.requires_grad
            np.testing.assert_allclose(f.numpy(), g.numpy(), rtol=1e-12, atol=1e-14)


def test_edge_gradients_follow_pytorch_and_nothing_warns(device, recwarn):
    """std of a constant slice, x**0 at 0, the second derivative of x**1 at 0, d(0**e)/de, and
    logsumexp of an all -inf row: PyTorch's values (0 gradients), no NaN, no NumPy warning."""
    x = dg.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]], requires_grad=True, device=device, dtype="float64")
    x.std(axis=1).sum().backward()
    assert x.grad.numpy()[0].tolist() == [0.0, 0.0, 0.0] and np.isfinite(x.grad.numpy()).all()
    z = dg.tensor([0.0, 2.0], requires_grad=True, device=device, dtype="float64")
    (z**0).sum().backward()
    assert z.grad.numpy().tolist() == [0.0, 0.0]
    z.grad = None
    (first,) = dg.grad((z**1).sum(), z, create_graph=True)
    first.sum().backward()
    assert z.grad.numpy().tolist() == [0.0, 0.0]
    e = dg.tensor([1.0, 2.0], requires_grad=True, device=device, dtype="float64")
    (dg.zeros(2, device=device, dtype="float64") ** e).sum().backward()
    assert e.grad.numpy().tolist() == [0.0, 0.0]
    exponent = dg.tensor([0.0, 3.0], requires_grad=True, device=device, dtype="float64")
    base = dg.tensor([0.0, 2.0], requires_grad=True, device=device, dtype="float64")
    (base**exponent).sum().backward()  # tensor exponent: the same conventions
    assert base.grad.numpy().tolist() == [0.0, 12.0] and np.isfinite(exponent.grad.numpy()).all()
    assert dg.tensor([[-np.inf, -np.inf]], device=device).logsumexp(axis=1).numpy().tolist() == [-np.inf]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_variance_without_degrees_of_freedom_is_inf_with_devgrads_warning(device):
    x = dg.tensor([1.0, 2.0], device=device)
    with pytest.warns(RuntimeWarning, match="ddof=2 leaves no degrees of freedom"):
        assert x.var(ddof=2).item() == np.inf
    with pytest.warns(RuntimeWarning, match="ddof=3"):
        assert x.var(ddof=3).item() == np.inf  # never a negative variance


@pytest.mark.oracle
def test_std_and_pow_edge_gradients_match_torch(torch, device):
    a = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    check_op(torch, lambda t: t.std(axis=1), lambda t: t.std(dim=1, correction=0), [a], device, gradcheck=False)
    check_op(torch, lambda t: t**0, lambda t: t**0, [np.array([0.0, 1.5])], device, gradcheck=False)


def test_astype_none_names_the_missing_dtype():
    x = dg.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="astype: dtype is None"):
        x.astype(None)

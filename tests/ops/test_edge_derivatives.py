"""Derivatives at the edges: exact where smooth, PyTorch's conventions at kinks, ties, 0/0, ±inf, NaN."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
import devgrad.nn.functional as F

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

NAN, INF = np.nan, np.inf


def t64(values, device, requires_grad=True):
    return dg.tensor(np.asarray(values, dtype=np.float64), device=device, dtype="float64",
                     requires_grad=requires_grad)


def grads(fn, xs, create_graph=False):
    """d(sum(fn(*xs)))/d(xs) as NumPy arrays."""
    return [g.numpy() for g in dg.grad(fn(*xs).sum(), xs, create_graph=create_graph)]


def torch_grads(torch, fn, arrays):
    ts = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    return [g.numpy() for g in torch.autograd.grad(fn(*ts).sum(), ts)]


def same(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0, equal_nan=True)


# -- pow --------------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["xy", "yx"])
def test_pow_mixed_second_derivative_is_exact_in_both_orders(device, order):
    x, y = t64(2.0, device), t64(0.0, device)
    first, second = (x, y) if order == "xy" else (y, x)
    (g,) = dg.grad(x**y, first, create_graph=True)
    (h,) = dg.grad(g, second)
    assert h.item() == pytest.approx(0.5, rel=1e-15)  # d²(x**y)/dxdy = x**(y-1)(1 + y·log x) = 1/x


def test_pow_first_derivatives_are_smooth_at_zero_exponent(device):
    """Finite differences of each first derivative: its gradient is the Hessian's row."""
    x, y = t64(2.0, device), t64(0.0, device)
    assert dg.gradcheck(lambda a, b: dg.grad(a**b, a, create_graph=True)[0], [x, y])
    assert dg.gradcheck(lambda a, b: dg.grad(a**b, b, create_graph=True)[0], [x, y])


@pytest.mark.oracle
def test_pow_at_base_zero_matches_torch(torch, device):
    exponents = np.array([-0.3, 0.0, 0.5, 1.0, 2.0, -1.0])
    base = np.zeros(6)
    same(grads(lambda e: 0.0**e, [t64(exponents, device)])[0], torch_grads(torch, lambda e: 0.0**e, [exponents])[0])
    for got, want in zip(grads(lambda b, e: b**e, [t64(base, device), t64(exponents, device)]),
                         torch_grads(torch, lambda b, e: b**e, [base, exponents])):
        same(got, want)
    assert grads(lambda e: 0.0**e, [t64([-0.3], device)])[0][0] == -INF


@pytest.mark.oracle
def test_pow_base_gradient_at_zero_exponent_is_zero_for_every_base_as_torch(torch, device):
    """PyTorch masks d(a**b)/da where b = 0, whatever a is: NaN, ±inf and 0 give 0, not 0·NaN."""
    base = np.array([np.nan, 0.0, np.inf, -np.inf, 2.0, -1.0])
    exponent = np.zeros(6)
    for got, want in zip(grads(lambda b, e: b**e, [t64(base, device), t64(exponent, device)]),
                         torch_grads(torch, lambda b, e: b**e, [base, exponent])):
        same(got, want)


def _pow_hessian(grad, x, y):
    gx, gy = grad(x**y, [x, y], create_graph=True)
    return [[float(v) for v in grad(g, [x, y])] for g in (gx, gy)]


@pytest.mark.oracle
@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, -0.3, -1.0])
def test_pow_second_derivatives_at_base_zero_match_torch(torch, device, exponent):
    """At base 0, where x**y is not smooth, the second derivatives are PyTorch's (NaN included)."""
    ours = _pow_hessian(dg.grad, t64(0.0, device), t64(exponent, device))
    theirs = _pow_hessian(torch.autograd.grad, *(torch.tensor(v, dtype=torch.float64, requires_grad=True)
                                                 for v in (0.0, exponent)))
    same(np.array(ours), np.array(theirs))


# -- division ---------------------------------------------------------------------------------

@pytest.mark.oracle
@pytest.mark.parametrize("a,b,dtype", [(1e30, 1e20, "float32"), (1e-20, 1e-24, "float32"), (1e-200, 1e-200, "float64"),
                                       (3.0, 0.0, "float64"), (3.0, INF, "float64"), (0.0, 0.0, "float64")])
def test_division_gradients_do_not_overflow(torch, device, a, b, dtype):
    x = dg.tensor(a, device=device, dtype=dtype, requires_grad=True)
    y = dg.tensor(b, device=device, dtype=dtype, requires_grad=True)
    tx = torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True)
    ty = torch.tensor(b, dtype=getattr(torch, dtype), requires_grad=True)
    for create_graph in (False, True):
        got = [g.numpy() for g in dg.grad(x / y, [x, y], create_graph=create_graph)]
        want = [g.numpy() for g in torch.autograd.grad(tx / ty, [tx, ty])]
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


@pytest.mark.oracle
def test_division_second_derivatives_match_torch_at_zero_and_infinity(torch, device):
    a = np.array([3.0, 3.0, 3.0, 2.0])
    b = np.array([0.0, INF, -INF, 4.0])
    x, y = t64(a, device), t64(b, device)
    tx, ty = (torch.tensor(v, requires_grad=True) for v in (a, b))
    gy = dg.grad((x / y).sum(), y, create_graph=True)[0]
    tgy = torch.autograd.grad((tx / ty).sum(), ty, create_graph=True)[0]
    for got, want in zip(dg.grad(gy.sum(), [x, y]), torch.autograd.grad(tgy.sum(), [tx, ty])):
        same(got.numpy(), want.numpy())


def test_self_division_at_tiny_values_has_zero_gradient(device):
    x = t64([1e-300], device)
    assert grads(lambda v: v / v, [x])[0].tolist() == [0.0]


# -- masks select: an infinite upstream gradient where the mask is 0 gives 0 -----------------

MASKED = {
    "relu": (dg.relu, lambda t: t.relu()),
    "clip": (lambda v: v.clip(0.0, None), lambda t: t.clamp(min=0.0)),
    "maximum": (lambda v: dg.maximum(v, 0.0), lambda t: t.clamp(min=0.0)),
    "std": (lambda v: v.std(axis=1), lambda t: t.std(dim=1, correction=0)),
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(MASKED))
def test_an_infinite_gradient_under_a_closed_mask_gives_zero(torch, device, name):
    ours, theirs = MASKED[name]
    x = np.array([[0.5]]) if name == "std" else np.array([-1.0, 0.0, 2.0])
    got = grads(lambda v: ours(v).sqrt(), [t64(x, device)])[0]
    want = torch_grads(torch, lambda t: theirs(t).sqrt(), [x])[0]
    same(got, want)
    assert got.reshape(-1)[0] == 0.0  # where the mask is closed: 0, not inf·0 = NaN


# -- NaN inputs -------------------------------------------------------------------------------

NAN_OPS = {
    "relu": (dg.relu, lambda t: t.relu()),
    "abs": (dg.abs, lambda t: t.abs()),
    "leaky_relu": (lambda v: dg.leaky_relu(v, 0.1), lambda t: __import__("torch").nn.functional.leaky_relu(t, 0.1)),
    "maximum": (lambda v: dg.maximum(v, dg.zeros_like(v)), lambda t: t.maximum(t.new_zeros(t.shape))),
    "minimum": (lambda v: dg.minimum(v, dg.zeros_like(v)), lambda t: t.minimum(t.new_zeros(t.shape))),
    "clip": (lambda v: v.clip(-1.0, 1.0), lambda t: t.clamp(-1.0, 1.0)),
    "l1_loss": (lambda v: F.l1_loss(v, dg.zeros_like(v), reduction="none"),
                lambda t: __import__("torch").nn.functional.l1_loss(t, t.new_zeros(t.shape), reduction="none")),
    "huber_loss": (lambda v: F.huber_loss(v, dg.zeros_like(v), reduction="none"),
                   lambda t: __import__("torch").nn.functional.huber_loss(t, t.new_zeros(t.shape), reduction="none")),
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(NAN_OPS))
def test_nan_inputs_get_pytorchs_gradient(torch, device, name):
    ours, theirs = NAN_OPS[name]
    x = np.array([NAN, 0.0, -2.0, 3.0])
    same(ours(t64(x, device)).numpy(), theirs(torch.tensor(x)).numpy())
    same(grads(ours, [t64(x, device)])[0], torch_grads(torch, theirs, [x])[0])


def test_nan_gradients_of_relu_maximum_abs_are_pytorchs_values(device):
    x = t64([NAN], device)
    assert grads(dg.relu, [x])[0].tolist() == [1.0]
    assert grads(lambda v: dg.maximum(v, 0.0), [x])[0].tolist() == [1.0]
    assert grads(lambda v: dg.minimum(v, 0.0), [x])[0].tolist() == [1.0]
    assert grads(dg.abs, [x])[0].tolist() == [0.0]


@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_bce_with_infinite_logits_is_the_limit(device, pos_weight):
    z = t64([INF, INF, -INF, -INF, 2.0], device)
    y = t64([0.0, 1.0, 0.0, 1.0, 1.0], device, requires_grad=False)
    loss = F.binary_cross_entropy_with_logits(z, y, reduction="none", pos_weight=pos_weight)
    w = 1.0 if pos_weight is None else pos_weight
    assert loss.numpy()[:4].tolist() == [INF, 0.0, 0.0, INF]
    assert loss.numpy()[4] == pytest.approx(w * np.log1p(np.exp(-2.0)), rel=1e-14)
    assert np.isfinite(grads(lambda v: F.binary_cross_entropy_with_logits(v, y, reduction="none",
                                                                          pos_weight=pos_weight), [z])[0]).all()



@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_bce_of_one_infinite_logit_is_the_limit(device, pos_weight):
    y = t64([0.0, 1.0], device, requires_grad=False)
    z = t64([INF, -INF], device)
    losses = [F.binary_cross_entropy_with_logits(z[i], y[i], reduction="none", pos_weight=pos_weight).item()
              for i in range(2)]  # 0-d logits and targets
    assert losses == [INF, INF]
    assert F.binary_cross_entropy_with_logits(z[0], y[1], pos_weight=pos_weight).item() == 0.0

# -- second derivatives of piecewise-linear functions: zeros, not an error ---------------------

PIECEWISE = {
    "relu": dg.relu,
    "abs": dg.abs,
    "leaky_relu": lambda v: dg.leaky_relu(v, 0.2),
    "clip": lambda v: v.clip(-0.5, 0.5),
    "maximum": lambda v: dg.maximum(v, 0.3),
    "l1_loss": lambda v: F.l1_loss(v, dg.zeros_like(v)),
    "hinge_loss": lambda v: F.hinge_loss(v, dg.ones_like(v)),
    "nll_loss": lambda v: F.nll_loss(v.reshape(2, 2), [1, 0]),
    "max": lambda v: v.max(axis=0),
    "max_dim": lambda v: v.max(dim=0).values,
}


@pytest.mark.parametrize("name", list(PIECEWISE))
def test_second_derivative_of_a_piecewise_linear_op_is_zero(device, name):
    x = t64([-1.5, 0.7, 2.0, -0.2], device)
    (g,) = dg.grad(PIECEWISE[name](x).sum(), x, create_graph=True)
    assert g.requires_grad
    (h,) = dg.grad((g * t64([1.0, 2.0, 3.0, 4.0], device, requires_grad=False)).sum(), x)
    assert h.numpy().tolist() == [0.0] * 4


@pytest.mark.oracle
def test_nll_loss_second_derivative_matches_torch(torch, device):
    lp = np.log(np.array([[0.2, 0.8], [0.6, 0.4]]))
    x = t64(lp, device)
    (g,) = dg.grad(F.nll_loss(x, [1, 0]), x, create_graph=True)
    (h,) = dg.grad(g.sum(), x)
    t = torch.tensor(lp, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.nn.functional.nll_loss(t, torch.tensor([1, 0])), t, create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), t)
    same(g.numpy(), tg.detach().numpy())
    same(h.numpy(), th.numpy())


@pytest.mark.oracle
def test_huber_second_derivative_at_delta_is_zero_like_torch(torch, device):
    d = np.array([-1.0, -0.5, 0.2, 1.0, 1.5])  # |d| == delta = 1 at two places
    x = t64(d, device)
    (g,) = dg.grad(F.huber_loss(x, dg.zeros_like(x), reduction="sum"), x, create_graph=True)
    (h,) = dg.grad(g.sum(), x)
    t = torch.tensor(d, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.nn.functional.huber_loss(t, torch.zeros(5, dtype=torch.float64),
                                                                reduction="sum"), t, create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), t)
    same(h.numpy(), th.numpy())
    assert h.numpy().tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]


# -- max/min with PyTorch's dim=: the gradient goes to the index returned ---------------------

@pytest.mark.oracle
@pytest.mark.parametrize("pick", ["max", "min"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_with_dim_sends_the_gradient_to_the_returned_index(torch, device, pick, keepdim):
    a = np.array([[3.0, 1.0, 3.0], [3.0, 1.0, 1.0], [0.0, 1.0, 3.0]])
    x = t64(a, device)
    values, indices = getattr(x, pick)(dim=0, keepdim=keepdim)
    t = torch.tensor(a, requires_grad=True)
    tv, ti = getattr(t, pick)(dim=0, keepdim=keepdim)
    assert indices.numpy().tolist() == ti.numpy().tolist()
    cot = np.arange(1.0, 4.0).reshape(tv.shape)
    for create_graph in (False, True):
        (g,) = dg.grad(values, x, dg.tensor(cot, device=device, dtype="float64"), retain_graph=True,
                       create_graph=create_graph)
        same(g.numpy(), torch.autograd.grad(tv, t, torch.tensor(cot), retain_graph=True)[0].numpy())


def test_max_with_several_dims_points_to_axis(device):
    with pytest.raises(TypeError, match=r"dim= takes one axis .* use axis=\(0, 1\)"):
        dg.zeros(2, 3, device=device).max(dim=(0, 1))


def test_max_over_an_axis_still_splits_ties_evenly(device):
    x = t64([1.0, 1.0, 0.0], device)
    assert grads(lambda v: v.max(axis=0), [x])[0].tolist() == [0.5, 0.5, 0.0]
    assert grads(lambda v: v.max(dim=0).values, [x])[0].tolist() == [1.0, 0.0, 0.0]


# -- bce_with_logits with pos_weight: both backward paths give the exact value ----------------

def test_bce_pos_weight_gradient_is_exact_in_both_backward_paths(device):
    z = dg.tensor([20.0], device=device, requires_grad=True)
    y = dg.tensor([1.0], device=device)
    exact = -3.0 / (1.0 + np.exp(20.0))  # -w·y·sigmoid(-z): -6.18e-9
    F.binary_cross_entropy_with_logits(z, y, pos_weight=3.0).backward()
    (graph,) = dg.grad(F.binary_cross_entropy_with_logits(z, y, pos_weight=3.0), z, create_graph=True)
    for g in (z.grad, graph):
        assert g.dtype == np.float32
        assert g.item() == pytest.approx(exact, rel=1e-6)

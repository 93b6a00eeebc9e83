"""Losses: value and gradient against PyTorch, extreme logits, reductions, clear shape errors."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from devgrad.nn import functional as F
from tests.support.helpers import check_op

# NumPy floating-point warnings from any op are errors here: inf and NaN are values, not events.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

rng = np.random.default_rng(7)
LOGITS = rng.standard_normal(6) * 3
EXTREME = np.array([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4, 300.0])
LABELS01 = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
LABELS01_X = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0])


def _pm(y):
    return 2 * y - 1


@pytest.mark.oracle
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("logits,labels", [(LOGITS, LABELS01), (EXTREME, LABELS01_X)], ids=["normal", "extreme"])
def test_binary_losses_match_torch(torch, device, reduction, logits, labels):
    tf = torch.nn.functional
    y = labels
    cases = [
        (lambda z: F.binary_cross_entropy_with_logits(z, dg.tensor(y, device=device, dtype=z.dtype), reduction),
         lambda z: tf.binary_cross_entropy_with_logits(z, torch.tensor(y, dtype=z.dtype), reduction=reduction)),
        (lambda z: F.logistic_loss(z, dg.tensor(_pm(y), device=device, dtype=z.dtype), reduction),
         lambda z: tf.softplus(-torch.tensor(_pm(y), dtype=z.dtype) * z) if reduction == "none" else
         getattr(tf.softplus(-torch.tensor(_pm(y), dtype=z.dtype) * z), reduction)()),
        (lambda z: F.hinge_loss(z, dg.tensor(_pm(y), device=device, dtype=z.dtype), reduction),
         lambda z: _red(torch.clamp(1 - torch.tensor(_pm(y), dtype=z.dtype) * z, min=0), reduction)),
        (lambda z: F.mse_loss(z, dg.tensor(y, device=device, dtype=z.dtype), reduction),
         lambda z: tf.mse_loss(z, torch.tensor(y, dtype=z.dtype), reduction=reduction)),
        (lambda z: F.l1_loss(z, dg.tensor(y, device=device, dtype=z.dtype), reduction),
         lambda z: tf.l1_loss(z, torch.tensor(y, dtype=z.dtype), reduction=reduction)),
        (lambda z: F.huber_loss(z, dg.tensor(y, device=device, dtype=z.dtype), reduction, delta=0.7),
         lambda z: tf.huber_loss(z, torch.tensor(y, dtype=z.dtype), reduction=reduction, delta=0.7)),
    ]
    extreme = np.abs(logits).max() > 100
    for dg_fn, torch_fn in cases:
        for dtype in (np.float64, np.float32):
            tol = {"rtol": 1e-5, "atol": 1e-3} if dtype == np.float32 else None
            check_op(torch, dg_fn, torch_fn, [logits], device, dtype=dtype, gradcheck=not extreme and
                     dtype == np.float64, tol=tol)


def _red(x, reduction):
    return x if reduction == "none" else getattr(x, reduction)()


@pytest.mark.oracle
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("scale", [1.0, 1e4], ids=["normal", "extreme"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_and_nll_match_torch(torch, device, smoothing, scale, reduction):
    logits = rng.standard_normal((5, 4)) * scale
    labels = np.array([0, 3, 1, 1, 2])
    check_op(torch, lambda z: F.cross_entropy(z, dg.tensor(labels, device=device), reduction, smoothing),
             lambda z: torch.nn.functional.cross_entropy(z, torch.tensor(labels), reduction=reduction,
                                                         label_smoothing=smoothing),
             [logits], device, gradcheck=scale == 1.0)
    check_op(torch, lambda z: F.nll_loss(z.log_softmax(), dg.tensor(labels, device=device), reduction),
             lambda z: torch.nn.functional.nll_loss(z.log_softmax(-1), torch.tensor(labels), reduction=reduction),
             [logits], device, gradcheck=scale == 1.0)


LOSS_CASES = {
    "bce": lambda z, d, r: F.binary_cross_entropy_with_logits(z, dg.tensor(LABELS01, device=d, dtype=z.dtype), r),
    "bce_pos_weight": lambda z, d, r: F.binary_cross_entropy_with_logits(
        z, dg.tensor(LABELS01, device=d, dtype=z.dtype), r, pos_weight=2.5),
    "logistic": lambda z, d, r: F.logistic_loss(z, dg.tensor(_pm(LABELS01), device=d, dtype=z.dtype), r),
    "hinge": lambda z, d, r: F.hinge_loss(z, dg.tensor(_pm(LABELS01), device=d, dtype=z.dtype), r),
    "mse": lambda z, d, r: F.mse_loss(z, dg.tensor(LABELS01, device=d, dtype=z.dtype), r),
    "mae": lambda z, d, r: F.l1_loss(z, dg.tensor(LABELS01, device=d, dtype=z.dtype), r),
    "huber": lambda z, d, r: F.huber_loss(z, dg.tensor(LABELS01, device=d, dtype=z.dtype), r, delta=0.5),
    "cross_entropy": lambda z, d, r: F.cross_entropy(z.reshape(3, 2), dg.tensor([1, 0, 1], device=d), r, 0.1),
    "nll": lambda z, d, r: F.nll_loss(z.reshape(2, 3).log_softmax(), dg.tensor([2, 0], device=d), r),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(LOSS_CASES))
def test_every_loss_gradient_matches_float64_finite_differences(device, name, reduction):
    """Each loss's gradient (every reduction) against central differences: needs no PyTorch."""
    z = dg.tensor(LOGITS + 0.05, device=device, dtype="float64", requires_grad=True)  # away from hinge's kink
    assert dg.gradcheck(lambda t: LOSS_CASES[name](t, device, reduction), [z])


def test_extreme_logits_give_finite_loss_and_gradient(device):
    z = dg.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3e3]], requires_grad=True, device=device)
    loss = F.cross_entropy(z, dg.tensor([1, 0], device=device))
    loss.backward()
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(2e4, rel=1e-6)
    assert np.isfinite(z.grad.numpy()).all()
    b = dg.tensor([1e4, -1e4], requires_grad=True, device=device)
    bce = F.binary_cross_entropy_with_logits(b, dg.tensor([0.0, 1.0], device=device))
    bce.backward()
    assert bce.item() == pytest.approx(1e4) and np.isfinite(b.grad.numpy()).all()


def test_cross_entropy_second_derivative_by_gradcheck(device):
    labels = dg.tensor([0, 2, 1], device=device)

    def grad_fn(z):
        return dg.grad(F.cross_entropy(z, labels, label_smoothing=0.1), z, create_graph=True)

    z = dg.tensor(rng.standard_normal((3, 3)), requires_grad=True, device=device)
    assert dg.gradcheck(grad_fn, [z])


def test_losses_refuse_silent_broadcasting():
    with pytest.raises(ValueError, match=r"input shape \(4, 1\) and target shape \(4,\) differ.*squeeze"):
        F.mse_loss(dg.zeros(4, 1), dg.zeros(4))
    with pytest.raises(ValueError, match="expected logits of shape"):
        F.cross_entropy(dg.zeros(4, 3), dg.tensor([[0], [1], [2], [0]]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(dg.zeros(2, 3), dg.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        F.cross_entropy(dg.zeros(2, 3), dg.tensor([0, 3]))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(dg.zeros(2), dg.zeros(2), reduction="avg")


@pytest.mark.oracle
def test_bce_pos_weight_matches_torch(torch, device):
    z = rng.standard_normal(6)
    check_op(torch, lambda t: F.binary_cross_entropy_with_logits(t, dg.tensor(LABELS01, device=device,
                                                                              dtype=t.dtype), pos_weight=3.0),
             lambda t: torch.nn.functional.binary_cross_entropy_with_logits(
                 t, torch.tensor(LABELS01, dtype=t.dtype), pos_weight=torch.tensor(3.0, dtype=t.dtype)),
             [z], device)


def test_loss_modules_wrap_functions(device):
    z = dg.tensor([[2.0, -1.0]], device=device)
    y = dg.tensor([0], device=device)
    assert dg.nn.CrossEntropyLoss()(z, y).item() == pytest.approx(F.cross_entropy(z, y).item())
    assert dg.nn.MSELoss(reduction="sum")(z, dg.zeros(1, 2, device=device)).item() == pytest.approx(5.0)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_loss_fast_path_equals_the_tensor_formula(device, smoothing):
    z = dg.tensor(rng.standard_normal((4, 3)), requires_grad=True, device=device)
    b = dg.tensor(rng.standard_normal(4), requires_grad=True, device=device)
    labels = dg.tensor([2, 0, 1, 2], device=device)
    for make in (lambda: F.cross_entropy(z, labels, label_smoothing=smoothing),
                 lambda: F.binary_cross_entropy_with_logits(b, dg.tensor([0.0, 1.0, 1.0, 0.0], device=device))):
        out = make()
        fast = dg.grad(out, [z, b], retain_graph=True, allow_unused=True)
        graph = dg.grad(out, [z, b], create_graph=True, allow_unused=True)
        for f, g in zip(fast, graph):
            if f is not None:
                np.testing.assert_allclose(f.numpy(), g.numpy(), rtol=1e-12)


# The fused per-element losses against the op-by-op Tensor formula they replace (the formula is
# also what a target of another dtype gets). Inputs sit on every kink: x = y (mae), |x − y| = delta
# (Huber), margin − y·x = 0 (hinge), plus a NaN.
KINKS = np.array([0.3, -1.0, 1.0, 1.2, -0.2, 2.5, 0.7, np.nan])
PAIR_TARGETS = np.array([0.3, 1.0, 1.0, 0.7, -1.0, -1.0, 0.2, 1.0])  # ±1 where a ±1 loss reads them
PAIR_LOSSES = {  # name: (fused loss, the same formula op by op)
    "mse": (F.mse_loss, lambda x, y: (x - y) * (x - y)),
    "mae": (F.l1_loss, lambda x, y: (x - y).abs()),
    "huber": (lambda x, y, r: F.huber_loss(x, y, r, delta=0.5),
              lambda x, y: dg.where((x - y).abs() >= 0.5, 0.5 * ((x - y).abs() - 0.25), 0.5 * (x - y) ** 2)),
    "logistic": (F.logistic_loss, lambda x, y: dg.ops.softplus(-(y * x))),
    "hinge": (lambda x, y, r: F.hinge_loss(x, y, r, margin=1.0), lambda x, y: (1.0 - y * x).clip(0.0, None)),
    "bce": (F.binary_cross_entropy_with_logits, lambda x, y: dg.ops.softplus(x) - x * y),
    "bce_pos_weight": (lambda x, y, r: F.binary_cross_entropy_with_logits(x, y, r, pos_weight=3.0),
                       lambda x, y: 3.0 * y * dg.ops.softplus(-x) + (1.0 - y) * dg.ops.softplus(x)),
}


def _pair_inputs(device, name, dtype):
    y = {"logistic": np.sign, "hinge": np.sign, "bce": lambda t: np.clip(t, 0, 1),
         "bce_pos_weight": lambda t: np.clip(t, 0, 1)}.get(name, np.asarray)(PAIR_TARGETS)
    return (dg.tensor(KINKS, device=device, dtype=dtype, requires_grad=True),
            dg.tensor(y, device=device, dtype=dtype, requires_grad=True))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(PAIR_LOSSES))
def test_fused_pair_losses_equal_their_op_by_op_formula(device, name, reduction, dtype):
    """One node, one kernel each way: the same loss and the same gradients (input and target,
    on the kinks, NaN propagated) as the formula built from Tensor ops, and the same second
    derivatives through create_graph."""
    fused, formula = PAIR_LOSSES[name]
    ys = _pair_inputs("cpu", name, "float64")[1].numpy()
    d = KINKS - ys
    smooth = (d != 0) & (np.abs(d) != 0.5) & (1 - ys * KINKS != 0) & np.isfinite(KINKS)
    tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-14}
    results = []
    for make in (lambda x, y: fused(x, y, reduction), lambda x, y: F._reduce(formula(x, y), reduction)):
        x, y = _pair_inputs(device, name, dtype)
        out = make(x, y)
        assert out.dtype == x.dtype
        weights = dg.tensor(np.linspace(-1, 2, out.size).reshape(out.shape), device=device, dtype=dtype)
        first = dg.grad((out * weights).sum(), [x, y], create_graph=True)
        # second order: d/dx of sum(dL/dx · v) where the formula is twice differentiable (off
        # the kinks and the NaN; at x = y Huber's formula, through abs, says 0 where the fused op
        # says 1, as PyTorch's huber_loss does)
        v = dg.tensor((np.arange(8.0) - 3) * smooth, device=device, dtype=dtype)
        h = (first[0] * v).sum()
        second = dg.grad(h, [x], allow_unused=True)[0] if h.requires_grad else None  # mae: piecewise constant
        results.append([out.numpy(), *(g.numpy() for g in first), None if second is None else second.numpy()])
    (value, gx, gy, hx), (want_value, want_gx, want_gy, want_hx) = results
    np.testing.assert_allclose(value, want_value, **tol)
    assert np.isnan(value).any()  # the NaN input reaches the loss
    np.testing.assert_allclose(gx, want_gx, **tol)
    np.testing.assert_allclose(gy, want_gy, **tol)
    zeros = np.zeros(8, dtype=dtype)
    hx, want_hx = (zeros if h is None else h[smooth] for h in (hx, want_hx))
    np.testing.assert_allclose(hx, want_hx, **tol)


def test_a_fused_pair_loss_is_one_node_with_one_kernel_each_way(device, monkeypatch):
    """Huber on a batch: one kernel forward and one backward, and the same gradients as the
    op-by-op formula (which launches one op per term)."""
    calls = []
    kernels = dg.device(device).kernels
    for name in ("huber_err", "huber_err_grad"):
        original = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    x = dg.tensor(rng.standard_normal(16), device=device, requires_grad=True)
    loss = F.huber_loss(x, dg.zeros(16, device=device, dtype=x.dtype), delta=0.8)
    assert loss.grad_fn.next == (x, None)  # one node, straight to the leaf
    loss.backward()
    assert calls == ["huber_err", "huber_err_grad"]
    np.testing.assert_allclose(x.grad.numpy(), np.clip(x.numpy(), -0.8, 0.8) / 16, rtol=1e-12)


@pytest.mark.parametrize("name", list(PAIR_LOSSES))
def test_a_target_of_another_dtype_promotes_as_numpy_does(device, name):
    """float32 scores with a float64 target Tensor: the loss and its gradients in float64, as the
    formula op by op gives them (the fused kernels take one dtype)."""
    fused, formula = PAIR_LOSSES[name]
    x = dg.tensor(KINKS[:-1], device=device, dtype="float32", requires_grad=True)
    y = dg.tensor(_pair_inputs("cpu", name, "float64")[1].numpy()[:-1], device=device, requires_grad=True)
    loss = fused(x, y, "mean")
    assert loss.dtype == np.float64
    want = formula(x.detach(), y.detach()).numpy()  # op by op: each op promotes as NumPy does
    loss.backward()
    np.testing.assert_allclose(loss.item(), np.mean(want), rtol=1e-12)
    assert x.grad.dtype == np.float32 and y.grad.dtype == np.float64


@pytest.mark.parametrize("dtype", ["float16", "int64"])
@pytest.mark.parametrize("name", ["mse", "mae", "huber", "hinge"])
def test_a_loss_of_a_dtype_the_kernels_do_not_take_is_computed_op_by_op(device, name, dtype):
    """float16 or integer inputs (no fused kernel for them) give the formula's value, in the
    inputs' dtype, on every device."""
    fused, formula = PAIR_LOSSES[name]
    x = dg.tensor(np.array([3, -1, 2, 0]), device=device, dtype=dtype)
    y = dg.tensor(np.array([1, 1, -1, 0]), device=device, dtype=dtype)
    loss = fused(x, y, "sum")
    want = formula(x, y).sum()
    assert loss.dtype == want.dtype
    np.testing.assert_allclose(loss.numpy().astype(float), want.numpy().astype(float))


def _dropped(device, p=0.3, seed=11):
    """Dropout with a fresh generator of a fixed seed: the same mask on every call."""
    return lambda t: F.dropout(t, p, generator=device.generator(seed))


def test_dropout_gradient_matches_float64_finite_differences(device):
    """Dropout is one node (x × its mask): its gradient, and the gradient of its gradient."""
    x = dg.tensor(rng.standard_normal((5, 7)), dtype="float64", requires_grad=True, device=device)
    assert dg.gradcheck(_dropped(device), [x])
    assert dg.gradcheck(lambda t: dg.grad((_dropped(device)(t) ** 2).sum(), t, create_graph=True), [x])


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_matches_torch_with_its_mask(torch, device, dtype):
    """With the mask it drew (0 or 1/(1-p), read off by dropping ones), dropout's value and
    gradient are PyTorch's x × mask."""
    mask = _dropped(device)(dg.ones(5, 7, device=device, dtype=dtype)).numpy()
    assert set(np.unique(mask)) == {0.0, dtype(1 / 0.7)}
    check_op(torch, _dropped(device), lambda t: t * torch.tensor(mask), [rng.standard_normal((5, 7))], device,
             dtype=dtype)

"""PyTorch's classification losses in their general forms — class weight, ignore_index, soft
targets, (N, C, d...) inputs, BCE on probabilities, per-class pos_weight — against PyTorch and
float64 finite differences (first and second order)."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from devgrad.nn import functional as F
from tests.support.helpers import check_op

RNG = np.random.default_rng(11)
Z = RNG.standard_normal((6, 4))
Z3 = RNG.standard_normal((3, 4, 2))
LABELS = np.array([0, 3, -100, 1, 3, 2])
LABELS3 = np.array([[0, 3], [1, -100], [2, 2]])
WEIGHT = np.array([0.5, 2.0, 1.0, 3.0])
SOFT = RNG.dirichlet(np.ones(4), size=6)
SOFT3 = np.moveaxis(RNG.dirichlet(np.ones(4), size=(3, 2)), -1, 1)
PROBS = 1 / (1 + np.exp(-RNG.standard_normal((6, 3))))
BINARY = (RNG.random((6, 3)) > 0.5).astype(float)

# (name, devgrad loss of the input, torch loss of the input, input)
CASES = [
    ("ce_weight", lambda z, d: F.cross_entropy(z, _lab(d, LABELS[[0, 1, 3, 4]]), weight=_w(d)),
     lambda z, t: t.nn.functional.cross_entropy(z, t.tensor(LABELS[[0, 1, 3, 4]]), weight=t.tensor(WEIGHT)), Z[:4]),
    ("ce_ignore", lambda z, d: F.cross_entropy(z, _lab(d, LABELS)),
     lambda z, t: t.nn.functional.cross_entropy(z, t.tensor(LABELS)), Z),
    ("ce_weight_ignore_sum", lambda z, d: F.cross_entropy(z, _lab(d, LABELS), weight=_w(d), reduction="sum"),
     lambda z, t: t.nn.functional.cross_entropy(z, t.tensor(LABELS), weight=t.tensor(WEIGHT), reduction="sum"), Z),
    ("ce_smoothing_weight_ignore",
     lambda z, d: F.cross_entropy(z, _lab(d, LABELS), weight=_w(d), label_smoothing=0.2),
     lambda z, t: t.nn.functional.cross_entropy(z, t.tensor(LABELS), weight=t.tensor(WEIGHT), label_smoothing=0.2),
     Z),
    ("ce_other_ignore_index", lambda z, d: F.cross_entropy(z, _lab(d, LABELS % 4), ignore_index=3),
     lambda z, t: t.nn.functional.cross_entropy(z, t.tensor(LABELS % 4), ignore_index=3), Z),
    ("ce_soft", lambda z, d: F.cross_entropy(z, dg.tensor(SOFT, device=d)),
     lambda z, t: t.nn.functional.cross_entropy(z, t.tensor(SOFT)), Z),
    ("ce_soft_weight_smoothing", lambda z, d: F.cross_entropy(z, dg.tensor(SOFT, device=d), weight=_w(d),
                                                              label_smoothing=0.1),
     lambda z, t: t.nn.functional.cross_entropy(z, t.tensor(SOFT), weight=t.tensor(WEIGHT), label_smoothing=0.1), Z),
    ("ce_nd", lambda z, d: F.cross_entropy(z, _lab(d, LABELS3), weight=_w(d), reduction="none"),
     lambda z, t: t.nn.functional.cross_entropy(z, t.tensor(LABELS3), weight=t.tensor(WEIGHT), reduction="none"),
     Z3),
    ("ce_nd_soft", lambda z, d: F.cross_entropy(z, dg.tensor(SOFT3, device=d)),
     lambda z, t: t.nn.functional.cross_entropy(z, t.tensor(SOFT3)), Z3),
    ("ce_unbatched", lambda z, d: F.cross_entropy(z[0], _lab(d, np.array(2))),
     lambda z, t: t.nn.functional.cross_entropy(z[0], t.tensor(2)), Z),
    ("nll_weight_ignore", lambda z, d: F.nll_loss(z.log_softmax(axis=1), _lab(d, LABELS), weight=_w(d)),
     lambda z, t: t.nn.functional.nll_loss(z.log_softmax(1), t.tensor(LABELS), weight=t.tensor(WEIGHT)), Z),
    ("nll_nd", lambda z, d: F.nll_loss(z.log_softmax(axis=1), _lab(d, LABELS3), reduction="sum"),
     lambda z, t: t.nn.functional.nll_loss(z.log_softmax(1), t.tensor(LABELS3), reduction="sum"), Z3),
    ("bce", lambda p, d: F.binary_cross_entropy(p, dg.tensor(BINARY, device=d)),
     lambda p, t: t.nn.functional.binary_cross_entropy(p, t.tensor(BINARY)), PROBS),
    ("bce_weight", lambda p, d: F.binary_cross_entropy(p, dg.tensor(BINARY, device=d), weight=_w(d)[:3]),
     lambda p, t: t.nn.functional.binary_cross_entropy(p, t.tensor(BINARY), weight=t.tensor(WEIGHT[:3])), PROBS),
    ("bce_logits_pos_weight", lambda z, d: F.binary_cross_entropy_with_logits(
        z, dg.tensor(BINARY, device=d), pos_weight=_w(d)[1:], weight=_w(d)[:3]),
     lambda z, t: t.nn.functional.binary_cross_entropy_with_logits(
         z, t.tensor(BINARY), pos_weight=t.tensor(WEIGHT[1:]), weight=t.tensor(WEIGHT[:3])), Z[:, :3]),
]


def _lab(device, labels):
    return dg.tensor(labels, device=device)


def _w(device):
    return dg.tensor(WEIGHT, device=device)


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_losses_match_pytorch(torch, device, case):
    _, ours, theirs, z = case
    check_op(torch, lambda t: ours(t, device), lambda t: theirs(t, torch), [z], device)


SECOND = [c for c in CASES if c[0] in ("ce_smoothing_weight_ignore", "ce_nd", "ce_soft_weight_smoothing", "bce",
                                        "bce_logits_pos_weight")]


@pytest.mark.parametrize("case", SECOND, ids=[c[0] for c in SECOND])
def test_losses_second_derivatives(device, case):
    _, ours, _, z = case
    assert dg.gradgradcheck(lambda t: ours(t, device), [dg.tensor(z, requires_grad=True, device=device)])


@pytest.mark.oracle
def test_loss_modules_take_pytorch_keywords(torch):
    z, t = dg.tensor(Z, dtype="float64"), torch.tensor(Z)
    pairs = [
        (dg.nn.CrossEntropyLoss(weight=dg.tensor(WEIGHT), ignore_index=2, label_smoothing=0.1),
         torch.nn.CrossEntropyLoss(weight=torch.tensor(WEIGHT), ignore_index=2, label_smoothing=0.1),
         LABELS % 4),
        (dg.nn.NLLLoss(weight=dg.tensor(WEIGHT), reduction="sum"),
         torch.nn.NLLLoss(weight=torch.tensor(WEIGHT), reduction="sum"), LABELS),
    ]
    for ours, theirs, labels in pairs:
        assert ours(z, dg.tensor(labels)).item() == pytest.approx(theirs(t, torch.tensor(labels)).item(), rel=1e-12)
    bce = dg.nn.BCELoss(weight=dg.tensor(WEIGHT[:3]))(dg.tensor(PROBS), dg.tensor(BINARY)).item()
    assert bce == pytest.approx(torch.nn.BCELoss(weight=torch.tensor(WEIGHT[:3]))(
        torch.tensor(PROBS), torch.tensor(BINARY)).item(), rel=1e-12)
    logits = dg.nn.BCEWithLogitsLoss(pos_weight=dg.tensor(WEIGHT[:3]))(dg.tensor(Z[:, :3]), dg.tensor(BINARY)).item()
    assert logits == pytest.approx(torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(WEIGHT[:3]))(
        torch.tensor(Z[:, :3]), torch.tensor(BINARY)).item(), rel=1e-12)


@pytest.mark.oracle
def test_binary_cross_entropy_at_0_and_1_is_finite_as_pytorch(torch):
    p, y = np.array([0.0, 1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0, 1.0])
    ours = F.binary_cross_entropy(dg.tensor(p, dtype="float64"), dg.tensor(y), reduction="none").numpy()
    theirs = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y), reduction="none").numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.oracle
def test_binary_cross_entropy_gradients_at_0_and_1_are_pytorchs(torch):
    """Where the clamped logs are flat, PyTorch's gradient in p is (p − y) / max(p·(1 − p), 1e-12):
    ±1e12 at a confident wrong p, not 0; in y it is log(1 − p) − log(p), ±inf at 0 and 1."""
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-50, 0.3, 0.5])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.7, 0.25])
    ours_p, ours_y = dg.tensor(p, requires_grad=True), dg.tensor(y, requires_grad=True)
    F.binary_cross_entropy(ours_p, ours_y, reduction="sum").backward()
    theirs_p, theirs_y = torch.tensor(p, requires_grad=True), torch.tensor(y, requires_grad=True)
    torch.nn.functional.binary_cross_entropy(theirs_p, theirs_y, reduction="sum").backward()
    np.testing.assert_array_equal(ours_p.grad.numpy(), theirs_p.grad.numpy())
    np.testing.assert_array_equal(ours_y.grad.numpy(), theirs_y.grad.numpy())


def test_loss_mistakes_are_named():
    z = dg.tensor(Z)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*with_logits"):
        F.binary_cross_entropy(z, dg.tensor(BINARY[:, :1].repeat(4, axis=1)))
    with pytest.raises(ValueError, match=r"one value per class, shape \(4,\)"):
        F.cross_entropy(z, dg.tensor(LABELS), weight=dg.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\] \(or ignore_index=-100\)"):
        F.cross_entropy(z, dg.tensor([0, 1, 2, 3, 4, -100]))
    with pytest.raises(TypeError, match="pass the class weights as weight="):
        F.cross_entropy(z, dg.tensor(LABELS), dg.tensor(WEIGHT))
    with pytest.raises(TypeError, match="binary_cross_entropy_with_logits: the third argument is the reduction"):
        F.binary_cross_entropy_with_logits(z[:, :3], dg.tensor(BINARY), dg.tensor(WEIGHT[:3]))  # PyTorch's weight
    with pytest.raises(TypeError, match="labels must be integer class indices"):
        F.cross_entropy(z, dg.tensor(SOFT[:, :3]))


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
def test_label_checks_of_every_integer_kind(dtype):
    z = dg.tensor(Z[:3])
    plain = F.cross_entropy(z, dg.tensor(np.array([0, 3, 1], dtype=dtype))).item()
    assert plain == F.cross_entropy(z, dg.tensor(np.array([0, 3, 1]))).item()
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
        F.cross_entropy(z, dg.tensor(np.array([0, 4, 1], dtype=dtype)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
        F.nll_loss(z, dg.tensor(np.array([0, 4, 1], dtype=dtype)))
    if dtype != "uint8":
        ignored = F.cross_entropy(z, dg.tensor(np.array([0, -100, 1], dtype=dtype))).item()
        assert ignored == pytest.approx(F.cross_entropy(dg.tensor(Z[[0, 2]]), dg.tensor([0, 1])).item(), rel=1e-6)
        with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
            F.cross_entropy(z, dg.tensor(np.array([0, -1, 1], dtype=dtype)))

def test_every_label_ignored_gives_nan_as_pytorch():
    loss = F.cross_entropy(dg.tensor(Z[:2]), dg.tensor([-100, -100]))
    assert np.isnan(loss.item())


@pytest.mark.oracle
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2}, {"weight": WEIGHT}],
                         ids=["plain", "smoothing", "weight"])
def test_a_batch_of_ignored_labels_has_zero_gradient(torch, device, options):
    """Every label ignored: the mean is 0/0 = NaN, as PyTorch's, but the gradient is PyTorch's 0,
    not NaN (a NaN gradient would silently ruin the weights at the next step)."""
    ignored = np.full(6, -100)
    ours_options = {k: dg.tensor(v, device=device) if k == "weight" else v for k, v in options.items()}
    theirs_options = {k: torch.tensor(v) if k == "weight" else v for k, v in options.items()}
    z = dg.tensor(Z, requires_grad=True, device=device)
    zt = torch.tensor(Z, requires_grad=True)
    loss = F.cross_entropy(z, _lab(device, ignored), **ours_options)
    expected = torch.nn.functional.cross_entropy(zt, torch.tensor(ignored), **theirs_options)
    loss.backward()
    expected.backward()
    assert np.isnan(loss.item()) and np.isnan(expected.item())
    np.testing.assert_array_equal(z.grad.numpy(), zt.grad.numpy())
    nll = F.nll_loss(z.log_softmax(axis=1), _lab(device, ignored), weight=ours_options.get("weight"))
    assert dg.grad(nll, [z])[0].numpy().tolist() == np.zeros_like(Z).tolist()

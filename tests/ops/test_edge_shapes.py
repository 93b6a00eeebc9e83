"""0-d and size-0 tensors: results are arrays (usable in place), and axis 0/-1 of a 0-d tensor works."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


ZERO_D_RESULTS = {
    "sum": lambda t: t.sum(),
    "mean": lambda t: t.mean(),
    "max": lambda t: t.max(),
    "logsumexp": lambda t: t.logsumexp(),
    "exp_of_0d": lambda t: t.sum().exp(),
    "add_of_0d": lambda t: t.sum() + t.sum(),
    "index": lambda t: t[1],
    "dot": lambda t: dg.dot(t, t),
    "argmax": lambda t: t.argmax(),
    "compare": lambda t: t.sum() > 0,
}


@pytest.mark.parametrize("name", list(ZERO_D_RESULTS))
def test_a_0d_result_holds_an_array(device, name):
    result = ZERO_D_RESULTS[name](dg.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True))
    assert result.shape == ()
    assert isinstance(result.data, device.xp.ndarray), type(result.data)


def test_in_place_use_of_a_0d_result(device):
    t = dg.tensor([1.0, 2.0], device=device)
    s = t.sum()
    s += 1
    assert s.item() == 4.0
    e = t.max()
    e[...] = 0
    assert e.item() == 0.0


def test_0d_gradients_clip_and_zero_in_place(device):
    p = dg.nn.Parameter(dg.tensor(2.0, device=device))
    (p * p * 10.0).backward()
    assert isinstance(p.grad.data, device.xp.ndarray)
    dg.nn.utils.clip_grad_value_([p], 1.5)
    assert p.grad.item() == 1.5
    opt = dg.optim.SGD([p], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert p.grad.item() == 0.0


@pytest.mark.oracle
@pytest.mark.parametrize("name,ours,theirs", [
    ("softmax", lambda t: t.softmax(axis=-1), lambda t: t.softmax(dim=-1)),
    ("softmax_axis0", lambda t: dg.softmax(t, axis=0), lambda t: t.softmax(dim=0)),
    ("log_softmax", lambda t: t.log_softmax(), lambda t: t.log_softmax(dim=-1)),
    ("logsumexp", lambda t: t.logsumexp(axis=-1), lambda t: t.logsumexp(dim=-1)),
], ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3)])
def test_size_zero_tensors_give_pytorchs_empty_results(torch, device, name, ours, theirs, shape):
    x = dg.zeros(shape, device=device, dtype="float64", requires_grad=True)
    out = ours(x)
    expected = theirs(torch.zeros(shape, dtype=torch.float64))
    assert out.shape == tuple(expected.shape)
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    if out.size:
        out.sum().backward()
        assert x.grad.shape == shape


@pytest.mark.oracle
@pytest.mark.parametrize("name,ours,theirs", [
    ("sum0", lambda t: t.sum(0), lambda t: t.sum(0)),
    ("sum_neg1", lambda t: t.sum(axis=-1), lambda t: t.sum(-1)),
    ("sum_keep", lambda t: t.sum(axis=0, keepdims=True), lambda t: t.sum(0, keepdim=True)),
    ("mean_neg1", lambda t: t.mean(dim=-1), lambda t: t.mean(-1)),
    ("max_axis", lambda t: t.max(axis=0), lambda t: t.amax(0)),
    ("max_dim", lambda t: t.max(dim=-1).values, lambda t: t.max(dim=-1).values),
    ("logsumexp", lambda t: t.logsumexp(-1), lambda t: t.logsumexp(-1)),
    ("softmax", lambda t: t.softmax(dim=-1), lambda t: t.softmax(dim=-1)),
    ("log_softmax", lambda t: t.log_softmax(axis=0), lambda t: t.log_softmax(dim=0)),
    ("squeeze_neg1", lambda t: t.squeeze(-1), lambda t: t.squeeze(-1)),
    ("squeeze0", lambda t: t.squeeze(0), lambda t: t.squeeze(0)),
    ("unsqueeze", lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-1)),
    ("transpose", lambda t: t.transpose(0, -1), lambda t: t.transpose(0, -1)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_axis_0_and_minus_1_of_a_0d_tensor(torch, device, name, ours, theirs):
    x = dg.tensor(1.5, device=device, dtype="float64", requires_grad=True)
    out = ours(x)
    t = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    expected = theirs(t)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-15)
    out.sum().backward()
    (want,) = torch.autograd.grad(expected.sum(), t)
    assert x.grad.numpy().tolist() == want.numpy().tolist()


def test_0d_tensor_rejects_other_axes_clearly(device):
    x = dg.tensor(1.0, device=device)
    for bad in (lambda: x.sum(1), lambda: x.squeeze(-2), lambda: x.softmax(dim=2)):
        with pytest.raises(np.exceptions.AxisError, match="out of bounds for a tensor of dimension 0"):
            bad()
    with pytest.raises(ValueError, match="0-d tensors have no axis to join along; use dg.stack"):
        dg.concatenate([x, x])

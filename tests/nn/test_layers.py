"""Modules, layers and initialisers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import devgrad as dg
from devgrad import nn
from tests.support.helpers import check_op


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 4, generator=0)
        self.stages = [nn.Linear(4, 4, generator=1), nn.ReLU(), nn.Linear(4, 2, generator=2)]
        self.scale = nn.Parameter(dg.ones(1))
        self.shared = self.first  # the same module twice: its parameters count once

    def forward(self, x):
        h = self.first(x).tanh()
        for m in self.stages:
            h = m(h)
        return h * self.scale


def test_parameters_are_found_by_walking_attributes_once_in_order():
    names = [n for n, _ in Block().named_parameters()]
    # A module's own parameters first, then each sub-module's (PyTorch's order).
    assert names == ["scale", "first.weight", "first.bias", "stages.0.weight", "stages.0.bias",
                     "stages.2.weight", "stages.2.bias"]
    assert Block().num_parameters() == 3 * 4 + 4 + 1 + 16 + 4 + 8 + 2


def test_train_eval_propagate_and_repr():
    model = nn.MLP([2, 8, 8, 1], dropout=0.5)
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    text = repr(model)
    assert "Linear(in_features=2, out_features=8, bias=True)" in text and "Dropout(p=0.5)" in text


def test_state_dict_round_trip_and_strict_errors(device):
    a = nn.MLP([3, 5, 2], generator=0).to(device)
    b = nn.MLP([3, 5, 2], generator=1).to(device)
    arrays = [p.data for p in b.parameters()]
    b.load_state_dict(a.state_dict())
    assert all(p.data is arr for p, arr in zip(b.parameters(), arrays)), "values are copied into the same arrays"
    x = dg.randn(4, 3, generator=2, device=device)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    state = a.state_dict()
    del state["net.0.bias"]
    state["net.9.weight"] = dg.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys: net\.0\.bias; unexpected keys: net\.9\.weight"):
        b.load_state_dict(state)
    missing, unexpected = b.load_state_dict(state, strict=False)  # PyTorch's unpacking
    assert (missing, unexpected) == (["net.0.bias"], ["net.9.weight"])
    assert b.load_state_dict(state, strict=False).missing_keys == ["net.0.bias"]
    bad = a.state_dict()
    bad["net.0.weight"] = dg.zeros(2, 2)
    with pytest.raises(ValueError, match=r"net\.0\.weight: shape \(2, 2\) in the state, \(5, 3\) in the model"):
        b.load_state_dict(bad)


def test_to_moves_parameters_in_place_keeping_identity(device):
    model = nn.Linear(2, 3)
    params = model.parameters()
    model.to(device)
    assert model.parameters()[0] is params[0] and params[0].device is device
    model.to(dtype=np.float64)
    assert params[0].dtype == np.float64


def test_zero_grad():
    model = nn.Linear(2, 1)
    model(dg.ones(1, 2)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert model.weight.grad.numpy().tolist() == [[0.0, 0.0]]
    model.zero_grad()
    assert model.weight.grad is None


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("x_shape", [(5, 3), (3,), (2, 4, 3)])
def test_linear_op_matches_torch(torch, device, dtype, x_shape):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((4, 3)), rng.standard_normal(4)]
    check_op(torch, dg.linear, torch.nn.functional.linear, arrays, device, dtype=dtype,
             gradcheck=dtype == np.float64)


def test_linear_feature_mismatch_message():
    layer = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"input has 4 features \(shape \(5, 4\)\) but the weight expects 3"):
        layer(dg.zeros(5, 4))


def test_same_seed_same_initial_weights_on_every_device(device):
    cpu = nn.MLP([4, 16, 3], init="xavier_uniform", generator=7)
    here = nn.MLP([4, 16, 3], init="xavier_uniform", generator=7, device=device)
    for (n1, p1), (n2, p2) in zip(cpu.named_parameters(), here.named_parameters()):
        assert n1 == n2 and p2.device is device
        np.testing.assert_array_equal(p1.numpy(), p2.numpy())
    dg.manual_seed(3)
    a = nn.Linear(5, 5)
    dg.manual_seed(3)
    b = nn.Linear(5, 5, device=device)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())


def test_layers_of_an_mlp_get_different_weights_from_one_seed():
    model = nn.MLP([8, 8, 8, 8], generator=0)
    w = [lin.weight.numpy() for lin in model.linears]
    assert not np.array_equal(w[0], w[1]) and not np.array_equal(w[1], w[2])


@pytest.mark.parametrize("name,check", [
    ("xavier_uniform", lambda w, fi, fo: np.abs(w).max() <= math.sqrt(6 / (fi + fo))
     and np.abs(w).max() > 0.9 * math.sqrt(6 / (fi + fo))),
    ("xavier_normal", lambda w, fi, fo: abs(w.std() - math.sqrt(2 / (fi + fo))) < 0.05 * math.sqrt(2 / (fi + fo))),
    ("kaiming_uniform", lambda w, fi, fo: np.abs(w).max() <= math.sqrt(6 / fi)),
    ("he_normal", lambda w, fi, fo: abs(w.std() - math.sqrt(2 / fi)) < 0.05 * math.sqrt(2 / fi)),
    ("default", lambda w, fi, fo: np.abs(w).max() <= 1 / math.sqrt(fi)),
    ("zeros", lambda w, fi, fo: not w.any()),
])
def test_initialisers_have_their_documented_scale(name, check):
    layer = nn.Linear(400, 300, init=name, generator=0)
    w = layer.weight.numpy()
    assert check(w, 400, 300), name
    assert abs(w.mean()) < 0.01


def test_unknown_init_and_activation_names():
    with pytest.raises(ValueError, match="unknown init 'glorot'.*glorot_uniform"):
        nn.Linear(2, 2, init="glorot")
    with pytest.raises(ValueError, match="unknown activation 'rleu'.*relu"):
        nn.MLP([2, 2, 1], activation="rleu")


def test_mlp_structure_and_output_activation():
    model = nn.MLP([2, 3, 1], activation="sigmoid", output_activation="sigmoid")
    kinds = [type(m).__name__ for m in model.net]
    assert kinds == ["Linear", "Sigmoid", "Linear", "Sigmoid"]
    out = model(dg.randn(10, 2, generator=0)).numpy()
    assert out.shape == (10, 1) and (out > 0).all() and (out < 1).all()


def test_dropout_scales_in_train_and_is_identity_in_eval(device):
    drop = nn.Dropout(0.25, seed=0)
    x = dg.ones(200, 100, device=device)
    y = drop(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    drop.eval()
    assert drop(x) is x
    x.requires_grad_()
    drop.train()
    out = drop(x)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), out.numpy())


def test_sequential_indexing():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    assert len(seq) == 2 and isinstance(seq[-1], nn.ReLU)
    with pytest.raises(IndexError):
        seq[2]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.Linear(2, 2), "relu")


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "leaky_relu"])
def test_mlp_fused_forward_equals_the_layer_by_layer_network(device, activation):
    model = nn.MLP([3, 8, 8, 2], activation=activation, generator=0, device=device, dtype="float64")
    x = dg.randn(6, 3, generator=1, device=device, dtype="float64")
    fused, plain = model(x), model.net(x)
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=1e-12)
    grads_fused = dg.grad(fused.sum(), model.parameters())
    grads_plain = dg.grad(plain.sum(), model.parameters())
    for a, b in zip(grads_fused, grads_plain):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_fused_layer_second_derivatives(device, activation):
    w = dg.tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True, device=device)
    b = dg.tensor(np.random.default_rng(1).standard_normal(4) * 0.1, requires_grad=True, device=device)

    def grad_fn(x):
        y = dg.ops.linalg.linear_act(x, w, b, activation)
        return dg.grad((y * y).sum(), [x, w], create_graph=True)

    x = dg.tensor(np.random.default_rng(2).standard_normal((5, 3)), requires_grad=True, device=device)
    assert dg.gradcheck(grad_fn, [x])


def test_kaiming_mode_picks_the_fan_and_refuses_other_names():
    wide = dg.zeros((300, 400))
    fan_out = nn.init.kaiming_uniform_(wide, mode="fan_out", generator=0).numpy()
    assert math.sqrt(6 / 400) < np.abs(fan_out).max() <= math.sqrt(6 / 300)
    for init in (nn.init.kaiming_uniform_, nn.init.kaiming_normal_):
        with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
            init(wide, mode="fan_avg")

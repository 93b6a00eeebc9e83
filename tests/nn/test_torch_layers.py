"""PyTorch's nn layers in devgrad: activations, LayerNorm, BatchNorm1d, Embedding, Flatten, forward
hooks, Module.requires_grad_/double/float, Sequential(OrderedDict), inference_mode — values and
gradients against PyTorch and float64 finite differences (first and second order)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import devgrad as dg
from devgrad.nn import layers as layers_module
from devgrad.nn import functional as F
from tests.support.helpers import check_op

RNG = np.random.default_rng(3)
X = RNG.standard_normal((4, 5)) * 2.0 + 0.05  # no element sits on a kink
X3 = RNG.standard_normal((3, 4, 2))

ACTIVATIONS = [  # (name, devgrad function, torch.nn.functional name and keywords)
    ("gelu", lambda x: F.gelu(x), ("gelu", {})),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), ("gelu", {"approximate": "tanh"})),
    ("silu", F.silu, ("silu", {})),
    ("elu", lambda x: F.elu(x, alpha=0.7), ("elu", {"alpha": 0.7})),
    ("hardtanh", lambda x: F.hardtanh(x, -1.5, 2.0), ("hardtanh", {"min_val": -1.5, "max_val": 2.0})),
    ("mish", F.mish, ("mish", {})),
    ("softplus_beta", lambda x: F.softplus(x, beta=2.0, threshold=3.0),
     ("softplus", {"beta": 2.0, "threshold": 3.0})),
    ("erf", dg.erf, None),
]


@pytest.mark.oracle
@pytest.mark.parametrize("case", ACTIVATIONS, ids=[c[0] for c in ACTIVATIONS])
def test_activations_match_pytorch(torch, device, case):
    _, fn, spec = case
    if spec is None:
        check_op(torch, fn, torch.erf, [X], device)
        return
    name, kwargs = spec
    check_op(torch, fn, lambda t: getattr(torch.nn.functional, name)(t, **kwargs), [X], device)


@pytest.mark.parametrize("case", ACTIVATIONS, ids=[c[0] for c in ACTIVATIONS])
def test_activations_second_derivatives(device, case):
    x = dg.tensor(X[:2], requires_grad=True, device=device, dtype="float64")
    assert dg.gradgradcheck(case[1], [x])


@pytest.mark.oracle
def test_activation_kinks_and_large_inputs_follow_pytorch(torch):
    values = np.array([-1e4, -1.5, -1.0, 0.0, 1.0, 2.0, 30.0, 1e4])
    for name, fn, spec in ACTIVATIONS[:-1]:
        x = dg.tensor(values, requires_grad=True, dtype="float64")
        t = torch.tensor(values, requires_grad=True)
        fn(x).sum().backward()
        getattr(torch.nn.functional, spec[0])(t, **spec[1]).sum().backward()
        np.testing.assert_allclose(fn(x).numpy(), getattr(torch.nn.functional, spec[0])(t, **spec[1]).detach(),
                                   rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-300, err_msg=name)


def test_activation_modules_and_spec_names():
    x = dg.tensor(X)
    for module, fn in ((dg.nn.GELU(), F.gelu), (dg.nn.GELU("tanh"), lambda t: F.gelu(t, "tanh")),
                       (dg.nn.SiLU(), F.silu), (dg.nn.ELU(0.5), lambda t: F.elu(t, 0.5)),
                       (dg.nn.Hardtanh(-0.5, 0.5), lambda t: F.hardtanh(t, -0.5, 0.5)), (dg.nn.Mish(), F.mish),
                       (dg.nn.Softplus(2.0, 1.0), lambda t: F.softplus(t, 2.0, 1.0))):
        np.testing.assert_array_equal(module(x).numpy(), fn(x).numpy())
    for name in ("gelu", "silu", "elu", "hardtanh", "mish"):
        assert name in dg.nn.HIDDEN_ACTIVATIONS and isinstance(dg.nn.activation(name), dg.nn.Module)
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        dg.nn.GELU("fast")


@pytest.mark.oracle
def test_layer_norm_matches_pytorch(torch, device):
    w, b = RNG.standard_normal((4, 2)), RNG.standard_normal((4, 2))
    check_op(torch, lambda x, w, b: F.layer_norm(x, (4, 2), w, b, eps=1e-5),
             lambda x, w, b: torch.nn.functional.layer_norm(x, (4, 2), w, b, eps=1e-5), [X3, w, b], device)
    module = dg.nn.LayerNorm(5, device=device)
    assert [n for n, _ in module.named_parameters()] == ["weight", "bias"]
    check_op(torch, lambda x: module.to(dtype=np.float64)(x), lambda x: torch.nn.functional.layer_norm(x, (5,)),
             [X], device, gradcheck=False)
    x = dg.tensor(X[:2], requires_grad=True, device=device, dtype="float64")
    assert dg.gradgradcheck(lambda t: F.layer_norm(t, 5), [x])


@pytest.mark.oracle
@pytest.mark.parametrize("options", [{}, {"momentum": None}, {"affine": False, "momentum": 0.3},
                                     {"track_running_stats": False}], ids=["default", "cumulative", "plain", "free"])
def test_batch_norm_trains_and_evaluates_as_pytorch(torch, options):
    """Running statistics, num_batches_tracked, train()/eval(), gradients: step by step as PyTorch."""
    ours = dg.nn.BatchNorm1d(5, **options).double()
    theirs = torch.nn.BatchNorm1d(5, **options).double()
    for step, batch in enumerate((X, X * 3 + 1, X[:2] - 2)):
        x = dg.tensor(batch, requires_grad=True)
        t = torch.tensor(batch, requires_grad=True)
        y, ty = ours(x), theirs(t)
        cot = RNG.standard_normal(batch.shape)
        (y * dg.tensor(cot)).sum().backward()
        (ty * torch.tensor(cot)).sum().backward()
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=f"step {step}")
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)
    ours_state = ours.state_dict()
    assert set(ours_state) == set(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours_state[key].numpy(), value.numpy(), rtol=1e-12, err_msg=key)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(dg.tensor(X)).numpy(), theirs(torch.tensor(X)).detach().numpy(), rtol=1e-10)


@pytest.mark.oracle
def test_batch_norm_on_sequences_and_its_second_derivatives(torch, device):
    w, b = RNG.standard_normal(4), RNG.standard_normal(4)
    check_op(torch, lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
             lambda x, w, b: torch.nn.functional.batch_norm(x, None, None, w, b, training=True), [X3, w, b], device)
    x = dg.tensor(X, requires_grad=True, device=device, dtype="float64")
    assert dg.gradgradcheck(lambda t: F.batch_norm(t, None, None, training=True), [x])
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        dg.nn.BatchNorm1d(5)(dg.tensor(X[:1], dtype="float32"))
    with pytest.raises(ValueError, match=r"expected an input of shape \(N, 3\)"):
        dg.nn.BatchNorm1d(3)(dg.tensor(X))


@pytest.mark.oracle
def test_embedding_and_one_hot_match_pytorch(torch, device):
    index = np.array([[1, 0, 3], [3, 3, 2]])
    table = RNG.standard_normal((4, 3))
    # the padding row gets no gradient by PyTorch's definition, which finite differences cannot see
    check_op(torch, lambda w: F.embedding(dg.tensor(index, device=device), w, padding_idx=3),
             lambda w: torch.nn.functional.embedding(torch.tensor(index), w, padding_idx=3), [table], device,
             gradcheck=False)
    check_op(torch, lambda w: F.embedding(dg.tensor(index, device=device), w),
             lambda w: torch.nn.functional.embedding(torch.tensor(index), w), [table], device)
    layer = dg.nn.Embedding(4, 3, padding_idx=0, generator=0, device=device)
    assert layer.weight.numpy()[0].tolist() == [0.0, 0.0, 0.0] and layer(dg.tensor(index, device=device)).shape == \
        (2, 3, 3)
    np.testing.assert_array_equal(F.one_hot(dg.tensor(index, device=device)).numpy(),
                                  torch.nn.functional.one_hot(torch.tensor(index)).numpy())
    assert F.one_hot(dg.tensor([0, 2]), num_classes=5).shape == (2, 5) and F.one_hot([1]).dtype == np.int64
    with pytest.raises(ValueError, match=r"class values must be in \[0, 1\]"):
        F.one_hot(dg.tensor([0, 2]), num_classes=2)
    for bad in ([4], [0, -1]):
        with pytest.raises(IndexError, match=r"indices must be in \[0, 3\]"):
            layer(dg.tensor(bad, device=device))


def test_flatten_and_unflatten_layers():
    x = dg.tensor(X3)
    assert dg.nn.Flatten()(x).shape == (3, 8) and dg.nn.Flatten(0, 1)(x).shape == (12, 2)
    assert dg.nn.Unflatten(1, (2, 4))(dg.nn.Flatten()(x)).shape == (3, 2, 4)


def test_forward_hooks_run_in_order_replace_values_and_are_removable():
    model = dg.nn.MLP([5, 4, 3], activation="relu", generator=0)
    before = dg.nn.hooks.live()  # hooks other tests of this process left on their own modules
    seen = []
    first = model.linears[0].register_forward_hook(lambda m, args, out: seen.append(("after", out.shape)))
    pre = model.linears[1].register_forward_pre_hook(lambda m, args: (args[0] * 0.0,))
    early = model.linears[0].register_forward_hook(lambda m, args, out: seen.append(("first", args[0].shape)),
                                                   prepend=True)
    out = model(dg.tensor(X, dtype="float32"))
    assert seen == [("first", (4, 5)), ("after", (4, 4))]  # the fused MLP path gives way to the hooks
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(model.linears[1].bias.numpy(), (4, 3)), rtol=1e-6)
    for handle in (first, pre, early):
        handle.remove()
    handle = model.register_forward_hook(lambda m, args, out: out * 2.0)
    doubled = model(dg.tensor(X, dtype="float32")).numpy()
    with handle:
        pass  # a handle is a context manager that removes on exit
    np.testing.assert_allclose(doubled, 2 * model(dg.tensor(X, dtype="float32")).numpy(), rtol=1e-6)
    assert dg.nn.hooks.live() == before


def test_a_hook_left_on_another_model_keeps_this_mlp_fused(monkeypatch):
    """A hook registered (and never removed) on some other module does not send every MLP of the
    process down the unfused path: an MLP gives way only to hooks on its own layers."""
    other = dg.nn.Linear(2, 2)
    other.register_forward_hook(lambda m, args, out: None)
    model = dg.nn.MLP([5, 4, 3], activation="relu", generator=0)
    fused = []
    real = layers_module.LinearAct.apply
    monkeypatch.setattr(layers_module.LinearAct, "apply",
                        staticmethod(lambda *a, **k: fused.append(1) or real(*a, **k)))
    model(dg.tensor(X, dtype="float32"))
    assert fused == [1]
    handle = model.net.register_forward_pre_hook(lambda m, args: None)
    model(dg.tensor(X, dtype="float32"))
    assert fused == [1]  # a hook on its own Sequential: every layer is called
    handle.remove()
    with pytest.raises(TypeError, match="must be callable"):
        model.register_forward_hook(3)


def test_module_dtype_freezing_and_named_sequential():
    model = dg.nn.Sequential(OrderedDict([("fc", dg.nn.Linear(5, 4)), ("norm", dg.nn.BatchNorm1d(4)),
                                          ("act", dg.nn.GELU()), ("out", dg.nn.Linear(4, 2))]))
    assert model.fc is model[0] and list(model.state_dict())[:2] == ["fc.weight", "fc.bias"]
    assert "norm.running_mean" in model.state_dict() and "norm.num_batches_tracked" in model.state_dict()
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters()) and model.norm.running_var.dtype == np.float64
    assert model.norm.num_batches_tracked.dtype == np.int64
    assert model(dg.tensor(X, dtype="float64")).dtype == np.float64
    model.float()
    assert all(p.dtype == np.float32 for p in model.parameters())
    model.fc.requires_grad_(False)
    model(dg.tensor(X, dtype="float32")).sum().backward()
    assert model.fc.weight.grad is None and model.out.weight.grad is not None
    with pytest.raises(ValueError, match="cannot name a module"):
        dg.nn.Sequential(OrderedDict([("forward", dg.nn.ReLU())]))


def test_inference_mode_records_no_graph():
    w = dg.tensor([1.0, 2.0], requires_grad=True)
    with dg.inference_mode():
        assert not (w * 2).requires_grad
    with dg.inference_mode(False):
        assert (w * 2).requires_grad

    @dg.inference_mode()
    def predict(x):
        return (x * w).sum()

    assert not predict(dg.tensor([1.0, 1.0])).requires_grad and dg.is_grad_enabled()


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_mlp_norm_sits_after_each_hidden_linear_before_the_activation(norm):
    mlp = dg.nn.MLP([5, 4, 3, 2], norm=norm, activation="tanh", generator=0, dtype="float64")
    kinds = [type(m).__name__ for m in mlp.net]
    layer = "LayerNorm" if norm == "layer" else "BatchNorm1d"
    assert kinds == ["Linear", layer, "Tanh", "Linear", layer, "Tanh", "Linear"]
    x = dg.tensor(X, dtype="float64")
    np.testing.assert_allclose(mlp(x).numpy(), mlp.net(x).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="norm must be one of none, layer, batch, got 'group'"):
        dg.nn.MLP([2, 3, 1], norm="group")


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
def test_softmax_modules_take_pytorchs_dim(torch, device, name):
    for make in (lambda nn: getattr(nn, name)(dim=0), lambda nn: getattr(nn, name)(0)):
        check_op(torch, make(dg.nn), make(torch.nn), [X], device)
    np.testing.assert_array_equal(getattr(dg.nn, name)(axis=0)(dg.tensor(X, device=device)).numpy(),
                                  make(dg.nn)(dg.tensor(X, device=device)).numpy())
    assert getattr(dg.nn, name)(dim=0).dim == 0 and getattr(dg.nn, name)().axis == -1
    with pytest.raises(TypeError, match="not both"):
        getattr(dg.nn, name)(dim=0, axis=0)

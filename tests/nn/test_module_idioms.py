"""PyTorch's Module idioms where devgrad did something else without saying so: the order apply()
visits modules in, gradients kept by to(), load_state_dict's result, state_dict's order, a
Parameter replaced by a plain tensor, a Dropout given a new seed, a layer's forward replaced on
the instance, sub-modules under private names."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from devgrad import nn

X = np.random.default_rng(7).standard_normal((5, 3))


def test_apply_visits_children_in_order_then_the_parent():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)))
    seen = []
    model.apply(lambda m: seen.append(m))
    inner = model[2]
    assert seen == [model[0], model[1], inner[0], inner[1], inner, model]


@pytest.mark.oracle
def test_apply_numbers_layers_as_pytorch_does(torch):
    def build(nn_):
        return nn_.Sequential(nn_.Linear(3, 4), nn_.ReLU(), nn_.Sequential(nn_.Linear(4, 4)), nn_.Linear(4, 2))

    def numbered(module, counter, lib):
        if isinstance(module, lib.Linear):
            module.weight.data[...] = counter[0]
            counter[0] += 1

    mine, theirs, ours_count, their_count = build(nn), build(torch.nn), [0], [0]
    mine.apply(lambda m: numbered(m, ours_count, nn))
    theirs.apply(lambda m: numbered(m, their_count, torch.nn))
    assert {k: float(v.numpy().flat[0]) for k, v in mine.state_dict().items() if k.endswith("weight")} == \
        {k: float(v.numpy().flat[0]) for k, v in theirs.state_dict().items() if k.endswith("weight")}


@pytest.mark.parametrize("move", ["to cpu", "double", "float"])
def test_to_keeps_the_gradients_cast_with_their_parameters(move):
    model = nn.Linear(3, 2, generator=0)
    model(dg.tensor(X.astype(np.float32))).sum().backward()
    before = model.weight.grad.numpy().copy()
    {"to cpu": lambda: model.to("cpu"), "double": model.double, "float": model.float}[move]()
    assert model.weight.grad is not None and model.weight.grad.dtype == model.weight.dtype
    np.testing.assert_array_equal(model.weight.grad.numpy(), before.astype(model.weight.dtype))


def test_state_dict_goes_module_by_module_parameters_then_buffers():
    model = nn.MLP([3, 4, 2], norm="batch", generator=0)
    assert list(model.state_dict()) == ["net.0.weight", "net.0.bias", "net.1.weight", "net.1.bias",
                                        "net.1.running_mean", "net.1.running_var", "net.1.num_batches_tracked",
                                        "net.3.weight", "net.3.bias"]


def test_a_parameter_is_not_replaced_by_a_plain_tensor():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"Linear\.weight is a Parameter: assign a Parameter"):
        layer.weight = dg.ones((2, 2))
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    layer.bias = None  # allowed, as in PyTorch
    layer.weight = nn.Parameter(dg.ones((2, 2)))
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


def test_a_dropout_given_a_new_seed_restarts_its_masks_from_it():
    x = dg.ones((4, 6))
    used = nn.Dropout(0.5, seed=1)
    used(x)
    used.seed = 7
    np.testing.assert_array_equal(used(x).numpy(), nn.Dropout(0.5, seed=7)(x).numpy())


def test_a_sequential_item_stays_a_module():
    seq = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(TypeError, match="item 1 must stay a Module"):
        setattr(seq, "1", None)
    assert len(seq) == 2


def test_an_mlp_runs_a_forward_set_on_a_layer():
    model = nn.MLP([3, 4, 2], generator=0, dtype="float64")
    x = dg.tensor(X)
    model(x)  # planned with the layers' own forwards
    layer = model.net[0]
    layer.forward = lambda t: nn.Linear.forward(layer, t) * 0.0
    np.testing.assert_array_equal(model(x).numpy(), model.net(x).numpy())
    np.testing.assert_array_equal(model(x).numpy(), np.broadcast_to(model.net[2].bias.numpy(), (5, 2)))


class _Private(nn.Module):
    def __init__(self):
        super().__init__()
        self._fc = nn.Linear(3, 3, generator=0)
        self._drop = nn.Dropout(0.5)
        self._scale = nn.Parameter(dg.ones(3))

    def forward(self, x):
        return self._drop(self._fc(x)) * self._scale


def test_modules_and_parameters_under_private_names_are_registered():
    model = _Private()
    assert list(model.state_dict()) == ["_scale", "_fc.weight", "_fc.bias"]  # its own first, as PyTorch
    assert len(model.parameters()) == 3
    model.eval()
    x = dg.tensor(X.astype(np.float32))
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())  # the dropout is off
    model.double()
    assert model._fc.weight.dtype == np.float64 and model._scale.dtype == np.float64


def test_module_containers_remove_items_as_pytorch_does():
    layers = [nn.Linear(2, 2, generator=i) for i in range(3)]
    listed = nn.ModuleList(layers)
    del listed[0]
    assert listed.pop() is layers[2] and list(listed) == [layers[1]]
    assert [name for name, _ in listed.named_parameters()] == ["0.weight", "0.bias"]
    named = nn.ModuleDict({"a": layers[0], "b": layers[1]})
    assert named.pop("a") is layers[0]
    del named["b"]
    assert len(named) == 0 and named.parameters() == []
    with pytest.raises(TypeError, match="ModuleList holds Modules"):
        listed.append("relu")


@pytest.mark.oracle
def test_train_calls_each_childs_own_train_as_pytorch_does(torch):
    """A sub-module overriding train() (a BatchNorm kept frozen) has its say when its parent is
    put in training mode; its running statistics then stay as they were."""

    def frozen(lib):
        class FrozenNorm(lib.nn.BatchNorm1d):
            def train(self, mode=True):
                return super().train(False)

        class Net(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.bn = FrozenNorm(2)

            def forward(self, x):
                return self.bn(x)

        net = Net().train()
        net(lib.tensor([[0.0, 1.0], [4.0, 11.0]]))
        return net.bn.training, net.bn.running_mean.tolist()

    assert frozen(dg) == frozen(torch) == (False, [0.0, 0.0])


@pytest.mark.oracle
def test_a_child_held_twice_is_one_child_and_one_buffer_owner_as_in_pytorch(torch):
    """apply() and children() reach a module held under two names once (a doubled weight is
    doubled once), and a buffer two modules share is listed once."""

    def shared(lib, no_grad):
        layer = lib.nn.Linear(1, 1, bias=False)
        model = lib.nn.Sequential(layer, layer)
        with no_grad():
            layer.weight[...] = 1.0

        def double(m):
            if isinstance(m, lib.nn.Linear):
                with no_grad():
                    m.weight *= 2.0

        model.apply(double)
        return float(layer.weight.detach().sum()), len(list(model.children()))

    assert shared(dg, dg.no_grad) == shared(torch, torch.no_grad) == (2.0, 1)
    mask = dg.tensor([1.0, 0.0])
    first, second = nn.Module(), nn.Module()
    for m in (first, second):
        m.register_buffer("mask", mask)
    assert [name for name, _ in nn.Sequential(first, second).named_buffers()] == ["0.mask"]

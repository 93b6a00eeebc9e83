"""Sequential edited like a list (PyTorch's idioms), and an MLP whose layers were edited: what a
Sequential or an MLP holds, prints and saves is what its forward runs."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import devgrad as dg
from devgrad import nn

X = np.random.default_rng(5).standard_normal((6, 3))


class Doubled(nn.Linear):
    """A Linear with its own forward: never fused with the activation after it."""

    def forward(self, x):
        return super().forward(x) * 2.0


def _by_hand(layers, x):
    """The layers' forward, each module called in turn: what the model should compute."""
    for layer in layers:
        x = layer(x)
    return x


EDITS = {  # name: (edit of an MLP([3, 5, 5, 2]) with layers Linear, ReLU, Linear, ReLU, Linear, what it holds then)
    "an activation replaced by index": (lambda m: m.net.__setitem__(1, nn.Tanh()), lambda L: [L[0], nn.Tanh, *L[2:]]),
    "an activation replaced by name": (lambda m: setattr(m.net, "3", nn.Sigmoid()),
                                       lambda L: [*L[:3], nn.Sigmoid, L[4]]),
    "a Linear replaced by a subclass": (lambda m: m.net.__setitem__(2, Doubled(5, 5, generator=2)),
                                        lambda L: [*L[:2], Doubled, *L[3:]]),
    "an activation deleted": (lambda m: m.net.__delitem__(3), lambda L: [*L[:3], L[4]]),
    "a layer appended": (lambda m: m.net.append(nn.Tanh()), lambda L: [*L, nn.Tanh]),
    "a layer inserted": (lambda m: m.net.insert(1, nn.LeakyReLU(0.3)), lambda L: [L[0], nn.LeakyReLU, *L[1:]]),
    "the Sequential replaced": (lambda m: setattr(m, "net", nn.Sequential(m.net[0], nn.Tanh(), m.net[2], nn.Tanh(),
                                                                          m.net[4])),
                                lambda L: [L[0], nn.Tanh, L[2], nn.Tanh, L[4]]),
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_an_mlp_runs_its_layers_as_edited(edit):
    """The MLP fuses each Linear with the activation after it: the fusion follows the layers it
    holds now, not those it was built with."""
    change, expected = EDITS[edit]
    model = nn.MLP([3, 5, 5, 2], activation="relu", generator=0, dtype="float64")
    x = dg.tensor(X)
    model(x)  # the fusion planned for the layers as built
    before = list(model.net)
    change(model)
    held = expected(before)  # a module kept, or the type of a new one
    assert [type(m) if isinstance(k, type) else m for m, k in zip(model.net, held)] == held
    assert len(model.net) == len(held)
    out, reference = model(x), _by_hand(list(model.net), x)
    np.testing.assert_array_equal(out.numpy(), reference.numpy())
    params = model.parameters()
    assert {id(p) for p in params} == {id(p) for m in model.net for p in m.parameters()}
    for g, r in zip(dg.grad(out.sum(), params), dg.grad(reference.sum(), params)):
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-12, atol=1e-15)


def test_a_module_set_on_a_sequential_runs_where_it_is_listed():
    a, b, c = nn.Linear(3, 4, generator=0), nn.ReLU(), nn.Linear(4, 2, generator=1)
    seq = nn.Sequential(a, b)
    seq.head = c  # a new name: appended, as in PyTorch
    assert list(seq) == [a, b, c] and [n for n, _ in seq.named_children()] == ["0", "1", "head"]
    x = dg.tensor(X.astype(np.float32))
    np.testing.assert_array_equal(seq(x).numpy(), c(b(a(x))).numpy())
    del seq.head
    assert list(seq) == [a, b] and seq(x).shape == (6, 4)


def test_a_numbered_sequential_stays_numbered_by_position():
    layers = [nn.Linear(3, 3, generator=i) for i in range(4)]
    seq = nn.Sequential(*layers)
    del seq[1]
    assert list(seq) == [layers[0], *layers[2:]]
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    assert seq.pop() is layers[3] and list(seq) == [layers[0], layers[2]]
    seq.insert(0, layers[1])
    assert list(seq) == [layers[1], layers[0], layers[2]] and seq[0] is layers[1]
    seq.extend([layers[3]])
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"] and seq[-1] is layers[3]
    del seq[1:3]
    assert list(seq) == [layers[1], layers[3]] and [n for n, _ in seq.named_children()] == ["0", "1"]
    assert list(seq[1:]) == [layers[3]]


def test_a_named_sequential_keeps_its_names():
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(3, 4)), ("act", nn.ReLU()), ("out", nn.Linear(4, 2))]))
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["fc", "out"] and seq.out is seq[1]
    seq[0] = nn.Linear(3, 4)
    assert seq.fc is seq[0]
    with pytest.raises(ValueError, match="names them"):
        seq.insert(0, nn.ReLU())
    assert [n for n, _ in seq.named_children()] == ["fc", "out"]


def test_sequential_edits_refuse_what_is_not_a_module_or_an_index():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(TypeError, match="not a Module"):
        seq[0] = "relu"
    with pytest.raises(TypeError, match="not a Module"):
        seq.append(lambda x: x)
    with pytest.raises(IndexError, match="no index 2"):
        seq[2] = nn.ReLU()
    with pytest.raises(IndexError, match="no index -3"):
        del seq[-3]
    with pytest.raises(TypeError, match="integers or slices"):
        seq["0"]
    assert len(seq) == 2


@pytest.mark.oracle
def test_sequential_edits_match_pytorch(torch):
    """The same edits on the same layers: the same modules in the same order, state_dict keys and
    outputs."""
    def edit(nn_, seq):
        seq[1] = nn_.Tanh()
        seq.append(nn_.Linear(4, 4))
        del seq[0]
        seq.insert(0, nn_.Linear(3, 4))
        seq.extend([nn_.Sigmoid()])
        seq.pop(2)
        seq.head = nn_.Linear(4, 2)
        return seq

    mine = edit(nn, nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4)))
    theirs = edit(torch.nn, torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4)))
    assert [type(m).__name__ for m in mine] == [type(m).__name__ for m in theirs]
    assert list(mine.state_dict()) == list(theirs.state_dict())
    theirs = theirs.double()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(mine.state_dict()[name].numpy().astype(np.float64)))
    mine = mine.double()
    np.testing.assert_allclose(mine(dg.tensor(X)).numpy(), theirs(torch.from_numpy(X)).detach().numpy(),
                               rtol=1e-12, atol=1e-14)


def _zeroed(module, args, out):
    return out * 0.0


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_mlp_runs_the_hooks_its_layers_hold(how, monkeypatch):
    """A hook on a layer of an MLP makes it call its layers (the fused path would skip the hook), also
    in a copy whose hooks were never registered through a handle: deep-copied after the original's
    hook is removed, or unpickled in a process that registered none."""
    import copy
    import pickle

    from devgrad.nn import hooks

    model = nn.MLP([3, 4, 2], generator=0, dtype="float64")
    handle = model.net[1].register_forward_hook(_zeroed)
    if how == "deepcopy":
        twin = copy.deepcopy(model)
        handle.remove()
    else:
        blob = pickle.dumps(model)
        monkeypatch.setattr(hooks, "_live", [0])  # a fresh process: no hook registered there
        twin = pickle.loads(blob)
    x = dg.tensor(X)
    np.testing.assert_array_equal(twin(x).numpy(), _by_hand(list(twin.net), x).numpy())
    assert np.all(twin(x).numpy() == np.broadcast_to(twin.net[2].bias.numpy(), (6, 2)))  # the ReLU's output zeroed

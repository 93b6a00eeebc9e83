"""A CPU ``CapturedStep`` follows what its step depends on beyond its inputs and its optimizer's
parameters: the other tensors of the modules it calls (parameters another optimizer updates,
frozen ones, buffers), the optimizer's state and its settings. Each scenario runs the same steps
eagerly and captured, with the same change between calls, and every loss, parameter, gradient
and buffer must be the eager one, bit for bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import devgrad as dg
from devgrad import nn, optim
from devgrad.capture import CapturedStep
from devgrad.nn import functional as F
from tests.support.helpers import training_step

CALLS = 9


def _batch(i: int):
    r = np.random.default_rng(i)
    return dg.tensor(r.standard_normal((8, 4)).astype(np.float32) + 1), dg.tensor(r.integers(0, 3, 8))


class RunningNorm(nn.Module):
    """Subtracts a running mean of its inputs, kept in buffers it updates through ``.data``."""

    def __init__(self, n: int):
        super().__init__()
        self.register_buffer("count", dg.zeros((), dtype="float32"))
        self.register_buffer("mean", dg.zeros(n, dtype="float32"))

    def forward(self, x):
        if self.training:
            with dg.no_grad():
                self.count.data += 1
                self.mean.data[...] = self.mean.data + (x.data.mean(axis=0) - self.mean.data) / self.count.data
        return x - self.mean


def _gradients_only():
    """Forward and backward in the step, no optimizer given: the caller steps it outside."""
    model = nn.MLP([4, 16, 3], generator=1)
    opt = optim.SGD(model.parameters(), lr=0.05)

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        return loss
    return model, step, None, lambda i: opt.step()


def _second_optimizer():
    """The step updates the head; another optimizer updates the body from the gradients it computes."""
    model = nn.MLP([4, 16, 3], generator=1)
    head = optim.SGD(model.net[2].parameters(), lr=0.1, capturable=True)
    body = optim.SGD(model.net[0].parameters(), lr=0.05)

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        head.step()
        return loss
    return model, step, head, lambda i: body.step()


def _teacher():
    """A frozen copy of the student whose arrays are replaced by the student's every 4 calls."""
    student, teacher = nn.MLP([4, 8, 3], generator=1), nn.MLP([4, 8, 3], generator=2).requires_grad_(False)
    opt = optim.SGD(student.parameters(), lr=0.1, capturable=True)

    step = training_step(opt, lambda x, y: F.mse_loss(student(x), teacher(x)))

    def refresh(i):
        if i % 4 == 3:
            for s, t in zip(student.parameters(), teacher.parameters()):
                t.data = s.data.copy()
    return nn.Sequential(student, teacher), step, opt, refresh


def _with(model, opt, between=lambda i: None):
    return model, training_step(opt, lambda x, y: F.cross_entropy(model(x), y)), opt, between


def _running_norm():
    model = nn.Sequential(RunningNorm(4), nn.MLP([4, 16, 3], generator=1))
    return _with(model, optim.SGD(model.parameters(), lr=0.1, capturable=True))


def _state_cleared():
    model = nn.MLP([4, 16, 3], generator=1)
    opt = optim.Adam(model.parameters(), lr=0.01, capturable=True)
    return _with(model, opt, lambda i: opt.state.clear() if i == 5 else None)


def _betas_changed_in_place():
    model = nn.MLP([4, 16, 3], generator=1)
    opt = optim.Adam(model.parameters(), lr=0.01, capturable=True)
    opt.param_groups[0]["betas"] = [0.9, 0.999]  # a list, as many scripts write it

    def between(i):
        if i == 5:
            opt.param_groups[0]["betas"][0] = 0.5
    return _with(model, opt, between)


def _batch_norm():
    """Training batch norm: a step this recorder refuses; its refused recording must leave no trace."""
    model = nn.MLP([4, 16, 3], generator=1, norm="batch")
    return _with(model, optim.SGD(model.parameters(), lr=0.1, capturable=True))


def _repeated_first(i: int):
    """The first three calls (eager, recorded, checked) see one batch; later calls others: a lookup the
    recording froze would pass the check."""
    return _batch(max(i, 2))


def _ignored(i: int):
    """Labels with one ignored position in the first calls, three later (padding)."""
    x, y = _batch(i)
    labels = y.numpy().copy()
    labels[: 1 if i < 4 else 3] = -100
    return x, dg.tensor(labels)


CLASS_WEIGHT = dg.tensor(np.array([0.2, 1.0, 3.0], np.float32))
TABLE = dg.tensor(np.array([[1.0, 0.0, 0.5], [0.0, 2.0, 0.0], [0.3, 0.0, 1.0]], np.float32))


def _class_weights():
    model = nn.MLP([4, 16, 3], generator=1)
    opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)

    step = training_step(opt, lambda x, y: F.cross_entropy(model(x), y, weight=CLASS_WEIGHT))
    return model, step, opt, lambda i: None, _repeated_first


def _table_lookup():
    """Targets looked up in a tensor outside every module by the batch's labels."""
    model = nn.MLP([4, 16, 3], generator=1)
    opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)

    step = training_step(opt, lambda x, y: F.mse_loss(model(x), TABLE[y]))
    return model, step, opt, lambda i: None, _repeated_first


def _frozen_embedding():
    model = nn.Sequential(nn.Embedding(10, 5, generator=3), nn.Linear(5, 3, generator=1))
    model[0].weight.requires_grad_(False)
    opt = optim.SGD(model[1].parameters(), lr=0.1, capturable=True)

    step = training_step(opt, lambda tokens, y: F.cross_entropy(model(tokens), y))

    def batch(i):
        r = np.random.default_rng(max(i, 2))
        return dg.tensor(r.integers(0, 10, 8)), dg.tensor(r.integers(0, 3, 8))
    return model, step, opt, lambda i: None, batch


def _more_ignored():
    model = nn.MLP([4, 16, 3], generator=1)
    return (*_with(model, optim.SGD(model.parameters(), lr=0.1, capturable=True)), _ignored)


def _closure(clears_inside: bool):
    """Tensors in a closure (no module), updated outside the step by an optimizer it is not given;
    their gradients cleared in the step, or by the caller until call 5 (then they add up)."""
    w = dg.tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    b = dg.zeros(3, requires_grad=True)
    opt = optim.SGD([w, b], lr=0.1)
    holder = nn.Module()
    holder.w, holder.b = w, b  # for _run, which reads the parameters from a module

    def step(x, y):
        if clears_inside:
            w.grad = b.grad = None
        loss = F.cross_entropy(x @ w + b, y)
        loss.backward()
        return loss

    def between(i):
        opt.step()
        if not clears_inside and i < 5:
            w.grad = b.grad = None
    return holder, step, None, between


def _nesterov_two_batch_sizes():
    """Small parameters (the eager steps' flat SGD update) and a last partial batch (two recordings):
    the recorded per-parameter update writes scratch the eager one leaves alone."""
    model = nn.MLP([4, 16, 16, 3], generator=1)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, capturable=True)

    def batch(i):
        x, y = _batch(i)
        return (x, y) if i % 2 == 0 else (x[:5], y[:5])
    return (*_with(model, opt), batch)


SCENARIOS = {"gradients only, the optimizer stepped outside": _gradients_only,
             "a second optimizer outside the step": _second_optimizer,
             "a frozen teacher's arrays replaced": _teacher,
             "buffers a module updates in forward before the loss reads labels, refused": _running_norm,
             "the optimizer's state cleared": _state_cleared,
             "betas changed in place": _betas_changed_in_place,
             "training batch norm, refused": _batch_norm,
             "class weights looked up by the labels": _class_weights,
             "a table outside the modules looked up by the labels": _table_lookup,
             "a frozen embedding": _frozen_embedding,
             "more labels ignored than when recorded": _more_ignored,
             "Nesterov with weight decay, two batch sizes": _nesterov_two_batch_sizes,
             "tensors in a closure, cleared in the step": lambda: _closure(True),
             "tensors in a closure, cleared by the caller until it stops": lambda: _closure(False)}


def _run(make, captured: bool):
    model, fn, opt, between, *batch = make()
    batch = batch[0] if batch else _batch
    step = CapturedStep(fn, "cpu", optimizer=opt) if captured else fn
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(CALLS):
            seen.append(step(*batch(i)).numpy().tobytes())
            between(i)
            seen += [p.numpy().tobytes() for p in model.parameters()]
            seen += [None if p.grad is None else p.grad.numpy().tobytes() for p in model.parameters()]
            seen += [b.numpy().tobytes() for b in model.buffers()]
    return seen, step, [str(w.message) for w in caught]


@pytest.mark.parametrize("scenario", list(SCENARIOS), ids=list(SCENARIOS))
def test_what_a_step_depends_on_beyond_its_optimizer_replays_as_eagerly(scenario):
    eager, _, _ = _run(SCENARIOS[scenario], captured=False)
    captured, step, caught = _run(SCENARIOS[scenario], captured=True)
    assert captured == eager
    if scenario.endswith("refused"):
        assert step.replays == 0 and len(caught) == 1 and "running it eagerly" in caught[0]
    elif scenario.endswith("until it stops"):  # then the step adds to the gradients: recorded afresh, refused
        assert step.replays >= 2 and len(caught) == 1 and "adds to the gradients" in caught[0]
    elif scenario.startswith("more labels ignored"):  # another length selected: those calls run eagerly
        assert step.replays == 2 and step.diverged == CALLS - 4 and not caught
    else:
        assert step.replays >= 3 and not caught


def _clipped():
    """dg.clip's gradient fills a boolean mask made with ones (a fill a replay must cast as NumPy does)."""
    model = nn.Linear(4, 3, generator=1)
    opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)

    step = training_step(opt, lambda x, y: F.cross_entropy(dg.clip(model(x), -0.5, 0.5), y))
    return model, step, opt, lambda i: None


def test_a_step_that_clips_replays_as_eagerly():
    eager, _, _ = _run(_clipped, captured=False)
    captured, step, caught = _run(_clipped, captured=True)
    assert captured == eager and step.replays == CALLS - 2 and not caught


# gradients whose squared sum s has NumPy's scalar s ** 0.5 (the C library's pow) an ulp away from sqrt(s)
AWKWARD = [[1.3150897378349449, 1.214557620937242], [1.21924719376231, 0.5793640167062328],
           [1.1468939097035395, 0.9829226547323913], [0.6339649507748883, 1.5918119103126322]]


@pytest.mark.parametrize("norm_type", [2.0, 3.0])
def test_a_clipping_norm_replays_the_eager_bits(norm_type):
    """clip_grad_norm_'s norm is a power of the gradients' total: a replay, which computes it on
    0-d arrays, must round it as the eager step does."""
    def run(captured: bool):
        w = nn.Parameter(dg.zeros(2, dtype="float64"))
        opt = optim.SGD([w], lr=0.1, capturable=True)

        def step(x):
            loss = (w * x).sum()  # w's gradient is x
            opt.zero_grad()
            loss.backward()
            norm = nn.utils.clip_grad_norm_([w], max_norm=0.5, norm_type=norm_type)
            opt.step()
            return norm
        fn = CapturedStep(step, "cpu", optimizer=opt) if captured else step
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            norms = [fn(dg.tensor(np.array(AWKWARD[i % 4]))).numpy().tobytes() for i in range(CALLS)]
        return norms, w.numpy().tobytes(), getattr(fn, "replays", None)
    eager, captured = run(False), run(True)
    assert captured[:2] == eager[:2] and captured[2] == CALLS - 2


@pytest.mark.parametrize("sizes,rows", [([4, 1, 1], 8), ([1, 1], 8), ([4, 5, 3], 1), ([4, 5, 1], 1)],
                         ids=["one unit", "one feature", "one row", "one row, one output"])
def test_products_with_a_side_of_one_replay_as_eagerly(sizes, rows):
    """matmul is a generalised ufunc: its one-element operands are matrices, not scalars to broadcast."""
    def make():
        model = nn.MLP(sizes, generator=1)
        opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)

        step = training_step(opt, lambda x, y: F.mse_loss(model(x), y))

        def batch(i):
            r = np.random.default_rng(i)
            return (dg.tensor(r.standard_normal((rows, sizes[0])).astype(np.float32)),
                    dg.tensor(r.standard_normal((rows, sizes[-1])).astype(np.float32)))
        return model, step, opt, lambda i: None, batch
    eager, _, _ = _run(make, captured=False)
    captured, step, caught = _run(make, captured=True)
    assert captured == eager and step.replays == CALLS - 2 and not caught


def test_a_refused_recording_leaves_the_random_stream_as_it_found_it():
    """A step that draws noise from devgrad's default generator cannot be replayed (the draw would
    be frozen): refused, it runs eagerly with the very numbers an eager run draws."""
    def make():
        dg.manual_seed(0)
        model = nn.MLP([4, 8, 3], generator=1)
        opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)

        step = training_step(opt, lambda x, y: F.cross_entropy(model(x + dg.randn(*x.shape) * 0.1), y))
        return model, step, opt, lambda i: None
    eager, _, _ = _run(make, captured=False)
    captured, step, caught = _run(make, captured=True)
    assert captured == eager and step.replays == 0 and len(caught) == 1 and "host data" in caught[0]


def test_a_call_whose_input_takes_a_gradient_runs_eagerly():
    """x.grad (saliency, adversarial inputs) is the eager step's on every call: such calls run eagerly."""
    def run(captured: bool):
        model = nn.MLP([4, 8, 3], generator=1)
        opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)
        step = training_step(opt, lambda x, y: F.cross_entropy(model(x), y))
        fn = CapturedStep(step, "cpu", optimizer=opt) if captured else step
        seen = []
        for i in range(CALLS):
            x, y = _batch(i)
            x.requires_grad_(i % 3 != 2)  # every third call without
            seen += [fn(x, y).numpy().tobytes(), None if x.grad is None else x.grad.numpy().tobytes()]
        return seen, [p.numpy().tobytes() for p in model.parameters()]
    assert run(True) == run(False)


def test_in_place_methods_on_tensors_outside_the_modules_replay():
    """PyTorch's in-place methods on tensors the recording does not trace (kept in a closure): a
    metric sum (add_), a count reset and bumped (zero_, add_ of a constant), an average of the
    weights (mul_, add_ with alpha), a slot written by index: replays repeat them as eager steps do."""
    def run(captured: bool):
        model = nn.MLP([4, 8, 3], generator=1)
        opt = optim.SGD(model.parameters(), lr=0.1, capturable=True)
        total, calls, last = dg.zeros((), dtype="float64"), dg.zeros((), dtype="int64"), dg.zeros(2)
        average = [dg.tensor(p.numpy().copy()) for p in model.parameters()]

        def step(x, y):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total.add_(loss.detach())
            calls.zero_()
            calls.add_(1)
            last[1] = loss.detach()
            with dg.no_grad():
                for a, p in zip(average, model.parameters()):
                    a.mul_(0.9).add_(p, alpha=0.1)
            return loss
        fn = CapturedStep(step, "cpu", optimizer=opt) if captured else step
        seen = []
        for i in range(CALLS):
            seen += [fn(*_batch(i)).numpy().tobytes(), total.numpy().tobytes(), calls.numpy().tobytes(),
                     last.numpy().tobytes(), *(a.numpy().tobytes() for a in average)]
        return seen, getattr(fn, "replays", None)
    (captured, replays), (eager, _) = run(True), run(False)
    assert captured == eager and replays == CALLS - 2


def _two_optimizers():
    """The step steps the head's Adam (given to CapturedStep) and the body's (not given): refused."""
    model = nn.MLP([4, 16, 3], generator=1)
    head = optim.Adam(model.net[2].parameters(), lr=0.01, capturable=True)
    body = optim.Adam(model.net[0].parameters(), lr=0.01, capturable=True)

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        head.zero_grad()
        body.zero_grad()
        loss.backward()
        head.step()
        body.step()
        return loss
    return model, step, head, lambda i: None


class Scaled(nn.Module):
    """An MLP whose output is scaled by a tensor it keeps in a dict attribute."""

    def __init__(self):
        super().__init__()
        self.body = nn.MLP([4, 16, 3], generator=1)
        self.scales = {"out": dg.ones(3)}

    def forward(self, x):
        return self.body(x) * self.scales["out"]


def _dict_held_tensor():
    model = Scaled()

    def between(i):
        if i == 4:
            model.scales["out"].data = np.array([0.5, 2.0, 1.0], np.float32)
    return _with(model, optim.SGD(model.parameters(), lr=0.1, capturable=True), between)


def test_an_optimizer_stepped_but_not_given_is_refused():
    eager, _, _ = _run(_two_optimizers, captured=False)
    captured, step, caught = _run(_two_optimizers, captured=True)
    assert captured == eager and step.replays == 0 and len(caught) == 1 and "not given to CapturedStep" in caught[0]


def test_a_tensor_a_module_holds_in_a_dict_given_another_array_records_afresh():
    eager, _, _ = _run(_dict_held_tensor, captured=False)
    captured, step, caught = _run(_dict_held_tensor, captured=True)
    assert captured == eager and step.captures == 2 and not caught


class _Held(nn.Module):
    """Layers held in a ModuleList and activations in a ModuleList and a ModuleDict."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 16, generator=1), nn.Linear(16, 3, generator=2)])
        self.listed = nn.ModuleList([nn.Identity()])
        self.named = nn.ModuleDict({"hidden": nn.ReLU()})

    def forward(self, x):
        return self.layers[1](self.named["hidden"](self.listed[0](self.layers[0](x))))


@pytest.mark.parametrize("edit", ["list item", "dict item"])
def test_a_layer_replaced_in_a_module_container_records_afresh(edit):
    def make():
        model = _Held()

        def between(i):
            if i == 4 and edit == "dict item":
                model.named["hidden"] = nn.Tanh()
            elif i == 4:
                model.listed[0] = nn.Tanh()
        return _with(model, optim.SGD(model.parameters(), lr=0.1, capturable=True), between)
    eager, _, _ = _run(make, captured=False)
    captured, step, caught = _run(make, captured=True)
    assert captured == eager and step.captures == 2 and not caught

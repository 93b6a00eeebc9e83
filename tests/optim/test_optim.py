"""Optimizers, schedules and clipping: trajectories match PyTorch's step for step."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from devgrad import optim

rng = np.random.default_rng(0)
X = rng.standard_normal((16, 3))
Y = rng.standard_normal((16, 4))
W0 = rng.standard_normal((3, 4)) * 0.5
B0 = rng.standard_normal(4) * 0.1

OPTIMIZERS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "betas": (0.8, 0.99)}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-6}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "alpha": 0.9}),
    ("RMSprop", {"lr": 0.01, "centered": True, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01}),
]


def _loss(xp_mod, w, b, x, y):
    return (((x @ w + b).tanh() - y) ** 2).mean()


def _run_devgrad(name, options, device, steps=50, capturable=False):
    w = dg.tensor(W0, requires_grad=True, device=device, dtype="float32")
    b = dg.tensor(B0, requires_grad=True, device=device, dtype="float32")
    x = dg.tensor(X, device=device, dtype="float32")
    y = dg.tensor(Y, device=device, dtype="float32")
    opt = getattr(optim, name)([w, b], capturable=capturable, **options)
    for _ in range(steps):
        opt.zero_grad()
        _loss(dg, w, b, x, y).backward()
        opt.step()
    return w.numpy(), b.numpy(), opt


@pytest.mark.oracle
@pytest.mark.parametrize("capturable", [False, True], ids=["eager", "capturable"])
@pytest.mark.parametrize("name,options", OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_trajectory_matches_torch_over_50_steps(torch, device, name, options, capturable):
    w_t = torch.tensor(W0, dtype=torch.float32, requires_grad=True)
    b_t = torch.tensor(B0, dtype=torch.float32, requires_grad=True)
    x_t, y_t = torch.tensor(X, dtype=torch.float32), torch.tensor(Y, dtype=torch.float32)
    opt_t = getattr(torch.optim, name)([w_t, b_t], **options)
    for _ in range(50):
        opt_t.zero_grad()
        _loss(torch, w_t, b_t, x_t, y_t).backward()
        opt_t.step()
    w, b, opt = _run_devgrad(name, options, device, capturable=capturable)
    if capturable:  # what changes per step lives on the device
        assert all(hasattr(st["step"], "shape") for st in opt.state.values() if "step" in st)
    assert np.abs(w - W0).max() > 1e-2, "the optimizer must actually move the weights"
    np.testing.assert_allclose(w, w_t.detach().numpy(), rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(b, b_t.detach().numpy(), rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("name,options", OPTIMIZERS[1::3], ids=lambda v: str(v))
def test_state_dict_resume_equals_uninterrupted(device, name, options, tmp_path):
    w_full, b_full, _ = _run_devgrad(name, options, device, steps=20)
    w = dg.tensor(W0, requires_grad=True, device=device, dtype="float32")
    b = dg.tensor(B0, requires_grad=True, device=device, dtype="float32")
    x, y = dg.tensor(X, device=device, dtype="float32"), dg.tensor(Y, device=device, dtype="float32")
    opt = getattr(optim, name)([w, b], **options)
    for _ in range(10):
        opt.zero_grad()
        _loss(dg, w, b, x, y).backward()
        opt.step()
    dg.save({"w": w, "b": b, "opt": opt.state_dict()}, tmp_path / "ckpt.npz")
    state = dg.load(tmp_path / "ckpt.npz", device=device)
    w2 = dg.tensor(state["w"], requires_grad=True)
    b2 = dg.tensor(state["b"], requires_grad=True)
    opt2 = getattr(optim, name)([w2, b2], **options)
    opt2.load_state_dict(state["opt"])
    for _ in range(10):
        opt2.zero_grad()
        _loss(dg, w2, b2, x, y).backward()
        opt2.step()
    np.testing.assert_array_equal(w2.numpy(), w_full)
    np.testing.assert_array_equal(b2.numpy(), b_full)


@pytest.mark.parametrize("name,options", [("SGD", {"momentum": 0.9}), ("Adam", {}), ("Adagrad", {})])
def test_capturable_follows_lr_changes_and_saves_plain_numbers(device, name, options, tmp_path):
    """A capturable optimizer keeps lr on the device, yet a schedule changing group['lr'] between
    steps changes the update exactly as it does for the plain optimizer; its state_dict holds
    plain step counts, so either kind resumes from the other's checkpoint."""
    runs = {}
    for capturable in (False, True):
        w = dg.tensor(W0, requires_grad=True, device=device, dtype="float32")
        b = dg.tensor(B0, requires_grad=True, device=device, dtype="float32")
        x, y = dg.tensor(X, device=device, dtype="float32"), dg.tensor(Y, device=device, dtype="float32")
        opt = getattr(optim, name)([w, b], lr=0.05, capturable=capturable, **options)
        sched = optim.StepLR(opt, step_size=3, gamma=0.3)
        for _ in range(10):
            opt.zero_grad()
            _loss(dg, w, b, x, y).backward()
            opt.step()
            sched.step()
        runs[capturable] = (w.numpy(), opt.state_dict())
    np.testing.assert_allclose(runs[True][0], runs[False][0], rtol=1e-5, atol=1e-6)
    saved = runs[True][1]["state"][0]
    if name == "SGD":  # no step count: its state is the momentum buffer alone
        assert set(saved) == {"momentum_buffer"}
        return
    assert saved["step"] == 10 and type(saved["step"]) is int
    dg.save({"opt": runs[True][1]}, tmp_path / "opt.npz")
    w = dg.tensor(W0, requires_grad=True, device=device, dtype="float32")
    b = dg.tensor(B0, requires_grad=True, device=device, dtype="float32")
    plain = getattr(optim, name)([w, b], lr=0.05, **options)
    plain.load_state_dict(dg.load(tmp_path / "opt.npz", device=device)["opt"])
    assert plain.state[w]["step"] == 10


def test_optimizer_argument_errors():
    p = dg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="nesterov needs momentum"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="leaf tensors with requires_grad"):
        optim.SGD([dg.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="unknown option.*momentom"):
        optim.SGD([{"params": [p], "momentom": 0.9}], lr=0.1)


def test_param_groups_have_their_own_hyperparameters():
    a = dg.tensor([1.0], requires_grad=True)
    b = dg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    (a + b).sum().backward()
    opt.step()
    assert a.numpy()[0] == pytest.approx(0.9) and b.numpy()[0] == pytest.approx(0.5)


SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 10, "eta_min": 0.001}),
    ("LinearLR", {"start_factor": 0.1, "total_iters": 5}),
]


@pytest.mark.oracle
@pytest.mark.parametrize("name,options", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_schedules_match_torch(torch, name, options):
    p_t = torch.zeros(1, requires_grad=True)
    opt_t = torch.optim.SGD([p_t], lr=0.1)
    sched_t = getattr(torch.optim.lr_scheduler, name)(opt_t, **options)
    opt = optim.SGD([dg.zeros(1, requires_grad=True)], lr=0.1)
    _assert_same_lrs(getattr(optim, name)(opt, **options), sched_t, opt_t, epochs=25)


def _assert_same_lrs(sched, sched_t, opt_t, epochs: int) -> None:
    for _ in range(epochs):
        assert sched.get_last_lr()[0] == pytest.approx(sched_t.get_last_lr()[0], rel=1e-9, abs=1e-12)
        opt_t.step()
        sched_t.step()
        sched.step()


@pytest.mark.oracle
def test_warmup_then_cosine_matches_torch_sequential(torch):
    p_t = torch.zeros(1, requires_grad=True)
    opt_t = torch.optim.SGD([p_t], lr=0.1)
    lr_s = torch.optim.lr_scheduler
    sched_t = lr_s.SequentialLR(opt_t, [lr_s.LinearLR(opt_t, start_factor=0.1, total_iters=4),
                                        lr_s.CosineAnnealingLR(opt_t, T_max=10)], milestones=[4])
    opt = optim.SGD([dg.zeros(1, requires_grad=True)], lr=0.1)
    cosine_shape = optim.CosineAnnealingLR(optim.SGD([dg.zeros(1, requires_grad=True)], lr=0.1), T_max=10)
    _assert_same_lrs(optim.WarmupScheduler(opt, warmup=4, after=cosine_shape, start_factor=0.1), sched_t, opt_t,
                     epochs=14)


@pytest.mark.oracle
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(torch, device, norm_type):
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    ps = [dg.zeros(g.shape, requires_grad=True, device=device, dtype="float64") for g in grads]
    ts = [torch.zeros(g.shape, requires_grad=True, dtype=torch.float64) for g in grads]
    for p, t, g in zip(ps, ts, grads):
        p.grad = dg.tensor(g, device=device)
        t.grad = torch.tensor(g)
    total = optim.clip_grad_norm_(ps, 1.5, norm_type)
    total_t = torch.nn.utils.clip_grad_norm_(ts, 1.5, norm_type)
    assert total.item() == pytest.approx(total_t.item())
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-7)


def test_clip_grad_value(device):
    p = dg.zeros(3, requires_grad=True, device=device)
    p.grad = dg.tensor([-5.0, 0.2, 5.0], device=device)
    optim.clip_grad_value_([p], 1.0)
    assert p.grad.numpy().tolist() == pytest.approx([-1.0, 0.2, 1.0])


CAPTURE_CASES = [("SGD", {"lr": 0.05}), ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
                 ("Adam", {"lr": 0.01, "amsgrad": True}), ("AdamW", {"lr": 0.01}),
                 ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
                 ("Adagrad", {"lr": 0.1, "lr_decay": 0.1})]


@pytest.mark.parametrize("name,options", CAPTURE_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CAPTURE_CASES)])
def test_capturable_step_changes_only_device_memory(device, name, options):
    """What a replayed CUDA graph needs: after the first step, a capturable step writes into the
    same arrays every time (parameters, state, lr) and changes no Python-side value — a graph
    replay runs no Python, so any such change would be lost."""
    w = dg.tensor(W0, requires_grad=True, device=device, dtype="float32")
    b = dg.tensor(B0, requires_grad=True, device=device, dtype="float32")
    x, y = dg.tensor(X, device=device, dtype="float32"), dg.tensor(Y, device=device, dtype="float32")
    opt = getattr(optim, name)([w, b], capturable=True, **options)

    def step():
        opt.zero_grad()
        _loss(dg, w, b, x, y).backward()
        opt.step()

    def snapshot():
        arrays = {("param", i): p.data for i, p in enumerate((w, b))}
        values = {("group", k): v for k, v in opt.param_groups[0].items() if k != "params"}
        for i, p in enumerate((w, b)):
            for k, v in opt.state[p].items():
                if hasattr(v, "shape"):
                    arrays[(i, k)] = v
                else:
                    values[(i, k)] = v
        arrays.update({("lr", k): v[1] for k, v in opt._lr_buffers.items()})
        return {k: id(v) for k, v in arrays.items()}, values

    step()
    # a scratch buffer only where the update kernels want one (Adam's on the CPU: its group's flat one)
    if name == "SGD" or (name in ("Adam", "AdamW") and not device.updates_need_scratch):
        assert ("_scratch" in opt.state[w]) == device.updates_need_scratch
    before_ids, before_values = snapshot()
    moved = w.numpy().copy()
    step()
    after_ids, after_values = snapshot()
    assert after_ids == before_ids
    assert after_values == before_values
    assert not np.array_equal(w.numpy(), moved)
    # Loading a checkpoint writes into the same arrays too (a captured step keeps working).
    _, _, other = _run_devgrad(name, options, device, steps=5, capturable=True)
    opt.load_state_dict(other.state_dict())
    assert snapshot()[0] == before_ids
    for k, v in other.state_dict()["state"][0].items():
        np.testing.assert_array_equal(opt.state_dict()["state"][0][k], v)


@pytest.mark.parametrize("name,options", [("SGD", {"momentum": 0.9}), ("Adam", {}), ("AdamW", {"amsgrad": True}),
                                          ("RMSprop", {"momentum": 0.5, "centered": True}), ("Adagrad", {})])
def test_a_zero_dimensional_parameter_resumes_as_if_never_stopped(name, options, tmp_path):
    """A learnable scalar's moments are 0-d arrays the update changes in place: state_dict keeps
    them arrays (a number would never change again after loading)."""

    def steps(s, opt, ks):
        for k in ks:
            opt.zero_grad()
            ((s * (k + 1.0) - 3.0) ** 2).backward()
            opt.step()

    full = dg.tensor(0.5, requires_grad=True)
    steps(full, getattr(optim, name)([full], lr=0.05, **options), range(6))
    s = dg.tensor(0.5, requires_grad=True)
    opt = getattr(optim, name)([s], lr=0.05, **options)
    steps(s, opt, range(3))
    dg.save({"s": s, "opt": opt.state_dict()}, tmp_path / "ckpt.npz")
    state = dg.load(tmp_path / "ckpt.npz")
    resumed = dg.tensor(state["s"], requires_grad=True)
    opt2 = getattr(optim, name)([resumed], lr=0.05, **options)
    opt2.load_state_dict(state["opt"])
    steps(resumed, opt2, range(3, 6))
    assert resumed.item() == full.item()

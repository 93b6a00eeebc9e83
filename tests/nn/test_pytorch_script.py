"""One PyTorch-style MLP training script, written once, run by PyTorch and by devgrad from the same
initial weights in float64: an Embedding beside numeric features, BatchNorm1d, LayerNorm, GELU
and SiLU, a forward hook and a pre-hook, soft (probability) targets, Adam with gradient
clipping, ReduceLROnPlateau on a validation loss computed in eval() under inference_mode, and
TensorDataset + DataLoader. Loss trajectories, hook records, learning rates and final weights
(running statistics included) agree to 1e-6."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import devgrad as dg
from devgrad import data as dg_data

N, FEATURES, CATEGORIES, CLASSES = 48, 4, 5, 3


def _data():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((N, FEATURES))
    cat = rng.integers(0, CATEGORIES, N)
    logits = X @ rng.standard_normal((FEATURES, CLASSES)) + np.eye(CATEGORIES, CLASSES)[cat] * 2
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # probability targets
    return X, cat, soft


def script(lib: SimpleNamespace, initial: dict | None, epochs: int = 6) -> dict:
    """The training script; ``lib`` names torch or devgrad, nn, F, optim and the data classes."""
    T, nn, F, optim = lib.T, lib.nn, lib.F, lib.optim

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(CATEGORIES, 3)
            self.fc1 = nn.Linear(FEATURES + 3, 16)
            self.bn = nn.BatchNorm1d(16)
            self.fc2 = nn.Linear(16, 16)
            self.ln = nn.LayerNorm(16)
            self.out = nn.Linear(16, CLASSES)
            self.act = nn.GELU()

        def forward(self, x, cat):
            h = T.cat([x, self.embed(cat)], dim=1)
            h = self.act(self.bn(self.fc1(h)))
            h = F.silu(self.ln(self.fc2(h)))
            return self.out(h)

    model = Net().double()
    if initial is not None:
        model.load_state_dict(initial)
    records = {"losses": [], "hook": [], "val": [], "lr": [], "log": []}
    model.fc2.register_forward_hook(lambda m, args, out: records["hook"].append(out.mean().item()))
    pre = model.out.register_forward_pre_hook(lambda m, args: (args[0] * 1.5,))
    X, cat, soft = _data()
    train = lib.TensorDataset(T.tensor(X[:32]), T.tensor(cat[:32]), T.tensor(soft[:32]))
    loader = lib.DataLoader(train, batch_size=8, shuffle=False)
    val_x, val_cat, val_y = T.tensor(X[32:]), T.tensor(cat[32:]), T.tensor(soft[32:])
    opt = optim.Adam(model.parameters(), lr=0.05, weight_decay=1e-3)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.05)
    for epoch in range(epochs):
        model.train()
        for x, c, y in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(x, c), y, label_smoothing=0.05)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            records["losses"].append(loss.item())
        model.eval()
        with T.inference_mode():
            val = F.cross_entropy(model(val_x, val_cat), val_y)
        sched.step(val)
        records["val"].append(val.item())
        records["lr"].append(opt.param_groups[0]["lr"])
        records["log"].append(f"epoch {epoch}: val {val:.4f}")
        if epoch == 2:
            pre.remove()
    records["state"] = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "cpu") else v.numpy())
                        for k, v in model.state_dict().items()}
    return records


@pytest.mark.oracle
@pytest.mark.slow  # PyTorch's first optimizer and scheduler calls in a process cost seconds
def test_a_pytorch_training_script_runs_the_same_in_devgrad(torch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: PyTorch's thread pool only adds contention on a shared machine
    try:
        _compare(torch)
    finally:
        torch.set_num_threads(threads)


def _compare(torch):
    torch_lib = SimpleNamespace(T=torch, nn=torch.nn, F=torch.nn.functional, optim=torch.optim,
                                TensorDataset=torch.utils.data.TensorDataset, DataLoader=torch.utils.data.DataLoader)
    dg_lib = SimpleNamespace(T=dg, nn=dg.nn, F=dg.nn.functional, optim=dg.optim,
                             TensorDataset=dg_data.TensorDataset, DataLoader=dg_data.DataLoader)
    torch.manual_seed(0)
    initial = script(torch_lib, None, epochs=0)["state"]  # PyTorch's initial weights, given to devgrad
    torch.manual_seed(0)
    theirs = script(torch_lib, None)
    ours = script(dg_lib, initial)
    assert len(ours["losses"]) == len(theirs["losses"]) == 24
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours["hook"], theirs["hook"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours["val"], theirs["val"], rtol=1e-6)
    assert ours["lr"] == pytest.approx(theirs["lr"], rel=1e-12) and len(set(ours["lr"])) > 1  # the plateau acted
    assert ours["log"] == theirs["log"]
    assert set(ours["state"]) == set(theirs["state"])
    for key, value in theirs["state"].items():
        np.testing.assert_allclose(ours["state"][key], value, rtol=1e-6, atol=1e-9, err_msg=key)

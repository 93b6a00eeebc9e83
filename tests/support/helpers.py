"""One helper checks an op's forward values and gradients against PyTorch and gradcheck."""

from __future__ import annotations

import numpy as np

import devgrad as dg

TOL = {np.float64: {"rtol": 1e-9, "atol": 1e-10}, np.float32: {"rtol": 2e-5, "atol": 2e-5}}


def as_host(t) -> np.ndarray:
    return t.numpy() if isinstance(t, dg.Tensor) else t.detach().cpu().numpy()


def check_op(torch, dg_fn, torch_fn, arrays, device, dtype=np.float64, grad_inputs=None,
             gradcheck=True, seed=0, tol=None):
    """Compare forward and backward of ``dg_fn`` with ``torch_fn`` on the same inputs.

    ``arrays``: host NumPy inputs; ``grad_inputs``: indices of inputs to differentiate
    (default: all floating ones). A random cotangent contracts the output, so every
    element of the Jacobian takes part. Then ``dg.gradcheck`` in float64 as a second check.
    """
    tol = tol or TOL[dtype]
    grad_inputs = grad_inputs if grad_inputs is not None else [
        i for i, a in enumerate(arrays) if np.asarray(a).dtype.kind == "f"]
    xs, ts = [], []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        floating = a.dtype.kind == "f"
        dt = dtype if floating else a.dtype
        xs.append(dg.tensor(a.astype(dt), device=device, requires_grad=i in grad_inputs))
        t = torch.tensor(a.astype(dt))
        if i in grad_inputs:
            t.requires_grad_(True)
        ts.append(t)
    out = dg_fn(*xs)
    expected = torch_fn(*ts)
    assert out.shape == tuple(expected.shape), f"shape {out.shape} != torch {tuple(expected.shape)}"
    assert out.dtype == np.dtype(dtype) or out.dtype.kind != "f", f"dtype drifted to {out.dtype}"
    np.testing.assert_allclose(out.numpy(), as_host(expected), **tol, err_msg="forward differs from PyTorch")
    if not grad_inputs:
        return
    cot = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
    grads = dg.grad(out, [xs[i] for i in grad_inputs], dg.tensor(cot, device=device), allow_unused=True)
    expected_grads = torch.autograd.grad(expected, [ts[i] for i in grad_inputs], torch.tensor(cot),
                                         allow_unused=True)
    for i, g, eg in zip(grad_inputs, grads, expected_grads):
        if eg is None:
            assert g is None or np.all(g.numpy() == 0)
            continue
        assert g is not None, f"no gradient for input {i}"
        assert g.shape == xs[i].shape and g.dtype == xs[i].dtype
        np.testing.assert_allclose(g.numpy(), as_host(eg), **tol, err_msg=f"gradient of input {i} differs")
    if gradcheck:
        inputs = [dg.tensor(np.asarray(a), device=device, requires_grad=i in grad_inputs,
                            dtype=np.float64 if np.asarray(a).dtype.kind == "f" else None)
                  for i, a in enumerate(arrays)]
        assert dg.gradcheck(dg_fn, inputs)


def block_import(monkeypatch, prefix: str, error: Exception | None = None) -> None:
    """Make ``import <prefix>...`` fail (as if the package were missing or broken)."""
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == prefix or name.startswith(prefix + "."):
            raise error or ImportError(f"No module named '{prefix}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def training_step(opt, loss_of):
    """A training step: ``loss_of(*batch)``, zero_grad, backward, the optimizer's step; returns the loss."""
    def step(*batch):
        loss = loss_of(*batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


def assert_program_matches_torch(torch, mine: dict, theirs: dict, names, w, tw) -> None:
    """The same statements run on devgrad (``mine``) and PyTorch (``theirs``): every tensor named
    in ``names`` that the program made, the ``loss``, and the loss's gradient in ``w`` / ``tw``."""
    for key in names:
        if key in mine:
            np.testing.assert_allclose(mine[key].numpy(), theirs[key].detach().numpy(), rtol=1e-12, err_msg=key)
    np.testing.assert_allclose(mine["loss"].item(), theirs["loss"].item(), rtol=1e-12)
    expected = torch.autograd.grad(theirs["loss"], tw)[0].numpy()
    np.testing.assert_allclose(dg.grad(mine["loss"], w)[0].numpy(), expected, rtol=1e-12)

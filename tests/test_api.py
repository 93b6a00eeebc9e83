"""The public API of DESIGN.md is a contract: every name exists and behaves as written there."""

from __future__ import annotations

import numpy as np

import devgrad as dg


def test_top_level_names():
    for name in ("tensor", "zeros", "ones", "randn", "arange", "full", "zeros_like", "ones_like", "exp", "log",
                 "matmul", "maximum", "where", "concatenate", "stack", "grad", "no_grad", "enable_grad", "gradcheck",
                 "device", "devices", "cuda_available", "manual_seed", "save", "load", "Tensor", "Function"):
        assert hasattr(dg, name), name
    for name in ("Module", "Parameter", "Linear", "Sequential", "MLP", "ReLU", "Sigmoid", "Tanh", "Identity"):
        assert hasattr(dg.nn, name), name
    for name in ("mse_loss", "binary_cross_entropy_with_logits", "logistic_loss", "cross_entropy", "hinge_loss"):
        assert hasattr(dg.nn.functional, name), name
    for name in ("SGD", "Adam", "AdamW", "RMSprop"):
        assert hasattr(dg.optim, name), name
    assert callable(dg.viz.to_dot)


def test_design_example_runs():
    x = dg.tensor([[1.0, 2.0]], requires_grad=True, device="auto")
    assert x.dtype == np.float32 and x.shape == (1, 2) and x.ndim == 2 and x.requires_grad and x.grad is None
    y = (x * x).sum(axis=None, keepdims=False)
    y.backward(grad=None, retain_graph=False, create_graph=False)
    assert x.grad.numpy().tolist() == [[2.0, 4.0]]
    (g,) = dg.grad((x**3).sum(), [x], grad_outputs=None, create_graph=False)
    assert g.numpy().tolist() == [[3.0, 12.0]]
    for method in ("mean", "max", "min", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "softmax",
                   "log_softmax", "reshape", "transpose", "clip", "detach", "numpy", "to"):
        assert hasattr(x, method), method
    assert x.T.shape == (2, 1) and x.reshape(2, 1).shape == (2, 1) and x.clip(0, 1).numpy().max() == 1.0
    with dg.no_grad():
        assert not (x * 2).requires_grad
    z = dg.zeros((2, 3), device="cpu", dtype="float64")
    assert z.dtype == np.float64 and dg.ones((2,)).dtype == np.float32
    assert dg.randn((2, 2), generator=np.random.default_rng(0)).shape == (2, 2)
    assert dg.arange(3, dtype="float32").numpy().tolist() == [0.0, 1.0, 2.0]

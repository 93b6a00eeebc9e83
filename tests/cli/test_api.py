"""devgrad's public API is a contract: every name exists and behaves as documented."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest

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


def test_pytorch_spellings_work_as_aliases_of_the_numpy_style_api(device):
    """What a PyTorch user types: dim=/keepdim=, .view, .t(), .size()/.size(d), .numel(), .dim(),
    .pow, .mm, .clamp, .long/.int/.bool, in-place add_/mul_/zero_, dg.cat, dg.from_numpy,
    dg.as_tensor, dg.linspace, max(dim=) -> (values, indices)."""
    x = dg.tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True, device=device)
    np.testing.assert_array_equal(x.sum(dim=0, keepdim=True).numpy(), x.sum(axis=0, keepdims=True).numpy())
    assert x.view(4).shape == (4,) and x.t().shape == (2, 2) and x.dim() == 2 and x.numel() == 4
    assert x.size == 4 and x.size() == (2, 2) and x.size(1) == 2  # NumPy's .size stays an int
    values, indices = x.max(dim=1)
    assert values.numpy().tolist() == [1.0, 4.0] and indices.numpy().tolist() == [0, 1]
    assert x.max(dim=1).indices.numpy().tolist() == [0, 1]
    assert x.max(axis=1).numpy().tolist() == [1.0, 4.0]  # NumPy's spelling: the values
    assert x.clamp(min=0.0).numpy().tolist() == [[1.0, 0.0], [3.0, 4.0]]
    assert x.long().dtype == np.int64 and x.int().dtype == np.int32 and x.bool().dtype == np.bool_
    np.testing.assert_allclose(x.pow(2).numpy(), (x**2).numpy())
    np.testing.assert_allclose(x.mm(x).numpy(), (x @ x).numpy())
    (x.softmax(dim=0).sum(dim=1) * dg.tensor([1.0, 2.0], device=device)).sum().backward()
    assert x.grad is not None and x.grad.shape == (2, 2)
    with dg.no_grad():
        x.add_(1.0).mul_(2.0)
        assert x.numpy().tolist() == [[4.0, -2.0], [8.0, 10.0]]
        x.zero_()
    assert x.numpy().sum() == 0
    with pytest.raises(RuntimeError, match="no_grad"):
        x.zero_()
    assert dg.cat([x, x], dim=1).shape == (2, 4) and dg.stack([x, x], dim=0).shape == (2, 2, 2)
    assert dg.linspace(0, 1, steps=5, device=device).numpy().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    host = np.ones(3)
    shared = dg.from_numpy(host)
    host[0] = 5.0
    assert shared.numpy()[0] == 5.0  # shares memory, as torch.from_numpy
    assert dg.as_tensor(shared) is shared
    with pytest.raises(TypeError, match="axis or dim"):
        x.sum(axis=0, dim=0)


def test_module_containers_buffers_and_apply():
    class Net(dg.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = dg.nn.ModuleList([dg.nn.Linear(2, 3), dg.nn.Linear(3, 1)])
            self.heads = dg.nn.ModuleDict({"extra": dg.nn.Linear(1, 1)})
            self.register_buffer("seen", dg.zeros(1))
            self.register_buffer("scratch", dg.zeros(2), persistent=False)

    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
                     "heads.extra.weight", "heads.extra.bias"]
    assert len(net.blocks) == 2 and isinstance(net.blocks[1], dg.nn.Linear) and "extra" in net.heads
    net.seen = dg.tensor([7.0])
    state = net.state_dict()
    assert "seen" in state and "scratch" not in state and state["seen"].numpy().tolist() == [7.0]
    other = Net()
    other.load_state_dict(state)
    assert other.seen.numpy().tolist() == [7.0]
    visited = []
    net.apply(lambda m: visited.append(type(m).__name__))
    assert visited[-1] == "Net" and visited.count("Linear") == 3
    assert dg.nn.utils.clip_grad_norm_ is dg.optim.clip_grad_norm_
    assert dg.optim.lr_scheduler.StepLR is dg.optim.StepLR
    assert dg.nn.functional.leaky_relu(dg.tensor([-1.0]), 0.1).numpy().tolist() == [pytest.approx(-0.1)]
    with pytest.raises(KeyError, match="already has an attribute"):
        net.register_buffer("blocks", dg.zeros(1))


def test_a_star_import_gives_every_public_name():
    """``from devgrad import *`` binds every name of ``__all__`` (the top level resolves its names
    when first used), the same objects ``devgrad.<name>`` gives."""
    namespace: dict = {}
    exec("from devgrad import *", namespace)
    assert set(dg.__all__) <= set(namespace)
    assert namespace["tensor"] is dg.tensor and namespace["cat"] is dg.concatenate and namespace["nn"] is dg.nn


def test_the_public_surface_is_explicit():
    """``devgrad`` and each public subpackage list their names in ``__all__``; every listed name
    exists; ``dir(devgrad)`` shows exactly those (no module imported along the way, such as
    ``core`` or ``annotations``), while ``devgrad.core`` and the rest stay reachable."""
    import importlib

    public = {n for n in dir(dg) if not n.startswith("_")}
    assert public == set(dg.__all__) - {"__version__"}
    assert not public & {"annotations", "core", "creation", "version", "capture", "backend", "io", "random"}
    assert dg.core.Tensor is dg.Tensor and dg.backend.device is dg.device
    for name in ("devgrad", "devgrad.nn", "devgrad.nn.functional", "devgrad.optim", "devgrad.ops", "devgrad.data",
                 "devgrad.experiment", "devgrad.func"):
        module = importlib.import_module(name)
        assert module.__all__, name
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, f"{name}.__all__ lists names it lacks: {missing}"


def test_the_core_stub_declares_what_the_runtime_has():
    """devgrad/core/_tensor.pyi (what type checkers and IDEs read for Tensor's module) declares every
    class and function _tensor.py defines and every Tensor method and property, the ones registered
    at import (the walk's ``backward``, the op layer's operators and methods) included, with their
    parameters; and nothing the runtime lacks. After a change to either, ``python -m tests.support.core_stub``
    writes it again."""
    import ast
    import inspect
    from pathlib import Path

    from devgrad.core import _tensor as tensor_module
    from tests.support.core_stub import registered_methods

    tree = ast.parse(Path(tensor_module.__file__).with_suffix(".pyi").read_text(encoding="utf-8"))
    top = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    defined = {name for name, obj in vars(tensor_module).items()
               if inspect.isfunction(obj) | inspect.isclass(obj) and obj.__module__ == tensor_module.__name__}
    assert defined == top, f"regenerate devgrad/core/_tensor.pyi: missing {defined - top}, stale {top - defined}"
    stub_tensor = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tensor")
    declared = {n.name: n for n in stub_tensor.body if isinstance(n, ast.FunctionDef)}
    runtime = {name for name, obj in vars(dg.Tensor).items()
               if inspect.isfunction(obj) or isinstance(obj, property | staticmethod | classmethod)}
    assert runtime == set(declared), (f"regenerate devgrad/core/_tensor.pyi: missing {runtime - set(declared)}, "
                                      f"stale {set(declared) - runtime}")
    for name, fn in registered_methods().items():
        want = [p.name for p in inspect.signature(fn).parameters.values()][1:]
        args = declared[name].args
        got = [a.arg for a in [*args.args, *args.kwonlyargs]][1:]
        got += [f.arg for f in (args.vararg, args.kwarg) if f is not None]
        assert sorted(got) == sorted(want), name


def test_a_tensor_unpickled_in_a_fresh_process_has_its_methods():
    # ``import devgrad`` loads the op layer (Tensor's methods) on first use; unpickling a Tensor in
    # a process that never touched devgrad must load it too (a pool's or Dask's worker does that).
    t = dg.tensor([1.0, 2.0], requires_grad=True)
    code = ("import pickle, sys; t = pickle.loads(sys.stdin.buffer.read()); "
            "print(t.requires_grad, (t + t).exp().sum().item())")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(t), capture_output=True, check=True)
    requires_grad, value = out.stdout.decode().split()
    assert requires_grad == "True" and float(value) == pytest.approx(np.exp([2.0, 4.0]).sum(), rel=1e-6)
    assert copy.deepcopy(t).numpy().tolist() == [1.0, 2.0]

"""Tensor construction, dtypes, data movement and the Python protocol."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg


def test_default_dtype_is_float32_and_ints_stay_ints(device):
    assert dg.tensor([[1.0, 2.0]], device=device).dtype == np.float32
    assert dg.tensor(3.5, device=device).dtype == np.float32
    assert dg.tensor([1, 2], device=device).dtype == np.int64
    assert dg.tensor([True], device=device).dtype == np.bool_
    assert dg.tensor(np.zeros(2), device=device).dtype == np.float64  # NumPy arrays keep their dtype
    assert dg.tensor([1.0], dtype="float64", device=device).dtype == np.float64
    assert dg.tensor([1.0], dtype=dg.float64, device=device).dtype == np.float64


def test_creation_functions(device):
    assert dg.zeros(2, 3, device=device).shape == (2, 3)
    assert dg.zeros((2, 3), device=device).numpy().sum() == 0
    assert dg.ones((4,), device=device, dtype="float64").dtype == np.float64
    assert dg.full((2, 2), 7.0, device=device).numpy().tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert dg.arange(4, device=device).numpy().tolist() == [0, 1, 2, 3]
    assert dg.arange(0.0, 1.0, 0.5, device=device).dtype == np.float32
    assert dg.eye(2, device=device).numpy().tolist() == [[1, 0], [0, 1]]
    x = dg.ones(2, 3, device=device)
    assert dg.zeros_like(x).shape == (2, 3) and dg.ones_like(x).device is device
    assert dg.full_like(x, 2.0).numpy().max() == 2.0
    with pytest.raises(ValueError, match="non-negative integers"):
        dg.zeros(-1)


def test_randn_is_seeded_and_identical_across_devices(device):
    a = dg.randn(3, 4, generator=5, device=device)
    b = dg.randn((3, 4), generator=np.random.default_rng(5), device="cpu")
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    dg.manual_seed(1)
    c = dg.randn(5, device=device)
    dg.manual_seed(1)
    d = dg.randn(5, device=device)
    np.testing.assert_array_equal(c.numpy(), d.numpy())
    assert c.dtype == np.float32
    u = dg.rand(1000, generator=0, device=device).numpy()
    assert 0 <= u.min() and u.max() < 1


def test_numpy_item_detach_copy_semantics(device):
    x = dg.tensor([[1.0, 2.0]], requires_grad=True, device=device)
    host = x.numpy()
    host[0, 0] = 99.0
    assert x.numpy()[0, 0] == 1.0, "numpy() must return a copy"
    assert dg.tensor([3.0], device=device).item() == 3.0
    with pytest.raises(ValueError, match="one element"):
        x.item()
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None and d.data is x.data


def test_tensor_from_tensor_copies(device):
    x = dg.tensor([1.0, 2.0], device=device)
    y = dg.tensor(x)
    assert y.data is not x.data and y.numpy().tolist() == [1.0, 2.0]


def test_to_same_device_is_identity_and_dtype_change_is_differentiable(device):
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    assert x.to(device) is x
    y = x.to(dtype="float64")
    assert y.dtype == np.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.numpy().tolist() == [2.0, 4.0]


@pytest.mark.skipif(not dg.cuda_available(), reason="needs a GPU")
def test_to_cuda_and_back_carries_gradient():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("cuda")
    assert y.device.type == "cuda"
    (y * y).sum().backward()
    assert x.grad.device.type == "cpu" and x.grad.numpy().tolist() == [2.0, 4.0]


def test_bool_of_multi_element_tensor_raises(device):
    with pytest.raises(ValueError, match="ambiguous"):
        bool(dg.tensor([1.0, 2.0], device=device))
    assert bool(dg.tensor([1.0], device=device))


def test_ndarray_times_tensor_uses_tensor_operator():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, dg.Tensor) and y.requires_grad
    z = np.array([1.0, 1.0]) + x
    assert isinstance(z, dg.Tensor)


def test_repr_shows_grad_fn_and_device(device):
    x = dg.tensor([1.0], requires_grad=True, device=device)
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=Mul" in repr(x * 2.0)
    assert "dtype=float64" in repr(dg.tensor([1.0], dtype="float64", device=device))


def test_setitem_only_outside_the_graph(device):
    x = dg.zeros(3, device=device)
    x[1] = 5.0
    assert x.numpy().tolist() == [0.0, 5.0, 0.0]
    w = dg.zeros(3, requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="no_grad"):
        w[0] = 1.0
    with dg.no_grad():
        w[0] = 1.0
    assert w.numpy()[0] == 1.0


def test_properties(device):
    x = dg.zeros(2, 3, device=device)
    assert (x.shape, x.ndim, x.size, len(x)) == ((2, 3), 2, 6, 2)
    assert x.is_leaf and x.xp is device.xp
    assert [row.shape for row in x] == [(3,), (3,)]


def test_unknown_dtype_and_non_numeric_data():
    with pytest.raises(TypeError, match="unknown dtype 'float33'"):
        dg.tensor([1.0], dtype="float33")
    with pytest.raises(TypeError, match="not numeric|cannot make"):
        dg.tensor(["a", "b"])


def test_inplace_update_under_no_grad_keeps_the_leaf(device):
    w = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    (w * w).sum().backward()
    data = w.data
    with dg.no_grad():
        w -= 0.5 * w.grad
    assert w.requires_grad and w.is_leaf and w.data is data
    assert w.numpy().tolist() == [0.0, 0.0]


def test_augmented_assignment_while_recording_is_out_of_place(device):
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x * 2.0
    saved = y
    y += 1.0
    assert y is not saved and saved.numpy().tolist() == [2.0, 4.0]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [2.0, 2.0]


def test_readme_logistic_regression_example_runs():
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"## Backprop in 15 lines.*?```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["loss"].item() < 0.2

"""Creating tensors: dtypes by default, zeros/ones/full/arange/eye and their *_like forms."""

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
    # the fill value's kind decides the dtype, as in NumPy and PyTorch: 2**24 + 1 stays exact
    assert dg.full((2,), 2**24 + 1, device=device).numpy().tolist() == [2**24 + 1] * 2
    assert dg.full((2,), 3, device=device).dtype == np.int64 and dg.full((1,), True, device=device).dtype == np.bool_
    assert dg.full((1,), 3, dtype="float64", device=device).dtype == np.float64
    assert dg.arange(4, device=device).numpy().tolist() == [0, 1, 2, 3]
    assert dg.arange(0.0, 1.0, 0.5, device=device).dtype == np.float32
    assert dg.eye(2, device=device).numpy().tolist() == [[1, 0], [0, 1]]
    x = dg.ones(2, 3, device=device)
    assert dg.zeros_like(x).shape == (2, 3) and dg.ones_like(x).device is device
    assert dg.full_like(x, 2.0).numpy().max() == 2.0
    with pytest.raises(ValueError, match="non-negative integers"):
        dg.zeros(-1)

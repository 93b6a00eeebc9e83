"""Complex numbers are out of scope: a complex tensor that would need a gradient is a clear error."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg


def test_a_complex_tensor_cannot_require_grad(device):
    with pytest.raises(TypeError, match=r"complex tensor \(complex128\) cannot require grad: devgrad does not "
                                        r"support complex numbers"):
        dg.tensor([1 + 2j], requires_grad=True, device=device)
    with pytest.raises(TypeError, match="does not support complex numbers"):
        dg.tensor(np.array([1j], dtype=np.complex64), device=device).requires_grad_()


@pytest.mark.parametrize("make", [lambda x: x * 1j, lambda x: x.astype(np.complex128),
                                  lambda x: x + dg.tensor([2j, 1j], device=x.device)],
                         ids=["complex scalar", "astype", "complex tensor"])
def test_an_op_that_would_make_a_complex_result_with_a_gradient_refuses(device, make):
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    with pytest.raises(TypeError, match=r"its result is complex \(complex\d+\) and would need a gradient: devgrad "
                                        r"does not support complex numbers"):
        make(x)


def test_complex_data_without_gradients_still_computes(device):
    x = dg.tensor([1.0, 2.0], device=device)
    assert (x * 1j).numpy().tolist() == [1j, 2j]
    with dg.no_grad():
        assert (dg.tensor([1.0], requires_grad=True, device=device) * 1j).numpy().tolist() == [1j]

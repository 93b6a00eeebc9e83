"""Names NumPy and PyTorch share: dot and clip as NumPy's, transpose/permute/std/var as a PyTorch user types them."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from tests.support.helpers import check_op

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

rng = np.random.default_rng(7)

DOT_SHAPES = [((3,), (3,)), ((2, 3), (3, 4)), ((4, 3), (3,)), ((3,), (3, 2)), ((2, 3), (2, 3, 4)),
              ((2, 2, 3), (2, 3, 4)), ((3,), (5, 3, 2)), ((2, 3, 4), (5, 4, 2)), ((2, 3), (4, 2, 3, 5)),
              ((), (2, 3)), ((2, 3), ())]


@pytest.mark.parametrize("a_shape,b_shape", DOT_SHAPES, ids=[f"{a}x{b}" for a, b in DOT_SHAPES])
def test_dot_follows_numpy_dot(device, a_shape, b_shape):
    a_np, b_np = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    a = dg.tensor(a_np, device=device, requires_grad=True)
    b = dg.tensor(b_np, device=device, requires_grad=True)
    out = dg.dot(a, b)
    expected = np.dot(a_np, b_np)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    assert dg.gradcheck(dg.dot, [a, b])


def test_dot_with_python_scalars(device):
    x = dg.tensor([1.0, 2.0], device=device)
    assert dg.dot(2.0, x).numpy().tolist() == [2.0, 4.0]
    assert dg.dot(x, 3).numpy().tolist() == [3.0, 6.0]


def test_dot_shape_mismatch_message(device):
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 3\) and \(2, 4, 5\) are not aligned: 3 .* != 4"):
        dg.dot(dg.zeros(2, 3, device=device), dg.zeros(2, 4, 5, device=device))


def test_clip_takes_numpys_keywords(device):
    x = dg.tensor([-2.0, 0.5, 3.0], device=device)
    assert dg.clip(x, a_min=-1.0, a_max=1.0).numpy().tolist() == [-1.0, 0.5, 1.0]
    assert dg.clip(x, a_max=0.0).numpy().tolist() == [-2.0, 0.0, 0.0]
    with pytest.raises(TypeError, match="not both"):
        dg.clip(x, -1.0, a_max=1.0)


@pytest.mark.parametrize("lo,hi", [(0.0, None), (0.0, 1.0), (None, -0.0)])
def test_clip_passes_a_value_at_its_bound_as_pytorchs_clamp(device, lo, hi):
    """-0.0 clipped at 0 stays -0.0 (NumPy's one-bound clip gives 0.0), and NaN stays NaN."""
    x = dg.tensor([-0.0, 0.0, np.nan], device=device, dtype="float64")
    out = x.clip(lo, hi).numpy()
    assert np.signbit(out[:2]).tolist() == [True, False] and np.isnan(out[2])


@pytest.mark.oracle
@pytest.mark.parametrize("shape,axes", [((2, 3), (0, 1)), ((2, 3), (1, 0)), ((2, 3), (-1, 0)), ((2, 3, 4), (1, 2)),
                                        ((2, 3, 4), (0, -1)), ((3,), (0, -1))])
def test_transpose_with_two_axes_swaps_them_like_pytorch(torch, device, shape, axes):
    check_op(torch, lambda t: t.transpose(*axes), lambda t: t.transpose(*axes), [rng.standard_normal(shape)], device)


def test_transpose_keeps_numpys_meaning_otherwise(device):
    x = dg.tensor(rng.standard_normal((2, 3, 4)), device=device)
    assert x.transpose().shape == (4, 3, 2)
    assert x.transpose(1, 2, 0).shape == (3, 4, 2)
    assert x.transpose((2, 0, 1)).shape == (4, 2, 3)
    assert dg.transpose(dg.zeros(2, 3, device=device), (0, 1)).shape == (2, 3)  # the function is NumPy's


@pytest.mark.oracle
def test_permute_matches_torch(torch, device):
    check_op(torch, lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1), [rng.standard_normal((2, 3, 4))],
             device)
    check_op(torch, lambda t: t.permute((1, 0)), lambda t: t.permute((1, 0)), [rng.standard_normal((2, 3))], device)
    with pytest.raises(ValueError, match="permute: 2 dims given for a tensor of 3 dimensions"):
        dg.zeros(2, 3, 4, device=device).permute(0, 1)


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["std", "var"])
@pytest.mark.parametrize("kwargs", [{}, {"unbiased": True}, {"unbiased": False}, {"correction": 0},
                                    {"correction": 1}, {"correction": 2}, {"dim": 1, "unbiased": True},
                                    {"dim": 0, "correction": 1, "keepdim": True}], ids=str)
def test_std_and_var_accept_pytorchs_keywords(torch, device, name, kwargs):
    a = rng.standard_normal((4, 3))
    torch_kwargs = dict(kwargs) if kwargs else {"correction": 0}  # devgrad's default is NumPy's ddof=0
    check_op(torch, lambda t: getattr(t, name)(**kwargs), lambda t: getattr(t, name)(**torch_kwargs), [a], device)


def test_std_rejects_two_corrections(device):
    x = dg.zeros(3, device=device)
    with pytest.raises(TypeError, match="not several"):
        x.std(unbiased=True, correction=1)
    with pytest.raises(TypeError, match="not several"):
        x.var(ddof=1, unbiased=True)

"""PyTorch's Tensor methods: values and gradients against PyTorch, float64 finite differences of
first and second order, in-place rules, and the calls NumPy and PyTorch read differently."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from devgrad import nn
from devgrad.core import Tensor
from tests.support.helpers import check_op

RNG = np.random.default_rng(7)
A = RNG.standard_normal((3, 4))
B3 = RNG.standard_normal((2, 3, 4))
C3 = RNG.standard_normal((2, 4, 2))
IDX = np.array([[0, 3], [2, 2], [1, 0]])
SEL = np.array([2, 0, 2])

# (name, devgrad function, torch function, inputs)
CASES = [
    ("gather", lambda x: x.gather(1, dg.tensor(IDX, device=x.device)), lambda x: x.gather(1, _t(IDX)), [A]),
    ("gather_dim0", lambda x: x.gather(0, dg.tensor(IDX[:2, :] % 3, device=x.device)),
     lambda x: x.gather(0, _t(IDX[:2, :] % 3)), [A]),
    ("index_select", lambda x: x.index_select(1, dg.tensor(SEL, device=x.device)),
     lambda x: x.index_select(1, _t(SEL)), [A]),
    ("masked_fill", lambda x: x.masked_fill(x > 0.2, -3.0), lambda x: x.masked_fill(x > 0.2, -3.0), [A]),
    ("chunk", lambda x: dg.cat([c * (i + 1) for i, c in enumerate(x.chunk(3, dim=1))], dim=1),
     lambda x: _torch.cat([c * (i + 1) for i, c in enumerate(x.chunk(3, dim=1))], dim=1), [A]),
    ("split_sizes", lambda x: dg.cat([c * (i + 1) for i, c in enumerate(x.split([1, 3], dim=1))], dim=1),
     lambda x: _torch.cat([c * (i + 1) for i, c in enumerate(x.split([1, 3], dim=1))], dim=1), [A]),
    ("split_size", lambda x: dg.cat([c * (i + 1) for i, c in enumerate(x.split(2, dim=0))], dim=0),
     lambda x: _torch.cat([c * (i + 1) for i, c in enumerate(x.split(2, dim=0))], dim=0), [A]),
    ("repeat", lambda x: x.repeat(2, 1, 3), lambda x: x.repeat(2, 1, 3), [A]),
    ("tile", lambda x: x.tile(2, 3), lambda x: x.tile(2, 3), [A]),
    ("norm", lambda x: x.norm(), lambda x: x.norm(), [A]),
    ("norm_dim", lambda x: x.norm(dim=1, keepdim=True), lambda x: x.norm(dim=1, keepdim=True), [A]),
    ("norm_p1", lambda x: x.norm(p=1, dim=0), lambda x: x.norm(p=1, dim=0), [A]),
    ("norm_p3", lambda x: x.norm(p=3, dim=(0, 1)), lambda x: x.norm(p=3, dim=(0, 1)), [A]),
    ("norm_inf", lambda x: x.norm(p=float("inf"), dim=1), lambda x: x.norm(p=float("inf"), dim=1), [A]),
    ("bmm", lambda x, y: x.bmm(y), lambda x, y: x.bmm(y), [B3, C3]),
    ("permute", lambda x: x.permute(2, 0, 1).contiguous(), lambda x: x.permute(2, 0, 1).contiguous(), [B3]),
    ("expand_as", lambda x, y: x[:1].expand_as(y), lambda x, y: x[:1].expand_as(y), [A, A]),
    ("type_as", lambda x: x.type_as(dg.tensor([1.0], dtype="float64")) * 2,
     lambda x: x.type_as(_torch.tensor([1.0], dtype=_torch.float64)) * 2, [A]),
    ("flatten", lambda x: x.flatten(1, 2), lambda x: x.flatten(1, 2), [B3]),
    ("flatten_mid", lambda x: x.flatten(0, 1), lambda x: x.flatten(0, 1), [B3]),
    ("add_alpha", lambda x, y: x.add(y, alpha=2.5), lambda x, y: x.add(y, alpha=2.5), [A, A]),
    ("sub_alpha", lambda x, y: x.sub(y, alpha=0.5), lambda x, y: x.sub(y, alpha=0.5), [A, A]),
    ("mul_div_neg", lambda x, y: x.mul(y).div(y * y + 1.0).neg(), lambda x, y: x.mul(y).div(y * y + 1.0).neg(),
     [A, A]),
]
_torch = None


def _t(array):
    return _torch.tensor(array)


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_methods_match_pytorch_and_finite_differences(torch, device, case):
    global _torch
    _torch = torch
    _, dg_fn, torch_fn, arrays = case
    check_op(torch, dg_fn, torch_fn, arrays, device)


SECOND = [c for c in CASES if c[0] in ("gather", "index_select", "masked_fill", "chunk", "repeat", "norm",
                                        "norm_dim", "norm_p3", "bmm", "flatten")]


@pytest.mark.parametrize("case", SECOND, ids=[c[0] for c in SECOND])
def test_second_derivatives_by_finite_differences(device, case):
    """gradcheck of a gradient: the backward formulas are themselves differentiable."""
    _, dg_fn, _, arrays = case

    def first(*xs):
        out = dg_fn(*xs)
        return dg.grad((out * out).sum(), list(xs), create_graph=True)

    xs = [dg.tensor(a, requires_grad=True, device=device, dtype="float64") for a in arrays]
    assert dg.gradcheck(first, xs)


@pytest.mark.oracle
def test_norm_gradient_at_zero_is_zero_as_in_pytorch(torch, device):
    x = dg.zeros(2, 3, device=device, dtype="float64").requires_grad_()
    t = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    for p in (2, 3, "fro"):
        (x.norm(p=p, dim=1).sum() + x.norm(p=p)).backward()
        (t.norm(p=p, dim=1).sum() + t.norm(p=p)).backward()
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
        x.grad, t.grad = None, None
    assert x.norm(p=0).item() == 0.0 and dg.tensor([0.0, 2.0, -1.0]).norm(p=0).item() == 2.0


@pytest.mark.oracle
def test_index_results_match_pytorch(torch):
    values = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 1.5]])
    x, t = dg.tensor(values), torch.tensor(values)
    np.testing.assert_array_equal(x.nonzero(as_tuple=False).numpy(), t.nonzero().numpy())
    for got, want in zip(x.nonzero(as_tuple=True), t.nonzero(as_tuple=True)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for got, want in zip(x.unique(return_inverse=True, return_counts=True),
                         t.unique(return_inverse=True, return_counts=True)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(x.unique().numpy(), t.unique().numpy())
    y = values + np.array([[1e-9, 1e-3, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(x.isclose(dg.tensor(y)).numpy(), t.isclose(torch.tensor(y)).numpy())
    assert x.allclose(dg.tensor(y)) is False and x.allclose(dg.tensor(values + 1e-9)) is True
    assert [p.shape for p in x.chunk(2, dim=1)] == [tuple(p.shape) for p in t.chunk(2, dim=1)]
    assert [p.shape for p in dg.zeros(5).chunk(4)] == [tuple(p.shape) for p in torch.zeros(5).chunk(4)]
    assert x.repeat(2, 2).shape == tuple(t.repeat(2, 2).shape) and x[0].repeat(2, 1).shape == (2, 3)


def test_calls_numpy_and_pytorch_read_differently_are_errors_that_show_both():
    """x.repeat(3) on 1-D, x.repeat(4, 1) on 2-D, x.split(2) and x.nonzero() mean different things
    in NumPy and PyTorch: an error names both spellings; the keyword forms choose."""
    v = dg.tensor([1.0, 2.0])
    m = dg.tensor([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match=r"x.tile\(3\) for PyTorch's, x.repeat\(3, axis=None\) for NumPy's"):
        v.repeat(3)
    with pytest.raises(TypeError, match=r"x.tile\(4, 1\) for PyTorch's, x.repeat\(4, axis=1\)"):
        m.repeat(4, 1)
    with pytest.raises(TypeError, match="name dim= or axis="):
        m.split(1)
    with pytest.raises(TypeError, match="as_tuple=False"):
        m.nonzero()
    with pytest.raises(ValueError, match="a size per dimension"):
        m.repeat(2)
    assert v.repeat(3, axis=0).numpy().tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]  # NumPy's
    assert v.tile(3).numpy().tolist() == [1.0, 2.0] * 3  # PyTorch's repeat
    assert m.repeat(2, 3).shape == (4, 6)  # only PyTorch's can mean it
    assert [p.numpy().tolist() for p in v.split(1, axis=0)] == [[1.0, 2.0]]  # NumPy: one section
    assert [p.numpy().tolist() for p in v.split(1, dim=0)] == [[1.0], [2.0]]  # PyTorch: pieces of 1
    with pytest.raises(ValueError, match="does not divide into 3 equal sections"):
        v.split(3, axis=0)
    with pytest.raises(ValueError, match="add up to 3"):
        v.split([1, 2], dim=0)


def test_bad_arguments_name_the_problem():
    x = dg.tensor([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match="index must hold integers"):
        x.gather(1, dg.tensor([[0.0]]))
    with pytest.raises(ValueError, match="index has 1 dimensions"):
        x.gather(1, dg.tensor([0]))
    with pytest.raises(TypeError, match="must be boolean"):
        x.masked_fill(dg.tensor([1, 0]), 0.0)
    with pytest.raises(ValueError, match=r"expected \(b, n, m\) and \(b, m, p\)"):
        x.bmm(x)
    with pytest.raises(ValueError, match="not a vector norm"):
        x.norm(p="nuc")
    with pytest.raises(TypeError, match=r"has shape \(2, 2\)"):
        f"{x:.3f}"
    # PyTorch refuses a negative index here; NumPy's indexing would read from the end
    with pytest.raises(IndexError, match="indices must be >= 0"):
        x.gather(1, dg.tensor([[-1], [0]]))
    with pytest.raises(IndexError, match="indices must be >= 0"):
        x.index_select(0, dg.tensor([-1]))


@pytest.mark.oracle
def test_reciprocal_method_of_an_integer_tensor_is_pytorchs_not_a_truncation(torch):
    """``x.reciprocal()`` is PyTorch's (NumPy's arrays have no such method): 1/2 is 0.5, not NumPy's
    integer 0; float64, as ``1 / x`` of an integer tensor (NumPy's promotion)."""
    for values in ([1, -2, 3, 4], [True, False]):
        got = dg.tensor(values).reciprocal()
        assert got.dtype == np.float64
        np.testing.assert_allclose(got.numpy(), torch.tensor(values).reciprocal().numpy(), rtol=1e-7)
    assert dg.reciprocal(dg.tensor([1, 2])).numpy().tolist() == [1, 0]  # the function is NumPy's


@pytest.mark.oracle
def test_in_place_methods_under_no_grad_match_pytorch(torch, device):
    values = np.array([[0.5, -1.0], [2.0, 0.25]])
    x = dg.tensor(values, device=device, dtype="float64", requires_grad=True)
    t = torch.tensor(values, requires_grad=True)
    ops = [("exp_", ()), ("mul_", (3.0,)), ("add_", (dg.ones(2, 2, device=device, dtype="float64"),)),
           ("sub_", (0.5,)), ("div_", (2.0,)), ("clamp_", (-1.0, 4.0)), ("pow_", (2.0,)), ("sqrt_", ()),
           ("log_", ()), ("neg_", ()), ("abs_", ()), ("tanh_", ()), ("sigmoid_", ()), ("relu_", ())]
    with dg.no_grad(), torch.no_grad():
        for name, args in ops:
            assert getattr(x, name)(*args) is x
            getattr(t, name)(*[torch.tensor(a.numpy()) if isinstance(a, dg.Tensor) else a for a in args])
            np.testing.assert_allclose(x.numpy(), t.numpy(), rtol=1e-12, err_msg=name)
        x.add_(dg.ones(2, 2, device=device, dtype="float64"), alpha=-2.0)
        t.add_(torch.ones(2, 2, dtype=torch.float64), alpha=-2.0)
        x.sub_(1.5, alpha=2.0)
        t.sub_(1.5, alpha=2.0)
        np.testing.assert_allclose(x.numpy(), t.numpy(), rtol=1e-12)
        x.fill_(1.5)
        x.copy_(dg.tensor([1.0, 2.0], device=device))
        assert x.numpy().tolist() == [[1.0, 2.0], [1.0, 2.0]]
        with pytest.raises(ValueError, match="read-only, a broadcast view"):
            x[0].expand(2, 2).add_(1.0)  # its four elements are two in memory
    assert x.requires_grad and x.dtype == np.float64


def test_in_place_on_a_recorded_tensor_is_an_error_not_a_silent_copy(device):
    w = dg.tensor([1.0, 2.0], device=device, requires_grad=True)
    for change in (lambda t: t.exp_(), lambda t: t.mul_(2.0), lambda t: t.add_(1.0, alpha=2.0), lambda t: t.fill_(0),
                   lambda t: t.normal_()):
        with pytest.raises(RuntimeError, match="inside dg.no_grad"):
            change(w)
        with pytest.raises(RuntimeError, match="a tensor of the graph being recorded"):
            change(w * 1.0)
    plain = dg.tensor([1.0, 2.0], device=device)
    y = (w * plain).sum()
    plain.mul_(2.0)  # allowed on a constant; the graph that saved it then refuses to use it
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()
    with pytest.raises(TypeError, match="not an integer"):
        dg.tensor([1, 2], device=device).exp_()


def test_random_fills_are_seeded_the_same_on_any_device(device):
    w = dg.zeros(1000, device=device, dtype="float64")
    w.uniform_(-2.0, 3.0, generator=4)
    assert -2.0 <= w.numpy().min() and w.numpy().max() < 3.0 and abs(w.numpy().mean() - 0.5) < 0.15
    assert w.numpy().tolist() == dg.zeros(1000, dtype="float64").uniform_(-2.0, 3.0, generator=4).numpy().tolist()
    w.normal_(1.0, 0.5, generator=np.random.default_rng(1))
    assert abs(w.numpy().mean() - 1.0) < 0.1 and abs(w.numpy().std() - 0.5) < 0.1


def test_dtype_device_and_format_methods(device):
    x = dg.tensor([[1.23456]], device=device)
    assert f"{x:.3f}" == "1.235" and f"{x[0, 0]:>8.2f}" == "    1.23" and f"{x}" == str(x)
    assert x.is_cuda == (device.type == "cuda")
    assert x.half().dtype == np.float16 and x.double().dtype == np.float64 and x.float().dtype == np.float32
    assert x.type() == "float32" and x.type(dg.float64).dtype == np.float64
    assert x.type("torch.LongTensor").dtype == np.int64 and x.type("float16").dtype == np.float16
    assert x.contiguous() is x


@pytest.mark.parametrize("shape, chunks, dim, sizes", [((0,), 3, 0, [0, 0, 0]), ((0, 4), 2, 0, [0, 0]),
                                                       ((2, 0), 1, 1, [0]), ((5,), 3, 0, [2, 2, 1]),
                                                       ((6,), 4, 0, [2, 2, 2]), ((1,), 3, 0, [1])])
def test_chunk_gives_pytorchs_pieces_also_of_an_empty_dimension(shape, chunks, dim, sizes):
    pieces = dg.tensor(np.zeros(shape)).chunk(chunks, dim)
    assert [p.shape[dim] for p in pieces] == sizes  # torch.zeros(shape).chunk(chunks, dim)


def _twin_of_the_cpu():
    """A second Device computing like the CPU: an index on it is on another device than x."""
    cpu = dg.device("cpu")
    twin = object.__new__(type(cpu))
    for name in type(cpu).__slots__:
        if name != "__weakref__":
            object.__setattr__(twin, name, getattr(cpu, name))
    return twin


@pytest.mark.parametrize("call", [lambda x, i: dg.take(x, i), lambda x, i: dg.take_along_axis(x, i, 0),
                                  lambda x, i: x.gather(0, i), lambda x, i: x.index_select(0, i),
                                  lambda x, i: nn.functional.embedding(i, x.reshape(3, 1))])
def test_an_index_on_another_device_is_refused(call):
    x = dg.tensor([1.0, 2.0, 3.0])
    index = Tensor._make(np.array([0, 2]), _twin_of_the_cpu())
    with pytest.raises(ValueError, match="the index is on"):
        call(x, index)


# a method that works along one dim, given a tuple: PyTorch's (the second callable) raises a TypeError
ONE_DIM = {
    "topk": (lambda x: x.topk(1, dim=(2, 1)), lambda x: x.topk(1, dim=(2, 1))),
    "unsqueeze": (lambda x: x.unsqueeze((2, 0)), lambda x: x.unsqueeze((2, 0))),
    "sort": (lambda x: x.sort(dim=(1,)), lambda x: x.sort(dim=(1,))),
    "flatten": (lambda x: x.flatten((1,)), lambda x: x.flatten((1,))),
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", ONE_DIM)
def test_a_tuple_for_one_dim_is_a_type_error_as_pytorchs(torch, device, name):
    """Taking one of the tuple's dims would silently compute something else."""
    fn, torch_fn = ONE_DIM[name]
    with pytest.raises(TypeError):
        torch_fn(torch.tensor(B3))
    with pytest.raises(TypeError, match="must be one integer"):
        fn(dg.tensor(B3, device=device))

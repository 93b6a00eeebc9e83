"""NumPy's layout functions (flip, roll, pad, take, split, the stacks, ...): values as NumPy's,
gradients of first and second order by finite differences, PyTorch as the oracle where it has the
function, and one clear error for each misuse."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from tests.support.helpers import check_op

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

A = np.random.default_rng(36).standard_normal((3, 4))
B = np.random.default_rng(37).standard_normal((2, 3, 2))
ROWS = np.array([[0], [3], [3]])

# name -> (devgrad, NumPy, input): the same call on a Tensor and on an array
CASES = {
    "flip": (lambda t: dg.flip(t, 1), lambda a: np.flip(a, 1), A),
    "flip-all": (lambda t: dg.flip(t), lambda a: np.flip(a), B),
    "flipud": (dg.flipud, np.flipud, A),
    "fliplr": (dg.fliplr, np.fliplr, A),
    "rot90": (dg.rot90, np.rot90, A),
    "rot90-k2": (lambda t: dg.rot90(t, 2, (0, 2)), lambda a: np.rot90(a, 2, (0, 2)), B),
    "rot90-k3": (lambda t: dg.rot90(t, -1, (1, 0)), lambda a: np.rot90(a, -1, (1, 0)), A),
    "roll-flat": (lambda t: dg.roll(t, 5), lambda a: np.roll(a, 5), A),
    "roll-axes": (lambda t: dg.roll(t, (1, -3, 2), (0, 1, 0)), lambda a: np.roll(a, (1, -3, 2), (0, 1, 0)), A),
    "moveaxis": (lambda t: dg.moveaxis(t, [0, 1], [-1, 0]), lambda a: np.moveaxis(a, [0, 1], [-1, 0]), B),
    "rollaxis": (lambda t: dg.rollaxis(t, 2, 1), lambda a: np.rollaxis(a, 2, 1), B),
    "ravel": (dg.ravel, np.ravel, B),
    "repeat-flat": (lambda t: dg.repeat(t, 2), lambda a: np.repeat(a, 2), A),
    "repeat-counts": (lambda t: dg.repeat(t, [2, 0, 1], axis=0), lambda a: np.repeat(a, [2, 0, 1], axis=0), A),
    "tile": (lambda t: dg.tile(t, (2, 1, 2)), lambda a: np.tile(a, (2, 1, 2)), A),
    "take-flat": (lambda t: dg.take(t, [0, 0, 11]), lambda a: np.take(a, [0, 0, 11]), A),
    "take-axis": (lambda t: dg.take(t, [[3, 0], [3, -1]], axis=1), lambda a: np.take(a, [[3, 0], [3, -1]], axis=1), A),
    "take_along_axis": (lambda t: dg.take_along_axis(t, ROWS, 1), lambda a: np.take_along_axis(a, ROWS, 1), A),
    "pad-constant": (lambda t: dg.pad(t, ((1, 2), (0, 3)), constant_values=1.5),
                     lambda a: np.pad(a, ((1, 2), (0, 3)), constant_values=1.5), A),
    "pad-edge": (lambda t: dg.pad(t, 2, "edge"), lambda a: np.pad(a, 2, "edge"), A),
    "pad-reflect": (lambda t: dg.pad(t, (5, 1), "reflect"), lambda a: np.pad(a, (5, 1), "reflect"), A),
    "pad-symmetric": (lambda t: dg.pad(t, ((0, 0), (2, 1), (1, 1)), "symmetric"),
                      lambda a: np.pad(a, ((0, 0), (2, 1), (1, 1)), "symmetric"), B),
    "pad-wrap": (lambda t: dg.pad(t, (2, 5), "wrap"), lambda a: np.pad(a, (2, 5), "wrap"), A),
    "append-flat": (lambda t: dg.append(t, [1.0, 2.0]), lambda a: np.append(a, [1.0, 2.0]), A),
    "append-axis": (lambda t: dg.append(t, t[:1], axis=0), lambda a: np.append(a, a[:1], axis=0), A),
    "hstack": (lambda t: dg.hstack([t, t[:, :1]]), lambda a: np.hstack([a, a[:, :1]]), A),
    "hstack-1d": (lambda t: dg.hstack([t[0], t[1, :2]]), lambda a: np.hstack([a[0], a[1, :2]]), A),
    "vstack": (lambda t: dg.vstack([t, t[0]]), lambda a: np.vstack([a, a[0]]), A),
    "dstack": (lambda t: dg.dstack([t, t * 2.0]), lambda a: np.dstack([a, a * 2.0]), A),
    "dstack-1d": (lambda t: dg.dstack([t[0], t[1]]), lambda a: np.dstack([a[0], a[1]]), A),
    "column_stack": (lambda t: dg.column_stack([t[0], t[1:3].T]), lambda a: np.column_stack([a[0], a[1:3].T]), A),
    "atleast_1d": (lambda t: dg.atleast_1d(t[0, 0]), lambda a: np.atleast_1d(a[0, 0]), A),
    "atleast_2d": (lambda t: dg.atleast_2d(t[0]), lambda a: np.atleast_2d(a[0]), A),
    "atleast_3d": (lambda t: dg.atleast_3d(t), lambda a: np.atleast_3d(a), A),
    "select": (lambda t: dg.select([t > 0, t < -1], [t, t * 2.0], 0.5),
               lambda a: np.select([a > 0, a < -1], [a, a * 2.0], 0.5), A),
    "array": (lambda t: dg.array([[t[0, 0], t[1, 1]], [t[2, 2], 3.0]]),
              lambda a: np.array([[a[0, 0], a[1, 1]], [a[2, 2], 3.0]]), A),
    "stack": (lambda t: dg.stack([t[0], t[2]], axis=1), lambda a: np.stack([a[0], a[2]], axis=1), A),
    "expand_dims": (lambda t: dg.expand_dims(t, -2), lambda a: np.expand_dims(a, -2), A),
    "expand_dims-axes": (lambda t: dg.expand_dims(t, (0, -1)), lambda a: np.expand_dims(a, (0, -1)), A),
    "expand_dims-axes-end": (lambda t: dg.expand_dims(t, (-1, -2)), lambda a: np.expand_dims(a, (-1, -2)), B),
    "expand_dims-axes-mid": (lambda t: dg.expand_dims(t, (3, 1)), lambda a: np.expand_dims(a, (3, 1)), B),
    "linspace": (lambda t: dg.linspace(t[0], t[1], 5), lambda a: np.linspace(a[0], a[1], 5), A),
    "linspace-open": (lambda t: dg.linspace(t[0, 0], t[1, 1], 4, endpoint=False),
                      lambda a: np.linspace(a[0, 0], a[1, 1], 4, endpoint=False), A),
    "linspace-axis": (lambda t: dg.linspace(t[0], 2.0, 3, axis=1), lambda a: np.linspace(a[0], 2.0, 3, axis=1), A),
}
SPLITS = {"split": [3, [1, 3], [3, 1, -1]], "array_split": [3, [2]], "hsplit": [2, [1]], "vsplit": [3, [1, 2]]}


def t64(values, device, requires_grad=True):
    return dg.tensor(np.asarray(values, dtype=np.float64), device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("name", CASES)
def test_values_are_numpys_and_both_derivative_orders_are_right(device, name):
    fn, numpy_fn, a = CASES[name]
    out, expected = fn(t64(a, device, False)), numpy_fn(a)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-15, atol=0)
    assert dg.gradcheck(fn, [t64(a, device)])
    assert dg.gradgradcheck(fn, [t64(a, device)])


@pytest.mark.parametrize("name,arg", [(n, arg) for n, args in SPLITS.items() for arg in args], ids=str)
def test_splits_are_numpys_and_each_piece_has_its_gradient(device, name, arg):
    pieces, expected = getattr(dg, name)(t64(A, device, False), arg), getattr(np, name)(A, arg)
    assert [p.shape for p in pieces] == [e.shape for e in expected]
    for piece, e in zip(pieces, expected):
        np.testing.assert_array_equal(piece.numpy(), e)
    weights = [float(i + 1) for i in range(len(pieces))]  # a weighted sum of the pieces reaches every part
    assert dg.gradcheck(lambda t: dg.hstack([dg.ravel(p) * w for p, w in zip(getattr(dg, name)(t, arg), weights)]),
                        [t64(A, device)])


def test_dsplit_and_the_split_of_a_3d_tensor(device):
    pieces = dg.dsplit(t64(B, device, False), 2)
    assert [p.numpy().tolist() for p in pieces] == [e.tolist() for e in np.dsplit(B, 2)]


def test_float32_stays_float32(device):
    x = dg.tensor(A.astype(np.float32), device=device)
    for out in (dg.pad(x, 1), dg.pad(x, 1, "reflect"), dg.append(x, [1.0]), dg.roll(x, 1), dg.repeat(x, 2),
                dg.linspace(x[0], x[1], 3), dg.hstack([x, [[1.0]] * 3]), dg.array([x[0, 0], 2.0])):
        assert out.dtype == np.float32


def test_where_with_one_argument_is_nonzero(device):
    x = t64([[0.0, 1.5], [-2.0, 0.0]], device, False)
    rows, cols = dg.where(x != 0)
    assert rows.numpy().tolist() == [0, 1] and cols.numpy().tolist() == [1, 0]
    assert [i.numpy().tolist() for i in dg.nonzero(x)] == [i.tolist() for i in np.nonzero(x.numpy())]
    assert dg.where(x > 0, x, 0.0).numpy().tolist() == [[0.0, 1.5], [0.0, 0.0]]
    with pytest.raises(TypeError, match="give both x and y, or neither"):
        dg.where(x > 0, x)


def test_array_of_tensors_is_differentiable_and_plain_data_is_a_tensor(device):
    a, b = t64(2.0, device), t64([1.0, 3.0], device)
    out = dg.array([[a, a * 2.0], b])
    assert out.numpy().tolist() == [[2.0, 4.0], [1.0, 3.0]]
    ga, gb = dg.grad((out * t64([[1.0, 10.0], [100.0, 1000.0]], device, False)).sum(), [a, b])
    assert ga.item() == 21.0 and gb.numpy().tolist() == [100.0, 1000.0]
    plain = dg.array([[1.0, 2.0]], device=device)
    assert plain.dtype == np.float32 and not plain.requires_grad
    assert dg.array([1, 2], dtype="float64", device=device).dtype == np.float64


def test_linspace_without_tensors_is_unchanged(device):
    assert dg.linspace(0.0, 1.0, 5, device=device).numpy().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert dg.linspace(0, 1, steps=3, device=device, dtype="float64").numpy().tolist() == [0.0, 0.5, 1.0]
    np.testing.assert_array_equal(dg.linspace(0.0, 1.0, 4, endpoint=False, device=device, dtype="float64").numpy(),
                                  np.linspace(0.0, 1.0, 4, endpoint=False))


def test_dg_repeat_is_numpys_and_the_method_is_pytorchs(device):
    x = t64([[1.0, 2.0]], device, False)
    assert dg.repeat(x, 2, axis=1).numpy().tolist() == [[1.0, 1.0, 2.0, 2.0]]
    assert x.repeat(2, 3).numpy().tolist() == [[1.0, 2.0] * 3] * 2  # PyTorch's: the whole tensor, as dg.tile
    assert dg.tile(x, (2, 3)).numpy().tolist() == [[1.0, 2.0] * 3] * 2


@pytest.mark.parametrize("call,error,message", [
    (lambda x: dg.split(x, 3, axis=1), ValueError, "axis 1 of size 4 does not divide into 3 equal pieces"),
    (lambda x: dg.array_split(x, 0), ValueError, "number of sections must be positive"),
    (lambda x: dg.vsplit(x[0], 2), ValueError, "at least 2 dimensions"),
    (lambda x: dg.pad(x, 1, "median"), ValueError, "mode 'median' is not supported; use one of constant, edge"),
    (lambda x: dg.pad(x, (1, -1)), ValueError, "negative width"),
    (lambda x: dg.pad(x, ((1, 1), (1, 1), (1, 1))), ValueError, "does not fit a tensor of 2 dimensions"),
    (lambda x: dg.pad(x[:, :0], 1, "edge"), ValueError, "axis 1 is empty"),
    (lambda x: dg.rot90(x, 1, (0, 0)), ValueError, "name the same axis twice"),
    (lambda x: dg.moveaxis(x, [0, 1], [0]), ValueError, "must name as many axes"),
    (lambda x: dg.take_along_axis(x, [1, 2], 1), ValueError, "indices have 1 dimensions, the tensor 2"),
    (lambda x: dg.take(x, [0.5]), TypeError, "take: the index must hold integers"),
    (lambda x: dg.repeat(x, [1, 2], axis=0), ValueError, "2 counts for an axis of size 3"),
    (lambda x: dg.select([x > 0], []), ValueError, "1 conditions but 0 choices"),
    (lambda x: dg.fliplr(x[0]), ValueError, "at least 2 dimensions"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_misuse_gets_one_clear_message(device, call, error, message):
    with pytest.raises(error, match=message):
        call(t64(A, device, False))


# a function that works along one axis, given a tuple: NumPy's (the second callable) raises a TypeError
ONE_AXIS = {
    "concatenate": (lambda t: dg.concatenate([t, t], axis=(1, 0)), lambda a: np.concatenate([a, a], axis=(1, 0))),
    "stack": (lambda t: dg.stack([t, t], axis=(2, 0)), lambda a: np.stack([a, a], axis=(2, 0))),
    "split": (lambda t: dg.split(t, 2, axis=(2,)), lambda a: np.split(a, 2, axis=(2,))),
    "array_split": (lambda t: dg.array_split(t, 2, axis=(1,)), lambda a: np.array_split(a, 2, axis=(1,))),
    "take": (lambda t: dg.take(t, [0], axis=(2, 1)), lambda a: np.take(a, [0], axis=(2, 1))),
    "repeat": (lambda t: dg.repeat(t, 2, axis=(2, 1)), lambda a: np.repeat(a, 2, axis=(2, 1))),
    "swapaxes": (lambda t: dg.swapaxes(t, (2,), (1,)), lambda a: np.swapaxes(a, (2,), (1,))),
    "moveaxis": (lambda t: dg.moveaxis(t, [(0, 1)], [2]), lambda a: np.moveaxis(a, [(0, 1)], [2])),
    "rollaxis": (lambda t: dg.rollaxis(t, (2,), 0), lambda a: np.rollaxis(a, (2,), 0)),
    "take_along_axis": (lambda t: dg.take_along_axis(t, np.zeros((1, 1, 1), int), (2,)),
                        lambda a: np.take_along_axis(a, np.zeros((1, 1, 1), int), (2,))),
    "diff": (lambda t: dg.diff(t, axis=(1,)), lambda a: np.diff(a, axis=(1,))),
    "tensordot": (lambda t: dg.tensordot(t, t, ([(0, 1)], [0])), lambda a: np.tensordot(a, a, ([(0, 1)], [0]))),
}


@pytest.mark.parametrize("name", ONE_AXIS)
def test_a_tuple_for_one_axis_is_a_type_error_as_numpys(device, name):
    """Taking one of the tuple's axes would silently compute something else."""
    fn, numpy_fn = ONE_AXIS[name]
    with pytest.raises(TypeError):
        numpy_fn(B)
    with pytest.raises(TypeError, match="axis must be one integer"):
        fn(t64(B, device))


# devgrad -> PyTorch (given the module) for the functions PyTorch has (NumPy's repeat is torch's repeat_interleave)
TORCH = {
    "flip": (lambda t: dg.flip(t, (0, 1)), lambda torch, t: t.flip((0, 1))),
    "rot90": (lambda t: dg.rot90(t, 3), lambda torch, t: t.rot90(3)),
    "roll": (lambda t: dg.roll(t, (1, 2), (0, 1)), lambda torch, t: t.roll((1, 2), (0, 1))),
    "moveaxis": (lambda t: dg.moveaxis(t, 0, 1), lambda torch, t: t.moveaxis(0, 1)),
    "ravel": (dg.ravel, lambda torch, t: t.ravel()),
    "repeat": (lambda t: dg.repeat(t, 2, axis=1), lambda torch, t: t.repeat_interleave(2, dim=1)),
    "tile": (lambda t: dg.tile(t, (2, 2)), lambda torch, t: t.tile((2, 2))),
    "take": (lambda t: dg.take(t, [[0, 7], [7, 11]]), lambda torch, t: t.take(t.new_tensor([[0, 7], [7, 11]]).long())),
    "take_along_axis": (lambda t: dg.take_along_axis(t, ROWS, dim=1),
                        lambda torch, t: t.take_along_dim(t.new_tensor(ROWS).long(), dim=1)),
    "pad": (lambda t: dg.pad(t, ((1, 0), (2, 3)), constant_values=0.5),
            lambda torch, t: torch.nn.functional.pad(t, (2, 3, 1, 0), value=0.5)),
    "hstack": (lambda t: dg.hstack([t, t]), lambda torch, t: torch.hstack([t, t])),
    "vstack": (lambda t: dg.vstack([t, t[0]]), lambda torch, t: torch.vstack([t, t[0]])),
    "dstack": (lambda t: dg.dstack([t, t]), lambda torch, t: torch.dstack([t, t])),
    "column_stack": (lambda t: dg.column_stack([t[0], t[1]]), lambda torch, t: torch.column_stack([t[0], t[1]])),
    "array_split": (lambda t: dg.hstack(dg.array_split(t * 2.0, 3, axis=1)[::-1]),
                    lambda torch, t: torch.hstack(torch.tensor_split(t * 2.0, 3, dim=1)[::-1])),
}


@pytest.mark.oracle
@pytest.mark.parametrize("name", TORCH)
def test_matches_torch(torch, device, name):
    fn, torch_fn = TORCH[name]
    check_op(torch, fn, lambda t: torch_fn(torch, t), [A], device, gradcheck=False)

"""Differential tests: NumPy's functions against NumPy itself (values, dtypes, shapes) on random
shapes, axes, dtypes, empty and 0-d arrays, and against PyTorch's first and second derivatives
on a grid of edge values; then the edge inputs each function must get right."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import devgrad as dg

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NAN, INF = np.nan, np.inf

UNARY = ["sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh", "arccosh", "arctanh",
         "sinc", "deg2rad", "rad2deg", "exp2", "expm1", "log1p", "log2", "log10", "sign", "floor", "ceil",
         "rint", "trunc", "round", "nan_to_num", "absolute", "fabs", "square", "reciprocal", "negative", "cbrt"]
BINARY = ["arctan2", "hypot", "logaddexp", "logaddexp2", "mod", "fmod", "fmax", "fmin", "true_divide"]
DTYPES = [np.float64, np.float32, np.int64, np.int32]
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)


def _values(data, dtype, shape):
    """Small integers for integer dtypes; floats with 0, ±1, ±inf and NaN among them otherwise."""
    if np.dtype(dtype).kind in "iu":
        return data.draw(hnp.arrays(dtype, shape, elements=st.integers(-4, 4)))
    special = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, INF, -INF, NAN])
    return data.draw(hnp.arrays(dtype, shape, elements=st.one_of(st.floats(-3, 3, width=32), special)))


def _numpy(fn, *args, **kwargs):
    """NumPy's answer, without its warnings (a NaN-only slice's mean warns there, not in devgrad)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(fn(*args, **kwargs))


def _same(got: dg.Tensor, want: np.ndarray, rtol: float = 1e-6) -> None:
    got = got.numpy()
    assert (got.shape, got.dtype) == (want.shape, want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-6, equal_nan=True)


@SETTINGS
@given(data=st.data(), name=st.sampled_from(UNARY), dtype=st.sampled_from(DTYPES), shape=shapes)
def test_unary_values_dtypes_and_shapes_are_numpys(data, name, dtype, shape):
    x = _values(data, dtype, shape)
    _same(getattr(dg, name)(dg.tensor(x)), _numpy(getattr(np, name), x))


@SETTINGS
@given(data=st.data(), name=st.sampled_from(BINARY), dtypes=st.tuples(*[st.sampled_from(DTYPES)] * 2),
       shapes_=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       scalar=st.sampled_from([None, "left", "right"]))
def test_binary_broadcasting_and_promotion_are_numpys(data, name, dtypes, shapes_, scalar):
    a, b = (_values(data, dt, s) for dt, s in zip(dtypes, shapes_.input_shapes))
    if scalar:  # a Python number on one side is weak (NEP 50): the tensor's dtype wins
        number = (a if scalar == "left" else b).flat[0].item() if (a if scalar == "left" else b).size else 1.5
        a, b = (number, b) if scalar == "left" else (a, number)
    if name in ("mod", "fmod", "true_divide"):  # an integer division by 0 is NumPy's warning and 0
        if isinstance(b, np.ndarray) and b.dtype.kind in "iu":
            b = np.where(b == 0, 1, b).astype(b.dtype)
        elif isinstance(b, int) and b == 0:
            b = 1
    args = [dg.tensor(v) if isinstance(v, np.ndarray) else v for v in (a, b)]
    if not any(isinstance(v, dg.Tensor) for v in args):
        return
    _same(getattr(dg, name)(*args), _numpy(getattr(np, name), a, b))


def _axes(data, ndim: int, tuples: bool):
    if not ndim:
        return None
    if tuples and data.draw(st.booleans()):
        picked = data.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        return tuple(p - ndim if data.draw(st.booleans()) else p for p in picked)
    return data.draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1)))


REDUCTIONS = ["prod", "amax", "amin", "nansum", "nanmean", "median", "average", "sum", "mean"]


@SETTINGS
@given(data=st.data(), name=st.sampled_from(REDUCTIONS), dtype=st.sampled_from([np.float64, np.float32, np.int64,
                                                                                np.bool_]),
       shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3), keepdims=st.booleans())
def test_reductions_over_any_axes_are_numpys(data, name, dtype, shape, keepdims):
    x = (data.draw(hnp.arrays(dtype, shape)) if dtype == np.bool_ else _values(data, dtype, shape))
    if name not in {"amax", "amin"} and x.dtype.kind == "f":
        x = np.nan_to_num(x, nan=NAN, posinf=2.0, neginf=-2.0)  # inf - inf warns in NumPy's sums and devgrad's
    axis = _axes(data, x.ndim, tuples=True)
    _same(getattr(dg, name)(dg.tensor(x), axis=axis, keepdims=keepdims),
          _numpy(getattr(np, name), x, axis=axis, keepdims=keepdims), rtol=1e-5)


SCANS = {"cumsum": np.cumsum, "cumprod": np.cumprod, "sort": np.sort, "argsort": lambda x, axis: np.argsort(
    x, axis, kind="stable"), "diff": np.diff}


@SETTINGS
@given(data=st.data(), name=st.sampled_from(sorted(SCANS)), dtype=st.sampled_from([np.float64, np.float32,
                                                                                   np.int64, np.bool_]),
       shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3))
def test_scans_and_sorts_are_numpys(data, name, dtype, shape):
    x = data.draw(hnp.arrays(dtype, shape)) if dtype == np.bool_ else _values(data, dtype, shape)
    axis = _axes(data, x.ndim, tuples=False)
    if name == "diff" and axis is None:
        axis = -1
    if name in ("diff", "cumsum", "cumprod") and x.dtype.kind == "f":
        x = np.nan_to_num(x)  # inf - inf warns in NumPy's sums and devgrad's alike
    _same(getattr(dg, name)(dg.tensor(x), axis=axis), _numpy(SCANS[name], x, axis=axis))


LAYOUT = {
    "repeat": lambda m, x, ax: m.repeat(x, 2, ax), "roll": lambda m, x, ax: m.roll(x, -1, ax),
    "flip": lambda m, x, ax: m.flip(x, ax), "tile": lambda m, x, ax: m.tile(x, (2, 1)),
    "take": lambda m, x, ax: m.take(x, [0, -1, 0], ax),
    "pad_edge": lambda m, x, ax: m.pad(x, 1, "edge"), "pad_reflect": lambda m, x, ax: m.pad(x, (1, 2), "reflect"),
    "pad_wrap": lambda m, x, ax: m.pad(x, 2, "wrap"), "pad_symmetric": lambda m, x, ax: m.pad(x, 1, "symmetric"),
    "pad_constant": lambda m, x, ax: m.pad(x, ((1, 0),) * x.ndim, constant_values=-1.5),
    "array_split": lambda m, x, ax: m.concatenate([p.reshape(-1) for p in m.array_split(x, 2, ax or 0)]),
    "append": lambda m, x, ax: m.append(x, x, ax), "rot90": lambda m, x, ax: m.rot90(x, 3, (0, -1)),
    "moveaxis": lambda m, x, ax: m.moveaxis(x, 0, -1), "atleast_3d": lambda m, x, ax: m.atleast_3d(x),
}


@SETTINGS
@given(data=st.data(), name=st.sampled_from(sorted(LAYOUT)),
       shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
def test_layout_values_and_gradients(data, name, shape):
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3)))
    if name == "rot90" and x.ndim < 2:
        x = x.reshape(-1, 1)
    axis = _axes(data, x.ndim, tuples=False)
    if name == "pad_reflect" and min(x.shape) < 2:
        x = np.concatenate([x, x], axis=int(np.argmin(x.shape)))
    _same(LAYOUT[name](dg, dg.tensor(x), axis), _numpy(LAYOUT[name], np, x, axis))
    assert dg.gradcheck(lambda t: LAYOUT[name](dg, t, axis), [dg.tensor(x)])


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_einsum_of_random_subscripts_is_numpys_and_differentiable(data):
    sizes = dict(zip("abcd", data.draw(st.lists(st.integers(1, 3), min_size=4, max_size=4))))
    ops = data.draw(st.lists(st.text("abcd", max_size=3), min_size=1, max_size=3))
    ellipsis = data.draw(st.booleans())
    used = sorted(set("".join(ops)))
    out = data.draw(st.one_of(st.none(), st.permutations(used).map(lambda p: "".join(p[:len(p) // 2 + 1]))))
    subscripts = ",".join(("..." if ellipsis else "") + o for o in ops)
    if out is not None:
        subscripts += "->" + ("..." if ellipsis else "") + out
    rng = np.random.default_rng(len(subscripts))
    arrays = [rng.standard_normal(((2,) if ellipsis else ()) + tuple(sizes[c] for c in o)) for o in ops]
    _same(dg.einsum(subscripts, *(dg.tensor(a) for a in arrays)), _numpy(np.einsum, subscripts, *arrays), rtol=1e-9)
    assert dg.gradgradcheck(lambda *t: dg.einsum(subscripts, *t), [dg.tensor(a) for a in arrays])


EDGES = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.0, 1e-300, 1e300, INF, -INF, NAN])
TORCH_UNARY = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh", "arccosh": "acosh",
               "arctanh": "atanh", "rint": "round", "absolute": "abs", "fabs": "abs", "negative": "neg"}
TORCH_BINARY = {"arctan2": "atan2", "mod": "remainder"}


def _two_orders(grad, fn, xs, weights):
    """First derivatives (cotangent of ones) and the derivative of their weighted sum (as
    cotangents: a .sum() of inf and -inf values would warn)."""
    first = grad(fn(*xs), xs, None, create_graph=True)
    live = [(f, w) for f, w in zip(first, weights) if f.requires_grad]
    if not live:
        return first, [None] * len(xs)
    return first, grad([f for f, _ in live], xs, [w for _, w in live], allow_unused=True)


def _as_numpy(t, like):
    if t is None:
        return np.zeros_like(like)
    return t.numpy() if isinstance(t, dg.Tensor) else t.detach().numpy(force=True)


@pytest.mark.oracle
@pytest.mark.parametrize("name", [n for n in UNARY if n not in ("cbrt", "deg2rad", "rad2deg", "negative", "sinc")]
                         + BINARY + ["maximum", "minimum"])
def test_first_and_second_derivatives_at_the_edges_are_pytorchs(torch, name):
    if name in BINARY + ["maximum", "minimum"]:
        a, b = (v.ravel() for v in np.meshgrid(EDGES, EDGES))
        arrays, torch_fn = [a, b], getattr(torch, TORCH_BINARY.get(name, name))
    else:
        arrays, torch_fn = [EDGES], getattr(torch, TORCH_UNARY.get(name, name))
    weights = [np.linspace(0.5, 1.5, arrays[0].size) * (i + 1) for i in range(len(arrays))]

    def dg_grad(out, xs, cot, **kw):
        return dg.grad(out, xs, dg.ones_like(out) if cot is None else cot, **kw)

    def torch_grad(out, xs, cot, **kw):
        return torch.autograd.grad(out, xs, torch.ones_like(out) if cot is None else cot, **kw)

    xs = [dg.tensor(a, requires_grad=True) for a in arrays]
    ours = _two_orders(dg_grad, getattr(dg, name), xs, [dg.tensor(w) for w in weights])
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    try:
        theirs = _two_orders(torch_grad, torch_fn, ts, [torch.tensor(w) for w in weights])
    except RuntimeError:  # PyTorch's first derivative is a constant: no graph to differentiate
        theirs = (torch_grad(torch_fn(*ts), ts, None), [None] * len(ts))
    for got, want in zip([*ours[0], *ours[1]], [*theirs[0], *theirs[1]]):
        np.testing.assert_allclose(_as_numpy(got, arrays[0]), _as_numpy(want, arrays[0]), rtol=1e-9, atol=1e-300,
                                   equal_nan=True)


# ---- edge inputs, each checked on its own -------------------------------------------------------

@pytest.mark.oracle
@pytest.mark.parametrize("dtype, x", [("float32", 1e10), ("float32", -3e20), ("float64", 1e300), ("float64", 1e80)])
def test_sinc_second_derivative_is_finite_far_from_zero(torch, dtype, x):
    """The Taylor branch near 0 must not turn x⁴ = inf into NaN where the closed form is used."""
    xs = dg.tensor(np.array([x, 50.3, 0.0]), dtype=dtype, requires_grad=True)
    (d1,) = dg.grad(dg.sinc(xs).sum(), xs, create_graph=True)
    (d2,) = dg.grad(d1.sum(), xs)
    assert np.isfinite(d2.numpy()).all()
    if dtype == "float64":
        t = torch.tensor(xs.numpy(), requires_grad=True)
        (t1,) = torch.autograd.grad(torch.sinc(t).sum(), t, create_graph=True)
        (t2,) = torch.autograd.grad(t1.sum(), t)
        np.testing.assert_allclose(d2.numpy()[:2], t2.numpy()[:2], rtol=1e-9, atol=1e-290)


@pytest.mark.parametrize("x", [np.array([1, 2, 3]), np.array([[1, 4], [2, 3]], dtype=np.int32),
                               np.array([True, False, True])])
def test_nan_reductions_and_median_of_integers_and_bools_are_numpys(x):
    for name in ("nansum", "nanmean", "median"):
        for axis in (None, -1):
            _same(getattr(dg, name)(dg.tensor(x), axis=axis), np.asarray(getattr(np, name)(x, axis=axis)))


@pytest.mark.oracle
@pytest.mark.parametrize("p", [1.5, 3.0, 0.5, -1.0])
@pytest.mark.parametrize("values", [[0.0, 1.0, -2.0], [0.0, 0.0, 0.0], [0.5, 1.0, -2.0]])
def test_p_norm_gradients_at_zero_entries_are_pytorchs(torch, p, values):
    """sign(x)·|x|^(p-1) is 0 at x = 0 (PyTorch's); |x|^(p-2) there must not make it, or the
    second derivative of the other entries, NaN."""
    x = np.array([values, values[::-1]])
    t = torch.tensor(x, requires_grad=True)
    (want,) = torch.autograd.grad(torch.linalg.vector_norm(t, ord=p, dim=1).sum(), t)
    norms = [lambda v: dg.linalg.norm(v, p, axis=1)]
    if p > 1:  # the Tensor method takes p > 1 (and 1, inf, 0) only
        norms.append(lambda v: v.norm(p=p, dim=1))
    for norm in norms:
        xs = dg.tensor(x, requires_grad=True)
        (got,) = dg.grad(norm(xs).sum(), xs, create_graph=True)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-15)
        (second,) = dg.grad((got * dg.tensor(np.arange(6.0).reshape(2, 3))).sum(), xs)
        assert np.isfinite(second.numpy()).all()
    if values[0]:
        assert dg.gradgradcheck(lambda v: dg.linalg.norm(v, p, axis=1), [dg.tensor(x)])


def test_add_and_sub_with_alpha_scale_a_list_instead_of_repeating_it():
    x = dg.tensor(np.arange(4.0))
    np.testing.assert_array_equal(x.add([1.0, 2.0, 3.0, 4.0], alpha=2).numpy(), [2.0, 5.0, 8.0, 11.0])
    np.testing.assert_array_equal(x.sub([1.0, 1.0, 1.0, 1.0], alpha=3).numpy(), [-3.0, -2.0, -1.0, 0.0])
    with pytest.raises(ValueError, match="broadcast"):
        x.add([1.0, 2.0], alpha=2)  # a list times an int repeats it: (1, 2, 1, 2) would fit silently


def test_masked_fill_keeps_an_integer_tensors_dtype():
    x = dg.tensor(np.arange(4))
    got = x.masked_fill(x > 1, 2.5)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got.numpy(), [0, 1, 2, 2])  # PyTorch's: 2.5 cast to the tensor's dtype


def test_numpy_refusals_are_clear_errors():
    x = dg.tensor([1.26, -0.5])
    with pytest.raises(TypeError, match="decimals must be an integer"):
        dg.round(x, 1.5)
    with pytest.raises(TypeError, match="condition 0 must be boolean"):
        dg.select([x], [x])


def test_select_diff_and_pad_take_what_numpy_takes():
    x = dg.tensor([1.0, -2.0, 0.5], requires_grad=True)
    got = dg.select([x > 0.7, np.array([False, True, True])], [x * 2.0, 5.0])  # the last pair has no Tensor
    np.testing.assert_array_equal(got.numpy(), [2.0, 5.0, 5.0])
    got.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 0.0])
    xi = dg.tensor([1, 2, 3])
    _same(dg.select([xi > 1], [xi], 0.5), np.select([np.array([1, 2, 3]) > 1], [np.array([1, 2, 3])], 0.5))
    flags = np.array([[True, False, False, True]])
    for n in (1, 2):
        _same(dg.diff(dg.tensor(flags), n), np.diff(flags, n))
    for mode in ("constant", "edge"):
        _same(dg.pad(dg.tensor(1.5), 2, mode), np.pad(np.array(1.5, np.float32), 2, mode))


def test_roll_method_takes_pytorchs_keywords_alone():
    x = dg.tensor(np.arange(6.0).reshape(2, 3))
    _same(x.roll(shifts=1, dims=1), np.roll(np.arange(6.0).reshape(2, 3), 1, 1))
    _same(x.roll(shifts=(1, -1), dims=(0, 1)), np.roll(np.arange(6.0).reshape(2, 3), (1, -1), (0, 1)))
    with pytest.raises(TypeError, match="shift once"):
        dg.roll(x, 1, shifts=2)


@pytest.mark.parametrize("name", ["sin", "exp2", "floor", "cbrt", "nan_to_num", "sum", "tanh"])
@pytest.mark.parametrize("data", [np.ones(2), [1.0, 2.0], 2.0])
def test_a_function_given_plain_data_says_to_make_a_tensor(name, data):
    with pytest.raises(TypeError, match=r"needs a Tensor argument, got (ndarray|list|float); wrap the data"):
        getattr(dg, name)(data)


@pytest.mark.parametrize("change", [lambda x: x.div_(2), lambda x: x.mul_(2.5), lambda x: x.add_(0.5),
                                    lambda x: x.sub_(dg.tensor([0.5] * 4)), lambda x: x.clamp_(0.5, 2.5)])
def test_in_place_arithmetic_never_truncates_into_an_integer_tensor(change):
    """PyTorch refuses a float result in an integer tensor; a silent truncation would be a wrong value."""
    x = dg.tensor(np.arange(4))
    with pytest.raises(TypeError, match="cannot hold without truncating"):
        change(x)
    np.testing.assert_array_equal(x.numpy(), [0, 1, 2, 3])
    x.add_(1, alpha=2).mul_(3)  # integer results stay allowed
    np.testing.assert_array_equal(x.numpy(), [6, 9, 12, 15])


@pytest.mark.parametrize("shape, axis", [((3, 0), 0), ((0, 3), 1), ((2, 0, 3), (0, 2))])
def test_extremes_over_non_empty_axes_of_an_empty_tensor_are_empty(shape, axis):
    x = dg.tensor(np.zeros(shape), requires_grad=True)
    for name in ("amax", "amin", "max"):
        _same(getattr(dg, name)(x, axis=axis), np.amax(np.zeros(shape), axis=axis))
    (g,) = dg.grad(dg.amax(x, axis=axis).sum(), x)
    assert g.shape == shape
    with pytest.raises(ValueError, match="empty tensor has no value"):
        dg.amax(x, axis=None)  # an empty slice has no maximum, as in NumPy


def test_decompositions_of_an_empty_stack_of_matrices_are_numpys():
    a = np.zeros((0, 3, 3))
    x = dg.tensor(a, requires_grad=True)
    _same(dg.linalg.svd(x, compute_uv=False), np.linalg.svd(a, compute_uv=False))
    _same(dg.linalg.eigh(x)[0], np.linalg.eigh(a)[0])
    for got, want in zip(dg.linalg.qr(x), np.linalg.qr(a)):
        _same(got, want)
    (g,) = dg.grad(dg.linalg.svd(x, compute_uv=False).sum(), x)
    assert g.shape == a.shape


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.int16, np.int64, np.float32])
def test_fabs_is_floating_as_numpys(dtype):
    x = np.array([1, 0, 1]).astype(dtype) if dtype == np.bool_ else np.array([-3, 0, 2]).astype(dtype)
    _same(dg.fabs(dg.tensor(x)), np.fabs(x))

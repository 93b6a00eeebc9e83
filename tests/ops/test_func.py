"""devgrad.func against torch.func on the same functions, float64 finite differences, and errors."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from devgrad import func

# torch.func scripts helpers of its own with torch.jit.script, which torch itself deprecates: its
# warning says nothing about devgrad
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.script` is deprecated:DeprecationWarning")

TOL = {"rtol": 1e-9, "atol": 1e-10}
RNG = np.random.default_rng(0)


def U(*shape):
    return RNG.uniform(-1.0, 1.0, size=shape)


def to_np(tree):
    """Tensors of either library (in tuples, lists, dicts) as host NumPy arrays."""
    if isinstance(tree, dict):
        return {k: to_np(v) for k, v in tree.items()}
    if isinstance(tree, tuple | list):
        return type(tree)(to_np(v) for v in tree)
    if isinstance(tree, dg.Tensor):
        return tree.numpy()
    return tree if isinstance(tree, np.ndarray) else tree.detach().cpu().numpy()


def assert_close(got, expected, **tol):
    """Same structure and values; devgrad's tree and torch's compared leaf by leaf."""
    got, expected = to_np(got), to_np(expected)
    assert type(got) is type(expected), f"{type(got).__name__} != {type(expected).__name__}"
    if isinstance(got, dict):
        assert list(got) == list(expected)
        for k in got:
            assert_close(got[k], expected[k], **tol)
    elif isinstance(got, tuple | list):
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert_close(a, b, **tol)
    else:
        assert got.shape == expected.shape, f"shape {got.shape} != torch {expected.shape}"
        np.testing.assert_allclose(got, expected, **(tol or TOL))


def both(torch, arrays, device):
    """The same float64 inputs as devgrad tensors (on ``device``) and torch tensors."""
    return ([dg.tensor(a, device=device, dtype=np.float64) for a in arrays],
            [torch.tensor(a, dtype=torch.float64) for a in arrays])


# Functions written with the methods and operators both libraries share, so one lambda serves both.
SCALAR_CASES = [
    ("elementwise", lambda x: (x.tanh() * x.exp() + x.sigmoid() * x * x).sum(), [U(5)], 0),
    ("reductions", lambda x: x.softmax(-1).max() + (x * x).mean() - x.sum(0).relu().sum(), [U(3, 4)], 0),
    ("mlp", lambda w1, b1, w2, x: (((x @ w1 + b1).tanh() @ w2) ** 2).mean(), [U(3, 4), U(4), U(4, 2), U(6, 3)],
     (0, 1, 2)),
    ("second_arg", lambda a, b: (a @ b).tanh().sum(), [U(2, 3), U(3, 2)], 1),
    ("negative_argnum", lambda a, b: (a * b.exp()).sum(), [U(4), U(4)], -1),
    ("quotient", lambda a, b: (a / (b * b + 1.0)).sum() ** 2, [U(3), U(3)], (1, 0)),
]
VECTOR_CASES = [
    ("elementwise", lambda x: x.tanh() * x.exp(), [U(4)], 0),
    ("matmul", lambda w, x: (x @ w).sigmoid(), [U(3, 2), U(4, 3)], (0, 1)),
    ("softmax_rows", lambda x: x.softmax(-1), [U(2, 3)], 0),
    ("reduction", lambda x, y: (x * y).sum(0), [U(3, 2), U(3, 2)], 1),
]


def ids(cases):
    return [c[0] for c in cases]


@pytest.mark.oracle
@pytest.mark.parametrize("case", SCALAR_CASES, ids=ids(SCALAR_CASES))
def test_grad_and_value_and_grad_match_torch_func(torch, device, case):
    _, f, arrays, argnums = case
    xs, ts = both(torch, arrays, device)
    assert_close(func.grad(f, argnums)(*xs), torch.func.grad(f, argnums)(*ts))
    value, gradient = func.value_and_grad(f, argnums)(*xs)
    expected_grad, expected_value = torch.func.grad_and_value(f, argnums)(*ts)
    assert_close((value, gradient), (expected_value, expected_grad))


@pytest.mark.oracle
@pytest.mark.parametrize("case", VECTOR_CASES, ids=ids(VECTOR_CASES))
def test_jacrev_and_jacfwd_match_torch_func(torch, device, case):
    _, f, arrays, argnums = case
    xs, ts = both(torch, arrays, device)
    expected = torch.func.jacrev(f, argnums)(*ts)
    assert_close(func.jacrev(f, argnums)(*xs), expected)
    assert_close(func.jacfwd(f, argnums)(*xs), expected)


@pytest.mark.oracle
@pytest.mark.parametrize("case", VECTOR_CASES, ids=ids(VECTOR_CASES))
def test_vjp_and_jvp_match_torch_func(torch, device, case):
    _, f, arrays, _ = case
    xs, ts = both(torch, arrays, device)
    out, vjp_fn = func.vjp(f, *xs)
    expected_out, torch_vjp_fn = torch.func.vjp(f, *ts)
    cot = U(*out.shape)
    assert_close(out, expected_out)
    assert_close(vjp_fn(dg.tensor(cot, device=device, dtype=np.float64)), torch_vjp_fn(torch.tensor(cot)))
    tangents = [U(*a.shape) for a in arrays]
    got = func.jvp(f, tuple(xs), tuple(dg.tensor(t, device=device, dtype=np.float64) for t in tangents))
    assert_close(got, torch.func.jvp(f, tuple(ts), tuple(torch.tensor(t) for t in tangents)))


def mlp_loss(params, x, y):
    hidden = (x @ params["w1"] + params["b1"]).tanh()
    return ((hidden @ params["w2"] - y) ** 2).mean()


def mlp_params(lib_tensor):
    return {"w1": lib_tensor(U(3, 4)), "b1": lib_tensor(U(4)), "w2": lib_tensor(U(4, 1))}


@pytest.mark.oracle
def test_pytree_inputs_and_outputs_match_torch_func(torch, device):
    x, y = U(5, 3), U(5, 1)
    params = {k: v for k, v in zip("abc", [U(3, 4), U(4), U(4, 1)], strict=True)}
    ours = {"w1": dg.tensor(params["a"], device=device), "b1": dg.tensor(params["b"], device=device),
            "w2": dg.tensor(params["c"], device=device)}
    theirs = {"w1": torch.tensor(params["a"]), "b1": torch.tensor(params["b"]), "w2": torch.tensor(params["c"])}
    args = (dg.tensor(x, device=device), dg.tensor(y, device=device))
    targs = (torch.tensor(x), torch.tensor(y))
    assert_close(func.grad(mlp_loss)(ours, *args), torch.func.grad(mlp_loss)(theirs, *targs))

    def two_outputs(p, x):
        h = x @ p["w1"] + p["b1"]
        return {"h": h.tanh(), "pair": [h.sum(), (h * h).mean(0)]}

    expected = torch.func.jacrev(two_outputs)(theirs, targs[0])
    assert_close(func.jacrev(two_outputs)(ours, args[0]), expected)
    assert_close(func.jacfwd(two_outputs)(ours, args[0]), expected)
    out, vjp_fn = func.vjp(two_outputs, ours, args[0])
    cot = {"h": U(5, 4), "pair": [U(), U(4)]}
    expected_out, torch_vjp = torch.func.vjp(two_outputs, theirs, targs[0])
    assert_close(out, expected_out)
    assert_close(vjp_fn({"h": dg.tensor(cot["h"], device=device), "pair": [dg.tensor(v, device=device)
                                                                            for v in cot["pair"]]}),
                 torch_vjp({"h": torch.tensor(cot["h"]), "pair": [torch.tensor(v) for v in cot["pair"]]}))


@pytest.mark.oracle
def test_has_aux_returns_the_aux_detached(torch, device):
    def f(x):
        y = (x * x).sum()
        return y, {"double": 2 * x, "value": y}

    xs, ts = both(torch, [U(3)], device)
    gradient, aux = func.grad(f, has_aux=True)(xs[0])
    assert_close((gradient, aux), torch.func.grad(f, has_aux=True)(ts[0]))
    assert not aux["double"].requires_grad and not aux["value"].requires_grad
    (value, aux2), gradient2 = func.value_and_grad(f, has_aux=True)(xs[0])
    assert_close((value, aux2, gradient2), (aux["value"], aux, gradient))
    out, vjp_fn, aux3 = func.vjp(f, xs[0], has_aux=True)
    assert_close((out, aux3), (value, aux))
    assert_close(vjp_fn(dg.tensor(2.0, dtype=np.float64, device=device)), (2 * gradient,))
    jac, aux4 = func.jacrev(lambda x: (x.exp(), x.sum()), has_aux=True)(xs[0])
    assert_close((jac, aux4), torch.func.jacrev(lambda x: (x.exp(), x.sum()), has_aux=True)(ts[0]))


@pytest.mark.oracle
def test_hessian_of_a_small_mlp_loss_matches_torch_func(torch, device):
    x, y = U(6, 3), U(6, 1)
    w1, b1, w2 = U(3, 4), U(4), U(4, 1)

    def loss(w1, b1, w2, x, y):
        return ((((x @ w1 + b1).tanh()) @ w2 - y) ** 2).mean()

    xs, ts = both(torch, [w1, b1, w2, x, y], device)
    got = func.hessian(loss, argnums=(0, 1, 2))(*xs)
    assert_close(got, torch.func.hessian(loss, argnums=(0, 1, 2))(*ts))
    assert_close(func.jacfwd(func.jacrev(loss, 1), 1)(*xs), torch.func.hessian(loss, 1)(*ts))
    assert_close(func.jacrev(func.jacrev(loss, 1), 1)(*xs), torch.func.hessian(loss, 1)(*ts))
    tangents = [U(*a.shape) for a in (w1, b1, w2)]

    def loss_of_params(w1, b1, w2):
        return loss(w1, b1, w2, *ts[3:]) if isinstance(w1, torch.Tensor) else loss(w1, b1, w2, *xs[3:])

    value, product = func.hvp(loss_of_params, tuple(xs[:3]),
                              tuple(dg.tensor(t, device=device, dtype=np.float64) for t in tangents))
    torch_tangents = tuple(torch.tensor(t) for t in tangents)
    _, expected = torch.func.jvp(torch.func.grad(loss_of_params, (0, 1, 2)), tuple(ts[:3]), torch_tangents)
    assert_close(value, loss_of_params(*ts[:3]))
    assert_close(product, expected)
    _, also_expected = torch.autograd.functional.hvp(loss_of_params, tuple(ts[:3]), torch_tangents)
    assert_close(product, also_expected)


@pytest.mark.oracle
def test_transforms_compose_like_torch_func(torch, device):
    xs, ts = both(torch, [np.array(0.7)], device)

    def f(x):
        return x.tanh() * x.exp()

    assert_close(func.grad(func.grad(func.grad(f)))(xs[0]),
                 torch.func.grad(torch.func.grad(torch.func.grad(f)))(ts[0]))
    # The inner transform closes over the outer one's input: its result must stay differentiable.
    def outer(x):
        return x * func.grad(lambda y: (x * y).tanh())(dg.tensor(1.0, dtype=np.float64, device=x.device))

    def outer_torch(x):
        return x * torch.func.grad(lambda y: (x * y).tanh())(torch.tensor(1.0, dtype=torch.float64))

    assert_close(func.grad(outer)(xs[0]), torch.func.grad(outer_torch)(ts[0]))
    vs, vts = both(torch, [U(3)], device)
    g = lambda x: (x.sigmoid() * x).sum()  # noqa: E731
    assert_close(func.jacfwd(func.jacrev(func.jacrev(g)))(vs[0]),
                 torch.func.jacfwd(torch.func.jacrev(torch.func.jacrev(g)))(vts[0]))
    assert_close(func.vjp(func.grad(g), vs[0])[1](vs[0]),
                 torch.func.vjp(torch.func.grad(g), vts[0])[1](vts[0]))
    expected = torch.func.hessian(g)(vts[0])
    for outer_t in (func.jacfwd, func.jacrev):
        for inner_t in (func.jacfwd, func.jacrev):
            assert_close(outer_t(inner_t(g))(vs[0]), expected)
    assert_close(func.jvp(func.grad(g), (vs[0],), (vs[0],)),
                 torch.func.jvp(torch.func.grad(g), (vts[0],), (vts[0],)))
    assert_close(func.jvp(lambda x: func.jvp(dg.tanh, (x,), (x,))[1], (vs[0],), (vs[0],)),
                 torch.func.jvp(lambda x: torch.func.jvp(torch.tanh, (x,), (x,))[1], (vts[0],), (vts[0],)))


@pytest.mark.oracle
def test_identity_and_jvp_with_aux_match_torch_func(torch, device):
    xs, ts = both(torch, [U(3)], device)
    for transform in ("jacrev", "jacfwd", "hessian"):
        f = (lambda x: (x * x).sum()) if transform == "hessian" else (lambda x: x)
        assert_close(getattr(func, transform)(f)(xs[0]), getattr(torch.func, transform)(f)(ts[0]))
    assert_close(func.jvp(lambda x: (x.exp(), {"n": x.sum()}), (xs[0],), (xs[0],), has_aux=True),
                 torch.func.jvp(lambda x: (x.exp(), {"n": x.sum()}), (ts[0],), (ts[0],), has_aux=True))


@pytest.mark.oracle
def test_a_callers_tensor_that_requires_grad_keeps_the_graph_as_in_torch(torch, device):
    """grad(f)(x) with x requiring grad is differentiable through x; .grad stays untouched."""
    a = U(4)
    x = dg.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    f = lambda x: (x.tanh() ** 3).sum()  # noqa: E731
    g = func.grad(f)(x)
    assert x.grad is None and g.requires_grad
    expected = torch.func.grad(f)(t)
    (g * g).sum().backward()
    (expected * expected).sum().backward()
    assert_close(x.grad, t.grad)


def test_results_are_detached_and_the_callers_tensors_untouched(device):
    x = dg.tensor(U(3), device=device)
    w = dg.tensor(U(3), device=device, requires_grad=True)
    f = lambda x: (x * x.exp()).sum()  # noqa: E731
    results = [func.grad(f)(x), func.value_and_grad(f)(x)[0], func.jacrev(dg.exp)(x), func.jacfwd(dg.exp)(x),
               func.hessian(f)(x), func.vjp(dg.exp, x)[1](x)[0], *func.jvp(dg.exp, (x,), (x,)),
               *func.hvp(f, (x,), (x,))[1]]
    for r in results:
        assert not r.requires_grad and r.grad_fn is None
    assert not x.requires_grad and x.grad is None
    func.grad(lambda w: (w * w).sum())(w)
    assert w.grad is None and w.requires_grad


def test_works_inside_no_grad_as_torch_func(device):
    x = dg.tensor(U(3), device=device, dtype=np.float64)
    with dg.no_grad():
        g = func.grad(lambda x: (x ** 3).sum())(x)
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2, **TOL)
    assert not g.requires_grad


@pytest.mark.oracle
def test_an_output_that_does_not_depend_on_an_input_gives_zeros(torch, device):
    xs, ts = both(torch, [U(3), U(2)], device)
    f = lambda a, b: (a * 2.0).sum()  # noqa: E731
    assert_close(func.grad(f, (0, 1))(*xs), torch.func.grad(f, (0, 1))(*ts))
    h = lambda a, b: a * 2.0  # noqa: E731
    assert_close(func.jacrev(h, (0, 1))(*xs), torch.func.jacrev(h, (0, 1))(*ts))
    assert_close(func.jacfwd(h, (0, 1))(*xs), torch.func.jacfwd(h, (0, 1))(*ts))
    assert_close(func.hessian(f, 1)(*xs), torch.func.hessian(f, 1)(*ts))  # linear: a zero Hessian
    const = lambda a: dg.ones(2, device=device, dtype=np.float64)  # noqa: E731
    assert_close(func.jacrev(const)(xs[0]), torch.zeros(2, 3, dtype=torch.float64))
    assert_close(func.grad(lambda a: const(a).sum())(xs[0]), torch.zeros(3, dtype=torch.float64))


def test_numpy_arrays_and_python_floats_are_primals(device):
    g = func.grad(lambda x: (x ** 2).sum())(np.array([1.0, 2.0]))
    assert g.dtype == np.float64 and g.numpy().tolist() == [2.0, 4.0]
    g = func.grad(lambda x: x ** 3)(2.0)
    assert g.dtype == np.float32 and g.item() == 12.0
    g = func.grad(lambda x: x ** 2)(3)
    assert g.dtype == np.float32 and g.item() == 6.0
    on_device = dg.tensor([1.0, 2.0], device=device)
    g = func.grad(lambda x, y: (x * y).sum(), 1)(on_device, np.array([3.0, 4.0], dtype=np.float32))
    assert g.device is on_device.device


def numeric_jacobian(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of f (host float64 arrays in and out): shape out.shape + x.shape."""
    columns = []
    for i in range(x.size):
        step = np.zeros(x.size)
        step[i] = eps
        step = step.reshape(x.shape)
        columns.append((f(x + step) - f(x - step)).reshape(-1) / (2 * eps))
    out_shape = np.shape(f(x))
    return np.stack(columns, axis=-1).reshape(*out_shape, *x.shape)


def test_jacobians_and_hessian_match_float64_finite_differences(device):
    w = U(3, 2)

    def f(x):
        return ((x @ dg.tensor(w, device=device)).tanh() * x.sum()).exp()

    def on_host(fn):
        return lambda a: fn(dg.tensor(a, device=device)).numpy()

    x = U(4, 3)
    expected = numeric_jacobian(on_host(f), x)
    for transform in (func.jacrev, func.jacfwd):
        np.testing.assert_allclose(transform(f)(dg.tensor(x, device=device)).numpy(), expected, rtol=1e-6, atol=1e-8)
    loss = lambda x: f(x).sum()  # noqa: E731
    expected_hessian = numeric_jacobian(on_host(func.grad(loss)), x)
    np.testing.assert_allclose(func.hessian(loss)(dg.tensor(x, device=device)).numpy(), expected_hessian,
                               rtol=1e-6, atol=1e-8)


def test_empty_tensors_give_empty_jacobians():
    x = dg.tensor(np.zeros((0, 2)))
    assert func.jacrev(lambda x: x * 2.0)(x).shape == (0, 2, 0, 2)
    assert func.jacfwd(lambda x: x.sum(), )(x).shape == (0, 2)


@pytest.mark.parametrize("call, error, match", [
    (lambda: func.grad(lambda x: x * 2.0)(dg.ones(3)), ValueError, r"scalar \(0-d\).*shape \(3,\).*jacrev"),
    (lambda: func.grad(lambda x: x.sum(keepdims=True))(dg.ones(3)), ValueError, r"shape \(1,\)"),
    (lambda: func.grad(lambda x: (x.sum(), x.sum()))(dg.ones(3)), ValueError, "a tuple of 2"),
    (lambda: func.grad(lambda x: 1.0)(dg.ones(3)), TypeError, "returned a float"),
    (lambda: func.grad(lambda x: x.sum(), argnums=2)(dg.ones(3)), ValueError, "argnums=2.*1 positional"),
    (lambda: func.grad(lambda x, y: x.sum(), argnums=(0, -2))(dg.ones(3), 1.0), ValueError, "twice"),
    (lambda: func.grad(lambda x: x.sum(), argnums=1.0)(dg.ones(3)), TypeError, "int or a non-empty tuple"),
    (lambda: func.jacrev(lambda x: x, argnums=())(dg.ones(3)), TypeError, "non-empty tuple"),
    (lambda: func.grad(lambda x: x.sum())(), TypeError, "at least one positional argument"),
    (lambda: func.grad(lambda x: x.sum(), has_aux=True)(dg.ones(3)), TypeError, r"pair \(output, aux\)"),
    (lambda: func.grad(lambda x: x.sum())(dg.tensor([1, 2])), TypeError, "floating-point"),
    (lambda: func.grad(lambda x: x.sum())("abc"), TypeError, "cannot differentiate with respect to str"),
    (lambda: func.jvp(dg.exp, dg.ones(3), (dg.ones(3),)), TypeError, r"primals must be a tuple.*\(primal,\)"),
    (lambda: func.jvp(dg.exp, (dg.ones(3),), (dg.ones(2),)), ValueError, r"tangent 0 has shape \(2,\)"),
    (lambda: func.jvp(dg.exp, (dg.ones(3),), ({"a": dg.ones(3)},)), ValueError, "structure of a tuple"),
    (lambda: func.vjp(dg.exp, dg.ones(3))[1]((dg.ones(3),)), ValueError, "structure of a tensor"),
    (lambda: func.hvp(dg.exp, (dg.ones(3),), (dg.ones(3),)), ValueError, "scalar"),
])
def test_mistakes_give_one_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.oracle
def test_jvp_and_hvp_are_differentiable_in_their_tangents_as_in_torch(torch, device):
    """grad of a jvp with respect to its tangent is Jᵀ·1, jacrev of an hvp over the tangent is the
    Hessian, and backward() from a jvp reaches a tangent that requires grad."""
    (x,), (tx,) = both(torch, [U(3)], device)
    (t,), (tt,) = both(torch, [U(3) + 0.5], device)
    f = lambda x: x.sin() * x  # noqa: E731
    assert_close(func.grad(lambda v: func.jvp(f, (x,), (v,))[1].sum())(t),
                 torch.func.grad(lambda v: torch.func.jvp(f, (tx,), (v,))[1].sum())(tt))
    g = lambda x: (x.sin() * x ** 2).sum()  # noqa: E731
    assert_close(func.jacrev(lambda v: func.hvp(g, (x,), (v,))[1][0])(t), torch.func.hessian(g)(tx))
    t.requires_grad, tt.requires_grad = True, True
    out, expected = func.jvp(f, (x,), (t,))[1], torch.func.jvp(f, (tx,), (tt,))[1]
    ((out * out).sum() + (t * t).sum()).backward()
    ((expected * expected).sum() + (tt * tt).sum()).backward()
    assert_close(t.grad, tt.grad)


@pytest.mark.oracle
def test_forward_mode_through_eigenvectors_and_singular_vectors_matches_torch(torch, device):
    """jvp starts from zero cotangents that require grad: the eigenvector (singular vector) term
    of the backward formula must not be skipped for being zero in value."""
    rng = np.random.default_rng(3)
    a, da = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    sym = lambda m: (m + m.T) * 0.5  # noqa: E731
    (A, dA), (tA, tdA) = both(torch, [a, da], device)
    assert_close(func.jvp(lambda m: dg.linalg.eigh(sym(m))[1], (A,), (dA,))[1],
                 torch.func.jvp(lambda m: torch.linalg.eigh(sym(m))[1], (tA,), (tdA,))[1])
    for k in (0, 2):
        assert_close(func.jvp(lambda m, k=k: dg.linalg.svd(m, full_matrices=False)[k], (A,), (dA,))[1],
                     torch.func.jvp(lambda m, k=k: torch.linalg.svd(m, full_matrices=False)[k], (tA,), (tdA,))[1])
    loss = lambda m: (dg.linalg.eigh(sym(m))[1] ** 3).sum()  # noqa: E731
    torch_loss = lambda m: (torch.linalg.eigh(sym(m))[1] ** 3).sum()  # noqa: E731
    assert_close(func.hessian(loss)(A), torch.func.jacrev(torch.func.jacrev(torch_loss))(tA))

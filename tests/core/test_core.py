"""devgrad.core: Tensor (construction, dtypes, data movement, the Python protocol) and the tape
(accumulation, broadcasting, freeing, higher order, no_grad, dg.grad)."""

from __future__ import annotations

import gc
import sys
import threading
import weakref

import numpy as np
import pytest

import devgrad as dg
from tests.support.helpers import assert_program_matches_torch

# NumPy floating-point warnings from any op are errors here: inf and NaN are values, not events.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def test_shared_subexpression_accumulates(device):
    x = dg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    y = x * x          # used twice below
    z = (y + y * 3.0 + x).sum()
    z.backward()
    # d/dx (4 x^2 + x) = 8x + 1
    np.testing.assert_allclose(x.grad.numpy(), 8 * np.array([1.0, 2.0, 3.0]) + 1)


def test_same_input_twice_in_one_op(device):
    x = dg.tensor([3.0], requires_grad=True, device=device)
    (x * x).sum().backward()
    assert x.grad.numpy().tolist() == [6.0]


def test_grads_accumulate_across_backward_calls(device):
    x = dg.tensor([1.0, -2.0], requires_grad=True, device=device)
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    assert x.grad.numpy().tolist() == [5.0, 5.0]


def test_broadcast_gradient_is_summed_to_input_shape(device):
    a = dg.tensor(np.ones((2, 3)), requires_grad=True, device=device)
    b = dg.tensor(np.ones((3,)), requires_grad=True, device=device)
    c = dg.tensor(np.ones((2, 1)), requires_grad=True, device=device)
    s = dg.tensor(2.0, requires_grad=True, device=device)
    ((a * b + c) * s).sum().backward()
    assert b.grad.shape == (3,) and b.grad.numpy().tolist() == [4.0, 4.0, 4.0]
    assert c.grad.shape == (2, 1) and c.grad.numpy().tolist() == [[6.0], [6.0]]
    assert s.grad.shape == () and s.grad.item() == 12.0


def test_backward_twice_raises_clear_error(device):
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x.exp().sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward(device):
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_backward_needs_grad_for_non_scalar(device):
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="single-element output.*shape \\(2,\\)"):
        (x * 2.0).backward()
    (x * 2.0).backward(dg.tensor([1.0, 10.0], device=device))
    assert x.grad.numpy().tolist() == [2.0, 20.0]


def test_backward_on_tensor_without_graph_raises(device):
    x = dg.tensor([1.0], device=device)
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2.0).sum().backward()


def test_second_derivative_with_create_graph(device):
    x = dg.tensor([0.3, -1.2, 2.0], requires_grad=True, device=device, dtype="float64")
    y = (x**3).sum()
    (g,) = dg.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    assert g.requires_grad
    (h,) = dg.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())


@pytest.mark.parametrize("name,fn,second", [
    ("exp", lambda x: x.exp(), lambda x: np.exp(x)),
    ("tanh", lambda x: x.tanh(), lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    ("sigmoid", lambda x: x.sigmoid(),
     lambda x: (lambda s: s * (1 - s) * (1 - 2 * s))(1 / (1 + np.exp(-x)))),
    ("log", lambda x: x.log(), lambda x: -1 / x**2),
    ("softplus", lambda x: x.softplus(), lambda x: (lambda s: s * (1 - s))(1 / (1 + np.exp(-x)))),
])
def test_second_derivatives_of_unary_ops(device, name, fn, second):
    values = np.array([0.4, 1.3, 2.2])
    x = dg.tensor(values, requires_grad=True, device=device, dtype="float64")
    (g,) = dg.grad(fn(x).sum(), x, create_graph=True)
    (h,) = dg.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), second(values), rtol=1e-10)


def test_hessian_vector_products_via_gradcheck(device):
    """gradcheck of a gradient function checks second derivatives by finite differences."""
    w = dg.tensor(np.random.default_rng(0).standard_normal((3, 2)), device=device, dtype="float64")

    def grad_of_loss(x, b):
        loss = ((x @ w + b).softmax(axis=-1) * (x @ w).tanh()).sum() + (x * x * b.sum()).mean()
        return dg.grad(loss, [x, b], create_graph=True)

    x = dg.tensor(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True, device=device)
    b = dg.tensor(np.random.default_rng(2).standard_normal(2), requires_grad=True, device=device)
    assert dg.gradcheck(grad_of_loss, [x, b])


def test_backward_with_create_graph_then_backward_of_grad(device):
    x = dg.tensor([2.0], requires_grad=True, device=device, dtype="float64")
    y = x**4
    y.backward(create_graph=True)
    g = x.grad
    x.grad = None
    g.backward()
    assert x.grad.item() == pytest.approx(12 * 2.0**2)


def test_long_chain_is_iterative(device):
    x = dg.tensor([1.0], requires_grad=True, device=device, dtype="float64")
    y = x
    length = 20_000  # far beyond the recursion limit: a recursive walk would overflow
    for _ in range(length):
        y = y * 1.0
    assert sys.getrecursionlimit() < length
    y.sum().backward()
    assert x.grad.item() == 1.0


def test_nodes_release_saved_values_after_backward(device):
    x = dg.tensor(np.ones(1000), requires_grad=True, device=device)
    h = x.exp()
    y = (h * x).tanh().sum()
    exp_node = h.grad_fn
    del h
    y.backward()
    # The nodes still exist (y holds them) but hold no arrays any more.
    assert exp_node.out_data is None and exp_node.inputs is None and exp_node.released


def test_intermediate_arrays_are_garbage_collected():
    """The arrays an op saved for backward are released by backward() (no retain_graph)."""
    x = dg.tensor(np.ones(10), requires_grad=True)
    h = x.exp()
    data_ref = weakref.ref(h.data)
    y = (h * 2.0).sum()
    del h
    gc.collect()
    assert data_ref() is not None  # saved by the Exp and Mul nodes for backward
    y.backward()
    gc.collect()
    assert data_ref() is None


def test_no_grad_stops_recording_and_is_thread_local():
    x = dg.tensor([1.0], requires_grad=True)
    with dg.no_grad():
        y = x * 2.0
        seen = {}

        def other_thread():
            seen["enabled"] = dg.is_grad_enabled()
            seen["requires"] = (x * 2.0).requires_grad

        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        with dg.enable_grad():
            z = x * 2.0
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad
    assert seen == {"enabled": True, "requires": True}
    assert dg.is_grad_enabled()


def test_no_grad_as_decorator():
    @dg.no_grad()
    def f(t):
        return t * 3.0

    x = dg.tensor([1.0], requires_grad=True)
    assert not f(x).requires_grad
    assert dg.is_grad_enabled()


def test_grad_function_leaves_dot_grad_untouched(device):
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    w = dg.tensor([3.0, 4.0], requires_grad=True, device=device)
    y = (x * w).sum()
    gx, gw = dg.grad(y, [x, w])
    assert gx.numpy().tolist() == [3.0, 4.0] and gw.numpy().tolist() == [1.0, 2.0]
    assert x.grad is None and w.grad is None


def test_grad_of_non_leaf_and_unused(device):
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    unused = dg.tensor([1.0], requires_grad=True, device=device)
    h = x * 3.0
    y = (h * h).sum()
    gh, gu = dg.grad(y, [h, unused], allow_unused=True)
    assert gh.numpy().tolist() == [6.0, 12.0] and gu is None
    with pytest.raises(RuntimeError, match="not used"):
        dg.grad((x * 2.0).sum(), [unused])


def test_grad_with_multiple_outputs_and_grad_outputs(device):
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    a, b = x * 2.0, x * x
    (g,) = dg.grad([a, b], [x], [dg.tensor([1.0, 1.0], device=device), dg.tensor([0.5, 0.5], device=device)])
    assert g.numpy().tolist() == [3.0, 4.0]


def test_grad_gives_each_input_its_own_dtype(device):
    """dg.grad's gradients have their inputs' dtypes, as .grad and PyTorch's: a float64
    grad_output or a float64 graph above a float32 input gives a float32 gradient."""
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)  # float32
    y = x * 3.0
    for create_graph in (False, True):
        gx, gy = dg.grad(y.astype("float64").sum(), [x, y], create_graph=create_graph, retain_graph=True)
        assert gx.dtype == gy.dtype == np.float32 and gx.numpy().tolist() == [3.0, 3.0]
        (gx,) = dg.grad(y, [x], dg.tensor(np.ones(2), device=device), create_graph=create_graph,
                        retain_graph=True)
        assert gx.dtype == np.float32


def test_backward_order_is_deterministic(device):
    def run():
        rng = np.random.default_rng(0)
        x = dg.tensor(rng.standard_normal((8, 8)), requires_grad=True, device=device)
        parts = [(x * float(i)).tanh() for i in range(20)]
        total = parts[0]
        for p in parts[1:]:
            total = total + p * parts[0]
        total.sum().backward()
        return x.grad.numpy()

    first = run()
    for _ in range(3):
        assert np.array_equal(run(), first)


def test_detach_cuts_the_graph(device):
    x = dg.tensor([2.0], requires_grad=True, device=device)
    y = x * x.detach()
    y.sum().backward()
    assert x.grad.item() == 2.0


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        dg.tensor([1, 2], requires_grad=True)


def test_custom_function_subclass():
    class Cube(dg.Function):
        save_inputs = True

        def forward(self, a):
            return a**3

        def backward(self, g):
            (x,) = self.inputs
            return g * 3.0 * x * x

    x = dg.tensor([2.0], requires_grad=True, dtype="float64")
    Cube.apply(x).sum().backward()
    assert x.grad.item() == 12.0
    assert dg.gradcheck(lambda t: Cube.apply(t), [x])


def test_leaf_gradients_are_owned_and_writable(device):
    a = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    b = dg.tensor([3.0, 4.0], requires_grad=True, device=device)
    (a + b).sum().backward()
    assert a.grad is not b.grad
    a.grad.data *= 10  # e.g. in-place gradient clipping
    assert b.grad.numpy().tolist() == [1.0, 1.0]
    assert a.grad.numpy().tolist() == [10.0, 10.0]


def test_the_implied_root_gradient_is_never_shared(device):
    """A 0-d leaf's own implied gradient (1) is its own writable array: changing it in place
    changes nothing that a later backward implies, on a scalar leaf or through a graph."""
    x = dg.tensor(2.0, requires_grad=True, device=device)
    x.backward()
    x.grad.data *= 5
    y = dg.tensor(3.0, requires_grad=True, device=device)
    y.backward()
    (y * 1.0).backward()
    assert (x.grad.item(), y.grad.item()) == (5.0, 2.0)


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

@pytest.mark.gpu
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

# A write of graph values into a tensor, run on devgrad and on PyTorch alike (``zeros`` and ``w``
# given): ``loss`` and every name listed after it are compared, values and gradients with respect to w.
GRAPH_WRITES = {
    "setitem": "x = zeros(3); x[0] = w[1] * 3; x[2] = w[0] * w[2]; loss = (x * x).sum() + w.sum()",
    "slice_iadd": "out = zeros(4); out[0:3] += w * w; out[1:4] += w; loss = (out * out).sum()",
    "alias": "a = zeros(3); b = a; a += w; a *= w; a -= 1.0; a /= w + 3; loss = (b * b).sum()",
    "view_then_base": "a = zeros(3); v = a[0:2]; v += w[:2]; loss = (a * a).sum() + (v * 3).sum()",
    "view_of_view": "a = zeros(2, 3); a[1][0:2] = w[:2]; a[0] -= w; loss = (a * a * a).sum()",
    "non_leaf": "y = w * 2; y[1] = w[0] ** 2; y += w; loss = (y * y).sum()",
    "non_leaf_view": "y = w * 2; v = y[0:2]; v[0] = 5.0; loss = (y * y).sum()",
    "fancy_and_mask": "a = zeros(3, 3); a[[0, 2], 1] = w[:2]; a[a.sum(1) == 0] = w * 2; loss = (a ** 3).sum()",
    "accumulate": "t = zeros(1); t += w.sum(); t += (w * w).sum(); loss = (t * t).sum()",
}


def _graph_write(code: str, w, zeros):
    env = {"w": w, "zeros": zeros}
    exec(code, env)  # the same statements on both libraries
    return env


@pytest.mark.oracle
@pytest.mark.parametrize("name", GRAPH_WRITES)
def test_a_write_of_graph_values_is_recorded_as_pytorchs(torch, device, name):
    """x[i] = v, x[i] += v and x += v with v of the graph make x a node of the graph, in place:
    the gradient reaches v and every alias of x sees the new values, as in PyTorch."""
    values = np.array([1.5, -2.0, 0.5])
    w = dg.tensor(values, requires_grad=True, device=device)
    mine = _graph_write(GRAPH_WRITES[name], w, lambda *s: dg.zeros(s, dtype="float64", device=device))
    tw = torch.tensor(values, requires_grad=True)
    theirs = _graph_write(GRAPH_WRITES[name], tw, lambda *s: torch.zeros(s, dtype=torch.float64))
    assert_program_matches_torch(torch, mine, theirs, ("x", "out", "a", "b", "v", "y", "t"), w, tw)


@pytest.mark.oracle
def test_augmented_assignment_while_recording_is_in_place_as_pytorchs(torch, device):
    """y += 1 on a tensor of the graph changes y itself (an alias sees it); a node that saved the
    old values of y refuses them at backward, as in PyTorch."""
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x * 2.0
    saved = y
    y += 1.0
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    ty = tx * 2.0
    ty += 1.0
    assert y is saved and not y.is_leaf
    np.testing.assert_array_equal(saved.numpy(), ty.detach().numpy())
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    y = x * 2.0
    z = (y * y).sum()  # saves y
    y += 1.0
    ty = tx * 2.0
    tz = (ty * ty).sum()
    ty += 1.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tz.backward()
    with pytest.raises(RuntimeError, match="Mul saved it for backward, then its input .* changed in place"):
        z.backward()


def test_a_write_of_graph_values_the_graph_cannot_record_is_an_error(device):
    """Where the write would leave a tensor with values of the graph but not their graph (memory
    shared with a reshape, a view of a parameter, an integer tensor, clamp_ to bounds of the
    graph), it is an error, never a silent gradient of 0."""
    w = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    base = dg.zeros((2, 2), device=device)
    with pytest.raises(RuntimeError, match="shares its memory with another array"):
        base.reshape(4)[0] = w[0]
    with pytest.raises(RuntimeError, match="shares its memory with another array"):
        base.T.__iadd__(w)
    assert base.numpy().tolist() == [[0.0, 0.0], [0.0, 0.0]] and not base.requires_grad
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w[0:1][0] = w[1] * 2.0
    with pytest.raises(TypeError, match="only a floating-point tensor can carry a gradient"):
        dg.zeros(2, dtype="int64", device=device)[0] = w[0]
    for bounds in ({"min": w}, {"max": w}):
        with pytest.raises(RuntimeError, match="clamp_"):
            dg.zeros(2, device=device).clamp_(**bounds)


def test_updating_a_parameter_in_place_outside_no_grad_is_an_error(device):
    """`p -= lr * p.grad` without no_grad would rebind p silently (the update would do nothing);
    PyTorch raises, and so does devgrad, saying what to write instead."""
    p = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    (p * p).sum().backward()
    with pytest.raises(RuntimeError, match=r"with dg.no_grad\(\): p -= lr \* p.grad"):
        p -= 0.1 * p.grad
    lin = dg.nn.Linear(2, 1)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        lin.weight *= 2.0
    assert any(q is lin.weight for q in lin.parameters())
    with dg.no_grad():
        p -= 0.5 * p.grad
    assert p.numpy().tolist() == [0.0, 0.0] and p.requires_grad


def test_changing_a_tensor_a_graph_saved_makes_backward_raise(device):
    """PyTorch's version-counter check: an input or output an op saved for backward, changed in
    place before backward (by +=, add_, zero_, x[i] = v or an optimizer step), would silently
    give gradients at the new values; backward raises and names the op and the tensor."""
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    w = dg.tensor([3.0, 4.0], name="w", device=device)
    for change in (lambda t: t.__iadd__(1.0), lambda t: t.add_(1.0), lambda t: t.zero_(),
                   lambda t: t.__setitem__(0, 5.0), lambda t: t.mul_(2.0)):
        w2 = w.detach()
        w2.name = "w"
        y = (x * w2).sum()
        change(w2)
        with pytest.raises(RuntimeError, match=r"Mul saved it for backward, then its input 'w' .*changed in place"):
            y.backward()
    z = x.sigmoid()
    with dg.no_grad():
        z *= 2.0
    with pytest.raises(RuntimeError, match="Sigmoid saved it for backward, then its output was changed in place"):
        z.sum().backward()
    # an optimizer step changes the parameters a retained graph saved
    lin = dg.nn.Linear(2, 1, device=device)
    loss = lin(dg.tensor([[1.0, 2.0]], device=device)).sum()
    loss.backward(retain_graph=True)
    dg.optim.SGD(lin.parameters(), lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_a_change_through_shared_memory_makes_backward_raise(device):
    """A view, a reshape, a transpose or a detached tensor shares its base's memory: changing
    one in place changes what a node saved through another (PyTorch counts versions per
    storage), so backward raises instead of using the new values."""
    changes = [
        lambda y: y[:2].mul_(3.0),                   # a view of the saved tensor
        lambda y: y.detach().__setitem__(0, 9.0),    # a detached tensor of it
        lambda y: y.reshape(2, 2).__iadd__(1.0),     # a reshape of it
        lambda y: y.T.__setitem__(1, 0.0),           # a transpose of it
    ]
    for change in changes:
        w = dg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True, device=device)
        y = w * 1.0
        z = y * y                                    # saves y
        with dg.no_grad():
            change(y)
        with pytest.raises(RuntimeError, match="shares with a view"):
            z.sum().backward()
    # a view of a saved output, and a saved view of a parameter changed by an update
    w = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    s = w.sigmoid()
    with dg.no_grad():
        s[:1].mul_(2.0)
    with pytest.raises(RuntimeError, match="shares with a view"):
        s.sum().backward()
    lin_w = dg.tensor(np.ones((2, 3)), requires_grad=True, device=device)
    x = dg.tensor(np.ones((4, 3)), requires_grad=True, device=device)
    out = (x @ lin_w.T).sum()                        # MatMul saves the view lin_w.T
    lin_w.grad = dg.ones((2, 3), dtype="float64", device=device)
    dg.optim.SGD([lin_w], lr=1.0).step()
    with pytest.raises(RuntimeError, match="shares with a view"):
        out.backward()
    # loading weights into a model whose graph is still to be differentiated
    lin = dg.nn.Linear(3, 2, device=device)
    state = {k: v.numpy() * 2 for k, v in lin.state_dict().items()}
    out = lin(dg.tensor(np.ones((4, 3), np.float32), requires_grad=True, device=device)).sum()
    lin.load_state_dict(state)
    with pytest.raises(RuntimeError, match="changed in place"):
        out.backward()


def test_changes_that_cannot_affect_a_gradient_are_allowed(device):
    """Changing a tensor after its backward, or one no recorded op saved (Add saves nothing),
    is fine; gradients are those of the values at forward time."""
    x = dg.tensor([1.0, 2.0], requires_grad=True, device=device)
    b = dg.tensor([1.0, 1.0], device=device)
    (x * b).sum().backward()
    b += 1.0
    assert x.grad.numpy().tolist() == [1.0, 1.0]
    c = dg.tensor([5.0, 5.0], device=device)
    y = (x + c).sum()
    c.zero_()
    x.grad = None
    y.backward()
    assert x.grad.numpy().tolist() == [1.0, 1.0]

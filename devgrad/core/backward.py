"""The backward walk: ``run_backward`` (behind ``Tensor.backward``) and ``grad``.

The walk is iterative: nodes are visited from the most recently created down (creation order
is a topological order), gradients of shared subexpressions accumulate, each gradient's shape
is checked against its target, and a node frees what it saved unless ``retain_graph=True``.
"""

from __future__ import annotations

import heapq
import threading

import numpy as np

from devgrad.backend import DeviceError
from devgrad.backend.fp_errors import ERRORS, QUIET
from devgrad.core.function import Function
from devgrad.core.grad_mode import mode
from devgrad.core._tensor import Tensor, register_tensor_methods
from devgrad.core.writes import WRITES


def run_backward(outputs, grad_outputs, *, retain_graph=None, create_graph=False, inputs=None):  # noqa: C901, PLR0912, PLR0915 - one loop over the graph, read top to bottom
    """Propagate ``grad_outputs`` from ``outputs`` through the graph.

    With ``inputs=None`` gradients accumulate into ``.grad`` of every leaf reached
    (``Tensor.backward``). Otherwise the gradients for ``inputs`` are returned as a list
    (None where an input is not reached) and no ``.grad`` is touched (``dg.grad``).

    First-order gradients (``create_graph=False``) flow as raw arrays through every op whose
    backward formula runs on arrays (``array_backward``): no graph is being built, so wrapping
    every intermediate gradient in a Tensor would be pure overhead. The tests check, for every
    op, that the first-order and the graph-building gradients agree.
    """
    if retain_graph is None:
        retain_graph = create_graph
    fast = not create_graph
    node_grads: dict = {}  # node -> gradient of its output; a node is in `heap` iff it is here
    leaf_grads: dict = {}
    heap: list = []
    _seed(outputs, grad_outputs, fast, node_grads, leaf_grads, heap)
    wanted = None if inputs is None else {id(t.grad_fn): None for t in inputs if t.grad_fn is not None}

    prev_mode = mode.enabled
    mode.enabled = create_graph
    pop, push, writes, is_leaf_type = heapq.heappop, heapq.heappush, WRITES, _IS_LEAF
    # One error state for the whole walk: a backward formula meeting inf or 0/0 gives inf or NaN
    # silently, as the forward did.
    token = ERRORS.set(QUIET)
    try:
        while heap:
            node = pop(heap)[1]
            g = node_grads.pop(node)
            if wanted is not None and id(node) in wanted:
                wanted[id(node)] = g
            # Every in-place change (a tensor's version, a node's output, memory shared with a view) is
            # an in-place write, counted by WRITES: with none since the node was recorded (or checked),
            # nothing it saved can have changed. A released node's count is -1, never current.
            if node.writes != writes.count:
                if node.released:
                    raise _second_backward(node)
                node.check_saved()
            if node.device.index:  # a second GPU: Device.run makes it current for the kernels
                in_grads = node.device.run(_node_backward, node, g, fast)
            else:  # the first-order hot path: the formula on arrays, called directly
                in_grads = node.backward(g) if fast and node.array_backward else _node_backward(node, g, fast)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            if not retain_graph and (node.inputs is not None or node.saved is not None or node.out_data is not None):
                # Function.release, inlined: drop what backward needed; a later backward through it raises
                node.inputs = node.input_arrays = node.versions = node.saved = node.out_data = None
                node.released, node.writes = True, -1
            for target, gi in zip(node.next, in_grads):
                if target is None or gi is None:
                    continue
                try:
                    is_leaf = is_leaf_type[type(target)]
                except KeyError:
                    is_leaf = _is_leaf_type(type(target))
                if is_leaf:
                    if gi.shape != target.data.shape:
                        _bad_shape(node, "a leaf tensor", gi.shape, target.data.shape)
                    key = id(target)  # _accumulate, inlined: every parameter of every step
                    prev = leaf_grads.get(key)
                    leaf_grads[key] = (target, gi) if prev is None else (target, prev[1] + gi)
                else:
                    if gi.shape != target.shape:
                        _bad_shape(node, target.name, gi.shape, target.shape)
                    prev = node_grads.get(target)
                    if prev is None:
                        node_grads[target] = gi
                        push(heap, (-target.seq, target))
                    else:
                        node_grads[target] = prev + gi
    finally:
        mode.enabled = prev_mode
        ERRORS.reset(token)

    return _finish(inputs, leaf_grads, wanted, fast)


def _second_backward(node) -> RuntimeError:
    return RuntimeError(f"backward through {node.name} a second time: its saved values were freed by the "
                        "first backward. Pass retain_graph=True to the first backward() (or dg.grad) to keep them.")


# Per type met as a graph target: is it a leaf (a Tensor, a Parameter) rather than a node? Asked once
# per type, then a dict lookup: isinstance's walk of a subclass's bases costs more, on every edge.
_IS_LEAF: dict = {}


def _is_leaf_type(kind: type) -> bool:
    is_leaf = _IS_LEAF[kind] = not issubclass(kind, Function)
    return is_leaf


def _seed(outputs, grad_outputs, fast: bool, node_grads: dict, leaf_grads: dict, heap: list) -> None:
    """The walk's start: each output's gradient, given or implied, at its node (or leaf)."""
    for out, given in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no graph. Create its inputs "
                "with requires_grad=True, and do not compute it inside dg.no_grad()")
        if given is None and fast:
            g = _implied_root_array(out)
        else:
            g = _root_grad(out, given)
            if fast:
                g = g.data
        if out.grad_fn is None:
            _accumulate(leaf_grads, id(out), (out, g))
        else:
            node = out.grad_fn
            if node in node_grads:
                node_grads[node] = node_grads[node] + g
            else:
                node_grads[node] = g
                heapq.heappush(heap, (-node.seq, node))


class _LeafWatch(threading.local):
    """``leaves``: while a step is recorded for replay (``devgrad.cpu_plan``), a list that each
    backward walk of this thread extends with (leaf, its ``.grad`` before) for every leaf it gives a
    gradient (a class default: no lookup miss)."""

    leaves: list | None = None


leaf_watch = _LeafWatch()


def _finish(inputs, leaf_grads: dict, wanted, fast: bool):
    """Store leaf gradients in ``.grad`` (``inputs`` None), or return those of ``inputs``."""
    if inputs is None:
        watched = leaf_watch.leaves
        if watched is not None:
            watched += [(leaf, leaf.grad) for leaf, _ in leaf_grads.values()]
        if fast:
            _set_leaf_grads_from_arrays(leaf_grads)
        else:
            for leaf, g in leaf_grads.values():
                g = g if g.dtype == leaf.dtype else g.astype(leaf.dtype)
                leaf.grad = g if leaf.grad is None else leaf.grad + g
        return None
    if fast:
        leaf_grads = {k: (leaf, _wrap_owned(g, leaf.device)) for k, (leaf, g) in leaf_grads.items()}
        devices = {id(t.grad_fn): t.device for t in inputs if t.grad_fn is not None}
        wanted = {k: None if g is None else _wrap_owned(g, devices[k]) for k, g in wanted.items()}
    result = []
    for t in inputs:
        if t.grad_fn is not None:
            g = wanted.get(id(t.grad_fn))
        else:
            entry = leaf_grads.get(id(t))
            g = None if entry is None else entry[1]
        # in the input's dtype, as .grad is (a float64 grad_output must not make a float32 input's
        # gradient float64)
        result.append(g if g is None or g.dtype == t.dtype else g.astype(t.dtype))
    return result


def _node_backward(node, g, fast: bool):
    """One node's input gradients: Tensor formulas, or arrays on the first-order fast path."""
    if not fast:
        in_grads = node.backward(g)
        _check_devices(node, in_grads)
        return in_grads
    if node.array_backward:
        return node.backward(g)
    in_grads = node.backward(Tensor._make(g, node.device))
    if isinstance(in_grads, tuple):
        return tuple(None if t is None else t.data for t in in_grads)
    return in_grads.data


def _check_devices(node, in_grads) -> None:
    """Gradients (Tensor path) must live where their inputs live: ops never move data."""
    grads = in_grads if isinstance(in_grads, tuple) else (in_grads,)
    for target, gi in zip(node.next, grads):
        if target is not None and gi is not None and gi.device is not target.device:
            raise RuntimeError(f"internal error: {node.name}.backward produced a gradient on {gi.device} for an "
                               f"input on {target.device}")


def _set_leaf_grads_from_arrays(leaf_grads: dict) -> None:
    """Store first-order gradient arrays in ``.grad``: each leaf owns its own writable array."""
    seen: set = set()
    make = Tensor._make
    for leaf, g in leaf_grads.values():
        dtype = leaf.data.dtype
        if g.dtype is not dtype and g.dtype != dtype:  # the same dtype object, the usual case: no comparison
            g = g.astype(dtype)
        if leaf.grad is not None:
            leaf.grad = make(leaf.grad.data + g, leaf.device)
        elif g.base is None and id(g) not in seen and getattr(g.flags, "writeable", True):
            seen.add(id(g))  # an array of its own: the leaf's gradient as it is
            leaf.grad = make(g, leaf.device)
        else:
            # A view (e.g. of a broadcast) or one array reaching two leaves (a + b) is copied (a fresh
            # array, which no other leaf can meet), so in-place clipping or zeroing of one gradient
            # never touches another array.
            leaf.grad = make(leaf.device.copy(g), leaf.device)


def _wrap_owned(array, device):
    """A gradient array as a Tensor that owns writable memory (views, e.g. of broadcasts, are copied)."""
    if array.base is not None or not getattr(array.flags, "writeable", True):
        array = device.copy(array)
    return Tensor._make(array, device)


def _accumulate(leaf_grads: dict, key: int, entry) -> None:
    prev = leaf_grads.get(key)
    leaf_grads[key] = entry if prev is None else (prev[0], prev[1] + entry[1])


# The implied root gradient (1) of a 0-d output on the host, per dtype: read-only, so a formula
# can never change it in place, and a leaf that receives it gets a copy (_set_leaf_grads_from_arrays).
_ONES: dict = {}


def _implied_root_array(out):
    """The first-order walk's root gradient of ``out`` when none is given: ones of its shape."""
    data = out.data
    if type(data) is not np.ndarray or data.ndim or not out.device.is_host:
        return _root_grad(out, None).data  # anything but a host 0-d array (a GPU, a traced step)
    one = _ONES.get(data.dtype)
    if one is None:
        one = np.ones((), data.dtype)
        one.flags.writeable = False
        _ONES[data.dtype] = one
    return one


def _root_grad(out, g):
    if g is None:
        data, device = out.data, out.device
        if data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implied only for a single-element output, this one has shape "
                f"{data.shape}. Reduce it first (e.g. .sum() or .mean()) or pass grad=...")
        with device.activate():  # no context at all for the CPU and cuda:0
            return Tensor._make(device.kernels.full(data.shape, 1.0, data.dtype), device)
    if not isinstance(g, Tensor):
        g = Tensor._make(out.device.put(out.device.xp.asarray(g, dtype=out.dtype)), out.device)
    if g.device is not out.device:
        raise DeviceError(f"backward: grad is on {g.device} but the output is on {out.device}")
    if g.shape != out.shape:
        raise RuntimeError(f"backward: grad has shape {g.shape} but the output has shape {out.shape}")
    return g


def _bad_shape(node, target, got, expected):
    raise RuntimeError(
        f"internal error: {node.name}.backward produced a gradient of shape {got} for {target} "
        f"of shape {expected}")


def grad(outputs, inputs, grad_outputs=None, *, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned as a tuple of Tensors.

    Leaves' ``.grad`` is left untouched. With ``create_graph=True`` the returned gradients
    have a graph of their own, so they can be differentiated again (second derivatives).
    """
    single_out = isinstance(outputs, Tensor)
    outputs = [outputs] if single_out else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    result = run_backward(outputs, list(grad_outputs), retain_graph=retain_graph,
                          create_graph=create_graph, inputs=inputs)
    for i, g in enumerate(result):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {inputs[i].shape}) is not used to compute the outputs; "
                "pass allow_unused=True to get None for it")
    return tuple(result)



def backward(self: Tensor, grad=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
    """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

    ``grad`` may be omitted for one-element tensors. The graph's saved values are freed
    afterwards unless ``retain_graph=True`` (default: the value of ``create_graph``).
    """
    run_backward([self], [grad], retain_graph=retain_graph, create_graph=create_graph)


# Tensor's methods that are the walk (Tensor's module cannot import this one: the walk needs Tensor).
TENSOR_METHODS = {"backward": backward}
register_tensor_methods(TENSOR_METHODS)

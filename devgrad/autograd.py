"""The tape: ``Function`` (one op = forward on arrays + backward on Tensors) and the walk.

All graph bookkeeping lives here, in ``Function.apply`` and ``run_backward``: op classes
contain only math. A node of the graph is the ``Function`` instance that produced a
tensor (its ``_ctx``); a leaf is a tensor with ``requires_grad=True`` and no ``_ctx``.
Each node remembers, per input, where that input's gradient goes (``next``): another
node, a leaf tensor, or None. Nodes hold only what their backward needs, so an
addition keeps no arrays alive at all.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import threading

from devgrad.backend import DeviceError

_mode = threading.local()
# Creation order of graph nodes: a node is always created after the nodes of its inputs, so
# visiting nodes from the highest number down is a topological order (no recursion, no sort).
_sequence = itertools.count()


def is_grad_enabled() -> bool:
    """True when ops record the graph (the default), False inside ``no_grad()``."""
    return getattr(_mode, "enabled", True)


def set_grad_enabled(enabled: bool) -> None:
    """Turn graph recording on or off for this thread."""
    _mode.enabled = bool(enabled)


class _GradMode:
    """Context manager and decorator that sets grad mode and restores it on exit."""

    enabled = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _mode.enabled = self.enabled
        return self

    def __exit__(self, *exc):
        _mode.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):  # noqa: N801 - named like PyTorch's on purpose
    """Disable graph recording: ``with dg.no_grad(): ...`` or ``@dg.no_grad()``."""

    enabled = False


class enable_grad(_GradMode):  # noqa: N801
    """Re-enable graph recording inside a ``no_grad`` block."""

    enabled = True


class Function:
    """One differentiable op.

    Subclasses implement ``forward(*arrays, **params) -> array`` on raw NumPy/CuPy arrays
    and ``backward(grad_output) -> grad or tuple of grads`` with Tensor ops, so the same
    formula gives first and higher-order gradients. Set ``save_inputs`` / ``save_output``
    to have ``apply`` keep the input Tensors (``self.inputs``) or the output
    (``self.output()``) for backward; keep any other array backward needs in ``self.saved``.
    Metadata (axes, shapes) goes in the subclass's own ``__slots__``.
    """

    __slots__ = ("next", "inputs", "saved", "out_data", "device", "shape", "released", "seq")

    save_inputs = False
    save_output = False
    backward_array = None  # optional first-order fast path: array grad -> array grads

    @classmethod
    def apply(cls, *args, **params):
        """Run forward on the inputs' arrays and, when needed, record the node."""
        # The hot path of every op: kept to plain loops and attribute access on purpose.
        dev = None
        requires = False
        arrays = []
        nexts = []
        for arg in args:
            if isinstance(arg, Tensor):
                if dev is None:
                    dev = arg.device
                elif arg.device is not dev:
                    raise DeviceError(
                        f"{cls.__name__}: tensors are on different devices, {dev} and {arg.device}. "
                        "devgrad never moves data implicitly: move one with .to(...)")
                if arg.requires_grad:
                    requires = True
                    nexts.append(arg._ctx if arg._ctx is not None else arg)
                else:
                    nexts.append(None)
                arrays.append(arg.data)
            else:
                arrays.append(arg)
                nexts.append(None)
        ctx = object.__new__(cls)
        ctx.device = dev
        ctx.saved = None
        if dev is not None and dev.index:  # a second GPU: run the kernels there
            with dev.activate():
                out = ctx.forward(*arrays, **params)
        else:
            out = ctx.forward(*arrays, **params)
        if not requires or not getattr(_mode, "enabled", True):
            return Tensor._make(out, ctx.device)
        ctx.next = tuple(nexts)
        ctx.seq = next(_sequence)
        ctx.inputs = args if cls.save_inputs else None
        ctx.out_data = out if cls.save_output else None
        ctx.shape = out.shape
        ctx.released = False
        return Tensor._make(out, ctx.device, ctx)

    def forward(self, *arrays, **params):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, grad_output):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement backward")

    @property
    def xp(self):
        """The array module (numpy or cupy) of this op's device."""
        return self.device.xp

    @property
    def needs_input_grad(self) -> list:
        """Per input: does its gradient go anywhere? Backward may skip the others."""
        return [n is not None for n in self.next]

    def output(self):
        """The op's output as a Tensor linked to this node (for backward formulas)."""
        return Tensor._make(self.out_data, self.device, self if is_grad_enabled() else None)

    def const(self, array):
        """Wrap an array computed in forward as a constant (no-gradient) Tensor."""
        return Tensor._make(array, self.device)

    def release(self) -> None:
        """Drop what backward needed; a later backward through this node raises."""
        if self.inputs is not None or self.saved is not None or self.out_data is not None:
            self.inputs = self.saved = self.out_data = None
            self.released = True

    @property
    def name(self) -> str:
        return type(self).__name__


def run_backward(outputs, grad_outputs, *, retain_graph=None, create_graph=False, inputs=None):
    """Propagate ``grad_outputs`` from ``outputs`` through the graph.

    With ``inputs=None`` gradients accumulate into ``.grad`` of every leaf reached
    (``Tensor.backward``). Otherwise the gradients for ``inputs`` are returned as a list
    (None where an input is not reached) and no ``.grad`` is touched (``dg.grad``).

    First-order gradients (``create_graph=False``) flow as raw arrays, through each op's
    ``backward_array`` where it has one: no graph is being built, so wrapping every
    intermediate gradient in a Tensor would be pure overhead. ``backward`` (Tensor ops)
    stays the definition; the tests check both paths agree for every op.
    """
    if retain_graph is None:
        retain_graph = create_graph
    fast = not create_graph
    node_grads: dict = {}  # node -> gradient of its output; a node is in `heap` iff it is here
    leaf_grads: dict = {}
    heap: list = []
    for out, given in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no graph. Create its inputs "
                "with requires_grad=True, and do not compute it inside dg.no_grad()")
        g = _root_grad(out, given)
        if fast:
            g = g.data
        if out._ctx is None:
            _accumulate(leaf_grads, id(out), (out, g))
        else:
            node = out._ctx
            if node in node_grads:
                node_grads[node] = node_grads[node] + g
            else:
                node_grads[node] = g
                heapq.heappush(heap, (-node.seq, node))

    wanted = None
    if inputs is not None:
        wanted = {id(t._ctx): None for t in inputs if t._ctx is not None}

    prev_mode = is_grad_enabled()
    _mode.enabled = create_graph
    try:
        while heap:
            node = heapq.heappop(heap)[1]
            g = node_grads.pop(node)
            if wanted is not None and id(node) in wanted:
                wanted[id(node)] = g
            if node.released:
                raise RuntimeError(
                    f"backward through {node.name} a second time: its saved values were freed by the "
                    "first backward. Pass retain_graph=True to the first backward() (or dg.grad) "
                    "to keep them.")
            if node.device.index:  # a second GPU: run the kernels there
                with node.device.activate():
                    in_grads = _node_backward(node, g, fast)
            else:
                in_grads = _node_backward(node, g, fast)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if not retain_graph:
                node.release()
            for target, gi in zip(node.next, in_grads):
                if target is None or gi is None:
                    continue
                if isinstance(target, Function):
                    if gi.shape != target.shape:
                        _bad_shape(node, target.name, gi.shape, target.shape)
                    prev = node_grads.get(target)
                    if prev is None:
                        node_grads[target] = gi
                        heapq.heappush(heap, (-target.seq, target))
                    else:
                        node_grads[target] = prev + gi
                else:
                    if gi.shape != target.shape:
                        _bad_shape(node, "a leaf tensor", gi.shape, target.shape)
                    _accumulate(leaf_grads, id(target), (target, gi))
    finally:
        _mode.enabled = prev_mode

    if inputs is None:
        if fast:
            _set_leaf_grads_from_arrays(leaf_grads)
        else:
            for leaf, g in leaf_grads.values():
                g = g if g.dtype == leaf.dtype else g.astype(leaf.dtype)
                leaf.grad = g if leaf.grad is None else leaf.grad + g
        return None
    if fast:
        leaf_grads = {k: (leaf, _wrap_owned(g, leaf.device)) for k, (leaf, g) in leaf_grads.items()}
        devices = {id(t._ctx): t.device for t in inputs if t._ctx is not None}
        wanted = {k: None if g is None else _wrap_owned(g, devices[k]) for k, g in wanted.items()}
    result = []
    for t in inputs:
        if t._ctx is not None:
            result.append(wanted.get(id(t._ctx)))
        else:
            entry = leaf_grads.get(id(t))
            result.append(None if entry is None else entry[1])
    return result


def _node_backward(node, g, fast: bool):
    """One node's input gradients: Tensor formulas, or arrays on the first-order fast path."""
    if not fast:
        in_grads = node.backward(g)
        _check_devices(node, in_grads)
        return in_grads
    if node.backward_array is not None:
        return node.backward_array(g)
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
    for leaf, g in leaf_grads.values():
        if g.dtype != leaf.data.dtype:
            g = g.astype(leaf.data.dtype)
        if leaf.grad is not None:
            leaf.grad = Tensor._make(leaf.grad.data + g, leaf.device)
            continue
        # A view (e.g. of a broadcast) or one array reaching two leaves (a + b) is copied, so
        # in-place clipping or zeroing of one gradient never touches another array.
        if g.base is not None or id(g) in seen or not getattr(g.flags, "writeable", True):
            g = g.copy()
        seen.add(id(g))
        leaf.grad = Tensor._make(g, leaf.device)


def _wrap_owned(array, device):
    """A gradient array as a Tensor that owns writable memory (views, e.g. of broadcasts, are copied)."""
    if array.base is not None or not getattr(array.flags, "writeable", True):
        array = array.copy()
    return Tensor._make(array, device)


def _accumulate(leaf_grads: dict, key: int, entry) -> None:
    prev = leaf_grads.get(key)
    leaf_grads[key] = entry if prev is None else (prev[0], prev[1] + entry[1])


def _root_grad(out, g):
    if g is None:
        if out.size != 1:
            raise RuntimeError(
                f"backward: grad can be implied only for a single-element output, this one has shape "
                f"{out.shape}. Reduce it first (e.g. .sum() or .mean()) or pass grad=...")
        with out.device.activate():
            return Tensor._make(out.device.xp.ones(out.shape, dtype=out.dtype), out.device)
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


from devgrad.tensor import Tensor  # noqa: E402 - Tensor builds on Function; bound after it exists

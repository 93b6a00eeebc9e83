"""Functional transforms, as ``torch.func`` and JAX have them: ``grad(f)`` is a function.

    from devgrad import func
    df = func.grad(lambda x: (x ** 3).sum())        # df(x) == 3 * x ** 2
    h = func.hessian(loss)(w)                       # jacfwd(jacrev(loss))

Every transform runs ``f`` on fresh copies of the differentiated arguments that require grad
and differentiates with ``dg.grad``. Forward mode (``jvp``, ``jacfwd``) is reverse over reverse:
the vector-Jacobian product ``g(u) = J^T u`` is linear in ``u``, so its gradient with respect to
``u`` along a tangent ``t`` is ``J t``. Transforms compose because the gradient graph is kept
whenever the result can be differentiated again: when ``f``'s output depends on a tensor from
outside the transform (an enclosing transform's input, or a tensor of the caller's that requires
grad). Otherwise results are detached, and the caller's tensors are never changed: they gain no
``requires_grad`` and no ``.grad``.

``f`` takes and returns Tensors and tuples, lists and dicts of them (pytrees); NumPy arrays and
Python numbers among the differentiated arguments become float tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from devgrad.core import DEFAULT_FLOAT, Function, Tensor, enable_grad, is_grad_enabled, tensor
from devgrad.core import grad as autograd
from devgrad.creation import eye, zeros, zeros_like
from devgrad.ops import cast, reshape, stack
from devgrad.ops.shape import Reshape

__all__ = ["grad", "hessian", "hvp", "jacfwd", "jacrev", "jvp", "value_and_grad", "vjp"]


# -- pytrees: tuples, lists and dicts of leaves ------------------------------------------------

def _flatten(tree: Any, leaves: list) -> Any:
    """Append ``tree``'s leaves to ``leaves`` in order; return its structure (None for a leaf)."""
    if isinstance(tree, dict):
        keys = list(tree)
        return (type(tree), keys, [_flatten(tree[k], leaves) for k in keys])
    if isinstance(tree, tuple | list):
        return (type(tree), len(tree), [_flatten(child, leaves) for child in tree])
    leaves.append(tree)
    return None


def _unflatten(spec: Any, leaves: list) -> Any:
    """Rebuild a tree of structure ``spec`` from ``leaves`` (in ``_flatten``'s order)."""
    return _build(spec, iter(leaves))


def _build(spec: Any, it) -> Any:
    if spec is None:
        return next(it)
    kind, keys, children = spec
    values = [_build(child, it) for child in children]
    if issubclass(kind, dict):
        return kind(zip(keys, values, strict=True))
    if kind is list:
        return values
    return kind(*values) if hasattr(kind, "_fields") else kind(values)  # a namedtuple takes fields


def _describe(spec: Any) -> str:
    if spec is None:
        return "a tensor"
    kind, keys, _ = spec
    return f"a {kind.__name__} with keys {keys}" if issubclass(kind, dict) else f"a {kind.__name__} of {keys}"


# -- tracing f ---------------------------------------------------------------------------------

def _argnums(argnums: Any, nargs: int, where: str) -> tuple[int, ...]:
    """``argnums`` (an int or a tuple of ints, negative counting from the end) as a tuple of indices."""
    items = argnums if isinstance(argnums, tuple) else (argnums,)
    if not items or any(isinstance(a, bool) or not isinstance(a, int | np.integer) for a in items):
        raise TypeError(f"{where}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    if any(not -nargs <= a < nargs for a in items):
        raise ValueError(f"{where}: argnums={argnums!r} but f was called with {nargs} positional "
                         f"argument(s); use indices from {-nargs} to {nargs - 1}")
    resolved = tuple(int(a) % nargs for a in items)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"{where}: argnums={argnums!r} names an argument twice")
    return resolved


def _lift(leaf: Any, device: Any, where: str) -> Tensor:
    """A fresh tensor that requires grad and has ``leaf``'s value, the caller's tensor untouched."""
    if isinstance(leaf, Tensor):
        if leaf.dtype.kind != "f":
            raise TypeError(f"{where}: only floating-point tensors can be differentiated, an argument is "
                            f"{leaf.dtype}; convert it with .astype('float32') (or float64)")
        if leaf.requires_grad:
            # A new node over the caller's tensor: gradients reach it, so an enclosing transform (or the
            # caller's own backward) differentiates through this one, and f's result is told apart
            # from other uses of the same tensor.
            with enable_grad():
                return Reshape.apply(leaf, shape=leaf.shape)
        return leaf.detach().requires_grad_(True)
    if np.asarray(leaf).dtype.kind not in "biuf":
        raise TypeError(f"{where}: cannot differentiate with respect to {type(leaf).__name__} {leaf!r}: "
                        "pass Tensors, NumPy arrays or numbers (in tuples, lists or dicts)")
    lifted = tensor(leaf, device=device)  # devgrad's dtype rules: a Python float is float32
    lifted = lifted if lifted.dtype.kind == "f" else cast(lifted, DEFAULT_FLOAT)
    return lifted.requires_grad_(True)


def _reaches_outside(tensors: list, own: set) -> bool:
    """Does the graph of ``tensors`` reach a tensor that requires grad other than those in ``own``?"""
    seen: set = set()
    stack_: list = []
    for t in tensors:
        if isinstance(t, Tensor) and t.requires_grad:
            if t.grad_fn is None:
                if id(t) not in own:
                    return True
            else:
                stack_.append(t.grad_fn)
    while stack_:
        node = stack_.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for target in node.next:
            if isinstance(target, Function):
                stack_.append(target)
            elif target is not None and id(target) not in own:
                return True
    return False


class _Trace:
    """``f`` run once on lifted arguments: its flat outputs, inputs and how to pull gradients back."""

    def __init__(self, f: Callable, args: tuple, argnums: Any, has_aux: bool, where: str):
        if not args:
            raise TypeError(f"{where}: f must be called with at least one positional argument to differentiate")
        self.where = where
        self.single = not isinstance(argnums, tuple)
        indices = _argnums(argnums, len(args), where)
        selected = tuple(args[i] for i in indices)
        raw: list = []
        self.in_spec = _flatten(selected[0] if self.single else selected, raw)
        device = next((x.device for x in raw if isinstance(x, Tensor)),
                      next((a.device for a in args if isinstance(a, Tensor)), None))
        self.inputs = [_lift(x, device, where) for x in raw]
        lifted = _unflatten(self.in_spec, self.inputs)
        call_args = list(args)
        for i, value in zip(indices, (lifted,) if self.single else lifted, strict=True):
            call_args[i] = value
        recording = is_grad_enabled()
        with enable_grad():  # as torch.func: a transform differentiates even inside no_grad
            result = f(*call_args)
        self.aux = None
        if has_aux:
            if not isinstance(result, tuple | list) or len(result) != 2:
                raise TypeError(f"{where}: with has_aux=True, f must return a pair (output, aux), "
                                f"it returned {type(result).__name__}")
            result, self.aux = result
        self.outputs: list = []
        self.out_spec = _flatten(result, self.outputs)
        for out in self.outputs:
            if not isinstance(out, Tensor):
                raise TypeError(f"{where}: f must return Tensors (or tuples, lists, dicts of them), "
                                f"it returned a {type(out).__name__}")
        aux_leaves: list = []
        _flatten(self.aux, aux_leaves)
        # Keep the gradient graph only when something outside can differentiate the result again.
        self.nested = recording and _reaches_outside(self.outputs + aux_leaves, {id(t) for t in self.inputs})

    def inputs_tree(self, leaves: list) -> Any:
        """``leaves`` (one per input) in the structure of the differentiated arguments."""
        return _unflatten(self.in_spec, leaves)

    def pull(self, cotangents: list, create_graph: bool) -> list:
        """Vector-Jacobian product: one gradient per input (zeros where the output does not reach it)."""
        pairs = [(o, c) for o, c in zip(self.outputs, cotangents, strict=True) if c is not None and o.requires_grad]
        if not pairs:
            return [zeros_like(x) for x in self.inputs]
        grads = autograd([o for o, _ in pairs], self.inputs, [c for _, c in pairs], retain_graph=True,
                         create_graph=create_graph, allow_unused=True)
        return [zeros_like(x) if g is None else g for x, g in zip(self.inputs, grads, strict=True)]

    def linearize(self) -> Callable[[list], list]:
        """A function from input tangents to output tangents (``J t``), sharing one ``g(u) = J^T u``."""
        us = [zeros_like(o, requires_grad=True) if o.requires_grad else None for o in self.outputs]
        vjps = self.pull(us, create_graph=True)
        live = [(g, t_index) for t_index, g in enumerate(vjps) if g.requires_grad]
        wanted = [u for u in us if u is not None]

        def jvp_fn(tangents: list) -> list:
            if not live or not wanted:
                return [zeros_like(o) for o in self.outputs]
            # a tangent that requires grad is differentiated through, as vjp's cotangents are
            create_graph = self.nested or any(t is not None and t.requires_grad for t in tangents)
            grads = autograd([g for g, _ in live], wanted, [tangents[i] for _, i in live], retain_graph=True,
                             create_graph=create_graph, allow_unused=True)
            found = iter(grads)
            return [zeros_like(o) if u is None else _or_zeros(next(found), o) for o, u in zip(self.outputs, us)]

        return jvp_fn

    def finish(self, value: Any) -> Any:
        """A result, detached unless nested, with ``aux`` attached when f returns one."""
        return value if self.aux is None else (value, self.keep(self.aux))

    def keep(self, tree: Any) -> Any:
        """``tree`` as returned to the caller: detached tensors unless the transform is nested."""
        if self.nested:
            return tree
        leaves: list = []
        spec = _flatten(tree, leaves)
        return _unflatten(spec, [x.detach() if isinstance(x, Tensor) else x for x in leaves])


def _or_zeros(g: Tensor | None, like: Tensor) -> Tensor:
    return zeros_like(like) if g is None else g


def _matching(tree: Any, spec: Any, like: list, what: str, where: str) -> list:
    """The leaves of ``tree`` (tangents or cotangents) as tensors shaped and typed as ``like``."""
    leaves: list = []
    if _flatten(tree, leaves) != spec:
        raise ValueError(f"{where}: {what} must have the structure of {_describe(spec)}, got "
                         f"{_describe(_flatten(tree, []))}")
    out = []
    for i, (leaf, ref) in enumerate(zip(leaves, like, strict=True)):
        t = leaf if isinstance(leaf, Tensor) else tensor(np.asarray(leaf), device=ref.device, dtype=ref.dtype)
        if t.shape != ref.shape:
            raise ValueError(f"{where}: {what} {i} has shape {t.shape}, it must have shape {ref.shape}")
        out.append(cast(t, ref.dtype))
    return out


def _scalar_output(trace: _Trace) -> Tensor:
    out = trace.outputs[0] if trace.out_spec is None else None
    if out is None or out.ndim != 0:
        got = f"shape {out.shape}" if out is not None else _describe(trace.out_spec)
        raise ValueError(f"{trace.where}: f must return a scalar (0-d) Tensor, it returned {got}; reduce it "
                         "(e.g. .sum()), or use vjp or jacrev for a non-scalar output")
    return out


# -- the transforms ----------------------------------------------------------------------------

def value_and_grad(f: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """``f`` and its gradient: ``(value, grad)``, or ``((value, aux), grad)`` with ``has_aux``."""
    def value_and_grad_f(*args):
        trace = _Trace(f, args, argnums, has_aux, "value_and_grad(f)(*args)")
        out = _scalar_output(trace)
        grads = trace.pull([tensor(1.0, device=out.device, dtype=out.dtype)], trace.nested)
        value = trace.keep(out)
        return (value if trace.aux is None else (value, trace.keep(trace.aux))), trace.inputs_tree(grads)

    return value_and_grad_f


def grad(f: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """The gradient of a scalar ``f`` with respect to the arguments ``argnums`` (``(grad, aux)`` with
    ``has_aux``); it has the structure of those arguments."""
    inner = value_and_grad(f, argnums, has_aux)

    def grad_f(*args):
        value, gradient = inner(*args)
        return (gradient, value[1]) if has_aux else gradient

    return grad_f


def vjp(f: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """``(f(*primals), vjp_fn)`` (and ``aux``); ``vjp_fn(cotangents)`` returns a tuple with one
    gradient per primal, ``cotangents`` having the structure of ``f``'s output."""
    where = "vjp(f, *primals)"
    trace = _Trace(f, primals, tuple(range(len(primals))), has_aux, where)

    def vjp_fn(cotangents: Any) -> tuple:
        cots = _matching(cotangents, trace.out_spec, trace.outputs, "the cotangent", where)
        create_graph = trace.nested or any(c.requires_grad for c in cots)
        return trace.inputs_tree(trace.pull(cots, create_graph))

    out = trace.keep(_unflatten(trace.out_spec, trace.outputs))
    return (out, vjp_fn) if trace.aux is None else (out, vjp_fn, trace.keep(trace.aux))


def _primals_tuple(primals: Any, name: str, where: str) -> tuple:
    if not isinstance(primals, tuple | list):
        raise TypeError(f"{where}: {name} must be a tuple (or list) with one entry per argument of f, "
                        f"got {type(primals).__name__}; for one argument write ({name[:-1]},)")
    return tuple(primals)


def jvp(f: Callable, primals: Any, tangents: Any, has_aux: bool = False) -> tuple:
    """``(f(*primals), J @ tangents)`` (and ``aux``): the Jacobian-vector product, forward mode."""
    where = "jvp(f, primals, tangents)"
    primals = _primals_tuple(primals, "primals", where)
    tangents = _primals_tuple(tangents, "tangents", where)
    trace = _Trace(f, primals, tuple(range(len(primals))), has_aux, where)
    tangent_leaves = _matching(tangents, trace.in_spec, trace.inputs, "the tangent", where)
    tangents_out = trace.linearize()(tangent_leaves)
    out = trace.keep(_unflatten(trace.out_spec, trace.outputs))
    result = (out, _unflatten(trace.out_spec, tangents_out))
    return result if trace.aux is None else (*result, trace.keep(trace.aux))


def hvp(f: Callable, primals: Any, tangents: Any) -> tuple:
    """``(f(*primals), H @ tangents)``: the Hessian of a scalar ``f`` (over all its arguments) times
    ``tangents``, by differentiating ``grad(f) . tangents`` once more."""
    where = "hvp(f, primals, tangents)"
    primals = _primals_tuple(primals, "primals", where)
    tangents = _primals_tuple(tangents, "tangents", where)
    trace = _Trace(f, primals, tuple(range(len(primals))), False, where)
    out = _scalar_output(trace)
    tangent_leaves = _matching(tangents, trace.in_spec, trace.inputs, "the tangent", where)
    grads = trace.pull([tensor(1.0, device=out.device, dtype=out.dtype)], create_graph=True)
    live = [(g, t) for g, t in zip(grads, tangent_leaves, strict=True) if g.requires_grad]
    if not live:
        products = [zeros_like(x) for x in trace.inputs]
    else:
        create_graph = trace.nested or any(t.requires_grad for _, t in live)  # H t differentiable in t
        found = autograd([g for g, _ in live], trace.inputs, [t for _, t in live], retain_graph=True,
                         create_graph=create_graph, allow_unused=True)
        products = [_or_zeros(g, x) for g, x in zip(found, trace.inputs, strict=True)]
    return trace.keep(out), trace.inputs_tree(products)


def _jacobian(trace: _Trace, blocks: list) -> Any:
    """The Jacobian from ``blocks[k][j]`` (output leaf k, input leaf j): in the output's structure,
    each leaf the structure of the differentiated arguments."""
    return trace.finish(_unflatten(trace.out_spec, [trace.inputs_tree(row) for row in blocks]))


def jacrev(f: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """The Jacobian by reverse mode (one vector-Jacobian product per output element); each block
    has shape ``out.shape + in.shape``."""
    def jacrev_f(*args):
        trace = _Trace(f, args, argnums, has_aux, "jacrev(f)(*args)")
        blocks = []
        for k, out in enumerate(trace.outputs):
            rows = []
            if out.size:
                basis = eye(out.size, device=out.device, dtype=out.dtype).reshape(out.size, *out.shape)
                for i in range(out.size):
                    cots = [basis[i] if index == k else None for index in range(len(trace.outputs))]
                    rows.append(trace.pull(cots, trace.nested))
            blocks.append([_assemble([r[j] for r in rows], out.shape, x, axis=0)
                           for j, x in enumerate(trace.inputs)])
        return _jacobian(trace, blocks)

    return jacrev_f


def _assemble(pieces: list, out_shape: tuple, x: Tensor, axis: int) -> Tensor:
    """Stack per-element derivatives (rows at axis 0, columns at -1) into ``out_shape + x.shape``."""
    if not pieces:  # an empty output or input: an empty Jacobian
        return zeros((*out_shape, *x.shape), device=x.device, dtype=x.dtype)
    return reshape(stack(pieces, axis=axis), *out_shape, *x.shape)


def jacfwd(f: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """The Jacobian by forward mode (one Jacobian-vector product per input element); each block has
    shape ``out.shape + in.shape``."""
    def jacfwd_f(*args):
        trace = _Trace(f, args, argnums, has_aux, "jacfwd(f)(*args)")
        jvp_fn = trace.linearize()
        columns_per_input = []
        for j, x in enumerate(trace.inputs):
            columns = []
            if x.size:
                basis = eye(x.size, device=x.device, dtype=x.dtype).reshape(x.size, *x.shape)
                for i in range(x.size):
                    columns.append(jvp_fn([basis[i] if index == j else zeros_like(t)
                                           for index, t in enumerate(trace.inputs)]))
            columns_per_input.append(columns)
        blocks = [[_assemble([c[k].reshape(-1) for c in columns_per_input[j]], out.shape, x, axis=-1)
                   for j, x in enumerate(trace.inputs)] for k, out in enumerate(trace.outputs)]
        return _jacobian(trace, blocks)

    return jacfwd_f


def hessian(f: Callable, argnums: int | tuple = 0) -> Callable:
    """The Hessian of a scalar ``f``: ``jacfwd(jacrev(f, argnums), argnums)``, as in torch.func."""
    return jacfwd(jacrev(f, argnums), argnums)

"""What a recording of ``CapturedStep`` depends on besides its inputs, and how a call tells that it
changed: the modules the step called (their training flags, attributes, buffers, hooks and
parameters' ``requires_grad``), the tensors they hold (each one's array: a replay reads and writes
the arrays it was recorded on), and the optimizer's settings (a list among them compared by its items).
"""

from __future__ import annotations

from devgrad.core import Tensor

__all__ = ["arrays_changed", "arrays_of", "differs", "lists_changed", "modes_of", "same_state", "settings", "state",
           "tensors_of"]


def modes_of(called: list) -> tuple:
    """(module, its ``state``) for the modules a recording called and their sub-modules."""
    seen: dict = {}
    for module in called:
        for m in module.modules():
            seen.setdefault(id(m), m)
    return tuple((m, state(m)) for m in seen.values())


_HOOKS = ("_forward_hooks", "_forward_pre_hooks")


def state(m) -> tuple:
    """What a replay would keep of module ``m`` as recorded: its training flag, its attributes and
    buffers (compared by identity, a list's or a dict's items too: a parameter, sub-module or
    setting replaced), its hooks, and its parameters' ``requires_grad``."""
    attributes = m.__dict__
    values = tuple((k, _items(v)) for k, v in attributes.items() if k != "_buffers" and k not in _HOOKS)
    buffers = tuple(attributes.get("_buffers", {}).items())
    hooks = tuple(tuple(attributes.get(name, ())) for name in _HOOKS)
    tensors = [t for _, v in values for t in (v if type(v) is tuple else (v,)) if isinstance(t, Tensor)]
    return m.training, values, buffers, hooks, tuple(t.requires_grad for t in tensors)


def _items(v):
    """An attribute as a recording keeps it: a list's items, a dict's keys and values (a ModuleDict's
    modules: set in place), else the object itself."""
    if type(v) is list:
        return tuple(v)
    if type(v) is dict:
        return tuple(x for item in v.items() for x in item)
    return v


def same_state(m, recorded: tuple) -> bool:
    training, values, buffers, hooks, flags = state(m)
    return (training == recorded[0] and hooks == recorded[3] and flags == recorded[4]
            and _identical(values, recorded[1]) and _identical(buffers, recorded[2]))


def _identical(items: tuple, recorded: tuple) -> bool:
    """The same names with the same objects (a tuple made of a list: the same items)."""
    return len(items) == len(recorded) and all(k == j and (v is w or _same_items(v, w))
                                               for (k, v), (j, w) in zip(items, recorded))


def _same_items(v, w) -> bool:
    return type(v) is tuple and type(w) is tuple and len(v) == len(w) and all(a is b for a, b in zip(v, w))


def tensors_of(modes: tuple, exclude: list, leaves=()) -> tuple[list, list]:
    """The tensors the modules of ``modes`` (``modes_of``) hold and the ``leaves`` given gradients,
    other than those of ``exclude``: those that take gradients (parameters the optimizer does not
    update: another one may, outside the step), and the others (frozen parameters, buffers). A
    recording traces them, so that a replay reads and writes their arrays, and gives the first
    their gradients."""
    seen = {id(t) for t in exclude}
    grads: list = []
    others: list = []
    for _, (_, values, buffers, _, _) in modes:
        for _, v in (*values, *buffers):
            for t in v if type(v) is tuple else (v,):  # a list's or a dict's items too (``_items``)
                if isinstance(t, Tensor) and id(t) not in seen:
                    seen.add(id(t))
                    (grads if t.requires_grad else others).append(t)
    grads += [t for t in leaves if id(t) not in seen]
    return grads, others


def arrays_of(tensors: list) -> tuple:
    """(tensor, its array, its ``requires_grad``) for each: what ``arrays_changed`` compares."""
    return tuple((t, t.data, t.requires_grad) for t in tensors)


def arrays_changed(held: tuple) -> bool:
    """Does a tensor of ``held`` (``arrays_of``) use another array now (``t.data = ...``), or was it
    frozen or unfrozen?"""
    for t, array, wanted in held:
        if t.data is not array or t.requires_grad is not wanted:
            return True
    return False


def settings(group: dict) -> tuple:
    """A group's settings as a recording keeps them: a copy of the dict, and the items of each list
    in it (``betas`` written as a list: changed in place, the copy would still hold it)."""
    return dict(group), tuple((k, tuple(v)) for k, v in group.items() if type(v) is list)


def lists_changed(group: dict, lists: tuple) -> bool:
    """Was a list among the settings (``settings``) changed in place or replaced?"""
    return any(type(group.get(k)) is not list or tuple(group[k]) != items for k, items in lists)


def differs(a: dict, b: dict) -> bool:
    """a != b for settings dicts; a value replaced by an array (whose == is elementwise) differs."""
    try:
        return bool(a != b)
    except (ValueError, TypeError):
        return True

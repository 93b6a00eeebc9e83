"""Forward hooks of modules (``register_forward_hook``, ``register_forward_pre_hook``) and the
handles that remove them, as PyTorch's.

A module keeps its hooks in a private dict that exists only once one is registered, so calling
a module without hooks costs one dict lookup. ``live()`` counts the hooks registered anywhere:
a layer with a fast path that skips its sub-modules' calls (MLP's fused Linear + activation)
looks at its own sub-modules only while some hook is live, and takes the plain path when one
of them has a hook, so that every hook runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from devgrad import capture

_ids = itertools.count()
_live = [0]


class Hooks(dict):
    """A module's hooks (id -> hook). ``live()`` counts every hook held by any of them: also those of
    a module copied (``copy.deepcopy``) or unpickled, whose hooks are put in one by one."""

    def __setitem__(self, key, hook) -> None:
        if key not in self:
            _live[0] += 1
        super().__setitem__(key, hook)

    def pop(self, key, *default):
        if key in self:
            _live[0] -= 1
        return super().pop(key, *default)


def live() -> int:
    """How many hooks are registered on any module now."""
    return _live[0]


class RemovableHandle:
    """What ``register_forward_hook`` returns: ``handle.remove()`` unregisters the hook (also as a
    context manager: ``with module.register_forward_hook(fn): ...``)."""

    def __init__(self, hooks: dict, key: int):
        self._hooks, self.id = hooks, key

    def remove(self) -> None:
        """Unregister the hook (a second call does nothing)."""
        if self._hooks.pop(self.id, None) is not None:
            capture.state_changed()  # a recorded step that ran the hook no longer fits its module

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def add_hook(hooks: dict, hook: Callable, prepend: bool) -> RemovableHandle:
    """Register ``hook`` in ``hooks`` (first when ``prepend``); its handle."""
    if not callable(hook):
        raise TypeError(f"a hook must be callable, got {type(hook).__name__}")
    key = next(_ids)
    hooks[key] = hook  # counted by ``Hooks``
    if prepend:  # the same hooks, reordered: the count stays
        items = [(key, hook)] + [(k, v) for k, v in hooks.items() if k != key]
        dict.clear(hooks)
        dict.update(hooks, items)
    capture.state_changed()  # a recorded step that called the module did not run the hook
    return RemovableHandle(hooks, key)


def call_with_hooks(module, args: tuple, kwargs: dict) -> Any:
    """``module.forward(*args, **kwargs)`` with its pre-hooks first (a hook's non-None result
    replaces the inputs) and its forward hooks after (a non-None result replaces the output)."""
    for hook in list(module.__dict__.get("_forward_pre_hooks", {}).values()):
        result = hook(module, args)
        if result is not None:
            args = result if isinstance(result, tuple) else (result,)
    output = module.forward(*args, **kwargs)
    for hook in list(module.__dict__.get("_forward_hooks", {}).values()):
        result = hook(module, args, output)
        if result is not None:
            output = result
    return output

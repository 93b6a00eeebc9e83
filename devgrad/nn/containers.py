"""ModuleList and ModuleDict: Modules held in a list or a dict, whose parameters the parent finds.

Changing what they hold (an item set, added or removed) tells recorded steps (``CapturedStep``)
that the modules they ran may have changed, as assigning a module's attribute does.
"""

from __future__ import annotations

from devgrad import capture
from devgrad.nn.module import Module

__all__ = ["ModuleDict", "ModuleList"]


class ModuleList(Module):
    """A list of Modules whose parameters the parent finds (named "0", "1", ...)."""

    def __init__(self, modules=()):
        super().__init__()
        self._items: list = []
        self.extend(modules)

    def _children_items(self):
        for i, m in enumerate(self._items):
            yield str(i), m

    def append(self, module: Module) -> ModuleList:
        self._items.append(_listed(module))
        capture.state_changed()  # a recorded step that ran this list ran other modules
        return self

    def extend(self, modules) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        self._items.insert(index, _listed(module))
        capture.state_changed()

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(self._items[index])
        return self._items[index]

    def __setitem__(self, index: int, module: Module) -> None:
        self._items[index] = _listed(module)
        capture.state_changed()

    def __delitem__(self, index) -> None:
        del self._items[index]
        capture.state_changed()

    def pop(self, index: int = -1) -> Module:
        module = self._items.pop(index)
        capture.state_changed()
        return module

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(self._items)


def _listed(module):
    """``module``, which a ModuleList may hold (a TypeError for anything but a Module)."""
    if not isinstance(module, Module):
        raise TypeError(f"ModuleList holds Modules, got {type(module).__name__}")
    return module


class ModuleDict(Module):
    """A dict of Modules whose parameters the parent finds (named by their keys)."""

    def __init__(self, modules=None):
        super().__init__()
        self._items: dict = {}
        self.update(modules or {})

    def _children_items(self):
        yield from self._items.items()

    def update(self, modules) -> None:
        for key, m in dict(modules).items():
            self[key] = m

    def __getitem__(self, key: str) -> Module:
        return self._items[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not isinstance(module, Module):
            raise TypeError(f"ModuleDict maps strings to Modules, got {type(key).__name__} -> "
                            f"{type(module).__name__}")
        self._items[key] = module
        capture.state_changed()  # a recorded step that ran this dict's modules ran other ones

    def __delitem__(self, key: str) -> None:
        del self._items[key]
        capture.state_changed()

    def pop(self, key: str) -> Module:
        module = self._items.pop(key)
        capture.state_changed()
        return module

    def __contains__(self, key) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    def keys(self):
        return self._items.keys()

    def values(self):
        return self._items.values()

    def items(self):
        return self._items.items()


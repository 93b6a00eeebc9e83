"""Sequential: modules applied in order, edited like a list (PyTorch's idioms).

Its modules are its public attributes ("0", "1", ... or the names it was given), in the order
they were set: what ``parameters()``, ``state_dict()`` and the printout walk is what ``forward``
runs. Replacing one (``seq[1] = nn.Tanh()``, ``setattr(seq, "fc", layer)``) replaces it in
place; a new name appends; deleting one removes it, and a Sequential numbered "0", "1", ...
stays numbered by position.
"""

from __future__ import annotations

from devgrad import capture
from devgrad.nn.module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """Modules applied in order; index, slice, iterate, len(), and edit (``seq[i] = m``, ``del
    seq[i]``, ``append``, ``insert``, ``extend``, ``pop``) like a list. ``Sequential(OrderedDict(
    [("fc", Linear(2, 3)), ...]))`` names them (``model.fc``, state_dict keys ``fc.weight``)."""

    def __init__(self, *modules: Module):
        super().__init__()
        object.__setattr__(self, "_modules", ())  # the modules in order: what forward runs
        if len(modules) == 1 and isinstance(modules[0], dict):
            named = [(str(k), m) for k, m in modules[0].items()]
        else:
            if len(modules) == 1 and isinstance(modules[0], list | tuple):
                modules = tuple(modules[0])
            named = [(str(i), m) for i, m in enumerate(modules)]
        for name, m in named:
            self._check(name, m)
            setattr(self, name, m)

    def _check(self, name: str, m) -> None:
        if not isinstance(m, Module):
            raise TypeError(f"Sequential: item {name} is a {type(m).__name__}, not a Module")
        if name.startswith("_") or name in ("training",) or hasattr(type(self), name):
            raise ValueError(f"Sequential: {name!r} cannot name a module (it is private or an attribute of "
                             "Sequential); choose another name")

    def __setattr__(self, name: str, value) -> None:
        if isinstance(self.__dict__.get(name), Module) and not isinstance(value, Module):
            raise TypeError(f"Sequential: item {name} must stay a Module, got {type(value).__name__}; remove it "
                            f"with del seq[i]")
        super().__setattr__(name, value)
        if name != "training" and not name.startswith("_"):  # train()/eval() change no module
            self._index()

    def __delattr__(self, name: str) -> None:
        capture.state_changed()  # a recorded step that ran this Sequential ran the module deleted
        super().__delattr__(name)
        self._index()

    def _index(self) -> None:
        object.__setattr__(self, "_modules", tuple(m for _, m in self._named()))

    def _named(self) -> list[tuple[str, Module]]:
        return [(k, v) for k, v in vars(self).items() if not k.startswith("_") and isinstance(v, Module)]

    def _position(self, i: int) -> int:
        n = len(self._modules)
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"Sequential indices are integers or slices, not {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"Sequential has {n} modules, no index {i}")
        return i % n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(dict(self._named()[i]))
        return self._modules[self._position(i)]

    def __setitem__(self, i: int, module: Module) -> None:
        name = self._named()[self._position(i)][0]
        self._check(name, module)
        setattr(self, name, module)

    def __delitem__(self, i) -> None:
        named = self._named()
        gone = named[i] if isinstance(i, slice) else [named[self._position(i)]]
        for name, _ in gone:
            delattr(self, name)
        if all(name.isdigit() for name, _ in named):  # numbered: renumbered by position
            self._renumber([m for _, m in self._named()])

    def _renumber(self, modules: list) -> None:
        for name, _ in self._named():
            self.__dict__.pop(name)
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end (named by its position); returns self."""
        name = str(len(self._modules))
        if name in vars(self):
            raise ValueError(f"Sequential.append: the name {name!r} is taken; set the module with "
                             f"setattr(seq, name, module)")
        self._check(name, module)
        setattr(self, name, module)
        return self

    def extend(self, modules) -> Sequential:
        """``append`` each of ``modules``; returns self."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Put ``module`` before position ``index`` (as list.insert) and renumber; returns self. Only a
        numbered Sequential: one whose modules have names keeps them, so set a new one by name."""
        named = self._named()
        if not all(name.isdigit() for name, _ in named):
            raise ValueError("Sequential.insert renumbers the modules, and this Sequential names them "
                             f"({', '.join(name for name, _ in named)}): add one with setattr(seq, name, module)")
        self._check(str(len(named)), module)
        modules = [m for _, m in named]
        modules.insert(index, module)
        self._renumber(modules)
        return self

    def pop(self, i: int = -1) -> Module:
        """Remove the module at position ``i`` and return it."""
        module = self[i]
        del self[i]
        return module

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def forward(self, x):
        for m in self._modules:
            x = m(x)
        return x

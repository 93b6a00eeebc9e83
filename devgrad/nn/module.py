"""Module and Parameter: containers that find their parameters by walking attributes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from devgrad.backend import device as resolve_device
from devgrad.core import Tensor


class Parameter(Tensor):
    """A tensor that is a trainable weight of a Module (``requires_grad=True``)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, device=None, dtype=None, name: str | None = None):
        if isinstance(data, Tensor) and device is None and dtype is None:
            super().__init__(data.data.copy(), requires_grad=requires_grad, device=data.device, name=name)
        else:
            super().__init__(data, requires_grad=requires_grad, device=device, dtype=dtype, name=name)

    def __repr__(self) -> str:
        return "Parameter(" + super().__repr__() + ")"


class Module:
    """Base class of layers and models.

    Assign Parameters and sub-Modules as attributes (lists and tuples of Modules work
    too); ``parameters()``, ``state_dict()``, ``to()``, ``train()``/``eval()`` find them.
    Attributes whose names start with ``_`` are private and not walked.
    Subclasses implement ``forward``; call the module itself to run it.
    """

    def __init__(self):
        self.training = True

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- walking -----------------------------------------------------------------------
    def _children_items(self) -> Iterator[tuple[str, object]]:
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue  # private attributes (caches) are not part of the module tree
            if isinstance(value, Module | Parameter):
                yield name, value
            elif isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Module | Parameter):
                        yield f"{name}.{i}", item

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in self._children_items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, depth first, each once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            kids = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) for every parameter, each once, in definition order."""
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, value in module._children_items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{mod_name}.{name}" if mod_name else name), value

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    # -- modes and devices ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active); returns self."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode (dropout off); returns self."""
        return self.train(False)

    def to(self, device=None, dtype=None) -> Module:
        """Move (and/or cast) every parameter in place, keeping their identity; returns self."""
        dev = resolve_device(device) if device is not None else None
        for p in self.parameters():
            data = p.data
            if dtype is not None:
                data = data.astype(dtype)
            if dev is not None and dev is not p.device:
                data = dev.put(p.device.to_host(data))
                p.device = dev
            p.data = data
            p.grad = None
        return self

    @property
    def device(self):
        params = self.parameters()
        return params[0].device if params else None

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """name -> detached Tensor for every parameter (sharing memory with the module)."""
        return OrderedDict((name, p.detach()) for name, p in self.named_parameters())

    def load_state_dict(self, state: dict, strict: bool = True) -> dict:
        """Copy values from ``state`` into the parameters (onto their device and dtype).

        The values are written into the parameters' existing arrays, so whatever holds them
        (an optimizer, a captured CUDA graph) keeps working on the loaded values. With
        ``strict`` (the default) missing or unexpected keys are an error; a shape mismatch
        always is. Returns {"missing": [...], "unexpected": [...]}.
        """
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        for name, p in params.items():
            if name in state:
                shape = tuple(getattr(state[name], "shape", np.shape(state[name])))
                if shape != p.shape:
                    problems.append(f"{name}: shape {shape} in the state, {p.shape} in the model")
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for name, p in params.items():
            if name in state:
                value = state[name]
                if isinstance(value, Tensor) and value.device is p.device:
                    loaded = value.data  # same device: copy directly, no trip through the host
                else:
                    host = value.device.to_host(value.data) if isinstance(value, Tensor) else np.asarray(value)
                    loaded = p.device.put(host)
                with p.device.activate():
                    p.device.xp.copyto(p.data, loaded, casting="unsafe")  # into p's dtype, as astype did
        return {"missing": missing, "unexpected": unexpected}

    # -- display ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        kids = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not kids:
            return head + ")"
        lines = [head]
        for name, child in kids:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"

"""Module and Parameter: containers that find their parameters by walking attributes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from devgrad import capture
from devgrad.backend import device as resolve_device
from devgrad.backend import is_device_array
from devgrad.backend.capturing import state as _capturing
from devgrad.core import Tensor
from devgrad.nn import hooks as _hooks

_UNSET = object()  # an attribute a module does not have yet (``__setattr__``)


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` did not match (PyTorch's ``missing, unexpected = ...`` unpacks it)."""

    missing_keys: list
    unexpected_keys: list


class Parameter(Tensor):
    """A tensor that is a trainable weight of a Module (``requires_grad=True``)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, device=None, dtype=None, name: str | None = None):
        if isinstance(data, Tensor) and device is None and dtype is None:
            super().__init__(data.device.copy(data.data), requires_grad=requires_grad, device=data.device,
                             name=name)
        else:
            super().__init__(data, requires_grad=requires_grad, device=device, dtype=dtype, name=name)

    def __repr__(self) -> str:
        return "Parameter(" + super().__repr__() + ")"


class Module:
    """Base class of layers and models.

    Assign Parameters and sub-Modules as attributes (lists and tuples of Modules work
    too); ``parameters()``, ``state_dict()``, ``to()``, ``train()``/``eval()`` find them.
    A Module or Parameter under a private name (``self._fc``) is part of the tree too, as in
    PyTorch; a private list or tuple is not walked (a cache).
    Subclasses implement ``forward``; call the module itself to run it.
    """

    def __init__(self):
        self.training = True

    # -- buffers: state that is not trained (running statistics, masks) ---------------------
    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Keep ``tensor`` as module state that is not a parameter: reachable as ``self.<name>``,
        moved by ``to()``, and saved in ``state_dict()`` unless ``persistent=False``."""
        if not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"register_buffer: {name!r} is not a usable attribute name")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name} must be a Tensor (or None), got {type(tensor).__name__}")
        if name in vars(self):
            raise KeyError(f"register_buffer: {type(self).__name__} already has an attribute {name!r}")
        self.__dict__.setdefault("_buffers", {})[name] = tensor
        self.__dict__.setdefault("_non_persistent", set())
        if not persistent:
            self._non_persistent.add(name)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: buffers live in _buffers.
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            return buffers[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        buffers = self.__dict__.get("_buffers")
        held = buffers if buffers is not None and name in buffers else self.__dict__
        if isinstance(held.get(name), Parameter) and isinstance(value, Tensor) and not isinstance(value, Parameter):
            raise TypeError(f"{type(self).__name__}.{name} is a Parameter: assign a Parameter (nn.Parameter(t)) or "
                            "None, or write the values in place (with dg.no_grad(): p.data[...] = ...)")
        if held.get(name, _UNSET) is not value:  # a recorded step that called this module may no longer fit it
            if name == "training":
                capture.mode_changed()
            else:
                capture.state_changed()
        if held is buffers:
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(dotted name, Tensor) for every registered buffer of this module and its sub-modules."""
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, value in module.__dict__.get("_buffers", {}).items():
                if value is not None and id(value) not in seen:  # a buffer two modules share: once
                    seen.add(id(value))
                    yield (f"{mod_name}.{name}" if mod_name else name), value

    def buffers(self) -> list[Tensor]:
        return [b for _, b in self.named_buffers()]

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every sub-module, then on this one (as PyTorch); returns self.
        E.g. ``model.apply(init_weights)``."""
        for _, child in self.named_children():
            child.apply(fn)
        fn(self)
        return self

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        if _capturing.watch:  # a step being recorded (or about to be) depends on this module's state
            capture.module_called(self)
        if "_forward_hooks" in self.__dict__ or "_forward_pre_hooks" in self.__dict__:
            return _hooks.call_with_hooks(self, args, kwargs)
        return self.forward(*args, **kwargs)

    def register_forward_hook(self, hook, *, prepend: bool = False) -> _hooks.RemovableHandle:
        """Call ``hook(module, args, output)`` after each forward; a non-None result replaces the
        output. Returns a handle whose ``remove()`` unregisters it."""
        return _hooks.add_hook(self.__dict__.setdefault("_forward_hooks", _hooks.Hooks()), hook, prepend)

    def register_forward_pre_hook(self, hook, *, prepend: bool = False) -> _hooks.RemovableHandle:
        """Call ``hook(module, args)`` before each forward; a non-None result (a tuple, or one
        value) replaces the inputs. Returns a handle whose ``remove()`` unregisters it."""
        return _hooks.add_hook(self.__dict__.setdefault("_forward_pre_hooks", _hooks.Hooks()), hook, prepend)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` of every parameter (``False`` freezes the module); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def double(self) -> Module:
        """Every floating parameter and buffer as float64, in place; returns self."""
        return self.to(dtype=np.float64)

    def float(self) -> Module:
        """Every floating parameter and buffer as float32, in place; returns self."""
        return self.to(dtype=np.float32)

    def half(self) -> Module:
        """Every floating parameter and buffer as float16, in place; returns self."""
        return self.to(dtype=np.float16)

    # -- walking -----------------------------------------------------------------------
    def _children_items(self) -> Iterator[tuple[str, object]]:
        for name, value in vars(self).items():
            if isinstance(value, Module | Parameter):
                yield name, value  # a private name too (self._fc), as PyTorch registers it
            elif name.startswith("_"):
                continue  # a private list or tuple (a cache: a Sequential's order, an MLP's plan) is not walked
            elif isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Module | Parameter):
                        yield f"{name}.{i}", item

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) for each direct sub-module, each once (a module held under two names is
        listed under its first, as PyTorch's: ``apply`` and ``train`` reach it once)."""
        seen = set()
        for name, value in self._children_items():
            if isinstance(value, Module) and id(value) not in seen:
                seen.add(id(value))
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
        """Training mode (dropout active); returns self. Each sub-module's own ``train`` is called,
        as PyTorch's, so that a sub-module overriding it (a BatchNorm kept frozen) has its say."""
        self.training = mode
        for child in self.children():
            child.train(mode)
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
            if p.grad is not None:  # kept, as PyTorch keeps it: cast and moved with its parameter
                g = p.grad.data.astype(dtype) if dtype is not None else p.grad.data
                p.grad = Tensor._make(g if p.grad.device is p.device else p.device.put(p.grad.device.to_host(g)),
                                      p.device)
        for module in self.modules():
            buffers = module.__dict__.get("_buffers", {})
            for name, b in buffers.items():
                if b is not None:
                    moved = b.to(dev) if dev is not None else b
                    buffers[name] = moved.astype(dtype) if dtype is not None and moved.dtype.kind == "f" else moved
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
        """name -> detached Tensor for every parameter and persistent buffer (sharing memory with
        the module)."""
        state: OrderedDict = OrderedDict()
        seen: set = set()  # a parameter held twice (tied) under its first name, as named_parameters
        for mod_name, module in self.named_modules():  # module by module, each one's parameters first
            for name, value in module._children_items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    state[f"{mod_name}.{name}" if mod_name else name] = value.detach()
            skip = module.__dict__.get("_non_persistent", ())
            for name, b in module.__dict__.get("_buffers", {}).items():
                if b is not None and name not in skip:
                    state[f"{mod_name}.{name}" if mod_name else name] = b.detach()
        return state

    def _state_tensors(self) -> dict:
        """What load_state_dict fills: parameters and persistent buffers, by dotted name."""
        return dict(self.state_dict())

    def load_state_dict(self, state: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state`` into the parameters (onto their device and dtype).

        The values are written into the parameters' existing arrays, so whatever holds them
        (an optimizer, a captured CUDA graph) keeps working on the loaded values. With
        ``strict`` (the default) missing or unexpected keys are an error; a shape mismatch
        always is. Returns (missing_keys, unexpected_keys), as PyTorch.
        """
        params = self._state_tensors()
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
                if isinstance(value, Tensor):
                    value = value.data
                # An array of p's device is copied directly, with no trip through the host
                # (put returns it as is); one of another device, or host data, is moved.
                loaded = p.device.put(value if is_device_array(value) else np.asarray(value))
                with p.device.activate():
                    p.device.xp.copyto(p.data, loaded, casting="unsafe")  # into p's dtype, as astype did
                p._bump_version()  # a graph that saved it (or a view of it) can no longer backprop
        return IncompatibleKeys(missing, unexpected)

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

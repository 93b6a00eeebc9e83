"""The Optimizer base: parameter groups, per-parameter state, zero_grad, state_dict."""

from __future__ import annotations

from typing import Any

import numpy as np

from devgrad.backend import device_of, is_capturing, refuse_while_capturing
from devgrad.backend.capturing import state as capture_state
from devgrad.core.grad_mode import mode
from devgrad.core import Tensor
from devgrad.core.writes import note_writes
from devgrad.optim import _kernels  # noqa: F401 - registers the update kernels the optimizers look up


def scratch(state: dict, param, device, count: int = 1):
    """A reusable buffer shaped like ``param`` for the device's update kernels (a pair of them for
    ``count=2``), or None where they need none (a GPU's fused kernels). Kept in the state under
    private keys, never saved.

    Updates write their temporaries into it instead of allocating fresh arrays every step:
    for large layers a fresh allocation means page faults, which cost as much as the math.
    """
    if not device.updates_need_scratch:
        return None
    buf = _scratch_buffer(state, "_scratch", param, device)
    if count == 1:
        return buf
    return buf, _scratch_buffer(state, "_scratch2", param, device)


def _scratch_buffer(state: dict, key: str, param, device):
    buf = state.get(key)
    if buf is None or buf.shape != param.shape or buf.dtype != param.dtype or type(buf) is not type(param):
        buf = state[key] = device.xp.empty_like(param)
    return buf


class Optimizer:
    """Base of all optimizers.

    ``params`` is an iterable of Parameters, or of dicts (parameter groups) each with a
    ``params`` list and per-group hyper-parameters overriding the defaults. Subclasses
    implement ``update(param, grad, group, state, device, lr)`` on raw device arrays, in
    place, so a step never leaves the parameters' device.

    ``capturable=True`` keeps everything that changes from step to step on the parameters'
    device: the learning rate as a 0-d array (refreshed from ``group["lr"]`` when a schedule
    changes it) and step counts as 0-d arrays. A step then launches the same kernels with the
    same arguments every time, which is what capturing it in a CUDA graph requires. The
    results are the same as without it.
    """

    def __init__(self, params, defaults: dict, capturable: bool = False):
        self.defaults = dict(defaults)
        self.capturable = bool(capturable)
        self._lr_buffers: dict = {}  # (group index, device) -> [lr as a number, lr as a 0-d array]
        # id(group) -> the group's flat layout on the CPU, or False where it has none (optimizers that
        # update a group over flat arrays: Adam, SGD)
        self._flat_layouts: dict = {}
        self.param_groups: list[dict] = []
        self.state: dict = {}
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        params = group.get("params")
        params = [params] if isinstance(params, Tensor) else list(params or [])
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got {type(p).__name__}")
            if not p.is_leaf or not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: can only optimize leaf tensors with requires_grad=True")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group")
            seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown option(s) {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(sorted(self.defaults))}")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.validate(group)
        group["params"] = params
        self.param_groups.append(group)

    def validate(self, group: dict) -> None:
        """Check hyper-parameters; subclasses extend it."""
        if group.get("lr", 0) < 0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {group['lr']}")
        if group.get("weight_decay", 0) < 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, got {group['weight_decay']}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (set to None, or fill with zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        """One update of every parameter that has a gradient. ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            loss = closure()
        capturing = is_capturing()
        if capturing and not self.capturable:
            refuse_while_capturing(f"{type(self).__name__} (not capturable) stepped",
                                   "every replay would reuse the learning rate and step count it had then. Create "
                                   f"it with {type(self).__name__}(..., capturable=True) and pass it to "
                                   "CapturedStep(..., optimizer=...)")
        if capturing and capture_state.watch and capture_state.optimizer is not self:
            refuse_while_capturing(f"{type(self).__name__} stepped but not given to CapturedStep(..., optimizer=)",
                                   "a replay would not follow its learning rate, nor its state where it keeps "
                                   "other arrays. Give it as optimizer= (one optimizer per step), or step it "
                                   "outside the step")
        enabled = mode.enabled  # no_grad(), without a context object: every step of every run
        mode.enabled = False
        try:
            for index, group in enumerate(self.param_groups):
                if self._step_flat(group):
                    continue  # the group's whole step over its flat layout, in one pass
                for dev, entries in self._entries_by_device(group):
                    lr = self._device_lr(index, group, dev) if self.capturable else group["lr"]
                    if dev.index:  # a second GPU: update there
                        with dev.activate():
                            self.update_group(entries, group, dev, lr)
                    else:
                        self.update_group(entries, group, dev, lr)
        finally:
            mode.enabled = enabled
        return loss

    def _step_flat(self, group: dict) -> bool:
        """The whole step of ``group`` over its flat layout (an eager step on the CPU whose
        parameters all fit it), or False with nothing done: then ``update_group`` per device."""
        return False

    def _entries_by_device(self, group: dict) -> list:
        """(device, [(param array, grad array, state)]) for the parameters of ``group`` that have a
        gradient, each counted as written in place (its version, and its memory's, advance)."""
        # A list for the first device met (the usual case, and no hashing of devices per parameter),
        # a dict only for more.
        states = self.state
        first_dev, first, written = None, [], []
        others: dict | None = None
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            dev = p.device
            if grad.device is not dev:
                raise RuntimeError(f"{type(self).__name__}: gradient on {grad.device} but parameter on {dev}")
            state = states.get(p)
            if state is None:
                state = states[p] = {}
            if first_dev is None:
                first_dev = dev
            if dev is first_dev:
                first.append((p.data, grad.data, state))
            else:
                others = others or {}
                others.setdefault(dev, []).append((p.data, grad.data, state))
            # updated in place: a graph that saved it can no longer backprop (a leaf's version
            # count is all there is to bump, and its memory's, for one that saved a view: x @ W.T)
            if p.grad_fn is None:
                p._version += 1
                written.append(p.data)
            else:
                p._bump_version()
        note_writes(written)
        by_device = [(first_dev, first)] if first_dev is not None else []
        if others:
            by_device += others.items()
        return by_device

    def update_group(self, entries: list, group: dict, device, lr) -> None:
        """Update every (param array, grad array, state) of one group on one device, in place.
        The default updates them one by one; Adam and SGD launch one fused multi-tensor
        kernel for the whole group on a GPU."""
        for param, grad, state in entries:
            self.update(param, grad, group, state, device, lr)

    def update(self, param, grad, group: dict, state: dict, device, lr) -> None:  # pragma: no cover - abstract
        """Update one parameter array in place; ``lr`` is a number, or a 0-d array when capturable."""
        raise NotImplementedError

    # -- capturable mode ------------------------------------------------------------------
    def _device_lr(self, index: int, group: dict, dev):
        """Group ``index``'s learning rate as a 0-d float64 array on ``dev``, rewritten when it changed."""
        entry = self._lr_buffers.get((index, dev))
        lr = group["lr"]
        if entry is None:
            entry = self._lr_buffers[(index, dev)] = [lr, dev.kernels.full((), lr, np.float64)]
        elif entry[0] != lr:
            dev.kernels.fill_(entry[1], lr)
            entry[0] = lr
        return entry[1]

    def refresh_lr(self) -> None:
        """Write each group's ``lr`` into its device buffer (capturable optimizers only).

        ``step()`` does this itself; a replayed CUDA graph runs no Python, so call this before
        replaying a captured step whenever a schedule may have changed the rate.
        """
        if not self.capturable:
            return
        for index, group in enumerate(self.param_groups):
            for dev in {p.device for p in group["params"]}:
                with dev.activate():
                    self._device_lr(index, group, dev)

    def _step_count(self, state: dict, dev):
        """Advance and return this parameter's step count: an int, or a 0-d array when capturable."""
        step = state.get("step", 0)
        if not self.capturable:
            state["step"] = step + 1
            return step + 1
        if not hasattr(step, "shape"):
            step = state["step"] = dev.kernels.full((), float(step), np.float64)
        dev.kernels.increment_steps([step])  # in place, on the device (one of devgrad's kernels)
        return step

    def _step_counts(self, states: list, dev) -> list:
        """``_step_count`` for several parameters: the capturable device counts advance in one launch."""
        if not self.capturable:
            counts = []
            for state in states:
                state["step"] = state.get("step", 0) + 1
                counts.append(state["step"])
            return counts
        for state in states:
            step = state.get("step", 0)
            if not hasattr(step, "shape"):
                state["step"] = dev.kernels.full((), float(step), np.float64)
        counts = [state["step"] for state in states]
        dev.kernels.increment_steps(counts)
        return counts

    # -- persistence ---------------------------------------------------------------------
    def _params(self) -> list:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self, keep_on_device: bool = False) -> dict:
        """Copies of the per-parameter state (keyed by parameter index) and the groups: host
        NumPy arrays and numbers (what ``dg.save`` writes).

        ``keep_on_device=True`` makes the copies on the parameters' devices instead: on a GPU
        that is a device-to-device copy, with no transfer and no wait for the GPU (what a
        training loop keeps after every epoch); ``state_dict_to_host`` turns such a copy into
        the host form later, when it is written.
        """
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {}
        for p, st in self.state.items():
            entry = {}
            for k, v in st.items():
                if k.startswith("_"):
                    continue  # scratch buffers are not state
                if hasattr(v, "shape"):
                    v = p.device.copy(v) if keep_on_device else _host_value(k, p.device.to_host(v).copy())
                entry[k] = v
            state[index[id(p)]] = entry
        groups = []
        for g in self.param_groups:
            saved = {k: v for k, v in g.items() if k != "params"}
            saved["params"] = [index[id(p)] for p in g["params"]]
            groups.append(saved)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore state saved by ``state_dict()`` (onto the parameters' current devices).

        State arrays that already exist are overwritten in place (so a captured CUDA graph
        that updates them stays valid); missing ones are created.
        """
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(mine["params"]) for g, mine in zip(groups, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved parameter groups do not match "
                             "this optimizer's (different model or parameter list?)")
        params = self._params()
        for saved, mine in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    mine[k] = v
        had = [any(p in self.state for p in group["params"]) for group in self.param_groups]
        previous, self.state = self.state, {}
        for key, entry in state_dict["state"].items():
            p = params[int(key)]
            restored = {}
            for k, saved in entry.items():
                value = saved.device.to_host(saved.data) if isinstance(saved, Tensor) else saved
                if isinstance(value, np.ndarray) and (value.ndim > 0 or k != "step"):  # per-element state
                    if value.shape != p.shape:
                        raise ValueError(f"{type(self).__name__}.load_state_dict: state '{k}' of parameter {key} "
                                         f"has shape {value.shape}, the parameter {p.shape}")
                    value = p.device.put(value.astype(p.dtype, copy=False))
                elif isinstance(value, np.ndarray | np.generic):
                    value = value.item()
                if type(value) is float and p.ndim == 0:  # a 0-d parameter's moment given as a number
                    value = p.device.put(np.asarray(value, dtype=p.dtype))
                restored[k] = value
            self.state[p] = _into_existing(restored, previous.get(p, {}), p.device)
        self._adopt_loaded(had)

    def _adopt_loaded(self, had: list) -> None:
        """Give each group whose parameters had no state before the load, all on the host, the flat
        layout its optimizer makes from the loaded arrays (nothing else holds them yet)."""
        for group, before in zip(self.param_groups, had):
            params = group["params"]
            if before or not params or not all(p in self.state and p.device.updates_need_scratch for p in params):
                continue
            layout = self._loaded_layout(group)
            if layout is not None:
                self._flat_layouts[id(group)] = layout

    def _loaded_layout(self, group: dict):
        """The flat layout (or False: none) of a group whose state was just loaded; None where this
        optimizer makes no flat layouts, or makes this one at its first step."""
        return None

    def __getstate__(self) -> dict:
        # a copy's state arrays are copies, no longer views of the layouts' flat arrays
        return {**self.__dict__, "_flat_layouts": {}}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            opts = ", ".join(f"{k}={v}" for k, v in g.items() if k != "params")
            lines.append(f"  group {i}: {len(g['params'])} params, {opts}")
        return "\n".join(lines) + "\n)"


def _host_value(key: str, value: np.ndarray):
    """A state value on the host: a capturable optimizer's 0-d step count becomes a Python int, as a
    non-capturable optimizer keeps it. Every other state value has its parameter's shape (a 0-d
    parameter's moments are 0-d arrays, which the update changes in place: kept as arrays)."""
    if value.ndim == 0 and key == "step":
        return int(value)
    return value


def state_dict_to_host(state_dict: dict) -> dict:
    """A ``state_dict(keep_on_device=True)`` copy in the host form of ``state_dict()``."""
    state = {}
    for key, entry in state_dict["state"].items():
        state[key] = {k: _host_value(k, device_of(v).to_host(v)) if hasattr(v, "shape") else v
                      for k, v in entry.items()}
    return {"state": state, "param_groups": state_dict["param_groups"]}


def _into_existing(restored: dict, current: dict, device) -> dict:
    """``restored`` with each value written into the matching array of ``current`` when there
    is one (same shape and dtype: copied in place; a 0-d step count: filled), so the arrays
    keep their identity; scratch buffers are kept."""
    for k, cur in current.items():
        if not hasattr(cur, "shape"):
            continue
        if k.startswith("_"):
            restored.setdefault(k, cur)
            continue
        value: Any = restored.get(k)
        with device.activate():
            if hasattr(value, "shape") and value.shape == cur.shape and value.dtype == cur.dtype:
                device.xp.copyto(cur, value)
                restored[k] = cur
            elif cur.ndim == 0 and isinstance(value, int | float):
                device.kernels.fill_(cur, value)
                restored[k] = cur
    return restored

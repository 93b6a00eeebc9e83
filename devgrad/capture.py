"""Replay a whole training step as one CUDA graph: ``CapturedStep``.

On a GPU, a small model's step is a few hundred tiny kernels, and launching them from
Python costs far more than running them. CUDA graphs record the launches once and replay
them with a single call. ``CapturedStep(fn, device)`` wraps a step function:

- the first call with a new input signature (shapes and dtypes) runs ``fn`` eagerly — a
  real step, which also compiles kernels and creates optimizer state — and then records it
  into a graph that reads its inputs from static buffers;
- later calls copy the inputs into those buffers and replay the graph.

What ``fn`` must obey, because a replay runs no Python: work only on the device (no
``.item()``, ``float()``, printing values or data-dependent Python branches); take what
changes from step to step from device memory (use an optimizer with ``capturable=True`` and
pass it as ``optimizer=``, so its learning rate is refreshed before each replay; step a
schedule outside ``fn``); draw no random numbers. What a replay would silently freeze — a
dropout mask, a non-capturable optimizer's rate and step count, a schedule's step, host data
copied to the device — raises ``CaptureError`` while ``fn`` is being recorded, so such a step
runs eagerly, with the warning below. Its outputs are overwritten by each replay, and its
Python side effects happen during capture, not on replays. The graph keeps working on the
arrays it recorded: ``load_state_dict`` (model or optimizer) writes into those very arrays
and is safe between calls. Replacing arrays (``p.data = ...``, ``model.to(...)``) would leave
a graph updating arrays nobody uses any more (or memory since given to others): pass the
optimizer as ``optimizer=`` and CapturedStep notices that a parameter's array changed (or an
optimizer setting other than the learning rate, which a replay would keep as recorded) and
records the step afresh; without it, make a new CapturedStep after such a change. With
``optimizer=``, CapturedStep also checks that it is capturable and refreshes its learning
rate before each replay.

A recording remembers the state of the modules the step called and of their sub-modules: their
training modes (``train()``/``eval()``), their attributes (a parameter, buffer, sub-module or
setting such as a slope replaced) and their forward hooks (``capture_deps``). A call after one of
them changed is not served by that recording (it would repeat what the step did before the
change) but runs as a new signature would, and is recorded afresh; so is every call after one of
the optimizer's parameters was frozen or unfrozen (``requires_grad``), its state cleared or
replaced, or a list among its settings changed in place. On the CPU the recording traces every
tensor of those modules too (their arrays compared on every call: ``t.data = ...`` records
afresh), and hands the parameters outside the optimizer their gradients on each replay.

With ``enabled=False`` the step simply calls ``fn``. If capturing fails (``fn`` broke one of
the rules above), a warning says why and the steps go on eagerly: capture executes nothing, so
no update is lost or applied twice.

On the CPU the step is recorded as a flat plan of NumPy calls into preallocated buffers
(``devgrad.cpu_plan``), under the same rules and refusals: the first call with a new input
signature runs ``fn`` eagerly (it creates the optimizer's state), the second runs it once more
while recording it (a real step), the third replays the plan and checks it bit for bit against
an eager step from the same state (a mismatch: a warning, and eager steps from then on), and
later calls replay it. Results are bit-identical to eager steps. A step that adds to the
gradients its parameters had when it began (``backward`` without ``zero_grad`` before it) is
refused: a replay would add to the recording's; one recorded where gradients were None (set
to None before each call) is recorded afresh when a call finds one. An input that the plan's calls
take only whole is read from the caller's array itself when its layout is the recorded one (no
copy into a static buffer); any other input is copied in. A data-dependent branch the
recording went one way (``if mask.any():``) is checked on every replay; a replay where it goes
the other way is dropped before it changed anything and that step runs eagerly (``diverged``
counts them).
"""

from __future__ import annotations

import contextlib
import threading
import warnings

from devgrad import capture_deps as deps
from devgrad import cpu_plan
from devgrad.backend import device as resolve_device
from devgrad.backend.capturing import state as _capturing
from devgrad.core import Tensor
from devgrad.core.backward import leaf_watch


class _ModeWatch(threading.local):
    """What nn's modules tell recordings (nn sits above this layer): ``called`` collects the modules a
    step calls while this thread records it (a class default: no lookup miss)."""

    called: list | None = None


_modes = _ModeWatch()
_mode_changes = [0]  # how many times a module's training flag changed, in any thread
module_changes = [0]  # how many times a module's attribute or hooks changed, in any thread (also read by
# layers that cache a plan of their sub-modules)


def mode_changed() -> None:
    """A module's training flag changed (``nn.Module`` calls this): recordings check their modules' flags."""
    _mode_changes[0] += 1


def state_changed() -> None:
    """A module's attribute or its hooks changed (``nn.Module`` calls this): recordings check their
    modules' whole state (``_state``)."""
    module_changes[0] += 1


def module_called(module) -> None:
    """``module`` runs while a step is recorded (``nn.Module`` calls this): the recording depends on its mode."""
    if _modes.called is not None:
        _modes.called.append(module)


@contextlib.contextmanager
def _leaves_given_gradients():
    """(leaf, its gradient before) for each leaf the block's backward walks (this thread's) give one."""
    given = leaf_watch.leaves = []
    try:
        yield given
    finally:
        leaf_watch.leaves = None


@contextlib.contextmanager
def _modules_called(optimizer=None):
    """The modules called within the block (this thread's, reported by ``module_called``): the list
    it yields fills as they run. ``optimizer``: the one a recording in the block may step."""
    called = _modes.called = []
    _capturing.watch, _capturing.optimizer = True, optimizer
    try:
        yield called
    finally:
        _modes.called = None
        _capturing.watch, _capturing.optimizer = False, None


class CapturedStep:
    """Call ``fn(*tensors)`` through CUDA graphs (on the CPU, recorded plans of NumPy calls), one
    per input signature (see the module doc).

    ``optimizer``: the optimizer ``fn`` steps, if any. It must be ``capturable=True`` (its
    learning rate and step counts must be read from device memory), and its ``refresh_lr``
    then runs before every replay (on the CPU, when a rate changed). ``before_replay``
    (optional) is another callable to run before every replay; ``on_failure`` (optional) is
    called with the reason when capturing fails, instead of a RuntimeWarning. ``replays`` counts the steps
    that ran as replays, ``captures`` the graphs or plans recorded (more than ``graphs`` once a
    parameter's array was replaced), ``diverged`` (CPU) the replays dropped for eager steps.
    """

    def __init__(self, fn, device=None, *, optimizer=None, enabled: bool = True, before_replay=None,
                 on_failure=None):
        if optimizer is not None and not getattr(optimizer, "capturable", False):
            raise ValueError(f"CapturedStep: the optimizer must be created with capturable=True "
                             f"(e.g. {type(optimizer).__name__}(params, ..., capturable=True)); otherwise a replayed "
                             "step would keep the learning rate and step count it had when it was captured")
        self.fn = fn
        self.device = resolve_device(device)
        self.enabled = bool(enabled) and (self.device.supports_graphs or self.device.is_host)
        self._hooks = [h for h in (getattr(optimizer, "refresh_lr", None), before_replay) if h is not None]
        self._before_replay = before_replay
        self._on_failure = on_failure  # called with the message instead of a RuntimeWarning
        self._optimizer = optimizer
        self._rate_changes = 0  # learning-rate changes seen by ``_stale``: a CPU plan refreshes when it missed one
        self._bound: tuple = ()  # (parameter, its array, requires_grad, its state) as recorded, for each
        self._settings: tuple = ()  # (group, a copy of it as recorded), for each of the optimizer's groups
        self.replays = 0
        self.captures = 0  # graphs recorded, re-recordings after a parameter's array changed included
        self.failure: str | None = None  # why capturing failed, when it did
        self.diverged = 0  # CPU: replays dropped for an eager step (a recorded branch went the other way)
        self._graphs: dict = {}
        self._seen: set = set()  # CPU: input signatures whose first (eager) call has run
        self._modes: dict = {}  # signature -> (module, its ``deps.state``) for the modules its recording depends on
        self._held: dict = {}  # CPU: signature -> the arrays of the modules' other tensors (``deps.arrays_of``)
        self._leaves: dict = {}  # CPU: signature -> the tensors its eager call gave gradients
        self._modes_checked = _mode_changes[0]  # module mode changes up to the last check of ``_modes``
        self._states_checked = module_changes[0]  # other module changes up to then

    @property
    def graphs(self) -> int:
        """How many graphs (input signatures) have been captured."""
        return len(self._graphs)

    def __call__(self, *inputs: Tensor):
        if not self.enabled:
            return self.fn(*inputs)
        key, arrays = self._signature(inputs)
        if key is None:  # an input takes a gradient: its caller reads x.grad, which a replay leaves alone
            return self.fn(*inputs)
        if self._settings and self._stale():
            self._graphs.clear()  # recorded on arrays a parameter no longer uses, or other settings: afresh
            self._seen.clear()
            self._bind()  # what the next recording will be made on: not stale again until it changes
        if self._modes_checked != _mode_changes[0] or self._states_checked != module_changes[0]:
            self._drop_other_modes()
        if not self.device.supports_graphs:
            return self._cpu_call(key, inputs, arrays)
        entry = self._graphs.get(key)
        if entry is None:
            out = self.fn(*inputs)  # a real step; kernels compile and optimizer state appears here
            with _modules_called(self._optimizer) as called:
                try:
                    self._graphs[key] = self._capture(inputs)
                except Exception as exc:
                    self._fail(exc)
            self._modes[key] = deps.modes_of(called)
            return out
        static, graph = entry
        xp = self.device.xp
        with self.device.activate():
            for buf, t in zip(static, inputs):
                if buf.data is not t.data:
                    xp.copyto(buf.data, t.data)
            for hook in self._hooks:
                hook()
            graph.replay()
        self.replays += 1
        return graph.result

    def _signature(self, inputs) -> tuple:
        """The inputs' (shape, dtype)s, which say the graph or plan that serves them (None where an input
        requires a gradient: such a call runs eagerly), and their arrays; checks that they are this
        device's Tensors."""
        key, arrays, wants = [], [], False
        for t in inputs:
            if not isinstance(t, Tensor):
                raise TypeError(f"CapturedStep: inputs must be Tensors, got {type(t).__name__}")
            if t.device is not self.device:
                raise ValueError(f"CapturedStep: an input is on {t.device}, the step on {self.device}")
            data = t.data
            key.append((data.shape, data.dtype))
            arrays.append(data)
            wants = wants or t.requires_grad
        return (None if wants else tuple(key)), arrays

    def _cpu_call(self, key, inputs, arrays: list):
        """One call on the CPU: eager, recording, the checked first replay, or a replay."""
        entry = self._graphs.get(key)
        if entry is None:
            if key not in self._seen:
                self._seen.add(key)
                with _modules_called(self._optimizer) as called, _leaves_given_gradients() as leaves:  # to trace
                    out = self.fn(*inputs)  # creates the optimizer's state: the recorded step is a steady one
                self._modes[key] = deps.modes_of(called)
                self._leaves[key] = list({id(leaf): leaf for leaf, _ in leaves}.values())
                return out
            return self._cpu_record(key, inputs)
        plan = entry[1]
        held = self._held[key]
        if (plan.gradless and any(p.grad is not None for p in plan.gradless)) or (held and deps.arrays_changed(held)):
            # recorded where these had no gradient (this call may add to theirs, as a new one would), or
            # on an array a tensor of its modules no longer uses
            del self._graphs[key]
            return self._cpu_record(key, inputs)
        plan.feed(arrays)
        if plan.rates != self._rate_changes:  # a rate changed since this plan last refreshed (``_stale`` saw it)
            self._optimizer.refresh_lr()
            plan.refresh()  # the plan's calls that read only the rates (their cast to float32)
            plan.rates = self._rate_changes
        if self._before_replay is not None:
            self._before_replay()
        if not plan.checked:
            return self._cpu_check(plan, inputs)
        try:
            out = plan.replay()
        except cpu_plan.DivergedError:
            self.diverged += 1
            return self.fn(*inputs)
        self.replays += 1
        return out

    def _cpu_record(self, key, inputs):
        static = tuple(Tensor._make(self.device.copy(t.data), self.device) for t in inputs)
        for hook in self._hooks:
            hook()
        params = self._params()
        # the other tensors of its modules, and those its eager call gave gradients (one in a closure)
        takes, others = deps.tensors_of(self._modes.get(key, ()), params, self._leaves.get(key, ()))
        try:
            with _modules_called(self._optimizer) as called:
                plan = cpu_plan.record(self.fn, static, self.device, params + takes, self._optimizer, others)
        except Exception as exc:  # recorded nothing and changed nothing: this step runs eagerly
            self._fail(exc)
            return self.fn(*inputs)
        self._modes[key] = deps.modes_of(called)
        self._held[key] = deps.arrays_of(takes + others)
        self._graphs[key] = (static, plan)
        self.captures += 1
        self._bind()
        plan.rates = self._rate_changes  # the rates the plan was made with (its refresh ran then)
        return plan.result

    def _cpu_check(self, plan, inputs):
        """The first replay, checked bit for bit against an eager step from the same state."""
        params = plan.params
        before, grads_before = cpu_plan.snapshot(plan), [p.grad for p in params]
        out = self.fn(*inputs)
        after, grads_after = cpu_plan.snapshot(plan), [p.grad for p in params]
        expected = [(p.grad.data.copy() if p.grad is not None else None) for p in params]
        cpu_plan.restore(plan, before)
        for p, g in zip(params, grads_before):
            p.grad = g
        diverged = False
        try:
            replayed = plan.replay()
            differs = cpu_plan.first_difference(plan, after, params, expected, out, replayed)
        except cpu_plan.DivergedError:  # a branch went the other way: this step stays the eager one
            diverged, differs = True, None
            self.diverged += 1
        except Exception as exc:  # a recorded call that cannot run again: the eager step stands
            differs = f"the replay raised {type(exc).__name__}: {exc}"
        if not diverged and differs is None:
            plan.checked = True
            self.replays += 1
            return replayed
        cpu_plan.restore(plan, after)
        for p, g in zip(params, grads_after):
            p.grad = g
        if differs is not None:
            self._fail(RuntimeError(f"the replayed step differs from the eager step: {differs}"))
        return out

    def _drop_other_modes(self) -> None:
        """Forget the recordings whose modules' state changed since (a module switched between train()
        and eval(), an attribute replaced, a hook added): the next call with their signature runs as a
        new one would."""
        whole = self._states_checked != module_changes[0]  # else only training flags changed (each epoch)
        self._modes_checked, self._states_checked = _mode_changes[0], module_changes[0]
        for key, modes in list(self._modes.items()):
            if not all(deps.same_state(m, state) if whole else m.training == state[0] for m, state in modes):
                del self._modes[key]
                self._graphs.pop(key, None)
                self._seen.discard(key)

    def _params(self) -> list:
        if self._optimizer is None:
            return []
        return [p for group in self._optimizer.param_groups for p in group["params"]]

    def _fail(self, exc: BaseException) -> None:
        self.enabled = False
        self.failure = f"{type(exc).__name__}: {exc}"
        how = "into a CUDA graph" if self.device.supports_graphs else "for replay on the CPU"
        message = f"could not capture the step {how} ({self.failure}); running it eagerly from now on"
        if self._on_failure is not None:
            self._on_failure(message)
        else:
            warnings.warn(f"CapturedStep: {message}", RuntimeWarning, stacklevel=3)

    def _bind(self) -> None:
        """Remember the arrays and settings the recording was made on (see ``_stale``)."""
        if self._optimizer is not None:
            groups = self._optimizer.param_groups
            params = tuple(p for group in groups for p in group["params"])
            state = self._optimizer.state  # each one's state: cleared or replaced, a replay would update the old
            self._bound = tuple((p, p.data, p.requires_grad, state.get(p)) for p in params)
            self._settings = tuple((group, *deps.settings(group)) for group in groups)

    def _capture(self, inputs):
        with self.device.activate():
            # Filled with this call's inputs: a capture reads nothing, but the buffers then always
            # hold valid data (labels in range, finite values) for whoever looks.
            static = tuple(Tensor._make(self.device.copy(t.data), self.device) for t in inputs)
        for hook in self._hooks:
            hook()  # so that nothing a hook would change gets recorded into the graph
        graph = self.device.capture(lambda: self.fn(*static))
        self.captures += 1
        self._bind()
        return static, graph

    def _stale(self) -> bool:
        """Whether the graphs were recorded on what the optimizer no longer has: a parameter group or
        a parameter was added, removed or replaced, a parameter's array was replaced, a parameter
        was frozen or unfrozen (``requires_grad``), or a setting
        other than the learning rate changed (momentum, weight decay, betas...: a replay would keep
        the recorded value, and would not update a parameter added since)."""
        groups = self._optimizer.param_groups
        if len(groups) != len(self._settings):  # a group added (add_param_group) or removed
            return True
        params = [p for group in groups for p in group["params"]]
        if len(params) != len(self._bound):  # a parameter added to a group, or taken out
            return True
        state = self._optimizer.state.get
        for p, (q, array, wanted, held) in zip(params, self._bound):
            if p is not q or p.data is not array or p.requires_grad is not wanted:
                return True
            if held is not None and state(p) is not held:  # its state cleared or replaced
                return True
        for g, (group, recorded, lists) in zip(groups, self._settings):
            if g is not group or (lists and deps.lists_changed(group, lists)):
                return True
            if deps.differs(group, recorded):  # the common case, equal, costs one dict comparison
                if deps.differs({k: v for k, v in group.items() if k != "lr"},
                            {k: v for k, v in recorded.items() if k != "lr"}):
                    return True
                recorded["lr"] = group["lr"]  # a schedule's new rate: refresh_lr passes it on
                self._rate_changes += 1  # (on the CPU, to each plan before its next replay)
        return False

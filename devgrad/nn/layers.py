"""Layers: Linear (the lecture's dense layer), MLP, Dropout and activations (Sequential: ``sequential``)."""

from __future__ import annotations

import itertools

from devgrad.backend.fp_errors import ERRORS, QUIET
from devgrad.capture import module_changes
from devgrad.nn import functional as F
from devgrad.nn import init as init_
from devgrad.nn.activations import ELU, GELU, Hardtanh, Mish, SiLU
from devgrad.nn.hooks import live as live_hooks
from devgrad.nn.norm import BatchNorm1d, LayerNorm
from devgrad.nn.sequential import Sequential
from devgrad.nn.module import Module, Parameter
from devgrad.ops.linalg import Linear as LinearOp
from devgrad.ops.linalg import LinearAct
from devgrad.random import get_generator
from devgrad.core import DEFAULT_FLOAT, Tensor
from devgrad.creation import zeros


class Linear(Module):
    """y = x @ weight.T + bias, weight of shape (out_features, in_features) as in PyTorch.

    Row j of ``weight`` holds the incoming weights of unit j. ``init`` names the weight
    initialiser (see ``dg.nn.init.INITIALIZERS``); with 'default' (PyTorch's choice) the bias
    is U(±1/√in_features), with any other initialiser it starts at zero.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "default",
                 generator=None, device=None, dtype=None):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Linear: {name} must be a positive integer, got {value!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.init = init
        dtype = dtype or DEFAULT_FLOAT
        self.weight = Parameter(zeros(out_features, in_features, device=device, dtype=dtype))
        self.bias = Parameter(zeros(out_features, device=device, dtype=dtype)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        """Draw fresh initial values (from ``generator`` or devgrad's default one)."""
        generator = get_generator(generator)  # one stream for weight and bias, even from an int seed
        init_.get(self.init)(self.weight, generator=generator)
        if self.bias is not None:
            if self.init == "default":
                init_.default_(self.bias, fan_in=self.in_features, generator=generator)
            else:
                init_.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    def forward(self, x):
        return x.relu()


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return x.leaky_relu(self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    def forward(self, x):
        return x.sigmoid()


class Tanh(Module):
    def forward(self, x):
        return x.tanh()


class Softplus(Module):
    """log(1 + exp(beta·x)) / beta, and x where beta·x > threshold (PyTorch's defaults: 1, 20)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Identity(Module):
    """Returns its input: the 'no nonlinearity' activation."""

    def forward(self, x):
        return x


class Softmax(Module):
    """exp(x) / sum(exp(x)) along one axis: ``Softmax(dim=1)`` or ``Softmax(1)`` as PyTorch's,
    ``axis=`` as NumPy's name (default: the last axis)."""

    def __init__(self, dim: int | None = None, *, axis: int | None = None):
        super().__init__()
        if dim is not None and axis is not None:
            raise TypeError(f"{type(self).__name__}: give dim (PyTorch's name) or axis, not both")
        self.axis: int = dim if dim is not None else (axis if axis is not None else -1)

    @property
    def dim(self) -> int:
        """PyTorch's name of the axis."""
        return self.axis

    def forward(self, x):
        return x.softmax(axis=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """x − logsumexp(x) along one axis; ``dim=``, positional or ``axis=`` as :class:`Softmax`."""

    def forward(self, x):
        return x.log_softmax(axis=self.axis)


class Dropout(Module):
    """Inverted dropout: active in train(), the identity in eval()."""

    def __init__(self, p: float = 0.5, seed: int | None = None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.seed = seed

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if name == "seed":  # a new seed restarts the mask stream (``reseed``)
            super().__setattr__("_generators", {})

    def reseed(self, seed: int) -> None:
        """Restart the mask stream from ``seed`` (the runner does this per epoch, for exact resumes)."""
        self.seed = seed

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        gen = self._generators.get(x.device)
        if gen is None and self.seed is not None:
            gen = self._generators[x.device] = x.device.generator(self.seed)
        return F.dropout(x, self.p, training=True, generator=gen)

    def extra_repr(self) -> str:
        return f"p={self.p}"


ACTIVATIONS = {
    "relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh, "softplus": Softplus,
    "identity": Identity, "linear": Identity, "none": Identity, "softmax": Softmax, "log_softmax": LogSoftmax,
    "gelu": GELU, "silu": SiLU, "elu": ELU, "hardtanh": Hardtanh, "mish": Mish,
}
# The ones that act elementwise, so a hidden layer can use them (softmax normalises a whole row):
# the activations a spec's model.activation may name. Aliases (linear, none) are left out.
HIDDEN_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name not in ("softmax", "log_softmax", "linear", "none"))


def activation(spec) -> Module:
    """An activation module from a name ('relu', 'sigmoid', ...), a Module class, or an instance."""
    if spec is None:
        return Identity()
    if isinstance(spec, Module):
        return spec
    if isinstance(spec, type) and issubclass(spec, Module):
        return spec()
    if isinstance(spec, str) and spec.lower() in ACTIVATIONS:
        return ACTIVATIONS[spec.lower()]()
    raise ValueError(f"unknown activation {spec!r}; choose one of {', '.join(sorted(ACTIVATIONS))}")


class MLP(Module):
    """A multilayer perceptron: Linear layers with an activation between them.

    ``sizes`` = [in_features, hidden..., out_features], e.g. ``MLP([2, 3, 1], activation="sigmoid")``
    is the lecture's triangle net: three 'lines' combined by a fourth logistic regression.
    ``norm`` ('none', 'layer' or 'batch') puts a LayerNorm or BatchNorm1d after each hidden
    Linear, before its activation.
    """

    def __init__(self, sizes, activation: str = "relu", output_activation=None, init: str = "default",
                 dropout: float = 0.0, bias: bool = True, generator=None, device=None, dtype=None,
                 norm: str | None = "none"):
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2 or any(not isinstance(s, int) or s <= 0 for s in sizes):
            raise ValueError(f"MLP: sizes must be at least [in, out] positive integers, got {sizes}")
        norm = "none" if norm is None else norm
        if norm not in NORMS:
            raise ValueError(f"MLP: norm must be one of {', '.join(NORMS)}, got {norm!r}")
        self.sizes, self.norm = sizes, norm
        generator = get_generator(generator)  # one stream across layers, even from an int seed
        layers: list[Module] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(Linear(n_in, n_out, bias=bias, init=init, generator=generator, device=device, dtype=dtype))
            if i < len(sizes) - 2:
                if norm != "none":
                    layers.append(NORMS[norm](n_out, device=device, dtype=dtype))
                layers.append(_activation(activation))
                if dropout:
                    layers.append(Dropout(dropout))
        if output_activation is not None:
            layers.append(_activation(output_activation))
        self.net = Sequential(*layers)
        self._fuse(self.net)

    @property
    def linears(self) -> list[Linear]:
        return [m for m in self.net if isinstance(m, Linear)]

    def _hooked(self) -> bool:
        """Does a forward (pre-)hook sit on this MLP's Sequential or one of its layers?"""
        return any(m.__dict__.get("_forward_hooks") or m.__dict__.get("_forward_pre_hooks")
                   for m in self.net.modules())

    def _fuse(self, net) -> None:
        # The fused plan of ``net``'s layers as they are now (a private cache: no module state), made
        # again after any module's attribute changed (a layer's forward replaced on the instance)
        object.__setattr__(self, "_plan", _fusion_plan(list(net)))
        object.__setattr__(self, "_planned", (net._modules, module_changes[0]))

    def forward(self, x):
        # Same result as self.net(x); a Linear followed by relu/sigmoid/tanh runs as one fused op, a
        # Linear alone as its op (unless a forward hook sits on one of its layers: then every layer
        # is called, and its hooks run). A layer replaced, added or deleted (``model.net[1] =
        # nn.Tanh()``) makes a new tuple of the Sequential's modules: the plan is made again.
        net = self.net
        if type(net) is not Sequential or (live_hooks() and self._hooked()):
            return net(x)
        if net._modules is not self._planned[0] or module_changes[0] != self._planned[1]:
            self._fuse(net)
        # NumPy's error state set once for the layers, not once per op (each op would set it)
        token = None if ERRORS.get() is QUIET else ERRORS.set(QUIET)
        try:
            for linear, act, module in self._plan:
                if module is not None:
                    x = module(x)
                elif act is not None:  # the ops themselves: the plan's activations are LinearAct's
                    x = LinearAct.apply(x, linear.weight, linear.bias, act=act)
                else:
                    x = LinearOp.apply(x, linear.weight, linear.bias)
        finally:
            if token is not None:
                ERRORS.reset(token)
        return x

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}" + ("" if self.norm == "none" else f", norm={self.norm!r}")


_activation = activation
# What model.norm names: a normalisation after each hidden Linear, before the activation.
NORMS: dict = {"none": None, "layer": LayerNorm, "batch": BatchNorm1d}
_FUSABLE: dict[type, str] = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh"}


def _plain(layer, kind: type) -> bool:
    """Is ``layer`` a ``kind`` running ``kind.forward`` (not a subclass, no forward set on the instance)?"""
    return type(layer) is kind and "forward" not in vars(layer)


def _fusion_plan(layers: list) -> list:
    """(linear, activation name, None) for fusable pairs, (linear, None, None) for a plain Linear,
    (None, None, module) for the rest."""
    plan: list[tuple[Linear | None, str | None, Module | None]] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        follower = layers[i + 1] if i + 1 < len(layers) else None
        if _plain(layer, Linear) and type(follower) in _FUSABLE and "forward" not in vars(follower):
            plan.append((layer, _FUSABLE[type(follower)], None))
            i += 2
        elif _plain(layer, Linear):  # Linear.forward itself: its op, called directly
            plan.append((layer, None, None))
            i += 1
        else:
            plan.append((None, None, layer))
            i += 1
    return plan

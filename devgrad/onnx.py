"""Export an MLP to ONNX: a graph any ONNX runtime serves with devgrad's numbers.

Built with the ``onnx`` package's helpers (the optional ``onnx`` extra) and checked with
``onnx.checker.check_model(full_check=True)`` before it is written. One float32 input named
``input`` of shape [N, n_features] (N symbolic); optionally the input standardisation in front
and a task head behind: ``label`` (int64 index into the class list kept in the model's
metadata_props) and ``probabilities``, or ``value`` in the target's units.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from devgrad import nn
from devgrad.io import atomic_write
from devgrad.version import __version__, extra_hint

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax/LogSoftmax over one axis (not "flatten from axis") and Squeeze/Clip inputs
ONNX_HINT = extra_hint("onnx", "onnx onnxruntime")
# devgrad activation modules -> (ONNX operator, attributes from the module)
# layer class -> (ONNX op, the node's attributes from the layer)
_ACTIVATIONS: dict[type, tuple[str, Callable[[nn.Module], dict]]] = {
    nn.ReLU: ("Relu", lambda m: {}),
    nn.LeakyReLU: ("LeakyRelu", lambda m: {"alpha": float(m.negative_slope)}),
    nn.Sigmoid: ("Sigmoid", lambda m: {}),
    nn.Tanh: ("Tanh", lambda m: {}),
    nn.ELU: ("Elu", lambda m: {"alpha": float(m.alpha)}),
    nn.Softmax: ("Softmax", lambda m: {"axis": int(m.axis)}),
    nn.LogSoftmax: ("LogSoftmax", lambda m: {"axis": int(m.axis)}),
}
_SKIPPED = (nn.Identity, nn.Dropout)  # inference: dropout is the identity


def _gelu(g, x: str, layer) -> str:
    half = g.const("half", 0.5)
    if layer.approximate == "tanh":  # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, g.const("c", 0.044715)])])
        curve = g.node("Tanh", [g.node("Mul", [inner, g.const("k", math.sqrt(2.0 / math.pi))])])
    else:  # 0.5·x·(1 + erf(x/√2))
        curve = g.node("Erf", [g.node("Mul", [x, g.const("k", 1.0 / math.sqrt(2.0))])])
    return g.node("Mul", [g.node("Mul", [x, g.node("Add", [curve, g.const("one", 1.0)])]), half])


def _softplus(g, x: str, layer) -> str:
    """log(1 + exp(beta·x)) / beta, and x itself where beta·x > threshold (as the layer computes)."""
    if layer.beta == 1.0:
        scaled, curve = x, g.node("Softplus", [x])
    else:
        scaled = g.node("Mul", [x, g.const("beta", layer.beta)])
        curve = g.node("Div", [g.node("Softplus", [scaled]), g.const("beta", layer.beta)])
    above = g.node("Greater", [scaled, g.const("threshold", layer.threshold)])
    return g.node("Where", [above, x, curve])


def _batch_norm(g, x: str, layer) -> str:
    """BatchNorm1d in eval(): per feature x·scale + shift from the running statistics."""
    if not layer.track_running_stats:
        raise ExportError("export: a BatchNorm1d without running statistics normalises by each batch's own, which "
                          "a served model cannot do; train it with track_running_stats=True")
    var, mean = layer.running_var.numpy().astype(np.float64), layer.running_mean.numpy().astype(np.float64)
    scale = 1.0 / np.sqrt(var + layer.eps)
    if layer.weight is not None:
        scale = scale * layer.weight.numpy()
    shift = -mean * scale + (layer.bias.numpy() if layer.bias is not None else 0.0)
    return g.node("Add", [g.node("Mul", [x, g.const("bn_scale", scale)]), g.const("bn_shift", shift)])


def _layer_norm(g, x: str, layer) -> str:
    """LayerNorm over the last axis: LayerNormalization from opset 17, a few nodes before."""
    if len(layer.normalized_shape) != 1:
        raise ExportError("export: a LayerNorm over more than the last axis is not exported (an MLP's is over one)")
    width = layer.normalized_shape[0]
    scale = layer.weight.numpy() if layer.weight is not None else np.ones(width)
    bias = layer.bias.numpy() if layer.bias is not None else np.zeros(width)
    if g.opset >= 17:
        return g.node("LayerNormalization", [x, g.const("ln_scale", scale), g.const("ln_bias", bias)], axis=-1,
                      epsilon=float(layer.eps))
    centred = g.node("Sub", [x, g.node("ReduceMean", [x], axes=[-1], keepdims=1)])
    var = g.node("ReduceMean", [g.node("Mul", [centred, centred])], axes=[-1], keepdims=1)
    normed = g.node("Div", [centred, g.node("Sqrt", [g.node("Add", [var, g.const("eps", layer.eps)])])])
    return g.node("Add", [g.node("Mul", [normed, g.const("ln_scale", scale)]), g.const("ln_bias", bias)])


# Activations ONNX's opset 13 has no single operator for, as a few nodes: (graph, input, layer) -> output
_COMPOSED: dict[type, Callable] = {
    nn.GELU: _gelu,
    nn.SiLU: lambda g, x, m: g.node("Mul", [x, g.node("Sigmoid", [x])]),
    nn.Mish: lambda g, x, m: g.node("Mul", [x, g.node("Tanh", [g.node("Softplus", [x])])]),
    nn.Hardtanh: lambda g, x, m: g.node("Clip", [x, g.const("lo", m.min_val), g.const("hi", m.max_val)]),
    nn.Softplus: _softplus,
    nn.BatchNorm1d: _batch_norm,
    nn.LayerNorm: _layer_norm,
}


class ExportError(ValueError):
    """A module, option or opset that cannot be exported, with what to change."""


def _onnx():
    try:
        import onnx  # noqa: PLC0415 - optional dependency (the onnx extra)
    except ImportError:
        raise ImportError(f"ONNX export needs the onnx package: {ONNX_HINT}") from None
    return onnx


def export(module: nn.Module, path, n_features: int, *, standardize=None, output="logits", opset=None,
           metadata: dict | None = None) -> Path:
    """Write ``module`` (an ``nn.MLP`` or ``nn.Sequential`` of Linear, activations, Dropout,
    Identity) as an ONNX model at ``path``, atomically; returns the path.

    ``standardize``: ``(mean, std)`` per feature, applied to the input first. ``output``:
    ``"logits"`` (the module's outputs, named ``logits``); a classification head
    ``{"classes": [...], "probabilities": "softmax" | "sigmoid" | "clip" | "margin", "threshold": t}``
    (outputs ``label`` and ``probabilities``; one-output models: class 1 where the output is
    above ``threshold``; ``"margin"``, a hinge-loss model: ``scores`` [-d, d] instead of
    probabilities); or a regression head ``{"target_mean": m, "target_std": s}`` (output
    ``value``, shape [N]). ``metadata``: extra strings for the model's metadata_props.
    """
    onnx = _onnx()
    opset = check_opset(opset)
    _check_plain(module)
    layers = flatten(module)
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    if not linears:
        raise ExportError("export: the module has no Linear layer; export an nn.MLP or an nn.Sequential of layers")
    if linears[0].in_features != n_features:
        raise ExportError(f"export: n_features is {n_features}, but the first Linear takes "
                          f"{linears[0].in_features} inputs")
    dtype = np.dtype(linears[0].weight.dtype)
    graph = _Graph(onnx, dtype)
    graph.opset = opset
    x = graph.input(n_features)
    if standardize is not None:
        mean, std = (np.asarray(v, dtype=np.float64).reshape(-1) for v in standardize)
        if len(mean) != n_features or len(std) != n_features:
            raise ExportError(f"export: standardize needs {n_features} means and stds, got {len(mean)} and {len(std)}")
        x = graph.node("Div", [graph.node("Sub", [x, graph.const("mean", mean)]), graph.const("std", std)])
    for i, layer in enumerate(layers):
        x = graph.layer(layer, x, i)
    meta = dict(metadata or {})
    if output == "logits":
        graph.output("Identity", [x], "logits", [None, linears[-1].out_features])
    elif isinstance(output, dict) and "classes" in output:
        graph.classification_head(x, linears[-1].out_features, output)
        meta["classes"] = json.dumps(list(output["classes"]))
    elif isinstance(output, dict) and "target_mean" in output:
        scaled = graph.node("Mul", [x, graph.const("target_std", np.array([output["target_std"]]))])
        shifted = graph.node("Add", [scaled, graph.const("target_mean", np.array([output["target_mean"]]))])
        graph.output("Reshape", [shifted, graph.const("flat", np.array([-1]), np.int64)], "value", [None])
    else:
        raise ExportError(f"export: output must be 'logits', a classification head {{'classes': ...}} or a "
                          f"regression head {{'target_mean': ..., 'target_std': ...}}; got {output!r}")
    model = graph.model(opset, {k: str(v) for k, v in meta.items()})
    onnx.checker.check_model(model, full_check=True)
    return atomic_write(Path(path), model.SerializeToString())


def _check_plain(module: nn.Module) -> None:
    """Refuse what the written graph would not do: a forward hook, or a forward of a module's own (a
    subclass's, or one set on an instance), which export cannot see: it writes the layers' kinds."""
    for name, m in module.named_modules():
        where = f"{type(m).__name__} {name!r}" if name else type(m).__name__
        if m.__dict__.get("_forward_hooks") or m.__dict__.get("_forward_pre_hooks"):
            raise ExportError(f"export: {where} has a forward hook, which the exported model would not run; "
                              "remove it (handle.remove()) before exporting")
        kind = next((k for k in (nn.MLP, nn.Sequential, nn.Linear) if isinstance(m, k)), None)
        if "forward" in vars(m) or (kind is not None and type(m).forward is not kind.forward):
            raise ExportError(f"export: {where} runs a forward of its own, which export cannot write (it writes "
                              "the layers' kinds); export a model of devgrad's layers")


def flatten(module: nn.Module) -> list:
    """The layers of an MLP or (nested) Sequential, in the order they run."""
    if isinstance(module, nn.MLP):
        return flatten(module.net)
    if isinstance(module, nn.Sequential):
        return [layer for child in module for layer in flatten(child)]
    return [module]


def check_opset(opset) -> int:
    """``opset`` (None: the default) checked against what the installed onnx package knows."""
    if opset is None:
        return DEFAULT_OPSET
    newest = _onnx().defs.onnx_opset_version()
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= newest:
        raise ExportError(f"opset {opset!r} cannot be used: give an ONNX opset from {MIN_OPSET} to {newest} "
                          f"(the installed onnx package's newest; default {DEFAULT_OPSET})")
    return opset


class _Graph:
    """The nodes, constants and outputs of the graph being built, with fresh names for each."""

    def __init__(self, onnx, dtype: np.dtype):
        self.onnx = onnx
        self.helper = onnx.helper
        self.dtype = dtype
        self.elem = self.helper.np_dtype_to_tensor_dtype(dtype)
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.count = 0
        self.opset = 0  # set by the exporter before the graph is built

    def _name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def input(self, n_features: int) -> str:
        float32 = self.onnx.TensorProto.FLOAT
        self.inputs.append(self.helper.make_tensor_value_info("input", float32, ["N", n_features]))
        return self.node("Cast", ["input"], to=self.elem) if self.elem != float32 else "input"

    def const(self, base: str, value, dtype=None) -> str:
        name = self._name(base)
        array = np.asarray(value, dtype=dtype or self.dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list, name: str | None = None, **attrs) -> str:
        out = name or self._name(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=self._name(op), **attrs))
        return out

    def output(self, op: str, inputs: list, name: str, shape: list, elem=None, **attrs) -> None:
        self.node(op, inputs, name, **attrs)
        dims = ["N" if d is None else d for d in shape]
        self.outputs.append(self.helper.make_tensor_value_info(name, elem or self.elem, dims))

    def layer(self, layer, x: str, index: int) -> str:
        if isinstance(layer, nn.Linear):
            weight = layer.weight.numpy()  # (out, in), as Gemm's B with transB
            inputs = [x, self.const(f"linear{index}_weight", weight)]
            if layer.bias is not None:
                inputs.append(self.const(f"linear{index}_bias", layer.bias.numpy()))
            return self.node("Gemm", inputs, transB=1)
        if isinstance(layer, _SKIPPED):
            return x
        composed = _COMPOSED.get(type(layer))
        if composed is not None:
            return composed(self, x, layer)
        kind = _ACTIVATIONS.get(type(layer))
        if kind is None:
            names = ", ".join(t.__name__ for t in [*_ACTIVATIONS, *_COMPOSED])
            raise ExportError(f"export: layer {index} is a {type(layer).__name__}, which ONNX export does not "
                              f"support; it exports Linear, {names}, Dropout and Identity")
        op, attrs = kind
        return self.node(op, [x], **attrs(layer))

    def classification_head(self, z: str, width: int, head: dict) -> None:
        """``label`` (int64 [N]) and ``probabilities`` ([N, classes]; a hinge-loss model's ``scores``)
        from the outputs ``z``."""
        int64 = self.onnx.TensorProto.INT64
        classes = len(head["classes"])
        mode = head.get("probabilities", "softmax")
        if width > 1:
            self.output("ArgMax", [z], "label", [None], int64, axis=1, keepdims=0)
            self.output("Softmax", [z], "probabilities", [None, classes], axis=1)
            return
        flat = self.node("Reshape", [z, self.const("flat", np.array([-1]), np.int64)])
        above = self.node("Greater", [flat, self.const("threshold", np.array(head.get("threshold", 0.0)))])
        self.output("Cast", [above], "label", [None], int64, to=int64)
        if mode == "margin":  # a hinge-loss model: its margins, not probabilities ([-d, d], per class)
            self.output("Concat", [self.node("Neg", [z]), z], "scores", [None, classes], axis=1)
            return
        if mode == "clip":  # an mse fit to 0/1: the output clipped to [0, 1] is P(class 1)
            p1 = self.node("Clip", [z, self.const("zero", np.array(0.0)), self.const("one", np.array(1.0))])
            p0 = self.node("Sub", [self.const("one", np.array([[1.0]])), p1])
        else:  # sigmoid, as the softmax of [0, z]: each probability to full relative precision
            p0, p1 = self.node("Sub", [z, z]), z
        pair = self.node("Concat", [p0, p1], axis=1)
        self.output("Softmax" if mode != "clip" else "Identity", [pair], "probabilities", [None, classes],
                    **({"axis": 1} if mode != "clip" else {}))

    def model(self, opset: int, metadata: dict):
        graph = self.helper.make_graph(self.nodes, "devgrad_mlp", self.inputs, self.outputs, self.initializers)
        opsets = [self.helper.make_opsetid("", opset)]
        model = self.helper.make_model(graph, opset_imports=opsets, producer_name="devgrad",
                                       producer_version=__version__)
        # The oldest IR version that carries this opset, so runtimes older than the onnx package load it
        model.ir_version = self.helper.find_min_ir_version_for(opsets)
        self.helper.set_model_props(model, metadata)
        return model

"""What the hidden units of a small MLP do, as plain arrays: the lecture's pictures of a run.

For 2-D inputs each first-layer unit is a line w·x + b = 0 in the input plane (the triangle's
three lines); its activation over the plane shows which side it fires on. A network without a
nonlinearity (``activation: identity``) is one affine map, whatever its depth: ``composed_map``
multiplies its layers out. ``UnitHistory`` records every epoch's first-layer weights, which is
how all-zero initialisation shows its symmetry: every unit's weights stay identical.
Everything here is NumPy on host copies; the plots are in ``report``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from devgrad import nn
from devgrad.core import Tensor, no_grad
from devgrad.experiment.checkpoint import Appender, read_jsonl
from devgrad.io import atomic_write_text

MAX_UNITS = 16  # first layers wider than this are not drawn unit by unit


def plane_grid(X_all: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """A resolution × resolution grid (gx, gy) over the points' extent plus 8% on each side: the
    plane every 2-D picture of a run is drawn on."""
    lo, hi = X_all.min(axis=0), X_all.max(axis=0)
    pad = 0.08 * (hi - lo + 1e-9)
    return np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                       np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))


def activation(name: str, z: np.ndarray) -> np.ndarray:
    """The hidden activation ``name`` (devgrad.nn's, by the names specs use) of host values ``z``."""
    with no_grad():
        return nn.activation(name)(Tensor(np.asarray(z, dtype=np.float64), device="cpu")).numpy()


def host_layer(m) -> tuple[np.ndarray, np.ndarray]:
    """Host copies of one Linear layer's weight (out, in) and bias (zeros without one)."""
    w = np.asarray(m.weight.numpy(), dtype=np.float64)
    return w, (np.asarray(m.bias.numpy(), dtype=np.float64) if m.bias is not None else np.zeros(w.shape[0]))


def linear_layers(model) -> list[tuple[np.ndarray, np.ndarray]]:
    """Host copies (weight (out, in), bias (out,) or zeros) of the model's Linear layers, in order."""
    return [host_layer(m) for m in model.modules() if isinstance(m, nn.Linear)]


def first_linear(model) -> nn.Linear:
    """The model's first Linear layer."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return m
    raise ValueError("the model has no Linear layer")


def first_layer(model) -> tuple[np.ndarray, np.ndarray]:
    """Host copies of the first Linear layer's weight (units, inputs) and bias (zeros without one):
    one layer's copy, once an epoch."""
    return host_layer(first_linear(model))


def describe_map(weight: np.ndarray, bias: np.ndarray, variable: str = "z", output: str = "out") -> str:
    """An affine map as text, 'out = 1.2·z₁ − 0.4·z₂ + 0.1' per output: of the standardised inputs
    z, or with ``variable="x"`` of the data's own (see ``input_coordinates``); ``output`` names
    what it gives (a regression's target in its own units: "y")."""
    subscripts = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
    rows = []
    for k, (w, b) in enumerate(zip(np.atleast_2d(weight), np.atleast_1d(bias))):
        if len(w) > 8:
            terms = f"({len(w)} weights, |w| ≤ {np.abs(w).max():.3g})·{variable}"
        else:
            terms = " ".join(f"{'−' if v < 0 else '+'} {abs(v):.4g}·{variable}{str(j + 1).translate(subscripts)}"
                             for j, v in enumerate(w)).removeprefix("+ ")
        name = output if len(np.atleast_2d(weight)) == 1 else f"{output}{str(k + 1).translate(subscripts)}"
        rows.append(f"{name} = {terms} {'−' if b < 0 else '+'} {abs(b):.4g}")
    return "; ".join(rows)


def input_coordinates(weight: np.ndarray, bias: np.ndarray, mean, std) -> tuple[np.ndarray, np.ndarray]:
    """An affine map w·z + b of the standardised inputs z = (x − mean)/std, written for the data's
    own x: a·x + c with a = w/std, c = b − Σ w·mean/std (the coordinates every picture is drawn in)."""
    weight = np.atleast_2d(np.asarray(weight, dtype=np.float64))
    mean = np.zeros(weight.shape[1]) if mean is None else np.asarray(mean, dtype=np.float64)
    std = np.ones(weight.shape[1]) if std is None else np.asarray(std, dtype=np.float64)
    return weight / std, np.asarray(bias, dtype=np.float64) - weight @ (mean / std)


def unit_history_in_input_coordinates(rows: list[dict], mean, std) -> list[dict]:
    """hidden_units.jsonl's rows (weights of standardised inputs) in the data's own coordinates."""
    if not rows:
        return []
    # every epoch at once (the same arithmetic as ``input_coordinates``, row by row)
    weight = np.asarray([row["weight"] for row in rows], dtype=np.float64)  # (epochs, units, inputs)
    bias = np.asarray([row["bias"] for row in rows], dtype=np.float64)
    mean = np.zeros(weight.shape[2]) if mean is None else np.asarray(mean, dtype=np.float64)
    std = np.ones(weight.shape[2]) if std is None else np.asarray(std, dtype=np.float64)
    a, c = (weight / std).tolist(), (bias - weight @ (mean / std)).tolist()
    return [{**row, "weight": a[i], "bias": c[i]} for i, row in enumerate(rows)]


def raw_lines(weight: np.ndarray, bias: np.ndarray, mean, std) -> list[tuple[np.ndarray, float]]:
    """Each unit's line w·z + b = 0, where z = (x − mean)/std, written for the raw input x:
    a·x + c = 0 (``input_coordinates``)."""
    a, c = input_coordinates(weight, bias, mean, std)
    return [(row, float(offset)) for row, offset in zip(a, c)]


def composed_map(layers) -> tuple[np.ndarray, np.ndarray]:
    """The one affine map (W, b) that a stack of Linear layers without nonlinearities computes:
    y = W x + b, with W = W_L ··· W_1 and b folded in layer by layer."""
    w_total, b_total = layers[0]
    for w, b in layers[1:]:
        w_total, b_total = w @ w_total, w @ b_total + b
    return w_total, b_total


def first_units(model) -> tuple[np.ndarray, np.ndarray] | None:
    """The affine map (weight, bias) each first-layer unit applies to the standardised inputs
    before its activation: the first Linear layer with an evaluation-mode BatchNorm1d after it
    folded in (per unit, (h − mean)/√(var + eps)·γ + β is affine). None where the normalisation
    makes each unit depend on all of them (a LayerNorm, a BatchNorm1d of the batch's own
    statistics): a unit then has no line of its own."""
    w, b = first_layer(model)
    norm = _first_norm(model)
    if norm is None:
        return w, b
    if isinstance(norm, nn.LayerNorm) or not norm.track_running_stats:
        return None
    scale = 1 / np.sqrt(_host(norm.running_var) + norm.eps)
    if norm.weight is not None:
        scale = scale * _host(norm.weight)
    shift = np.zeros_like(b) if norm.bias is None else _host(norm.bias)
    return w * scale[:, None], (b - _host(norm.running_mean)) * scale + shift


def _first_norm(model):
    """The first hidden layer's normalisation (``model.norm``), or None."""
    return next((m for m in model.modules() if isinstance(m, nn.LayerNorm | nn.BatchNorm1d)), None)


def hidden_activations(model, activation_name: str, X_std: np.ndarray) -> np.ndarray:
    """The first hidden layer's activations (n, units) for standardised inputs."""
    w, b = first_layer(model)
    z = X_std @ w.T + b
    norm = _first_norm(model)
    if norm is not None:  # the first hidden layer's normalisation (model.norm), as in inference (eval)
        z = _normalised(norm, z)
    return activation(activation_name, z)


def _host(t) -> np.ndarray:
    return np.asarray(t.numpy(), dtype=np.float64)


def _normalised(norm, z: np.ndarray) -> np.ndarray:
    """``norm`` (a LayerNorm, or a BatchNorm1d with its running statistics) of host values ``z``."""
    if isinstance(norm, nn.LayerNorm):
        centred = z - z.mean(axis=-1, keepdims=True)
        z = centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + norm.eps)
    elif norm.track_running_stats:
        z = (z - _host(norm.running_mean)) / np.sqrt(_host(norm.running_var) + norm.eps)
    else:
        z = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + norm.eps)
    if norm.weight is not None:
        z = z * _host(norm.weight)
    return z if norm.bias is None else z + _host(norm.bias)


class UnitHistory:
    """hidden_units.jsonl: the first layer's weights and biases after every epoch (2-D runs with
    at most MAX_UNITS first-layer units), rewound with the metrics when a run resumes."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "hidden_units.jsonl"
        self._file = Appender(self.path)

    def append(self, epoch: int, weight: np.ndarray, bias: np.ndarray) -> None:
        self._file.write(json.dumps({"epoch": epoch, "weight": weight.tolist(), "bias": bias.tolist()}) + "\n")

    def close(self) -> None:
        """Close the file ``append`` keeps open."""
        self._file.close()

    def rows(self) -> list[dict]:
        return read_jsonl(self.path)

    def keep_before(self, epoch: int) -> None:
        """Drop the epochs from ``epoch`` on (a resumed run trains them again)."""
        self.close()  # the file is replaced: later rows go to the new one
        if self.path.exists():
            kept = [r for r in self.rows() if r["epoch"] < epoch]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))


class BoundaryFrames:
    """The decision boundary during training (``plots.animate``): the model's class-1 probability
    (or predicted class) over a fixed grid of the input plane after every ``every``-th epoch, at
    most MAX_FRAMES of them, kept in memory for plots/training.gif. A resumed run's animation
    starts at the resume."""

    MAX_FRAMES = 120

    def __init__(self, X_all: np.ndarray, epochs: int, resolution: int = 80):
        gx, gy = plane_grid(X_all, resolution)
        self.extent = (gx.min(), gx.max(), gy.min(), gy.max())
        self.points = np.stack([gx.ravel(), gy.ravel()], axis=1)
        self.shape = gx.shape
        self.every = max(1, -(-epochs // self.MAX_FRAMES))
        self.frames: list[tuple[int, np.ndarray]] = []

    def capture(self, epoch: int, predict_proba, force: bool = False) -> None:
        """Record the boundary after ``epoch`` (every ``every``-th epoch, or when ``force``d)."""
        if (epoch % self.every and not force) or (self.frames and self.frames[-1][0] == epoch):
            return
        probs = predict_proba(self.points)
        image = probs[:, 1] if probs.shape[1] == 2 else probs.argmax(axis=1)
        self.frames.append((epoch, image.reshape(self.shape).astype(np.float32)))

"""Seeded synthetic 2-D datasets, including the lecture's triangle.

Each generator returns ``(X, y)``: float64 features of shape (n, 2) and int64 labels
(0/1 for binary problems, 0..k-1 for multiclass), drawn from ``numpy.random.default_rng(seed)``.
``noise`` is the standard deviation of Gaussian jitter added to the points after they
were labelled, so a larger noise blurs the class boundary.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TRIANGLE = np.array([[-0.8, -0.6], [0.8, -0.6], [0.0, 0.8]])


def _jitter(rng, X, noise: float) -> np.ndarray:
    return X + rng.normal(0.0, noise, X.shape) if noise else X


def inside_triangle(X: np.ndarray, vertices: np.ndarray = TRIANGLE) -> np.ndarray:
    """True for points inside the triangle: on the inner side of all three edges (three 'lines')."""
    a, b, c = vertices
    sides = []
    for p, q, r in ((a, b, c), (b, c, a), (c, a, b)):
        edge = q - p
        normal = np.array([-edge[1], edge[0]])
        sign = np.sign((r - p) @ normal)
        sides.append(((X - p) @ normal) * sign > 0)
    return sides[0] & sides[1] & sides[2]


def triangle(n_samples: int = 1000, noise: float = 0.0, seed: int = 0):
    """Points in [-1, 1]², labelled 1 inside a triangle: not linearly separable, but three
    logistic regressions (one per edge) combined by a fourth separate it exactly."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n_samples, 2))
    y = inside_triangle(X).astype(np.int64)
    return _jitter(rng, X, noise), y


def linear(n_samples: int = 1000, noise: float = 0.0, seed: int = 0, margin: float = 0.1):
    """Two classes on either side of a random line through the origin, with a gap of ``margin``."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])
    X = np.empty((0, 2))
    while len(X) < n_samples:
        cand = rng.uniform(-1.0, 1.0, (2 * n_samples, 2))
        X = np.concatenate([X, cand[np.abs(cand @ normal) > margin / 2]])
    X = X[:n_samples]
    y = (X @ normal > 0).astype(np.int64)
    return _jitter(rng, X, noise), y


def xor(n_samples: int = 1000, noise: float = 0.0, seed: int = 0):
    """Label 1 where x₁ and x₂ have different signs: the classic non-linear problem."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n_samples, 2))
    y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)
    return _jitter(rng, X, noise), y


def circles(n_samples: int = 1000, noise: float = 0.0, seed: int = 0, factor: float = 0.5):
    """Two concentric circles; the inner one (radius ``factor``) is class 1."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n_samples) % 2).astype(np.int64)
    angle = rng.uniform(0, 2 * np.pi, n_samples)
    radius = np.where(y == 1, factor, 1.0)
    X = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    order = rng.permutation(n_samples)
    return _jitter(rng, X[order], noise), y[order]


def moons(n_samples: int = 1000, noise: float = 0.0, seed: int = 0):
    """Two interleaving half circles."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n_samples) % 2).astype(np.int64)
    t = rng.uniform(0, np.pi, n_samples)
    X = np.where(y[:, None] == 0,
                 np.stack([np.cos(t), np.sin(t)], axis=1),
                 np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1))
    order = rng.permutation(n_samples)
    return _jitter(rng, X[order], noise), y[order]


def spirals(n_samples: int = 1000, noise: float = 0.0, seed: int = 0, n_classes: int = 3, turns: float = 1.0):
    """``n_classes`` interleaved spiral arms (class k is arm k): needs a deeper network."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n_samples) % n_classes).astype(np.int64)
    r = rng.uniform(0.05, 1.0, n_samples)
    theta = y * (2 * np.pi / n_classes) + r * turns * 2 * np.pi
    X = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    order = rng.permutation(n_samples)
    return _jitter(rng, X[order], noise), y[order]


def blobs(n_samples: int = 1000, noise: float = 0.0, seed: int = 0, n_classes: int = 3, spread: float = 0.15):
    """Gaussian blobs around ``n_classes`` centres on a circle."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n_samples) % n_classes).astype(np.int64)
    centres = np.stack([np.cos(2 * np.pi * np.arange(n_classes) / n_classes),
                        np.sin(2 * np.pi * np.arange(n_classes) / n_classes)], axis=1) * 0.7
    X = centres[y] + rng.normal(0, spread, (n_samples, 2))
    order = rng.permutation(n_samples)
    return _jitter(rng, X[order], noise), y[order]


def classification(n_samples: int = 10000, n_features: int = 64, n_classes: int = 10, seed: int = 0,
                   noise: float = 0.0, n_informative: int | None = None):
    """A large synthetic multiclass problem: labels from a random two-layer teacher network."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    k = n_informative or n_features
    hidden = np.tanh(X[:, :k] @ rng.standard_normal((k, 4 * n_classes)) / np.sqrt(k))
    logits = hidden @ rng.standard_normal((4 * n_classes, n_classes))
    y = np.argmax(logits, axis=1).astype(np.int64)
    return _jitter(rng, X, noise), y


# Their options differ (spirals has turns, linear a margin): callers pass them by name.
GENERATORS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "triangle": triangle, "linear": linear, "xor": xor, "circles": circles, "moons": moons,
    "spirals": spirals, "blobs": blobs, "classification": classification,
}

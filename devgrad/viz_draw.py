"""The derivative graph drawn with matplotlib where Graphviz is not installed: a layered picture,
leaves on the left, columns by distance from the inputs.

It draws on a bare ``Figure`` with the Agg canvas (no pyplot: nothing global to open or close)
and renders a PNG once: the picture is cropped to what it shows, as ``savefig``'s
``bbox_inches="tight"`` would, from that one drawing instead of a second one.
"""

from __future__ import annotations

import io
import math
from collections import Counter

import numpy as np

from devgrad.io import png_rgb

PAD_INCHES = 0.1  # around what is drawn, as savefig's tight bounding box
DPI = 120
EDGE_GAP = 0.2  # between arrows that join the same two nodes (data units: a column is 1 wide)
LABEL_GAP = 0.16  # from an arrow to its label
_COLOURS = {"leaf": "#d5e8d4", "op": "#dae8fc", "out": "#fde0c5"}


def _matplotlib():
    """(Figure, FigureCanvasAgg), or None without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - optional (the plot extra)
        from matplotlib.figure import Figure  # noqa: PLC0415 - optional dependency
    except ImportError:
        return None
    return Figure, FigureCanvasAgg


def available() -> bool:
    """Is matplotlib there to draw with?"""
    return _matplotlib() is not None


def _positions(nodes: dict, edges: list) -> dict:
    """Each node's (column, row): its column is its longest distance from a leaf, its rows centred."""
    parents: dict = {}
    for parent, child, _, _ in edges:
        parents.setdefault(child, []).append(parent)
    depth: dict = {}
    for key in nodes:  # iterative longest-path levels (the graph is acyclic)
        stack = [key]
        while stack:
            top = stack[-1]
            waiting = [p for p in parents.get(top, []) if p not in depth]
            if waiting:
                stack += waiting
                continue
            stack.pop()
            depth[top] = 1 + max((depth[p] for p in parents.get(top, [])), default=-1)
    columns: dict = {}
    for key in nodes:
        columns.setdefault(depth[key], []).append(key)
    return {key: (d, -i + (len(keys) - 1) / 2) for d, keys in columns.items() for i, key in enumerate(keys)}


def edge_layout(edges: list, position: dict) -> list:
    """Where each edge is drawn: (arrow's start, its end, its label's place, label). Edges between
    the same two nodes (both inputs of ``x*x`` are x) run side by side, each label beside its own
    arrow, so every path of the chain rule shows."""
    between = Counter((parent, child) for parent, child, _, _ in edges)
    seen: Counter = Counter()
    drawn = []
    for parent, child, label, _ in edges:
        (x0, y0), (x1, y1) = position[parent], position[child]
        n, k = between[parent, child], seen[parent, child]
        seen[parent, child] += 1
        length = math.hypot(x1 - x0, y1 - y0) or 1.0
        nx, ny = -(y1 - y0) / length, (x1 - x0) / length  # the normal on the edge's left
        shift = EDGE_GAP * (k - (n - 1) / 2)
        start, end = (x0 + 0.25 + shift * nx, y0 + shift * ny), (x1 - 0.25 + shift * nx, y1 + shift * ny)
        side = LABEL_GAP * (1.0 if shift >= 0 else -1.0)  # a label on the outer side of its arrow
        middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        where = (middle[0] + side * nx, middle[1] + side * ny) if n > 1 else (middle[0], middle[1] + LABEL_GAP)
        drawn.append((start, end, where, label))
    return drawn


def layered_picture(nodes: dict, edges: list, fmt: str) -> bytes:
    """The picture of ``nodes`` (key -> (text, kind: leaf, op or out)) and ``edges`` ((parent key,
    child key, label, value)): SVG or PDF bytes for ``fmt`` "svg" or "pdf", else PNG. Needs
    matplotlib (``available``)."""
    figure_class, canvas_class = _matplotlib()
    position = _positions(nodes, edges)
    columns = max(x for x, _ in position.values()) + 1
    tallest = max(sum(1 for x, _ in position.values() if x == c) for c in range(columns))
    fig = figure_class(figsize=(max(4.0, 2.4 * columns), max(2.5, 1.3 * tallest)), dpi=DPI)
    canvas = canvas_class(fig)
    ax = fig.add_subplot()
    for start, end, where, label in edge_layout(edges, position):
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "#555555"})
        ax.text(*where, label, color="#b85450", fontsize=9, ha="center", va="center")
    for key, (text, kind) in nodes.items():
        x, y = position[key]
        ax.text(x, y, text, ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round", "facecolor": _COLOURS[kind], "edgecolor": "#555555"})
    ys = [y for _, y in position.values()]
    ax.set_xlim(-0.6, columns - 1 + 0.6)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.axis("off")
    buffer = io.BytesIO()
    if fmt in ("svg", "pdf"):
        fig.savefig(buffer, format=fmt, bbox_inches="tight", pad_inches=PAD_INCHES)
        return buffer.getvalue()
    canvas.draw()
    crop = _tight_pixels(fig, canvas)
    if crop is None:  # something drawn beyond the canvas: savefig lays the picture out again around it
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=PAD_INCHES)
        return buffer.getvalue()
    return _png(np.asarray(canvas.buffer_rgba())[crop])


def _tight_pixels(fig, canvas) -> tuple | None:
    """The rows and columns of the drawn canvas inside the tight bounding box of what it shows
    (plus ``PAD_INCHES``), or None when that box reaches beyond the canvas."""
    box = fig.get_tightbbox(canvas.get_renderer()).padded(PAD_INCHES)
    width, height = canvas.get_width_height(physical=True)
    left, right = math.floor(box.x0 * DPI), math.ceil(box.x1 * DPI)
    top, bottom = math.floor(height - box.y1 * DPI), math.ceil(height - box.y0 * DPI)
    if left < 0 or top < 0 or right > width or bottom > height:
        return None
    return slice(top, bottom), slice(left, right)


def _png(rgba: np.ndarray) -> bytes:
    """An opaque RGBA image as RGB PNG bytes."""
    return png_rgb(rgba, DPI)

"""Pictures of a model over its 2-D input plane: the decision boundary (or a hinge-loss model's
score and margin), each first-layer unit's activation and line beside the network's output, and
the boundary epoch by epoch. Drawn from plain data; ``report.draw`` says which and where.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from devgrad.experiment.figures import Repeated, reused, save, unit_colour
from devgrad.experiment.neurons import plane_grid
from devgrad.experiment.panel_split import Part


def decision_boundary(plt, X_all: np.ndarray, y_all: np.ndarray, predict_proba, path: Path, name: str,
                      class_names=None, resolution: int = 200, lines=None, margin: bool = False,
                      lines_are_boundary: bool = False) -> Path:
    """P(class) over a grid of the input space (with ``margin``: a hinge-loss model's score,
    which is no probability, and its boundary d = 0 unless ``lines_are_boundary``), the data
    points on top, and ``lines`` ([((a, c), label), ...]: a·x + c = 0) drawn over it. The grid is
    an image, not filled contours: the same picture, drawn in a fraction of the time."""
    gx, gy = plane_grid(X_all, resolution)
    probs = predict_proba(np.stack([gx.ravel(), gy.ravel()], axis=1))
    extent = (gx.min(), gx.max(), gy.min(), gy.max())
    size = (6.6 if probs.shape[1] == 2 else 6, 5.2)
    with reused(plt, ("decision_boundary", size), lambda: plt.subplots(figsize=size)) as (fig, ax):
        names = _names(class_names, probs.shape[1])
        if probs.shape[1] == 2 and margin:
            _score_and_margin(plt, fig, ax, probs[:, 1].reshape(gx.shape), gx, gy, extent, names[1],
                              boundary=not (lines and lines_are_boundary))
        elif probs.shape[1] == 2:
            p1 = probs[:, 1].reshape(gx.shape)
            image = ax.imshow(p1, origin="lower", extent=extent, aspect="auto", cmap=plt.get_cmap("RdBu_r", 20),
                              vmin=0, vmax=1, alpha=0.8, interpolation="bilinear", interpolation_stage="data")
            ax.contour(gx, gy, p1, levels=[0.5], colors="k", linewidths=1)
            fig.colorbar(image, ax=ax, label=f"P(class {names[1]})", fraction=0.05, pad=0.03)
        else:
            from matplotlib.colors import ListedColormap  # noqa: PLC0415 - optional dependency

            k = probs.shape[1]
            colours = [plt.get_cmap("tab10")(i % 10) for i in range(k)]
            ax.imshow(probs.argmax(axis=1).reshape(gx.shape), origin="lower", extent=extent, aspect="auto",
                      cmap=ListedColormap(colours), vmin=-0.5, vmax=k - 0.5, alpha=0.3, interpolation="nearest")
        _class_points(plt, ax, X_all, y_all, names)
        for i, ((a, c), label) in enumerate(lines or []):
            _draw_line(ax, a, c, gx, gy, color=unit_colour(plt, i), linewidth=1.5, linestyle="--", label=label)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        if lines and len(lines) <= 8 and probs.shape[1] == 2:
            ax.legend(fontsize=8, loc="best")
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
        ax.set_title(f"{name}: decision boundary", y=1.0, pad=6)
        # fixed margins (tight_layout is slow); room on the right for a colour bar's labels
        fig.subplots_adjust(left=0.12, right=0.9 if probs.shape[1] == 2 else 0.97, bottom=0.1, top=0.93)
        save(fig, path)
    return path


def _names(class_names, k: int) -> list[str]:
    """The names of the ``k`` classes, by index: their labels in the data where known (a CSV's
    labels 1 and 2 are not the classes 0 and 1), else the indices."""
    names = class_names if class_names is not None and len(class_names) == k else range(k)
    return [str(name) for name in names]


def _class_points(plt, ax, X_all, y_all, names: list[str]) -> None:
    """The data, coloured by class (two classes on the probability colours), with a legend of the
    classes' names."""
    k = len(names)
    if k == 2:
        colours = [plt.get_cmap("RdBu_r")(0.0), plt.get_cmap("RdBu_r")(1.0)]
        ax.scatter(X_all[:, 0], X_all[:, 1], c=y_all, cmap="RdBu_r", vmin=0, vmax=1, s=9, edgecolors="w",
                   linewidths=0.3)
    else:
        colours = [plt.get_cmap("tab10")(i % 10) for i in range(k)]
        ax.scatter(X_all[:, 0], X_all[:, 1], c=[colours[i] for i in y_all], s=9, edgecolors="w", linewidths=0.3)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colours[i], label=names[i]) for i in range(k)]
    ax.add_artist(ax.legend(handles=handles, title="class", loc="upper right", fontsize=8))


def _score_and_margin(plt, fig, ax, p1: np.ndarray, gx, gy, extent, positive: str, boundary: bool = True) -> None:
    """A hinge-loss classifier's score d(x) (its output: the plot's class-1 'probability' is only
    σ(d), undone here; ``positive`` names that class), the margin d = ±1 that the loss asks for,
    and the boundary d = 0 unless the caller draws it as a line."""
    p1 = np.clip(p1.astype(np.float64), 1e-15, 1 - 1e-15)
    score = np.log(p1) - np.log1p(-p1)
    image = ax.imshow(np.clip(score, -3, 3), origin="lower", extent=extent, aspect="auto",
                      cmap=plt.get_cmap("RdBu_r", 24), vmin=-3, vmax=3, alpha=0.8, interpolation="bilinear",
                      interpolation_stage="data")
    ax.contour(gx, gy, score, levels=[-1, 1], colors="k", linewidths=1, linestyles="--")
    if boundary:
        ax.contour(gx, gy, score, levels=[0], colors="k", linewidths=1.4)
        ax.plot([], [], color="k", linewidth=1.4, label="boundary d(x) = 0")
    ax.plot([], [], color="k", linewidth=1, linestyle="--", label="margin d(x) = ±1")
    fig.colorbar(image, ax=ax, label=f"score d(x) (class {positive} where d > 0)", fraction=0.05, pad=0.03,
                 extend="both")


def _draw_line(ax, a: np.ndarray, c: float, gx: np.ndarray, gy: np.ndarray, **style) -> bool:
    """The line a·x + c = 0, clipped to the grid's extent; False when it misses that extent."""
    x0, x1 = gx.min(), gx.max()
    y0, y1 = gy.min(), gy.max()
    drawn = False
    if abs(a[1]) > 1e-12:
        xs = np.linspace(x0, x1, 400)
        ys = -(a[0] * xs + c) / a[1]
        keep = (ys >= y0) & (ys <= y1)
        drawn = bool(keep.any())
        if drawn:
            ax.plot(xs[keep], ys[keep], **style)
    elif abs(a[0]) > 1e-12 and x0 <= -c / a[0] <= x1:
        ax.plot([-c / a[0]] * 2, [y0, y1], **style)
        drawn = True
    if not drawn and "label" in style:  # say so in the legend rather than drop it silently
        ax.plot([], [], **{**style, "label": f"{style['label']} (outside this view)"})
    return drawn


def neurons(plt, X_all: np.ndarray, y_all: np.ndarray, units, lines: Sequence[tuple[np.ndarray, float]],
            predict_proba, path: Path, name: str, activation_name: str, resolution: int = 100,
            total_units: int | None = None, part: Part | None = None) -> Path:
    """One panel per first-layer unit: its activation over the input plane (``units``: raw
    points -> (n, units)) with its line a·x + c = 0 (``lines``, in the data's own coordinates),
    then the network's output with the lines on it. Every panel shows the same plane, so they
    share their axes and only the outer ones carry tick labels; images, not contours, and a
    fixed layout in inches (no empty band under the title). The unit panels are one Axes drawn
    once per unit (``figures.Repeated``); with ``part``, only that part of them is drawn here
    (``panel_split``)."""
    gx, gy = plane_grid(X_all, resolution)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    acts = units(points)
    k = acts.shape[1]
    cols = min(k + 1, 4)
    rows = (k + 1 + cols - 1) // cols
    width, height = 3.0 * cols + 0.6, 2.95 * rows + 0.95
    extent = (gx.min(), gx.max(), gy.min(), gy.max())
    with reused(plt, ("neurons", k), functools.partial(_neuron_axes, plt, k, cols, rows, width, height)) as (
            fig, (grid, unit_axes, ax)):
        fig.subplots_adjust(left=0.6 / width, right=1 - 0.1 / width, bottom=0.5 / height, top=1 - 0.95 / height,
                            wspace=0.08, hspace=0.34)
        _panel(unit_axes, extent)
        _panel(ax, extent, shared=True)
        _outer_axes(ax, bottom=True, left=k % cols == 0)
        _output_panel(plt, ax, X_all, y_all, predict_proba(points), gx, extent)
        lined = lines[0] is not None  # None: the units are normalised together, no unit has a line
        for i in range(min(k, 8) if lined else 0):  # beyond 8 lines the output is hidden under them
            _draw_line(ax, *lines[i], gx, gy, color=unit_colour(plt, i), linewidth=1.4, label=f"unit {i + 1}")
        ax.set_title("the network's output,\nwith " + ("every unit's line" if k <= 8 else "the first 8 units' lines")
                     if lined else "the network's output\n(units normalised together: no lines)", fontsize=10,
                     y=1.0, pad=3)
        if k <= 8 and lined:
            ax.legend(fontsize=8, loc="best")
        shown = f"{k} units" if not total_units or total_units == k else f"the first {k} of {total_units} units"
        fig.suptitle(f"{name}: what each hidden unit computes (the first layer: {shown})\n"
                     f"x₁, x₂: the data's own (unstandardised) coordinates", y=1 - 0.08 / height, va="top", fontsize=12)
        panels = [functools.partial(_unit_panel, plt, grid[i], i, acts[:, i].reshape(gx.shape), lines[i], gx, gy,
                                    activation_name, bottom=i + cols > k, left=i % cols == 0) for i in range(k)]
        if part is None:
            save(fig, path, repeated=Repeated(unit_axes, panels))
        else:
            part.finish(fig, path, Repeated(unit_axes, panels))
    return path


def _unit_panel(plt, place, i: int, a_i: np.ndarray, line, gx, gy, activation_name: str, ax, bottom: bool,
                left: bool) -> None:
    """Make ``ax`` unit ``i``'s panel at ``place``: its activation ``a_i`` over the plane, its
    ``line`` (a, c; None for a unit without a line of its own), a title with both, its colour on the
    frame, tick labels where it is an outer panel."""
    ax.set_position(place.get_position(ax.figure))
    for artist in [*ax.images, *ax.lines]:  # the previous unit's
        artist.remove()
    extent = (gx.min(), gx.max(), gy.min(), gy.max())
    ax.imshow(a_i, origin="lower", extent=extent, aspect="auto", cmap="viridis", interpolation="bilinear")
    if line is None:  # after a LayerNorm a unit depends on every unit: no formula, no line of its own
        formula = f"{activation_name}(LayerNorm(Wx+b)ᵢ)"
    else:
        a, c = line
        _draw_line(ax, a, c, gx, gy, color="w", linewidth=1.6)
        formula = f"{activation_name}({a[0]:.2g}·x₁ {a[1]:+.2g}·x₂ {c:+.2g})"
    ax.set_title(f"unit {i + 1}: {formula}\nfrom {a_i.min():.2g} (dark) to {a_i.max():.2g} (light)",
                 fontsize=10, y=1.0, pad=3)
    for spine in ax.spines.values():  # the unit's colour, as in the other pictures
        spine.set(color=unit_colour(plt, i), linewidth=2.5)
    _outer_axes(ax, bottom, left)


def _output_panel(plt, ax, X_all, y_all, probs, gx, extent) -> None:
    """The network's output over the plane: the predicted value (a regression, the targets in the
    same colours), P(class 1), or the predicted class, with the data on top."""
    if probs.shape[1] == 1:
        lo, hi = float(min(probs.min(), np.min(y_all))), float(max(probs.max(), np.max(y_all)))
        ax.imshow(probs[:, 0].reshape(gx.shape), origin="lower", extent=extent, aspect="auto", cmap="viridis",
                  vmin=lo, vmax=hi, alpha=0.85)
        ax.scatter(X_all[:, 0], X_all[:, 1], c=y_all, cmap="viridis", vmin=lo, vmax=hi, s=5, edgecolors="w",
                   linewidths=0.2)
    elif probs.shape[1] == 2:
        ax.imshow(probs[:, 1].reshape(gx.shape), origin="lower", extent=extent, aspect="auto", cmap="RdBu_r",
                  vmin=0, vmax=1, alpha=0.8)
        ax.scatter(X_all[:, 0], X_all[:, 1], c=y_all, cmap="RdBu_r", s=3, linewidths=0, vmin=0, vmax=1)
    else:
        ax.imshow(probs.argmax(axis=1).reshape(gx.shape), origin="lower", extent=extent, aspect="auto",
                  cmap="tab10", vmin=0, vmax=9, alpha=0.35, interpolation="nearest")
        ax.scatter(X_all[:, 0], X_all[:, 1], c=y_all, cmap="tab10", s=3, linewidths=0, vmin=0, vmax=9)


def _neuron_axes(plt, k: int, cols: int, rows: int, width: float, height: float):
    """neurons.png's figure: its grid, the Axes drawn as every unit's panel, and the output's
    Axes sharing its plane."""
    fig = plt.figure(figsize=(width, height))
    grid = fig.add_gridspec(rows, cols)
    unit_axes = fig.add_subplot(grid[0])
    return fig, (grid, unit_axes, fig.add_subplot(grid[k // cols, k % cols], sharex=unit_axes, sharey=unit_axes))


def _panel(ax, extent, shared: bool = False) -> None:
    """Make ``ax`` show the plane ``extent`` (its limits set once: autoscaling each image and
    line would update the axes it shares), with ticks at the same values as the Axes it
    shares (``shared``: set there)."""
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 - optional dependency

    if not shared:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.xaxis.set_major_locator(MaxNLocator(5, steps=[1, 2, 2.5, 5, 10]))
        ax.yaxis.set_major_locator(MaxNLocator(5, steps=[1, 2, 2.5, 5, 10]))
    ax.set_autoscale_on(False)
    ax.set_xlabel("x₁", fontsize=10, labelpad=1)
    ax.tick_params(axis="x", labelsize=9)
    ax.set_ylabel("x₂", fontsize=10, labelpad=1)
    ax.tick_params(axis="y", labelsize=9)


def _outer_axes(ax, bottom: bool, left: bool) -> None:
    """Tick labels only where they show: x under a panel with no panel below it, y in the first
    column; an inner panel has no axis to lay out at all."""
    ax.xaxis.set_visible(bottom)
    ax.yaxis.set_visible(left)


def animation(plt, frames, X_all: np.ndarray, y_all: np.ndarray, path: Path, name: str, fps: int = 8) -> Path:
    """plots/training.gif: the decision boundary epoch by epoch (matplotlib's Pillow writer)."""
    from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: PLC0415 - optional dependency

    binary = int(np.max(y_all)) <= 1  # two classes: P(class 1); more: the predicted class
    fig, ax = plt.subplots(figsize=(5, 4.6))
    first = frames.frames[0][1]
    image = ax.imshow(first, origin="lower", extent=frames.extent, aspect="auto",
                      cmap="RdBu_r" if binary else "tab10", vmin=0, vmax=1 if binary else 9,
                      alpha=0.8 if binary else 0.4)
    ax.scatter(X_all[:, 0], X_all[:, 1], c=y_all, cmap="RdBu_r" if binary else "tab10", vmin=0,
               vmax=1 if binary else 9, s=5, edgecolors="w", linewidths=0.2)
    title = ax.set_title("")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.11, top=0.92)

    def show(i):
        epoch, frame = frames.frames[i]
        image.set_data(frame)
        title.set_text(f"{name}: decision boundary after epoch {epoch}")
        return image, title

    movie = FuncAnimation(fig, show, frames=len(frames.frames), blit=False)
    tmp = path.with_name(path.name + ".partial.gif")
    movie.save(str(tmp), writer=PillowWriter(fps=fps), dpi=80)
    plt.close(fig)
    tmp.replace(path)  # the finished file appears at once
    return path

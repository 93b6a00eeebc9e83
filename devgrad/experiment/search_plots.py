"""A search's pictures, drawn by Optuna's matplotlib visualisations into the sweep's plots/."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from devgrad.experiment.report import _pyplot, _save

log = logging.getLogger("devgrad.search")

# file name -> (Optuna's function in optuna.visualization.matplotlib, trials it needs finished)
PLOTS = {
    "optuna_history.png": ("plot_optimization_history", 1),
    "optuna_parallel_coordinate.png": ("plot_parallel_coordinate", 2),
    "optuna_param_importances.png": ("plot_param_importances", 2),
    "optuna_intermediate_values.png": ("plot_intermediate_values", 1),
}


def draw(optuna, study, sweep_dir: Path, monitor: tuple, pruning: bool) -> list[str]:
    """Optuna's optimization history, parallel coordinates, parameter importances and the per-epoch
    values the pruner saw; a picture Optuna cannot draw for this study is left out (and logged)."""
    plt = _pyplot()
    if plt is None:
        return []
    complete = optuna.trial.TrialState.COMPLETE
    finished = len(study.get_trials(deepcopy=False, states=(complete,)))
    folder = Path(sweep_dir) / "plots"
    folder.mkdir(exist_ok=True)
    written = []
    for name, (function, needed) in PLOTS.items():
        if finished < needed or (function == "plot_intermediate_values" and not pruning):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                options = {} if function == "plot_intermediate_values" else {"target_name": monitor[0]}
                ax = getattr(optuna.visualization.matplotlib, function)(study, **options)
        except (ValueError, RuntimeError, ImportError, ZeroDivisionError) as exc:
            log.info("plots/%s not drawn: %s", name, exc)
            continue
        figure = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        figure.set_size_inches(7, 4.5)
        figure.tight_layout()
        _save(figure, folder / name)
        plt.close(figure)
        written.append(f"plots/{name}")
    return written

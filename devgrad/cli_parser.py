"""The ``devgrad`` command line's parser: every command and option, for ``--help`` and docs/cli.md.

Light on purpose: it imports no command's implementation (numpy-heavy modules, YAML, matplotlib),
so that ``devgrad --help`` costs the parser alone; ``devgrad.cli`` imports a command's module
only when that command runs.
"""

from __future__ import annotations

import argparse

from devgrad.experiment import choices
from devgrad.version import __version__


def _use_parsers(sub: argparse._SubParsersAction) -> None:
    """``predict`` and ``export``: use a run's trained model."""
    pred = sub.add_parser("predict", help="predict with a run's model: a CSV of predictions (and metrics when the "
                                          "data holds the target)")
    pred.add_argument("run_dir", help="a run folder (runs/<name>/<date-time>-<id>)")
    pred.add_argument("data", help="a CSV with a header row (columns matched by name) or an NPZ (X, optional y)")
    pred.add_argument("--out", help="the CSV to write (default: RUN_DIR/predictions/<data-stem>.csv; never "
                                    "overwritten)")
    pred.add_argument("--proba", action="store_true", help="also one probability column per class (classification)")
    pred.add_argument("--checkpoint", choices=("best", "last"), default="best",
                      help="which weights: best (default; last when the run has no best) or last")
    pred.add_argument("--device", help="cpu | cuda | cuda:N (default: devgrad's default device)")
    pred.add_argument("--quiet", "-q", action="store_true", help="no notices")

    exp = sub.add_parser("export", help="write a run's model as ONNX (standardisation and head included) or its "
                                        "weights as safetensors")
    exp.add_argument("run_dir", help="a run folder (runs/<name>/<date-time>-<id>)")
    exp.add_argument("--format", choices=tuple(choices.EXPORT_FORMATS), default="onnx",
                     help="onnx (default) | safetensors")
    exp.add_argument("--out", help="the file to write (default: RUN_DIR/export/model.onnx or model.safetensors; "
                                   "never overwritten)")
    exp.add_argument("--checkpoint", choices=("best", "last"), default="best",
                     help="which weights: best (default; last when the run has no best) or last")
    exp.add_argument("--opset", type=int, help="the ONNX opset (default 17)")
    exp.add_argument("--quiet", "-q", action="store_true", help="no notices")


def _run_parsers(sub: argparse._SubParsersAction) -> None:
    """``run``, ``resume`` and ``validate``: one spec, one run."""
    run = sub.add_parser(
        "run", help="train the MLP a YAML spec describes, into a new run folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  devgrad run triangle                       # a spec devgrad ships (devgrad examples)\n"
               "  devgrad run experiments/triangle.yaml\n"
               "  devgrad run experiments/spirals.yaml --device cuda --set train.epochs=20 --set optimizer.lr=3e-3\n"
               "  devgrad run my_spec.yaml --print-config        # the spec with every default filled in\n"
               "  DEVGRAD_DEVICE=cpu devgrad run experiments/digits.yaml --quiet --out /tmp/runs")
    run.add_argument("spec", help="path to a YAML spec, or the name of one devgrad ships (devgrad examples)")
    run.add_argument("--device", help="auto | cpu | cuda | cuda:N (overrides the spec)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a spec key, value parsed as YAML as in a spec file (010 is 10): --set "
                          "optimizer.lr=0.1 (repeatable)")
    run.add_argument("--out", help="root folder for run folders (default: ./runs)")
    run.add_argument("--print-config", action="store_true", help="print the resolved spec and exit")
    run.add_argument("--quiet", "-q", action="store_true", help="no per-epoch output")
    run.add_argument("--track", metavar="mlflow[=URI]",
                     help="log to MLflow (the mlflow extra); URI: the tracking server (default: "
                          "$MLFLOW_TRACKING_URI, else MLflow's default); see docs/tracking.md")

    resume = sub.add_parser("resume", help="continue a stopped or killed run from its last checkpoint")
    resume.add_argument("run_dir", help="the run folder 'devgrad run' printed (runs/<name>/<date-time>-<id>)")
    resume.add_argument("--device", help="run on another device than the original run")
    resume.add_argument("--quiet", "-q", action="store_true", help="no per-epoch output")
    resume.add_argument("--track", metavar="mlflow[=URI]",
                        help="log to MLflow (the mlflow extra), continuing the run's MLflow run; URI: "
                             "the tracking server (default: $MLFLOW_TRACKING_URI, else MLflow's default)")

    validate = sub.add_parser(
        "validate", help="check a spec and report every problem at once",
        description="Checks that the run will start: the spec, its data and the memory it needs; nothing is "
                    "trained or written. A spec with a sweep: block is checked as devgrad sweep checks it "
                    "before it starts: every point of its grid, or its search's settings, space and base spec.")
    validate.add_argument("spec", help="path to a YAML spec, or the name of one devgrad ships")
    validate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="override a spec key as 'run' would (repeatable)")


def _search_options(sweep: argparse.ArgumentParser) -> None:
    """The options of ``sweep`` that make it (or belong to) an Optuna search."""
    sweep.add_argument("--search", choices=choices.SAMPLERS,
                       help="run an Optuna study with this sampler instead of a grid (the optuna extra)")
    sweep.add_argument("--trials", type=int,
                       help="how many trials the search runs (the grid sampler: at most, and by default, the size "
                            "of its grid)")
    sweep.add_argument("--space", action="append", default=[], metavar="KEY=KIND(ARGS)",
                       help="a searched key: uniform(a,b), loguniform(a,b), int(a,b[,log]) or choice(v1,v2,...), "
                            "values parsed as YAML (repeatable)")
    sweep.add_argument("--pruner", choices=choices.PRUNERS,
                       help="stop hopeless trials early on the monitored metric per epoch (default: median; a "
                            "search only)")
    sweep.add_argument("--storage", metavar="URL",
                       help="the study in this Optuna RDB storage (e.g. sqlite:///study.db) instead of the sweep "
                            "folder's journal file (a search only)")


def _sweep_parsers(sub: argparse._SubParsersAction) -> None:
    """``sweep`` (a grid or a search of runs) and ``track`` (log folders to MLflow)."""
    sweep = sub.add_parser(
        "sweep", help="run a grid of runs of one spec in parallel (a local process pool, or Dask)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Every point of a grid (times --seeds repeats) of SPEC, each a normal run folder under "
                    "sweeps/<name>/<date-time>-<id>/runs/. Every point is validated before anything starts.",
        epilog="examples:\n"
               "  devgrad sweep experiments/spirals.yaml --grid optimizer.lr=0.1,0.01,0.001 --seeds 3\n"
               "  devgrad sweep spec.yaml --grid 'model.hidden=[16],[64,64]' --jobs 2\n"
               "  devgrad sweep spec.yaml --executor dask --address tcp://scheduler:8786 --gpus-per-run 1\n"
               "  devgrad sweep --resume sweeps/spirals/20261127-101500-a1b2c3\n"
               "  devgrad sweep spec.yaml --search tpe --trials 40 --space 'optimizer.lr=loguniform(1e-4,1e-1)' \\\n"
               "      --space 'model.hidden=choice([32],[64,64])' --pruner median --jobs 2\n"
               "A spec may hold the grid itself: sweep: {grid: {optimizer.lr: [0.1, 0.01]}, seeds: 3}, or a search:\n"
               "sweep: {search: {trials: 40, sampler: tpe, pruner: median, space: {optimizer.lr: {loguniform: "
               "[1.0e-4, 0.1]}}}} (see docs/search.md)")
    sweep.add_argument("spec", nargs="?", help="path to a YAML spec, or the name of one devgrad ships (not with "
                                               "--resume)")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="a grid axis, values parsed as YAML and split at top-level commas (repeatable)")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a key of the base spec for every run, as 'run' does (repeatable)")
    sweep.add_argument("--device", help="auto | cpu | cuda | cuda:N for every run (overrides the spec)")
    sweep.add_argument("--seeds", type=int,
                       help="repeats of every grid point, seeds base, base+1, ... (default 1); a grid over seed "
                            "gives each point its own seed instead (then leave --seeds out)")
    sweep.add_argument("--jobs", type=int, help="runs at once (default: the number of cores)")
    sweep.add_argument("--executor", choices=choices.EXECUTORS, default="local",
                       help="local: a process pool (default); dask: Dask distributed (the dask extra)")
    sweep.add_argument("--address", help="a running Dask scheduler, e.g. tcp://HOST:8786 (default: a LocalCluster)")
    sweep.add_argument("--gpus-per-run", type=int, help="Dask worker resource GPU needed by each run")
    sweep.add_argument("--out", help="root folder for sweep folders (default: ./sweeps)")
    sweep.add_argument("--fail-fast", action="store_true", help="stop the sweep at the first run that fails")
    sweep.add_argument("--resume", metavar="SWEEP_DIR", help="run what a sweep folder has not finished (a search: "
                                                             "continue its study to its trial count)")
    _search_options(sweep)
    sweep.add_argument("--quiet", "-q", action="store_true", help="print only the summary table")
    sweep.add_argument("--track", metavar="mlflow[=URI]",
                       help="log every run to MLflow (the mlflow extra), a search's trials nested in a "
                            "run of the sweep; URI: the tracking server (default: $MLFLOW_TRACKING_URI, else "
                            "MLflow's default); see docs/tracking.md")

    trk = sub.add_parser("track", help="log a finished run folder or sweep folder to MLflow (again: only what is "
                                       "missing is added)")
    trk.add_argument("folder", help="a run folder or a sweep folder")
    trk.add_argument("--uri", help="the MLflow tracking URI (default: the spec's tracking.mlflow.uri, else "
                                   "$MLFLOW_TRACKING_URI, else MLflow's default)")


def _folder_parsers(sub: argparse._SubParsersAction) -> None:
    """``report``, ``examples``, ``lecture`` and ``plot``: folders of runs and pages."""
    rep = sub.add_parser("report", help="(re)write a run's or a sweep's self-contained report.html")
    rep.add_argument("folder", help="a run folder (runs/<name>/<date-time>-<id>) or a sweep folder")

    examples = sub.add_parser("examples", help="list the example specs devgrad ships (devgrad run NAME runs one)")
    examples.add_argument("--copy", metavar="DIR", help="copy them into DIR to edit them (made if missing)")

    lecture = sub.add_parser("lecture", help="run the lecture's experiments and write one HTML page walking "
                                             "through it (seconds on a CPU)")
    lecture.add_argument("--out", default="lecture", help="folder for index.html and the runs (default: ./lecture)")
    lecture.add_argument("--device", default="cpu", help="cpu (default) | cuda | auto")
    lecture.add_argument("--quiet", "-q", action="store_true", help="print nothing (no line per experiment)")

    plot = sub.add_parser("plot", help="(re)draw the plots of a run folder")
    plot.add_argument("run_dir", help="a run folder; its plots/ are drawn again from its best (else last) checkpoint")


def _tool_parsers(sub: argparse._SubParsersAction) -> None:
    """``warmup`` and ``bench``: compile the GPU kernels, time the steps."""
    warm = sub.add_parser("warmup", help="compile devgrad's GPU kernels once (into CuPy's kernel cache)")
    warm.add_argument("--device", default=None,
                      help="cuda | cuda:N (default: cuda where CUDA works; on the CPU nothing to do)")
    warm.add_argument("--arch", default=None,
                      help="build devgrad's kernels for these GPU architectures without a GPU (compute "
                           "capability: 90 for H100/H200, 80 for A100; several as 80,90), e.g. in a Docker build")

    bench = sub.add_parser("bench", help="time an MLP training step: devgrad vs hand-written NumPy/CuPy and PyTorch")
    bench.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    bench.add_argument("--configs", default="tiny,small,medium,large", help="comma-separated: tiny,small,medium,large")
    bench.add_argument("--repeat", type=int, default=None,
                       help="timed blocks per implementation (default 15); with --checkpoints, rounds (default 5); "
                            "with --tracking, pairs of runs (default 5)")
    bench.add_argument("--json", help="also write the results as JSON to this path")
    bench.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    bench.add_argument("--no-jax", action="store_true", help="skip the JAX jit column (shown when JAX is installed)")
    bench.add_argument("--torch-compile", action="store_true",
                       help="also time PyTorch's step under torch.compile (compiling takes a while)")
    bench.add_argument("--pause", type=float, default=0.2, metavar="SECONDS",
                       help="sleep before each timed block, so BLAS threads still spinning from the previous "
                            "block steal no core")
    bench.add_argument("--write", metavar="FILE.md",
                       help="also write the table as a Markdown page (machine, date, command, load) to this path")
    mode = bench.add_mutually_exclusive_group()  # what to time instead of the step table: one at a time
    mode.add_argument("--e2e", choices=("small", "full"),
                      help="time a whole gpu_large-like run instead, devgrad vs plain PyTorch (full: the GPU "
                           "workload of experiments/gpu_large.yaml; small: a CPU-sized one)")
    mode.add_argument("--sweep", action="store_true",
                      help="time 8 small runs as a sweep with 1 vs 2 workers (local pool and Dask): the speed-up, "
                           "and each run's time beside another against alone")
    mode.add_argument("--search", action="store_true",
                      help="on digits, a 24-trial TPE study with the median pruner vs a 24-point grid (2 workers): "
                           "best test accuracy and wall time; and MLflow tracking's cost per epoch on a spirals run")
    mode.add_argument("--tracking", action="store_true",
                      help="what MLflow tracking costs a spirals run: untracked and tracked runs in interleaved "
                           "pairs (--repeat pairs, default 5), medians and the range of the pairs' ratios")
    mode.add_argument("--checkpoints", action="store_true",
                      help="time wine, digits and spirals runs with the default checkpoint policy, without "
                           "checkpoints and writing every epoch: what the policy costs a run")
    mode.add_argument("--overhead", action="store_true",
                      help="only measure per-op overhead: (a*b+c).sum().backward() on 2x2 tensors vs NumPy")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``devgrad`` command and option (nothing imported to run them)."""
    parser = argparse.ArgumentParser(
        prog="devgrad", description="devgrad: reverse-mode autodiff on NumPy/CuPy, and an MLP experiment runner.")
    parser.add_argument("--version", action="version", version=f"devgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("info", help="versions, devices found, and why CUDA is unavailable if it is")
    _run_parsers(sub)
    _sweep_parsers(sub)
    _folder_parsers(sub)
    _use_parsers(sub)
    _tool_parsers(sub)
    return parser

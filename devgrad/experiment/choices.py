"""The names the command line offers as choices, here so that its parser reads them without
importing the modules that implement them (Optuna's study, the sweep executors, ONNX export)."""

from __future__ import annotations

__all__ = ["EXECUTORS", "EXPORT_FORMATS", "PRUNERS", "SAMPLERS"]

SAMPLERS = ("tpe", "random", "cmaes", "grid")  # Optuna samplers a search may use
PRUNERS = ("median", "hyperband", "none")
EXECUTORS = ("local", "dask")  # where a sweep's runs go
EXPORT_FORMATS = {"onnx": "model.onnx", "safetensors": "model.safetensors"}  # format: the file it writes

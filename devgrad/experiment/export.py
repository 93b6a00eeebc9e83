"""``devgrad export``: a run's model as an ONNX file (its input standardisation and task head
included) or its weights as safetensors, written beside the run."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from devgrad import onnx as dg_onnx
from devgrad.experiment.choices import EXPORT_FORMATS as FORMATS
from devgrad.experiment.errors import RunError
from devgrad.experiment.predict import TrainedModel, load
from devgrad.io import SAFETENSORS_HINT, save


def onnx_head(trained: TrainedModel) -> dict:
    """The ONNX output head of a run: its classes and probability rule, or its target scaling."""
    out = trained.info["output"]
    if trained.task == "regression":
        return {"target_mean": out["target_mean"], "target_std": out["target_std"]}
    one = trained.model.sizes[-1] == 1
    rule = "softmax" if not one else {"mse": "clip", "hinge": "margin"}.get(out["loss"], "sigmoid")
    return {"classes": trained.class_values().tolist(), "probabilities": rule, "threshold": out["threshold"]}


def export_run(run_dir, fmt: str = "onnx", out=None, checkpoint: str = "best", opset=None,
               quiet: bool = False) -> Path:
    """Write a run's model as ``fmt`` (onnx | safetensors) at ``out`` (default RUN_DIR/export/
    model.<ext>, never over an existing file); returns the path written."""
    if fmt not in FORMATS:
        raise RunError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        try:
            opset = dg_onnx.check_opset(opset)
        except ImportError:
            raise RunError(f"--format onnx needs the onnx package: {dg_onnx.ONNX_HINT}") from None
        except dg_onnx.ExportError as exc:
            raise RunError(f"--opset: {exc}") from None
    trained = load(run_dir, checkpoint=checkpoint, device="cpu", quiet=quiet)
    out = Path(out) if out is not None else Path(run_dir) / "export" / FORMATS[fmt]
    if out.exists():
        raise RunError(f"{out} already exists; export never overwrites a file: choose another --out")
    if out.parent.exists() and not out.parent.is_dir():
        raise RunError(f"--out {out}: {out.parent} is a file, not a folder")
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]  # folders this export creates
    try:
        return _write(trained, fmt, out, opset)
    except BaseException:
        for folder in made:  # a failed export leaves no empty folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _write(trained: TrainedModel, fmt: str, out: Path, opset: int) -> Path:
    if fmt == "safetensors":
        try:
            return save(trained.model.state_dict(), out)
        except ImportError:
            raise RunError(f"--format safetensors needs the safetensors package: {SAFETENSORS_HINT}") from None
    info = trained.info
    scale = info["standardize"]
    metadata = {"task": trained.task, "feature_names": json.dumps(trained.feature_names),
                "devgrad_run": str(trained.run_dir.resolve()), "epoch": str(trained.epoch)}
    if trained.classes is not None:
        metadata["classes_type"] = info["output"]["classes"]["type"]
    try:
        return dg_onnx.export(trained.model, out, len(trained.feature_names),
                              standardize=(scale["mean"], scale["std"]) if scale else None,
                              output=onnx_head(trained), opset=opset, metadata=metadata)
    except ImportError:
        raise RunError(f"--format onnx needs the onnx package: {dg_onnx.ONNX_HINT}") from None
    except dg_onnx.ExportError as exc:
        raise RunError(str(exc)) from None

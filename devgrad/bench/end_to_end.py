"""The end-to-end row of ``devgrad bench``: a whole gpu_large-like training run, devgrad against
the same training written in plain PyTorch.

Both train the same data (devgrad's generator and split, standardised the same way) with the
same model (n_features-hidden-hidden-10 ReLU MLP, Kaiming-uniform weights), Adam, a cosine
schedule stepped per epoch, the same batch size with a fresh shuffle every epoch (devgrad's
loader on the device; ``torch.randperm`` on the device for PyTorch), per-epoch validation and
a final test evaluation. devgrad's time is the run's ``wall_seconds`` (training, validation and
its checkpoint policy, without start-up, test evaluation and plots); PyTorch's is measured
over the same part. ``full`` is experiments/gpu_large.yaml (a GPU workload); ``small`` is a
scaled-down version a CPU finishes in seconds.
"""

from __future__ import annotations

import itertools
import math
import tempfile
import time
from typing import Any

import numpy as np

from devgrad.experiment.plan import load_splits
from devgrad.experiment import resolve, run

SIZES = {
    "full": {"n_samples": 200_000, "n_features": 256, "hidden": [2048, 2048], "epochs": 5, "batch_size": 1024},
    "small": {"n_samples": 20_000, "n_features": 64, "hidden": [256, 256], "epochs": 3, "batch_size": 512},
    "tiny": {"n_samples": 3_000, "n_features": 16, "hidden": [64, 64], "epochs": 6, "batch_size": 128},  # tests
}


def spec_for(size: str, device: str) -> dict:
    s = SIZES[size]
    return {"name": f"e2e_{size}", "seed": 0, "device": device,
            "data": {"source": "classification", "n_samples": s["n_samples"], "n_features": s["n_features"],
                     "n_classes": 10},
            "model": {"hidden": s["hidden"], "activation": "relu", "init": "kaiming_uniform"},
            "loss": "cross_entropy", "optimizer": {"name": "adam", "lr": 0.001}, "schedule": {"name": "cosine"},
            "train": {"epochs": s["epochs"], "batch_size": s["batch_size"]}}


def devgrad_e2e(size: str, device: str) -> dict:
    """The run twice in this process: the first pays one-time costs (kernel compilation on a GPU
    whose cache is cold, first-call set-up), the second is the warm time."""
    times = []
    for _ in range(2):
        with tempfile.TemporaryDirectory() as out:
            result = run(spec_for(size, device), out=out, quiet=True)
        times.append(result.summary["wall_seconds"])
    return {"seconds": times[1], "first_seconds": times[0], "test_accuracy": result.summary["test"]["test_accuracy"],
            "cuda_graph": result.summary["cuda_graph"]["active"], "captured": result.summary["capture"]["active"]}


def torch_e2e(torch, size: str, device: str) -> dict:
    """The same training in plain PyTorch (what a user would write), twice: the second is timed."""
    first = _torch_once(torch, size, device)
    return {**_torch_once(torch, size, device), "first_seconds": first["seconds"]}


def _torch_once(torch, size: str, device: str) -> dict:
    spec = resolve(spec_for(size, device if device != "auto" else "cpu"))
    splits = load_splits(spec)
    dev = torch.device(device)
    tensors = [torch.from_numpy(a).to(dev) for a in (splits.X_train.astype(np.float32), splits.y_train,
                                                      splits.X_val.astype(np.float32), splits.y_val,
                                                      splits.X_test.astype(np.float32), splits.y_test)]
    X_tr, y_tr, X_va, y_va, X_te, y_te = tensors
    torch.manual_seed(0)
    sizes = [splits.n_features, *spec.model.hidden, splits.n_classes]
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(a, b))
        torch.nn.init.kaiming_uniform_(layers[-1].weight, nonlinearity="relu")
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    epochs, batch = spec.train.epochs, spec.train.batch_size or len(X_tr)  # null: one batch, as devgrad's loader
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(X_tr), device=dev)
        for i in range(math.ceil(len(X_tr) / batch)):
            idx = order[i * batch:(i + 1) * batch]
            loss = torch.nn.functional.cross_entropy(model(X_tr[idx]), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            val_loss = sum(torch.nn.functional.cross_entropy(model(X_va[i:i + 4096]), y_va[i:i + 4096],
                                                             reduction="sum") for i in range(0, len(X_va), 4096))
            float(val_loss)  # the per-epoch validation number a user prints (a sync, as devgrad's)
    sync()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = float((model(X_te).argmax(dim=1) == y_te).float().mean())
    return {"seconds": round(seconds, 3), "test_accuracy": accuracy}


def e2e(size: str, device: str, torch=None) -> dict:
    """devgrad's run and, when PyTorch is there, PyTorch's: seconds, test accuracy and the ratio."""
    row: dict[str, Any] = {"size": size, "devgrad": devgrad_e2e(size, device)}
    if torch is not None:
        row["pytorch"] = torch_e2e(torch, size, device)
        row["ratio_vs_pytorch"] = row["devgrad"]["seconds"] / row["pytorch"]["seconds"]
    return row


def format_e2e(row: dict) -> str:
    d = row["devgrad"]
    text = (f"end to end ({row['size']} gpu_large-like run, warm; first run in the process in brackets): "
            f"devgrad {d['seconds']:.2f} s ({d['first_seconds']:.2f} s), test accuracy {d['test_accuracy']:.3f}, "
            f"step {'captured' if d.get('captured', d['cuda_graph']) else 'eager'}"
            f"{' (CUDA graph)' if d['cuda_graph'] else ''}")
    if "pytorch" in row:
        p = row["pytorch"]
        text += (f"; plain PyTorch {p['seconds']:.2f} s ({p['first_seconds']:.2f} s), test accuracy "
                 f"{p['test_accuracy']:.3f}; devgrad / PyTorch {row['ratio_vs_pytorch']:.2f}×")
    return text

"""On a GPU: what a machine that never ran devgrad compiles for a whole run.

Host-side, ``tests/backend/test_cuda_path.py`` records every array operation of whole runs
through the CUDA backend's Python and finds no kernel of CuPy's in them. Here the same runs go
through a real GPU, each in a fresh process with an empty kernel cache: afterwards the cache
must hold devgrad's kernel modules for the run's dtype and nothing else: the step's module for a
classification run, and the second group's too for dropout (each further file is a kernel NVRTC
compiled, seconds of a first run on a fresh machine). Skipped without a GPU.
"""

from __future__ import annotations

import pytest
import yaml

from tests.support.run_helpers import ROOT, cli_process, write_spec

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize(("name", "modules"), [("spirals", 1), ("digits", 2)])
def test_a_fresh_machines_run_compiles_only_devgrads_modules(device, tmp_path, name, modules):
    """spirals: a float32 run with the captured step (a capturable optimizer's float64 rate and
    step counts included) and its plots; digits: dropout, eagerly."""
    if not device.supports_graphs:
        pytest.skip("needs a GPU: on the CPU nothing is compiled")
    if name == "digits":
        pytest.importorskip("sklearn")
    spec = yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text(encoding="utf-8"))
    spec["train"]["epochs"] = 2
    cache = tmp_path / "kernel-cache"
    done = cli_process("run", write_spec(tmp_path, spec), "--device", "cuda", "--out", tmp_path / "runs",
                       "--quiet", env={"CUPY_CACHE_DIR": str(cache)}, timeout=300)  # a fresh process: a cold cache
    assert done.returncode == 0, done.stderr
    files = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    assert len(files) == modules, f"a fresh kernel cache after one {name} run holds {len(files)} files: {files}"

"""devgrad warmup and the kernel-cache line of devgrad info (checked with a stand-in GPU)."""

from __future__ import annotations

import json

import devgrad as dg
from devgrad import warmup
from devgrad.cli import main


class _StandInGPU(dg.Device):
    """The CPU, claiming what a GPU claims (so warmup does its work and writes its record)."""

    def __init__(self):
        super().__init__("cpu")
        self.supports_graphs = True


def test_warmup_runs_every_kernel_family_and_records_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path / "cache"))
    assert "not warmed by devgrad" in warmup.cache_state()
    monkeypatch.setattr(warmup, "resolve_device", lambda spec: _StandInGPU())
    result = warmup.warmup("cuda")
    assert result["compiled"] and (tmp_path / "cache" / warmup.RECORD).exists()
    assert warmup.cache_state().startswith(f"{tmp_path / 'cache'}: warm;")
    record = json.loads((tmp_path / "cache" / warmup.RECORD).read_text())
    record["devgrad"] = "0.0.0"
    (tmp_path / "cache" / warmup.RECORD).write_text(json.dumps(record))
    assert ": stale" in warmup.cache_state()
    assert main(["info"]) == 0 and "kernel cache:" in capsys.readouterr().out


def test_warmup_on_the_cpu_has_nothing_to_do(capsys):
    assert main(["warmup", "--device", "cpu"]) == 0
    assert "nothing to compile" in capsys.readouterr().out


def test_a_gpu_run_on_a_cold_cache_says_it_will_compile_first(tmp_path, monkeypatch, capsys):
    """Before the first GPU run on a machine the user is told why it starts slowly and how to
    avoid that; after 'devgrad warmup' (for this devgrad and CuPy), and on the CPU, nothing."""
    from devgrad.experiment import commands, run

    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path / "cache"))
    gpu = _StandInGPU()
    assert "devgrad warmup" in warmup.cold_cache_notice(gpu)
    assert warmup.cold_cache_notice(dg.device("cpu")) is None
    spec = {"name": "cold", "seed": 0, "device": "cpu", "data": {"source": "xor", "n_samples": 64},
            "model": {"hidden": [4]}, "train": {"epochs": 1, "cuda_graph": False}}
    monkeypatch.setattr(commands, "resolve_device", lambda spec: gpu)
    result = run(spec, out=tmp_path / "runs")
    assert "was not warmed by this devgrad and CuPy" in capsys.readouterr().err
    assert "devgrad warmup" in (result.run_dir / "train.log").read_text()
    monkeypatch.setattr(warmup, "resolve_device", lambda spec: gpu)
    warmup.warmup("cuda")
    assert warmup.cold_cache_notice(gpu) is None
    run(spec, out=tmp_path / "runs")
    assert "not warmed" not in capsys.readouterr().err

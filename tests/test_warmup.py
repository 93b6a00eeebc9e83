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

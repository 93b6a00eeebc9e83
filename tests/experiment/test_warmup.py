"""devgrad warmup and the kernel-cache line of devgrad info (checked with a stand-in GPU)."""

from __future__ import annotations

import json

import pytest

import devgrad as dg
from devgrad import backend, warmup
from devgrad.cli import main


class _StandInGPU(dg.Device):
    """The CPU, claiming what a GPU claims (so warmup does its work and writes its record)."""

    def __init__(self):
        super().__init__("cpu")
        self.supports_graphs = True


def test_warmup_runs_every_kernel_family_and_records_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path / "cache"))
    assert warmup.cache_state().endswith("not warmed by devgrad on a GPU (0 files); the first GPU run compiles its "
                                         "kernels (seconds): run 'devgrad warmup' once per machine")
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


def test_warmup_without_a_device_on_a_machine_without_cuda_has_nothing_to_do(monkeypatch, capsys):
    monkeypatch.setattr(warmup, "cuda_available", lambda: False)
    assert main(["warmup"]) == 0
    assert "CUDA is not available here" in capsys.readouterr().out
    assert main(["warmup", "--device", "cuda:99"]) == 2  # asked for by name: a device that is not here
    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    capsys.readouterr()
    assert main(["warmup", "--device", "cuda"]) == 2
    err = capsys.readouterr().err  # the command line's words, not the library's device='cpu'
    assert "Use --device cpu (or --device auto) to run on the CPU." in err and "device='cpu'" not in err


@pytest.mark.slow
def test_a_gpu_run_on_a_cold_cache_says_it_will_compile_first(tmp_path, monkeypatch, capsys):
    """Before the first GPU run on a machine the user is told why it starts slowly and how to
    avoid that; after 'devgrad warmup' (for this devgrad and CuPy), and on the CPU, nothing."""
    from devgrad.experiment import plan, run

    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path / "cache"))
    gpu = _StandInGPU()
    assert "devgrad warmup" in warmup.cold_cache_notice(gpu)
    assert warmup.cold_cache_notice(dg.device("cpu")) is None
    spec = {"name": "cold", "seed": 0, "device": "cpu", "data": {"source": "xor", "n_samples": 64},
            "model": {"hidden": [4]}, "train": {"epochs": 1, "cuda_graph": False}}
    monkeypatch.setattr(plan, "resolve_device", lambda spec: gpu)
    result = run(spec, out=tmp_path / "runs")
    assert "was not warmed by this devgrad and CuPy" in capsys.readouterr().err
    assert "devgrad warmup" in (result.run_dir / "train.log").read_text()
    monkeypatch.setattr(warmup, "resolve_device", lambda spec: gpu)
    warmup.warmup("cuda")
    assert warmup.cold_cache_notice(gpu) is None
    run(spec, out=tmp_path / "runs")
    assert "not warmed" not in capsys.readouterr().err


def _nvrtc_or_skip():
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as exc:
        pytest.skip(f"NVRTC not available: {exc}")


def test_warmup_arch_builds_devgrads_kernels_without_a_gpu(tmp_path, monkeypatch, capsys):
    """'devgrad warmup --arch 80' (a Docker build, a login node) compiles the float and double
    modules of both kernel groups into the kernel cache with NVRTC alone; info names the
    architecture; a GPU of it is then told nothing about a cold cache; a wrong --arch is one clear
    error."""
    _nvrtc_or_skip()
    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["warmup", "--arch", "sm_80"]) == 0
    assert "sm_80" in capsys.readouterr().out
    files = sorted((tmp_path / "cache").glob("devgrad-kernels-*-sm_80.cubin"))
    assert sorted(f.name.split("-")[3:5] for f in files) == [["double", "more"], ["double", "step"],
                                                              ["float", "more"], ["float", "step"]]
    assert all(f.read_bytes()[:4] == b"\x7fELF" for f in files)  # device code, not text
    assert warmup.prebuilt_arches() == ["80"]
    assert main(["info"]) == 0 and "ready-made for sm_80" in capsys.readouterr().out
    assert "(devgrad warmup --arch); devgrad's kernels for other architectures, and CuPy's own, compile on first use " \
           "(seconds)" in warmup.cache_state()

    class _Ampere(_StandInGPU):
        def architecture(self):
            return "80"

    class _Hopper(_StandInGPU):
        def architecture(self):
            return "90"

    assert warmup.cold_cache_notice(_Ampere()) is None
    assert "devgrad warmup" in warmup.cold_cache_notice(_Hopper())
    assert main(["warmup", "--arch", "a100"]) == 2
    assert "compute capability" in capsys.readouterr().err


def test_arch_values_are_compute_capabilities():
    assert warmup.parse_arches("90") == ["90"]
    assert warmup.parse_arches("sm_80, 9.0") == ["80", "90"]
    with pytest.raises(ValueError, match="e.g. 90"):
        warmup.parse_arches("hopper")
    with pytest.raises(ValueError):
        warmup.parse_arches("7")

"""The summary of a `.ci/gpu-check` run: first whether each GPU target is met, then what it
measured.

    python .ci/gpu_summary.py OUT WORK > OUT/summary.txt

OUT holds the check's result files (info.txt, pytest-cuda.txt, bench-cuda.txt/.json, e2e.json,
runs.txt); WORK its scratch folder (the runs' output folders, the fresh kernel caches). It
writes OUT/runs.json (the runs' summary.json files). Every file may be missing or cut short (a
step left out, skipped or killed): what cannot be read is reported as unmeasured, never as met.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

RUNS = ("spirals-cpu", "spirals-eager", "spirals-graph", "spirals-prebuilt")
OUTCOMES = ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS")
CONFIGS = ("tiny", "small", "medium", "large")


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def per_test_outcomes(lines: list[str]) -> dict:
    """pytest -v's line per test: "[gw3] [ 41%] PASSED tests/x.py::t" (xdist) or
    "tests/x.py::t PASSED [ 41%]"; the short summary's "FAILED x::t - ..." lines are not counted."""
    found = {}
    for line in lines:
        if line.startswith(("FAILED ", "ERROR ")):
            continue
        m = re.match(r"(?:\[gw\d+\] \[ *\d+%\] )?(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b.*? (\S+::\S+)", line)
        if m:
            found[m.group(2)] = m.group(1)
            continue
        m = re.match(r"(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def verdict(ok) -> str:
    return "unmeasured" if ok is None else "met" if ok else "NOT met"


def targets(tests: dict, counted_all: bool, bench, e2e, runs: dict) -> list[str]:
    """One line per GPU target: the numbers, then met / NOT met / unmeasured."""
    lines = []
    failed = sorted(t for t, o in tests.items() if o in ("FAILED", "ERROR"))
    if not tests:
        lines.append("suite passes with DEVGRAD_TEST_DEVICES=cuda: no test ran - unmeasured")
    else:
        n = {o: sum(v == o for v in tests.values()) for o in ("PASSED", "SKIPPED")}
        done = "" if counted_all else " (the suite did not finish: more tests were to run)"
        ok = False if failed else True if counted_all else None
        lines.append(f"suite passes with DEVGRAD_TEST_DEVICES=cuda: {n['PASSED']} passed, {n['SKIPPED']} skipped, "
                     f"{len(failed)} failed{done} - {verdict(ok)}")
    rows = {r.get("config"): r for r in (bench or {}).get("configs", [])}

    def per_config(title, value, ok_if, fmt="{:.2f}x"):
        """One line over the four bench configs: met when every one is, NOT met when one is not."""
        if not rows:
            lines.append(f"{title}: no bench results - unmeasured")
            return
        parts, oks = [], []
        for name in CONFIGS:
            row = rows.get(name)
            got = value(row) if row else None
            if got is None:
                why = (row or {}).get("unavailable") or "no number"
                parts.append(f"{name} - ({why})" if row else f"{name} - (not in the bench)")
                oks.append(None)
            else:
                parts.append(f"{name} {fmt.format(got)}")
                oks.append(ok_if(got))
        ok = False if False in oks else None if None in oks else True
        lines.append(f"{title}: {', '.join(parts)} - {verdict(ok)}")

    def graph(row):
        return row.get("agreement", {}).get("devgrad_graph", {})

    per_config("CapturedStep replays > 0 (else it ran eagerly)", lambda r: graph(r).get("replays"),
               lambda n: n > 0, fmt="{:.0f}")
    per_config("CapturedStep <= 1.1x PyTorch's CUDA-graph step", lambda r: r.get("graph_ratio_vs_pytorch_graph"),
               lambda x: x <= 1.1)
    per_config("eager step <= 1.0x PyTorch eager", lambda r: r.get("ratio_vs_pytorch"), lambda x: x <= 1.0)
    per_config("captured weights = eager weights (rel. err. <= 1e-5)", lambda r: graph(r).get("weights_rel_err"),
               lambda x: x <= 1e-5, fmt="{:.1e}")
    row = (e2e or {}).get("e2e") or {}
    d, p = row.get("devgrad") or {}, row.get("pytorch") or {}
    ratio = row.get("ratio_vs_pytorch")
    lines.append("gpu_large warm <= 1.0x plain PyTorch: "
                 + (f"{ratio:.2f}x ({d['seconds']:.2f} s vs {p['seconds']:.2f} s) - {verdict(ratio <= 1.0)}"
                    if ratio is not None else "unmeasured"))
    if d.get("seconds") is not None and d.get("first_seconds") is not None:
        how = "captured" if d.get("cuda_graph") else "NOT captured (eager)"
        lines.append(f"gpu_large <= 0.6 s with the captured step: {d['seconds']:.2f} s, {how} - "
                     f"{verdict(d['seconds'] <= 0.6 and bool(d.get('cuda_graph')))}")
        lines.append(f"gpu_large on a fresh kernel cache <= 3 s: first run {d['first_seconds']:.2f} s - "
                     f"{verdict(d['first_seconds'] <= 3.0)}")
    else:
        lines.append("gpu_large <= 0.6 s with the captured step, <= 3 s on a fresh kernel cache: unmeasured")
    cpu, gpu = runs.get("spirals-cpu", {}), runs.get("spirals-graph", {})
    if cpu.get("wall_seconds") is not None and gpu.get("wall_seconds") is not None:
        active = (gpu.get("cuda_graph") or {}).get("active")
        ok = gpu["wall_seconds"] < cpu["wall_seconds"] and bool(active)
        lines.append(f"spirals with the captured step faster than on the CPU: {gpu['wall_seconds']:.2f} s "
                     f"(graph {'on' if active else 'OFF'}) vs {cpu['wall_seconds']:.2f} s on this machine's CPU "
                     f"- {verdict(ok)}")
    else:
        lines.append("spirals with the captured step faster than on the CPU: unmeasured")
    return lines


def summarize(out: Path, work: Path, devices: str = "cuda") -> str:
    text = []
    say = text.append
    info = read(out / "info.txt")
    card = re.search(r"== nvidia-smi\nname.*\n(.+)", info)  # the line after nvidia-smi's CSV header
    say(f"devgrad GPU check: {card.group(1) if card else 'no card found (nvidia-smi: see info.txt)'}")

    tests = read(out / "pytest-cuda.txt").strip().splitlines()
    outcomes = per_test_outcomes(tests)
    finished = any(re.search(r"=+ .*\d+ (passed|failed|errors?)\b.* in [\d.]+s", line) for line in tests)
    interrupted = any(re.match(r"!+ (KeyboardInterrupt|Interrupted)", line) for line in tests)  # pytest's banner
    runs = {}
    for name in RUNS:
        found = sorted((work / name).glob("*/*/summary.json"))
        if found:
            runs[name] = json.loads(found[-1].read_text())
    (out / "runs.json").write_text(json.dumps(runs, indent=2))
    bench, e2e = read_json(out / "bench-cuda.json"), read_json(out / "e2e.json")

    say("\nGPU targets (met / NOT met / unmeasured):")
    for line in targets(outcomes, finished and not interrupted, bench, e2e, runs):
        say(f"  {line}")

    say(f"\ntests (DEVGRAD_TEST_DEVICES={devices}):")
    for line in [t for t in tests if re.search(r"\d+ (passed|failed|errors?)\b|pytest exit", t)][-2:]:
        say(f"  {line}")
    for line in [t for t in tests if t.startswith("ERROR: ")][:3]:  # a usage error: no test ran
        say(f"  pytest: {line[:600]}")
    counts = {o: sum(v == o for v in outcomes.values()) for o in OUTCOMES}
    counted = ", ".join(f"{n} {o.lower()}" for o, n in counts.items() if n)
    say(f"  counted from the per-test lines: {counted or 'none'}")
    failed = [t for t in tests if t.startswith(("FAILED ", "ERROR "))]
    failed = failed or [f"{o} {t}" for t, o in outcomes.items() if o in ("FAILED", "ERROR")]
    say("failed tests:")
    for line in failed[:20] or ["none"]:
        say(f"  {line}")

    # faulthandler's stacks: a step still running near its limit, a test running too long, a native crash.
    dumps = []
    for name in ("info.txt", "pytest-cuda.txt", "bench-cuda.txt", "runs.txt"):
        lines = read(out / name).splitlines()
        for i, line in enumerate(lines):
            if re.search(r"(Timeout \(\d+:\d\d:\d\d(\.\d+)?\)!|Fatal Python error: )", line):
                dumps.append((name, lines[i:i + 30]))
    say("stacks of a hang or crash:" + ("" if dumps else " none"))
    for name, lines in dumps[:3]:
        say(f"  in {name}:")
        text.extend(f"    {line}" for line in lines)

    say("\nbench:")
    say(read(out / "bench-cuda.txt"))
    if bench:
        for row in bench.get("configs", []):
            graph = row.get("agreement", {}).get("devgrad_graph", {})
            say(f"  {row.get('config')}: CapturedStep replays {graph.get('replays')} weights vs eager "
                f"{graph.get('weights_rel_err')}; unavailable: {row.get('unavailable') or 'none'}")
    else:
        say("  no bench JSON")
    say("\nend to end (gpu_large): " + (json.dumps(e2e["e2e"]) if e2e and "e2e" in e2e else "no JSON"))
    # How many kernels a machine that never ran devgrad compiles: the entries of the fresh caches.
    for label, folder in (("bench --e2e full (gpu_large, first run compiled)", "cold-e2e"),
                          ("devgrad warmup (float32 and float64)", "cold-warmup"),
                          ("warmup --arch + spirals run (4 of them devgrad's ready-made modules: "
                           "2 groups x 2 dtypes)", "prebuilt")):
        cache = work / folder
        entries = [p for p in cache.rglob("*") if p.is_file()] if cache.is_dir() else []
        say(f"kernel cache after {label}: {len(entries)} files")
    say("\nruns:")
    say(read(out / "runs.txt")[-3000:])
    for name, s in runs.items():
        keep = {k: s.get(k) for k in ("status", "wall_seconds", "epochs_run", "test_accuracy", "test_loss",
                                      "cuda_graph")}
        say(f"  {name}: {json.dumps(keep)}")
    return "\n".join(text)


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1]), Path(sys.argv[2]), os.environ.get("GPU_CHECK_DEVICES") or "cuda"))

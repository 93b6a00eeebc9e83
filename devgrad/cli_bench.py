"""``devgrad bench``: its own module, so that the other commands do not import the bench and its peers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devgrad import bench
from devgrad.bench.checkpoint_bench import checkpoint_bench, format_checkpoints
from devgrad.bench.search_bench import format_search, format_tracking, search_bench, tracking_overhead
from devgrad.bench.sweep_bench import format_sweep, sweep_bench
from devgrad.cli_commands import USER_ERRORS, UserError, error_text

__all__ = ["USER_ERRORS", "cmd_bench", "error_text"]


def _say_bench(line: str) -> None:
    """What a long bench mode is timing now, on stderr (stdout keeps the table)."""
    print(f"devgrad bench: {line}", file=sys.stderr, flush=True)


def _bench_command(args) -> str:
    """The bench's command line, as a user would retype it (for the results page)."""
    parts = ["devgrad bench", f"--configs {args.configs}"]
    if args.device != "cpu":
        parts.append(f"--device {args.device}")
    if args.repeat is not None:
        parts.append(f"--repeat {args.repeat}")
    parts += [flag for flag, on in (("--no-torch", args.no_torch), ("--no-jax", args.no_jax),
                                     ("--torch-compile", args.torch_compile)) if on]
    if args.pause != 0.2:
        parts.append(f"--pause {args.pause}")
    return " ".join(parts + [f"--write {args.write}"])


def cmd_bench(args: argparse.Namespace) -> int:
    """``devgrad bench``: time training steps (or a whole run, a sweep, checkpoints, per-op overhead)."""
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in bench.CONFIGS]
    if unknown:
        raise UserError(f"unknown --configs {', '.join(unknown)}; choose from {', '.join(bench.CONFIGS)}")
    if args.repeat is not None and args.repeat < 1:
        raise UserError(f"--repeat {args.repeat}: give a positive number of timed blocks (rounds with --checkpoints)")
    repeat = 15 if args.repeat is None else args.repeat
    if args.pause < 0:
        raise UserError(f"--pause {args.pause}: give the seconds to sleep before each timed block (0 or more)")
    if args.write and not Path(args.write).resolve().parent.is_dir():
        raise UserError(f"--write {args.write}: the folder {Path(args.write).resolve().parent} does not exist; "
                        "create it or write elsewhere")
    modes: dict[str, Callable[[], tuple[Any, Callable[[Any], str]]]] = {
        "search": lambda: (search_bench(say=_say_bench), format_search),
        "tracking": lambda: ([tracking_overhead(5 if args.repeat is None else args.repeat, say=_say_bench)],
                             format_tracking),
        "sweep": lambda: (sweep_bench(say=_say_bench), format_sweep),
        "checkpoints": lambda: (checkpoint_bench(rounds=5 if args.repeat is None else args.repeat,
                                                 device=args.device, say=_say_bench), format_checkpoints),
        "e2e": lambda: (bench.e2e(args.e2e, args.device, None if args.no_torch else bench.import_torch()),
                        bench.format_e2e),
    }
    for mode, measure in modes.items():
        if getattr(args, mode):  # one measurement instead of the step table: printed, and as JSON on request
            rows, formatted = measure()
            print(formatted(rows))
            if args.json:
                bench.write_json({mode: rows}, args.json)
            return 0
    if args.overhead:
        o = bench.op_overhead(args.device, repeat)
        print(f"(a * b + c).sum().backward() on 2x2 float32 ({o['device']}): devgrad {o['devgrad_us']:.1f} us, "
              f"same arithmetic by hand {o['handwritten_us']:.1f} us, ratio {o['ratio']:.2f}x")
        return 0
    try:
        results = bench.run(args.device, configs, repeat=repeat, use_torch=not args.no_torch, use_jax=not args.no_jax,
                            torch_compile=args.torch_compile, pause_s=args.pause)
    except bench.BenchError as exc:  # a wrong step: a bug to report, not a user mistake
        print(f"devgrad bench: {exc}", file=sys.stderr)
        return 1
    print(bench.format_table(results))
    if args.json:
        bench.write_json(results, args.json)
        print(f"wrote {args.json}")
    if args.write:
        bench.write_markdown(results, args.write, _bench_command(args))
        print(f"wrote {args.write}")
    return 0

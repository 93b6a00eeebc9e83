"""The ``devgrad`` command line: a thin layer over the library.

User mistakes (bad spec, missing file, unavailable device) print one clear message and
exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import platform
import sys

import numpy as np

import devgrad
from devgrad.backend import DeviceError, cuda_available, cuda_unavailable_reason, cupy_version

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake the user can fix; the CLI prints it without a traceback and exits 2."""


def _info(args) -> int:
    lines = [
        f"devgrad {devgrad.__version__}",
        f"python  {platform.python_version()} ({sys.executable})",
        f"numpy   {np.__version__}",
        f"cupy    {cupy_version() or 'not installed'}",
        "devices:",
    ]
    for dev in devgrad.devices():
        lines.append(f"  {dev.description()}")
    if not cuda_available():
        lines.append(f"CUDA unavailable: {cuda_unavailable_reason()}")
    try:
        default = devgrad.default_device()
    except DeviceError as exc:
        raise UserError(str(exc)) from None
    lines.append(f"default device: {default}  (set DEVGRAD_DEVICE=cpu|cuda|cuda:N to change)")
    auto = devgrad.device("auto")
    lines.append(f"'auto' resolves to: {auto}")
    print("\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devgrad", description="devgrad: reverse-mode autodiff on NumPy/CuPy, and an MLP experiment runner.")
    parser.add_argument("--version", action="version", version=f"devgrad {devgrad.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="versions, devices found, and why CUDA is unavailable if it is")
    info.set_defaults(func=_info)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"devgrad: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("devgrad: interrupted", file=sys.stderr)
        return 130

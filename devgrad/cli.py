"""The ``devgrad`` command line: a thin layer over the library.

The parser (devgrad/cli_parser.py) is light; each command's implementation is named in
``COMMANDS`` and imported only when that command runs, so ``devgrad --help`` starts fast.
User mistakes (bad spec, missing file, unavailable device) print one clear message and
exit with status 2, without a traceback.
"""

from __future__ import annotations

import errno
import gc
import importlib
import sys

from devgrad.cli_parser import build_parser

__all__ = ["COMMANDS", "EXIT_USER_ERROR", "build_parser", "main"]

EXIT_USER_ERROR = 2

# command: "module:function" that runs it; the module also gives USER_ERRORS, the exceptions that
# are the user's to fix
COMMANDS = {
    "info": "devgrad.cli_commands:cmd_info",
    "run": "devgrad.cli_commands:cmd_run",
    "resume": "devgrad.cli_commands:cmd_resume",
    "validate": "devgrad.cli_commands:cmd_validate",
    "sweep": "devgrad.cli_commands:cmd_sweep",
    "track": "devgrad.cli_commands:cmd_track",
    "report": "devgrad.cli_commands:cmd_report",
    "examples": "devgrad.cli_commands:cmd_examples",
    "lecture": "devgrad.cli_commands:cmd_lecture",
    "plot": "devgrad.cli_commands:cmd_plot",
    "predict": "devgrad.cli_commands:cmd_predict",
    "export": "devgrad.cli_commands:cmd_export",
    "warmup": "devgrad.cli_commands:cmd_warmup",
    "bench": "devgrad.cli_bench:cmd_bench",
}


def main(argv: list[str] | None = None) -> int:
    """Run the ``devgrad`` command ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    try:
        return _dispatch(argv)
    except KeyboardInterrupt as exc:
        # Wherever Ctrl-C lands (parsing, importing the command, running it): one line, status 130.
        # A run or a sweep says how to continue it (devgrad resume / devgrad sweep --resume).
        print(f"devgrad: interrupted{'; ' + str(exc) if str(exc) else ''}", file=sys.stderr, flush=True)
        # Exit at once: the collector's pass over every object left at exit (Dask's and pandas'
        # modules among them) takes about half a second; what must be written has been, and closed.
        gc.freeze()
        return 130


def _dispatch(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    if args.command == "run" and not args.print_config:  # before the run's modules are imported
        importlib.import_module("devgrad.experiment.plot_worker").start_early(args.set)
    module_name, function = COMMANDS[args.command].split(":")
    module = importlib.import_module(module_name)
    try:
        return int(getattr(module, function)(args) or 0)
    except module.USER_ERRORS as exc:
        print(f"devgrad: error: {getattr(module, 'error_text', str)(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        # A folder that cannot be created, a full disk, a missing permission: the user's to fix.
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        hint = "; free some space on that disk (or give --out on another one)" if exc.errno == errno.ENOSPC else ""
        print(f"devgrad: error: cannot access{where}: {exc.strerror or exc}{hint}", file=sys.stderr)
        return EXIT_USER_ERROR

"""Run a Python module as ``python -m MODULE ARGS`` does, and show where it is if it hangs or crashes.

    python .ci/watchdog.py SECONDS MODULE [ARGS...]

If the module is still running after SECONDS, every thread's stack is printed to stderr (once;
the module keeps running): a GPU call that never returns shows where it waits, which a kill
from outside never tells. A crash in native code (a segfault in a ctypes call into cuBLAS, an
abort in a driver) prints the Python stack too. Both come from the standard library's
``faulthandler``, whose watchdog thread writes from C, so it works while the main thread is
stuck inside a C call that holds the GIL or never checks for signals. ``.ci/gpu-check`` wraps
every devgrad command in it, a few seconds inside that step's time limit.
"""

import faulthandler
import os
import runpy
import sys


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: python .ci/watchdog.py SECONDS MODULE [ARGS...]")
    seconds, module = float(sys.argv[1]), sys.argv[2]
    faulthandler.enable(all_threads=True)
    if seconds > 0:
        faulthandler.dump_traceback_later(seconds, repeat=False, exit=False)
    sys.argv = [module, *sys.argv[3:]]
    sys.path[0] = os.getcwd()  # as python -m: the current folder first, not .ci/
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

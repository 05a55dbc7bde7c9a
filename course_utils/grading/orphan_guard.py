"""``python -m course_utils.grading.orphan_guard MODULE [ARGS...]``: run MODULE as ``python -m``
would, and kill it (with its process group) as soon as the process that started it is gone.

A cluster task (``task.py``) starts its grading process through this guard. The grading runs in a
session of its own (``worker.run_python``), so when a dask worker is SIGKILLed, or its machine's
nanny restarts it, the grading would otherwise run on as an orphan: its CPU competes with the
retry of the same task, and its workspace is never removed. The guard's thread sees the parent
change (the orphan is adopted by init or a subreaper) within a second and ends the group; the
sandboxed kernel and answer process go with it (``bwrap --die-with-parent``).
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time


def _watch(parent: int, interval: float) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    # Only a group of our own: started directly from a shell, the group would be the shell's.
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m course_utils.grading.orphan_guard MODULE [ARGS...]")
    module = sys.argv[1]
    threading.Thread(target=_watch, args=(os.getppid(), 1.0), daemon=True).start()
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

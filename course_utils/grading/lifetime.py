"""Grading processes die with the grader, however it dies.

Each nbgrader job runs in a session of its own (so Ctrl-C in the terminal does not reach it and a
timeout can kill its whole group), which also means nothing stops it when the grader itself is
SIGKILLed: it would go on grading into a workspace nobody reads, and its kernel with it. On Linux,
:func:`die_with_parent` asks the kernel to SIGKILL the child when its parent goes
(``PR_SET_PDEATHSIG``); the sandboxed kernel below it has bwrap's ``--die-with-parent``
(``sandbox.py``), so the whole chain goes. Elsewhere it does nothing.

``PR_SET_PDEATHSIG`` fires when the *thread* that started the child ends: start children from
threads that outlive them (the worker threads of a pool do).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that makes the child die with this process
    (None where the platform cannot)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child
    parent, sigkill = os.getpid(), int(signal.SIGKILL)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sigkill)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec

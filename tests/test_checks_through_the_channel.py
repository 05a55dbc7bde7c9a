"""Every check test, again, the way trusted grading runs the checks.

``COURSE_REMOTE_CHECKS=1`` (tests/conftest.py) hands each answer a test gives a ``check_*`` function
to an answer process, and the check a stand-in that calls it over the scoring channel
(course_utils/grading/scoring/remote.py). The same assertions must hold: a buggy answer fails with
the same hint, a correct one passes, through the channel as in a learner's kernel.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_check_suite_passes_through_the_channel() -> None:
    here = Path(__file__).name  # itself excluded: it would start itself again, without end
    files = sorted(
        str(p.relative_to(REPO))
        for p in (REPO / "tests").glob("test_checks_*.py")
        if p.name != here
    )
    env = dict(os.environ, COURSE_REMOTE_CHECKS="1")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # a hang guard only
    )
    tail = "\n".join(run.stdout.splitlines()[-40:])
    assert run.returncode == 0, tail
    assert " passed" in tail and "failed" not in tail.splitlines()[-1], tail

"""Autograde one student's stage and write its feedback, in one Python process.

``python -m course_utils.grading.nbgrader_job STAGE STUDENT [--cell-timeout N] [--memory-limit B]
[--isolate]``, run in a grading workspace (``worker.py``). It does what ``nbgrader autograde STAGE
--student STUDENT --force`` then ``nbgrader generate_feedback ...`` do, through nbgrader's Python
API, so nbgrader is imported once per submission instead of twice, with trusted scoring in between
(``scoring/``): the kernel runs the notebook with its test cells emptied while the scorer, a
process of its own, loads the student's answers and runs the checks against them; after autograde
this process writes the scorer's points into the gradebook and ``trusted_scores.json``. The memory
limit (bytes) is set on this process first, so the kernel, the scorer and the answer process
inherit it (``memory.py``). Exit code: 0 all
done, 1 autograde failed, 2 feedback failed, 3 scoring failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from course_utils.grading.feedback import make_inert
from course_utils.grading.memory import cap_memory
from course_utils.grading.startup import skip_slow_optional_imports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage")
    parser.add_argument("student")
    parser.add_argument("--cell-timeout", type=int)
    parser.add_argument("--memory-limit", type=int, help="bytes; the kernel inherits the cap")
    parser.add_argument("--isolate", action="store_true", help="run the answer process sandboxed")
    args = parser.parse_args(argv)
    phases = _Phases()
    not_capped = cap_memory(args.memory_limit)
    if not_capped:
        print(not_capped, flush=True)
    skip_slow_optional_imports()
    workspace = Path.cwd()
    config = _config(workspace, args.cell_timeout)
    from course_utils.grading.scoring import job

    # The scorer works on the other core while the kernel runs the notebook (scoring/job.py).
    scorer = job.start(
        workspace,
        args.stage,
        args.student,
        isolate=args.isolate,
        cell_timeout=float(config.Execute.timeout or 120),
    )
    phases.mark("start scorer")
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    phases.mark("import nbgrader")
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.autograde(args.stage, args.student)
    phases.mark("autograde (kernel)")
    print(result.get("log", ""), flush=True)
    if not result["success"]:
        print(result.get("error", ""), flush=True)
        scorer.stop()
        return 1
    try:
        sheet = job.finish(
            workspace, args.stage, args.student, scorer, config.CourseDirectory.course_id
        )
    except Exception as error:  # noqa: BLE001 - no sheet means no score: the worker says so
        print(f"trusted scoring failed: {error!r}", flush=True)
        return 3
    print(f"trusted scores: {sheet.scores()} in {sheet.seconds:.1f} s", flush=True)
    phases.mark("wait for the scorer, record")
    result = api.generate_feedback(args.stage, args.student)
    print(result.get("log", ""), flush=True)
    if not result["success"]:
        print(result.get("error", ""), flush=True)
        return 2
    # feedback.py: the student's HTML in the feedback pages made inert
    make_inert(
        Path(api.coursedir.format_path(api.coursedir.feedback_directory, args.student, args.stage))
    )
    phases.mark("feedback")
    print(phases, flush=True)
    return 0


class _Phases:
    """Seconds spent in each step of the job, printed as the last line of its log."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self.last
        self.last = now

    def __str__(self) -> str:
        return "job phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in self.seconds.items())


def _config(workspace: Path, cell_timeout: int | None):
    """nbgrader's configuration as ``NbGrader.load_config_file`` loads it (Jupyter's config path,
    then the workspace's ``nbgrader_config.py``, which wins), read with traitlets alone (nbgrader
    is imported later, while the scorer starts), with the cell timeout and the test cells emptied
    in the kernel."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    for folder in [*reversed(jupyter_config_path()), str(workspace)]:  # lowest priority first
        if (Path(folder) / "nbgrader_config.py").is_file():
            config.merge(PyFileConfigLoader("nbgrader_config.py", path=folder).load_config())
    if cell_timeout:
        config.Execute.timeout = cell_timeout
    _skip_test_cells_in_the_kernel(config)
    return config


def _skip_test_cells_in_the_kernel(config) -> None:
    """Empty the test cells around execution (``preprocessors.SkipTestCells``)."""
    steps = list(config.Autograde.autograde_preprocessors)
    execute = next(i for i, s in enumerate(steps) if str(s).endswith("Execute"))
    prefix = "course_utils.grading.preprocessors."
    steps[execute : execute + 1] = [
        f"{prefix}SkipTestCells",
        steps[execute],
        f"{prefix}RestoreTestCells",
    ]
    config.Autograde.autograde_preprocessors = steps


if __name__ == "__main__":
    sys.exit(main())

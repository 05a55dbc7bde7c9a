"""Autograde one student's stage and write its feedback, in one Python process.

``python -m course_utils.grading.nbgrader_job STAGE STUDENT [--cell-timeout N] [--memory-limit B]
[--isolate]``, run in a grading workspace (``worker.py``). It does what ``nbgrader autograde STAGE
--student STUDENT --force`` then ``nbgrader generate_feedback ...`` do, through nbgrader's Python
API, so nbgrader is imported once per submission instead of twice, with trusted scoring in between
(``scoring/``): the kernel runs the notebook with its test cells emptied, while a second process
loads the student's answers; after autograde this process runs the checks against them and writes
the points into the gradebook and ``trusted_scores.json``. The memory limit (bytes) is set on this
process first, so the kernel and the answer process inherit it (``memory.py``). Exit code: 0 all
done, 1 autograde failed, 2 feedback failed, 3 scoring failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_utils.grading.feedback import make_inert
from course_utils.grading.memory import cap_memory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage")
    parser.add_argument("student")
    parser.add_argument("--cell-timeout", type=int)
    parser.add_argument("--memory-limit", type=int, help="bytes; the kernel inherits the cap")
    parser.add_argument("--isolate", action="store_true", help="run the answer process sandboxed")
    args = parser.parse_args(argv)
    not_capped = cap_memory(args.memory_limit)
    if not_capped:
        print(not_capped, flush=True)

    from nbgrader.apps import NbGraderAPI
    from nbgrader.apps.nbgraderapp import NbGrader
    from nbgrader.coursedir import CourseDirectory

    from course_utils.grading.scoring import job

    app = NbGrader()
    app.load_config_file()  # nbgrader_config.py in the working directory
    config = app.config
    if args.cell_timeout:
        config.Execute.timeout = args.cell_timeout
    _skip_test_cells_in_the_kernel(config)
    workspace = Path.cwd()
    pending = job.start(
        workspace,
        args.stage,
        args.student,
        isolate=args.isolate,
        cell_timeout=float(config.Execute.timeout or 120),
    )
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.autograde(args.stage, args.student)
    print(result.get("log", ""), flush=True)
    if not result["success"]:
        print(result.get("error", ""), flush=True)
        pending.wait().close()
        return 1
    try:
        sheet = job.finish(
            workspace, args.stage, args.student, pending, config.CourseDirectory.course_id
        )
    except Exception as error:  # noqa: BLE001 - no sheet means no score: the worker says so
        print(f"trusted scoring failed: {error!r}", flush=True)
        return 3
    print(f"trusted scores: {sheet.scores()} in {sheet.seconds:.1f} s", flush=True)
    result = api.generate_feedback(args.stage, args.student)
    print(result.get("log", ""), flush=True)
    if not result["success"]:
        print(result.get("error", ""), flush=True)
        return 2
    # feedback.py: the student's HTML in the feedback pages made inert
    make_inert(
        Path(api.coursedir.format_path(api.coursedir.feedback_directory, args.student, args.stage))
    )
    return 0


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

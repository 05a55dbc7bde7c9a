"""Autograde one student's stage and write its feedback, in one Python process.

``python -m course_utils.grading.nbgrader_job STAGE STUDENT [--cell-timeout N] [--memory-limit B]``,
run in a grading workspace (``worker.py``). It does what ``nbgrader autograde STAGE --student
STUDENT --force`` then ``nbgrader generate_feedback ...`` do, through nbgrader's Python API, so
nbgrader is imported once per submission instead of twice. The memory limit (bytes) is set on this
process first, so the kernel it starts inherits it (``memory.py``). Exit code: 0 both done,
1 autograde failed, 2 feedback failed.
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
    args = parser.parse_args(argv)
    not_capped = cap_memory(args.memory_limit)
    if not_capped:
        print(not_capped, flush=True)

    from nbgrader.apps import NbGraderAPI
    from nbgrader.apps.nbgraderapp import NbGrader
    from nbgrader.coursedir import CourseDirectory

    app = NbGrader()
    app.load_config_file()  # nbgrader_config.py in the working directory
    config = app.config
    if args.cell_timeout:
        config.Execute.timeout = args.cell_timeout
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    for step, code in ((api.autograde, 1), (api.generate_feedback, 2)):
        result = step(args.stage, args.student)
        print(result.get("log", ""), flush=True)
        if not result["success"]:
            print(result.get("error", ""), flush=True)
            return code
    # feedback.py: the student's HTML in the feedback pages made inert (the one inbox-hygiene call)
    make_inert(
        Path(api.coursedir.format_path(api.coursedir.feedback_directory, args.student, args.stage))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``course grade SUBMISSIONS``: autograde a folder of student submissions with nbgrader.

SUBMISSIONS holds one folder (or ``.zip``) per student, named by student id, containing stage notebooks
anywhere inside (``<student>/01_data/01_data.ipynb`` or ``<student>/01_data.ipynb``). Each is copied to
``_grading/submitted/<student>/<stage>/``, graded with ``nbgrader autograde`` (training shrinks under
``NBGRADER_EXECUTION``), then grades are exported to ``_grading/grades.csv`` and feedback (hidden tests
removed) written to ``_grading/feedback/``. A notebook whose name does not match a stage (for example
``01_data-Copy1.ipynb``) is reported by name, not silently scored 0.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from course_utils.grading.layout import nbgrader, stages


@dataclass
class StageGrade:
    student: str
    stage: str
    score: float
    max_score: float
    cells: dict[str, float] = field(default_factory=dict)


@dataclass
class GradeReport:
    grades: list[StageGrade] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    csv: Path | None = None

    def score(self, student: str, stage: str) -> float:
        for grade in self.grades:
            if grade.student == student and grade.stage == stage:
                return grade.score
        raise KeyError((student, stage))


def _student_folders(submissions: Path, workspace: Path) -> dict[str, Path]:
    folders = {}
    for entry in sorted(submissions.iterdir()):
        if entry.is_dir():
            folders[entry.name] = entry
        elif entry.suffix == ".zip":
            target = workspace / entry.stem
            with zipfile.ZipFile(entry) as archive:
                archive.extractall(target)
            folders[entry.stem] = target
    return folders


def collect(root: Path, submissions: Path) -> tuple[dict[str, list[str]], list[str]]:
    """Copy submissions into ``_grading/submitted``; returns ({stage: [students]}, problems)."""
    known = stages(root)
    by_stage: dict[str, list[str]] = {s: [] for s in known}
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for student, folder in _student_folders(submissions, Path(tmp)).items():
            found_any = False
            for notebook in sorted(folder.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in notebook.parts:
                    continue
                stage = notebook.stem
                if stage not in known:
                    guess = [s for s in known if notebook.stem.startswith(s)]
                    hint = f" (rename it to {guess[0]}.ipynb)" if guess else ""
                    problems.append(f"{student}: {notebook.name} is not a stage notebook{hint}")
                    continue
                target = root / "_grading" / "submitted" / student / stage
                if target.exists():
                    shutil.rmtree(target)
                target.mkdir(parents=True)
                shutil.copy2(notebook, target / notebook.name)
                by_stage[stage].append(student)
                found_any = True
            if not found_any:
                problems.append(f"{student}: no stage notebook found")
    return {s: v for s, v in by_stage.items() if v}, problems


def grade(root: Path, submissions: Path) -> GradeReport:
    """Autograde every submission in ``submissions``; see the module docstring."""
    by_stage, problems = collect(root, Path(submissions))
    report = GradeReport(problems=problems)
    release_dir = root / "_grading" / "release"
    for stage in by_stage:
        nbgrader(
            root,
            "generate_assignment",
            stage,
            "--force",
            f"--CourseDirectory.release_directory={release_dir}",
        )
        result = nbgrader(root, "autograde", stage, "--force", check=False)
        if result.returncode != 0:
            report.problems.append(
                f"{stage}: nbgrader reported errors for some submissions (cells that raised or timed "
                "out are scored 0; see _grading/autograded/)"
            )
        nbgrader(root, "generate_feedback", stage, "--force", check=False)
    db_url = f"sqlite:///{root / '_grading' / 'gradebook.db'}"
    with Gradebook(db_url, course_id="the-recipe") as gradebook:
        for stage, students in by_stage.items():
            for student in students:
                try:
                    submission = gradebook.find_submission(stage, student)
                except MissingEntry:
                    report.problems.append(f"{student}/{stage}: not graded")
                    continue
                cells = {}
                for notebook in submission.notebooks:
                    for grade_ in notebook.grades:
                        cells[grade_.name] = grade_.score
                report.grades.append(
                    StageGrade(
                        student, stage, submission.code_score, submission.max_code_score, cells
                    )
                )
    csv = root / "_grading" / "grades.csv"
    nbgrader(root, "export", f"--to={csv}", check=False)
    report.csv = csv if csv.exists() else None
    return report

"""nbgrader configuration for The Recipe (see shared GRADING notes in the README's instructor section).

solutions/<stage>/<stage>.ipynb is the source; nbgrader writes the student release to notebooks/ and
everything produced by grading (submissions, autograded copies, feedback, gradebook) under _grading/,
which git ignores.
"""

c = get_config()  # noqa: F821 - injected by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "the-recipe"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "_grading/submitted"
c.CourseDirectory.autograded_directory = "_grading/autograded"
c.CourseDirectory.feedback_directory = "_grading/feedback"
c.CourseDirectory.db_url = "sqlite:///_grading/gradebook.db"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "results"]

# Every notebook uses the plain python3 kernel; submissions are forced onto it.
c.Execute.kernel_name = "python3"
# Per cell: training cells shrink under NBGRADER_EXECUTION, so 120 s is generous; an infinite loop
# in one cell costs that cell, not the batch.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# A dead kernel (os._exit, segfault) grades the cells that ran instead of failing the notebook, and
# no output is kept beyond 20k characters (nbgrader's LimitOutput only counts lines).
c.Autograde.autograde_preprocessors = [
    "course_utils.grading.preprocessors.CrashTolerantExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "course_utils.grading.preprocessors.LimitOutputSize",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Students who add, delete or retype cells still get graded.
c.OverwriteCells.add_missing_cells = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.enforce_metadata = True

# Feedback pages carry student-authored markdown and outputs: nbconvert drops script from them even
# when `nbgrader generate_feedback` is run by hand (course grade also runs grading/feedback.py).
c.HTMLExporter.sanitize_html = True

# Feedback never shows the hidden tests.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "course_utils.grading.preprocessors.HideHiddenTestCode",  # tracebacks quote hidden lines
    "nbgrader.preprocessors.ClearHiddenTests",
]

c.IgnorePattern.enabled = True
# A stderr chunk that is a warning (FutureWarning, UserWarning, a logging WARNING...) is dropped
# before grading, so correct code that warns keeps its points; other stderr still fails the cell.
c.IgnorePattern.pattern = r"(?i)warning"

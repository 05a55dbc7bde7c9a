"""nbgrader preprocessors that keep one broken submission from costing more than it should.

``nbgrader_config.py`` puts them in place of nbgrader's ``Execute`` and after its ``LimitOutput``:

* :class:`CrashTolerantExecute`: when the kernel dies (``os._exit``, a segfault, the kernel killing
  itself, running out of memory), nbgrader gives up on the whole notebook and records no grade. Here
  the cell that was running gets an error output naming the cause, every later cell gets a "not run"
  error, and the notebook is graded as it stands: tests that passed before the crash keep their
  points, the rest score 0.
* :class:`LimitOutputSize`: nbgrader's ``LimitOutput`` counts lines, so one 10 MB line passes. This
  caps each text output at ``max_chars`` characters, keeping the head and the tail.
"""

from __future__ import annotations

from typing import Any

from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer

KERNEL_DIED = "KernelDied"
NOT_RUN = "NotRun"


class CrashTolerantExecute(Execute):
    """nbgrader's ``Execute`` that grades what ran before a kernel death instead of nothing."""

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):
        self._died_in: int | None = None
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        if self._died_in is not None:
            if cell.cell_type == "code":
                cell.outputs = [
                    _error(NOT_RUN, f"not run: the kernel died in cell {self._died_in}")
                ]
            return cell, self.resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._died_in = index
            self.log.error("The kernel died while running cell %d", index)
            cell.outputs = list(cell.get("outputs", [])) + [
                _error(
                    KERNEL_DIED,
                    "the kernel died while running this cell (os._exit, sys.exit from a thread, a "
                    "crash in native code, the process killing itself, or running out of memory)",
                )
            ]
            return cell, self.resources


def _error(ename: str, evalue: str) -> NotebookNode:
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class LimitOutputSize(NbGraderPreprocessor):
    """Cap every stream and text output of a code cell at ``max_chars`` characters."""

    max_chars = Integer(20_000, help="characters kept per output (-1: no limit)").tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, cell_index: int):
        if cell.cell_type != "code" or self.max_chars < 0:
            return cell, resources
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                output.text = self._clip(output.text)
            elif "data" in output and isinstance(output.data.get("text/plain"), str):
                output.data["text/plain"] = self._clip(output.data["text/plain"])
        return cell, resources

    def _clip(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        half = self.max_chars // 2
        cut = len(text) - 2 * half
        return f"{text[:half]}\n... [{cut} characters of output removed by the grader] ...\n{text[-half:]}"


class HideHiddenTestCode(NbGraderPreprocessor):
    """Shorten tracebacks in cells with hidden tests to their last line, for feedback.

    nbgrader's ``ClearHiddenTests`` removes the hidden lines from the cell's source, but a failing
    hidden test's traceback quotes them again. Runs before ``ClearHiddenTests``, which it needs to
    recognise the cells; the error's name and message (the check's verdict) stay.
    """

    marker = "BEGIN HIDDEN TESTS"

    def preprocess_cell(self, cell: NotebookNode, resources: Any, cell_index: int):
        if cell.cell_type == "code" and self.marker in cell.source:
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


class SkipTestCells(NbGraderPreprocessor):
    """Empty every autograded test cell before the kernel runs the notebook (``course grade``).

    Under trusted scoring the tests run outside the student's kernel (``scoring/score.py``), so the
    kernel never sees a test, hidden or visible: nothing it prints or patches can touch a score, and
    printing ``In`` at the end of a notebook shows no hidden test. :class:`RestoreTestCells` puts the
    sources back after execution, so the autograded notebook and the feedback show the tests as
    usual. Never configure this without the trusted scorer: empty test cells would pass.
    """

    def preprocess(self, nb: NotebookNode, resources: Any):
        stash = resources.setdefault("course_test_sources", {})
        for index, cell in enumerate(nb.cells):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                stash[index] = cell.source
                cell.source = ""
        return nb, resources


class RestoreTestCells(NbGraderPreprocessor):
    """Put back the test cells :class:`SkipTestCells` emptied (run it right after execution)."""

    def preprocess(self, nb: NotebookNode, resources: Any):
        for index, source in resources.pop("course_test_sources", {}).items():
            if index < len(nb.cells):
                nb.cells[index].source = source
        return nb, resources

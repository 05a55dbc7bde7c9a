"""What a learner reads when a check fails: each FAIL line once, wrapped on words, no traceback."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from course_utils.checks._report import WIDTH, CheckFailed, CheckResult, unwrap, wrap

# Forgets the modulating factor and alpha: plain BCE, so several cases fail with long FAIL lines.
WRONG_FOCAL = (
    "import torch\n"
    "from course_utils.checks import check_focal_loss\n\n"
    "def focal_loss(logits, targets, alpha=0.25, gamma=2.0):\n"
    "    return torch.nn.functional.binary_cross_entropy_with_logits(\n"
    "        logits, targets, reduction='none')\n"
)


def test_require_raises_an_assertion_error_that_renders_as_one_line() -> None:
    lines = ["FAIL f: case a: expected 1, got 2", "FAIL f: case b: expected 3, got 4"]
    with pytest.raises(AssertionError, match="case b") as caught:
        CheckResult("f", False, lines).require()
    assert isinstance(caught.value, CheckFailed) and caught.value.lines == lines
    rendered = caught.value._render_traceback_()
    assert len(rendered) == 1 and "the 2 FAIL lines above" in rendered[0]
    assert "expected" not in rendered[0]  # the FAIL lines are not repeated


def test_wrap_breaks_on_spaces_and_unwrap_joins_the_verdict_back() -> None:
    line = (
        "FAIL focal_loss: gamma=0 equals alpha-weighted BCE: " + "expected tensor(shape=(4,)) " * 8
    )
    wrapped = wrap(line.strip())
    assert len(wrapped) > 1 and all(len(part) <= WIDTH for part in wrapped)
    assert all(part.startswith("    ") for part in wrapped[1:])
    assert unwrap([*wrapped, "PASS g: fine"]) == [" ".join(line.split()), "PASS g: fine"]
    token = "x" * (WIDTH + 10)  # a word longer than the width is kept whole, never cut
    assert wrap(f"FAIL f: {token}") == ["FAIL f:", f"    {token}"]


def test_a_failing_check_in_a_kernel_shows_its_fail_lines_once_and_no_traceback(tmp_path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(WRONG_FOCAL),
        nbformat.v4.new_code_cell("check_focal_loss(focal_loss).require()"),
    ]
    NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=120).execute()
    outputs = nb.cells[1].outputs
    stdout = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    errors = [o for o in outputs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "CheckFailed"  # the cell fails: scores 0
    shown = stdout + "\n".join(errors[0].traceback)
    assert "Traceback" not in shown and "course_utils/" not in shown and ".py" not in shown
    verdicts = unwrap(stdout.splitlines())
    fails = [line for line in verdicts if line.startswith("FAIL")]
    assert len(fails) >= 2, stdout
    for fail in fails:
        assert " ".join(shown.split()).count(" ".join(fail.split())) == 1, fail
    assert all(len(line) <= WIDTH for line in stdout.splitlines()), stdout

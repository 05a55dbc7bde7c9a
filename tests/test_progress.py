"""A training bar in a notebook leaves text, not a widget a reopened notebook cannot find."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from course_utils.progress import progress_bar


def test_outside_a_notebook_it_is_a_text_bar(capsys) -> None:
    assert list(progress_bar(range(3), desc="demo", show=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_in_a_kernel_the_widget_output_becomes_its_last_text_line() -> None:
    nb = nbformat.v4.new_notebook()
    code = (
        "from course_utils.progress import progress_bar\n"
        "for epoch in progress_bar(range(3), desc='demo'):\n"
        "    pass\n"
        "for epoch in progress_bar(range(5), desc='stopped early'):\n"
        "    if epoch == 1:\n"
        "        break\n"
    )
    nb.cells = [nbformat.v4.new_code_cell(code)]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data", "display_data"], outputs
    assert all(set(o.data) == {"text/plain"} for o in outputs), outputs  # no widget view left
    assert outputs[0].data["text/plain"].startswith("demo: 100%")
    assert "2/5" in outputs[1].data["text/plain"] or "1/5" in outputs[1].data["text/plain"]

"""course_utils.stand_in: the learner's function while it works, the reference while it raises."""

from __future__ import annotations

from course_utils.stand_in import yours_or_reference


def test_a_working_answer_is_used(capsys) -> None:
    call = yours_or_reference(lambda x: x + 1, lambda x: -1)
    assert call(1) == 2 and capsys.readouterr().out == ""


def test_a_raising_answer_falls_back_and_says_so_once(capsys) -> None:
    def unfinished(x):
        raise NotImplementedError

    call = yours_or_reference(unfinished, lambda x: x * 10)
    assert [call(1), call(2)] == [10, 20]
    out = capsys.readouterr().out
    assert out.count("unfinished raised NotImplementedError") == 1 and "reference" in out

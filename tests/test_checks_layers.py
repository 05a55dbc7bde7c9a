"""Properties shared by the layer and init checks: contracts of the inits, library names in comments."""

from __future__ import annotations

import pytest

from course_utils.checks.dropout import check_dropout
from course_utils.checks.final_bias_init import check_final_bias_init
from course_utils.checks.group_norm import check_group_norm
from course_utils.checks.lstm_forget_bias import check_lstm_forget_bias
from tests.check_helpers import (
    NOT_RETURNED,
    REPLACED,
    assert_fail_lines,
    assert_pass_lines,
    run_check,
)
from tests.test_checks_dropout import dropout_mentioning_the_library
from tests.test_checks_final_bias_init import final_bias_new_parameter, final_bias_no_return
from tests.test_checks_group_norm import gn_mentioning_the_library
from tests.test_checks_lstm_forget_bias import forget_new_parameters, forget_no_return


@pytest.mark.parametrize(
    ("check", "answer", "needle"),
    [
        (check_final_bias_init, final_bias_new_parameter, f"bias {REPLACED}"),
        (check_final_bias_init, final_bias_no_return, NOT_RETURNED),
        (check_lstm_forget_bias, forget_new_parameters, REPLACED),
        (check_lstm_forget_bias, forget_no_return, NOT_RETURNED),
    ],
)
def test_an_init_that_breaks_its_contract_fails(check, answer, needle, capsys):
    assert_fail_lines(run_check(capsys, check, answer)[0], needle)


@pytest.mark.parametrize(
    ("check", "answer"),
    [
        (check_group_norm, gn_mentioning_the_library),
        (check_dropout, dropout_mentioning_the_library),
    ],
)
def test_an_answer_that_only_mentions_the_library_passes_hidden(check, answer, capsys):
    assert_pass_lines(run_check(capsys, check, answer, hidden=True)[0])

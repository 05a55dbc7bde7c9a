"""Submissions that try to forge their points: the trusted-scoring area of the hostile class.

Each starts from the blank release (both answers still ``raise NotImplementedError``), or from
answers that return nothing useful, and attacks where the score used to be decided: the student's
own kernel (IPython's execution hooks, the check's result class, the report class in a check's
globals, an AST transformer, comparison functions, tensor subclasses), the hidden tests it could see
(``In``), or the reference it could reach under another name. Under trusted scoring none can earn a
point: the kernel decides nothing, and what the answers return is judged outside.
"""

from __future__ import annotations

from nbformat import NotebookNode

from tests.grading_course import (
    EX1,
    EX1_TEST,
    EX2,
    EX2_RIGHT,
    EX2_TEST,
    Places,
    Variant,
    _insert_after,
    _set,
    ex1_answer,
    ex2_answer,
    release_like,
)

ZERO = {EX1_TEST: 0.0, EX2_TEST: 0.0}
EX2_ONLY = {EX1_TEST: 0.0, EX2_TEST: 2.0}
HIDDEN_MARK = "hidden=True"  # in every hidden test of the tiny course, in no visible one


def _blank_then(*sources: str):
    """The blank release with ``sources`` as learner cells right after exercise 2's answer."""

    def build(nb: NotebookNode, places: Places) -> NotebookNode:
        return _insert_after(release_like(nb), EX2, *sources)

    return build


SWALLOW_ERRORS = """\
ip = get_ipython()
run = ip.run_code


async def forgiving(code_obj, result=None, *, async_=False):
    try:
        return await run(code_obj, result, async_=async_)
    except BaseException:
        return False


ip.run_code = forgiving"""

REQUIRE_ON_THE_RESULT_CLASS = """\
import course_utils.checks as visible
outcome = visible.check_expected_initial_loss(lambda n: 0.0)
type(outcome).require = lambda self: None
type(outcome).__bool__ = lambda self: True"""

REPORT_IN_GLOBALS = """\
from course_utils.checks import check_log_uniform as probe
names = probe.__wrapped__.__globals__ if hasattr(probe, "__wrapped__") else probe.__globals__


class Lenient:
    def __init__(self, name):
        self.name = name
        self.failures = []

    def case(self, description):
        import contextlib
        return contextlib.suppress(Exception)

    def __getattr__(self, attr):
        return lambda *a, **k: None

    def finish(self, summary):
        outcome = names["CheckResult"](self.name, True, ["PASS " + self.name])
        return outcome


names["Re" + "port"] = Lenient"""

AST_TRANSFORMER = """\
import ast

shell = get_ipython()


class DropRaises(ast.NodeTransformer):
    def visit_Raise(self, node):
        return ast.Pass()

    def visit_Expr(self, node):
        text = ast.unparse(node)
        return ast.Pass() if "require" in text else node


getattr(shell, "ast_" + "transformers").append(DropRaises())"""

ALWAYS_CLOSE = """\
import math

import numpy as np
import torch

torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
math.isclose = lambda *a, **k: True
np.allclose = lambda *a, **k: True"""

AGREEABLE_TENSOR = """\
import torch


class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in {"allclose", "equal", "isclose", "eq", "__eq__"}:
            return True
        return super().__torch_function__(func, types, args, kwargs or {})"""

PRINT_IN = "print(In)\nprint(_ih)"


def _zeros_answers(nb: NotebookNode, places: Places) -> NotebookNode:
    _set(nb, EX1, ex1_answer("return 0.0"))
    _set(nb, EX2, ex2_answer("return np.zeros(n)"))
    return _insert_after(nb, EX2, ALWAYS_CLOSE)


def _agreeable_answers(nb: NotebookNode, places: Places) -> NotebookNode:
    _set(nb, EX1, ex1_answer("return 0.0"))
    _set(
        nb,
        EX2,
        AGREEABLE_TENSOR + "\n\n\n" + ex2_answer("return torch.zeros(n).as_subclass(Agreeable)"),
    )
    return nb


def _aliased_reference(nb: NotebookNode, places: Places) -> NotebookNode:
    """The banned reference bound to a name in another cell; the answer calls the name."""
    _insert_after(
        nb,
        EX1_TEST,
        "from course_utils import sanity\n\nloss_at_init = sanity.expected_initial_loss",
    )
    return _set(nb, EX1, ex1_answer("return loss_at_init(num_classes)"))


def _default_argument_reference(nb: NotebookNode, places: Places) -> NotebookNode:
    head = (
        "from course_utils import sanity\n\n\n"
        "def expected_initial_loss(num_classes: int, _f=sanity.expected_initial_loss) -> float:\n"
        "    return _f(num_classes)"
    )
    return _set(nb, EX1, head)


def _prints_history(nb: NotebookNode, places: Places) -> NotebookNode:
    return _insert_after(release_like(nb), EX2_TEST, PRINT_IN)


def _forges_the_channel(nb: NotebookNode, places: Places) -> NotebookNode:
    """Answers that write a forged 'PASS' reply straight to the scorer's pipe, then hang."""
    forged = (
        "import os, struct, json\n"
        "def _forge():\n"
        "    header = json.dumps({'$dict': [['op', 'result'], ['value', 0.0]]}).encode()\n"
        "    body = struct.pack('>Q', len(header)) + header\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        "            os.write(fd, struct.pack('>Q', len(body)) + body)\n"
        "        except OSError:\n"
        "            pass\n"
    )
    _set(nb, EX1, forged + "\n\n" + ex1_answer("_forge()\nreturn 0.0"))
    return _set(nb, EX2, ex2_answer(EX2_RIGHT))


VARIANTS_SCORING: dict[str, Variant] = {
    "sc01_swallows_errors": Variant(
        _blank_then(SWALLOW_ERRORS), ZERO, "graded", "blank; wraps ip.run_code to drop every error"
    ),
    "sc02_result_class": Variant(
        _blank_then(REQUIRE_ON_THE_RESULT_CLASS),
        ZERO,
        "graded",
        "blank; neuters CheckResult.require through type(result)",
    ),
    "sc03_report_in_globals": Variant(
        _blank_then(REPORT_IN_GLOBALS),
        ZERO,
        "graded",
        "blank; swaps Report in a check's __globals__ for one that always passes",
    ),
    "sc04_ast_transformer": Variant(
        _blank_then(AST_TRANSFORMER),
        ZERO,
        "graded",
        "blank; registers an AST transformer (getattr name) that drops raise and require()",
    ),
    "sc05_always_close": Variant(
        _zeros_answers,
        ZERO,
        "graded",
        "answers return zeros; torch.allclose/equal, math.isclose, np.allclose forced to True",
    ),
    "sc06_agreeable_tensor": Variant(
        _agreeable_answers,
        ZERO,
        "graded",
        "answers return a Tensor subclass whose __torch_function__ says equal to anything",
    ),
    "sc07_aliased_reference": Variant(
        _aliased_reference,
        EX2_ONLY,
        "graded",
        "exercise 1 calls the banned reference through a name bound in another cell",
    ),
    "sc08_default_argument_reference": Variant(
        _default_argument_reference,
        EX2_ONLY,
        "graded",
        "exercise 1 calls the banned reference held in a default argument",
    ),
    "sc09_prints_history": Variant(
        _prints_history,
        ZERO,
        "graded",
        "blank; prints In and _ih at the end, hoping for hidden tests",
    ),
    "sc10_forges_the_channel": Variant(
        _forges_the_channel,
        EX2_ONLY,
        "graded",
        "exercise 1 writes a forged reply frame to every descriptor of its process",
    ),
}

"""How every check reports: one PASS line, or FAIL lines that say what broke and why.

Every check in ``course_utils.checks`` has the same interface::

    result = check_something(learner_fn)   # prints, returns a CheckResult

It prints one line ``PASS <name>: <what was verified>`` or one ``FAIL <name>: ...`` line per failing case,
each naming the input, expected vs got, and the classic bug it resembles. Output goes to stdout only
(nbgrader scores anything on stderr as a failure) and warnings raised inside the learner's code are
silenced. ``CheckResult`` is truthy when the check passed; ``result.require()`` raises ``CheckFailed`` (an
``AssertionError``, so nbgrader scores the grade cell 0) with the failure text.

In a notebook the learner should read each FAIL line once, readable at a normal width: JupyterLab
breaks long output lines anywhere, even mid-word, so inside a kernel the printed lines are wrapped at
``WIDTH`` columns on word boundaries (``course_utils.feedback_text``), and ``CheckFailed`` renders as
one short line instead of a traceback that would repeat the FAIL lines and point into this package.
``CheckResult.lines`` always holds the unwrapped lines, one per verdict.

Write a check as a sequence of cases::

    report = Report("focal_loss")
    with report.case("gamma=0 equals alpha-weighted BCE"):
        got = learner(x, y, gamma=0.0)
        report.expect_close(got, expected, hint="...")
    return report.finish("matches torchvision on 12 random inputs")

A case that raises inside the learner's code is recorded as a FAIL with the exception type and message
(``NotImplementedError`` becomes "not implemented yet"), never propagated. ``report.note(message)`` adds
a FAIL line to the current case without stopping it: side effects (an input changed in place, global
random state touched) are told whether or not the values turn out right.
"""

from __future__ import annotations

import contextlib
import io
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from course_utils.feedback_text import CONTINUATION, WIDTH, in_notebook, unwrap, wrap

__all__ = ["CONTINUATION", "WIDTH", "CheckFailed", "CheckResult", "Report", "unwrap", "wrap"]


class CaseFailed(Exception):
    """Raised inside a case to stop it with a message; caught by ``Report.case``."""


@dataclass
class CheckResult:
    """Outcome of one check: ``passed`` and the lines it printed."""

    name: str
    passed: bool
    lines: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def require(self) -> None:
        """Raise ``CheckFailed`` (an ``AssertionError``) with the failure lines unless it passed."""
        if not self.passed:
            raise CheckFailed(self.name, self.lines)


class CheckFailed(AssertionError):
    """A failed check: fails the grade cell, shown as one line (the FAIL lines are already printed).

    ``str()`` is the FAIL lines (for tests, logs and nbgrader's error value). IPython calls
    ``_render_traceback_`` instead of formatting a traceback, so the notebook shows no frames from
    ``course_utils`` and does not print the FAIL lines a second time.
    """

    def __init__(self, name: str, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.name = name
        self.lines = list(lines)

    def _render_traceback_(self) -> list[str]:
        fails = sum(line.startswith("FAIL") for line in self.lines)
        what = "the FAIL line above" if fails == 1 else f"the {fails} FAIL lines above"
        return [
            f"\x1b[0;31m{self.name} failed\x1b[0m: see {what}; fix the exercise and run it again."
        ]


def describe(value: object, max_items: int = 6) -> str:
    """Short text for a tensor/number/array: shape, dtype, device and the first few values."""
    if isinstance(value, torch.Tensor):
        head = f"tensor(shape={tuple(value.shape)}, dtype={str(value.dtype).replace('torch.', '')}"
        if value.device.type != "cpu":
            head += f", device={value.device.type}"
        if value.device.type == "meta":
            return head + ")"
        flat = value.detach().flatten()[:max_items].float().tolist()
        more = ", ..." if value.numel() > max_items else ""
        return head + f", values=[{', '.join(f'{v:.4g}' for v in flat)}{more}])"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."


class Report:
    """Collects the cases of one check and prints the verdict."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failures: list[str] = []
        self.cases = 0
        self.not_implemented = False
        self._case = ""

    @contextlib.contextmanager
    def case(self, description: str) -> Iterator[None]:
        """Run one case; any exception becomes a FAIL line naming ``description``."""
        self.cases += 1
        self._case = description
        try:
            with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                yield
        except CaseFailed as failure:
            if f"{description}: {failure}" not in self.failures:  # not already noted
                self.failures.append(f"{description}: {failure}")
        except NotImplementedError as error:
            if "meta" in str(error).lower():  # a torch op without a meta kernel
                self.failures.append(f"{description}: raised NotImplementedError: {error}")
            else:
                self.not_implemented = True
        except Exception as error:  # the learner's code may raise anything
            where = traceback.extract_tb(error.__traceback__)[-1]
            self.failures.append(
                f"{description}: raised {type(error).__name__}: {error} (line {where.lineno} of "
                f"{where.name})"
            )

    def fail(self, message: str) -> None:
        """Stop the current case with ``message``."""
        raise CaseFailed(message)

    def note(self, message: str) -> None:
        """A FAIL line for the current case that does not stop it: for side effects (an input
        changed in place, global state touched), told whether or not the values are right."""
        line = f"{self._case}: {message}"
        if line not in self.failures:
            self.failures.append(line)

    def expect(self, condition: bool, message: str) -> None:
        """Stop the current case with ``message`` unless ``condition``."""
        if not condition:
            raise CaseFailed(message)

    def expect_close(
        self,
        got: object,
        expected: torch.Tensor | float,
        *,
        what: str = "output",
        hint: str | None = None,
        rtol: float = 1e-4,
        atol: float = 1e-5,
    ) -> None:
        """Compare ``got`` with ``expected`` (shape, then values); ``hint`` names the likely bug."""
        expected_t = torch.as_tensor(expected)
        if not isinstance(got, torch.Tensor):
            if isinstance(got, (int, float)):
                got = torch.as_tensor(float(got), dtype=expected_t.dtype)
            else:
                self.fail(f"{what} should be a tensor, got {type(got).__name__}")
        if tuple(got.shape) != tuple(expected_t.shape):
            message = f"{what} has shape {tuple(got.shape)}, expected {tuple(expected_t.shape)}"
            self.fail(message + (f". Looks like: {hint}" if hint else ""))
        g = got.detach().to("cpu", torch.float64)
        e = expected_t.detach().to("cpu", torch.float64)
        if not torch.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
            message = f"{what} expected {describe(expected_t)}, got {describe(got)}"
            if hint:
                message += f". Looks like: {hint}"
            self.fail(message)

    def finish(self, summary: str) -> CheckResult:
        """Print PASS or the FAIL lines (stdout only) and return the ``CheckResult``."""
        if self.not_implemented:  # the other cases' failures would only repeat this
            lines = [
                f"FAIL {self.name}: not implemented yet (the cell still raises "
                "NotImplementedError; replace it with your code)"
            ]
        elif self.failures:
            lines = [f"FAIL {self.name}: {failure}" for failure in self.failures]
        else:
            lines = [f"PASS {self.name}: {summary}"]
        for line in lines:
            print("\n".join(wrap(line)) if in_notebook() else line)
        return CheckResult(self.name, not (self.failures or self.not_implemented), lines)

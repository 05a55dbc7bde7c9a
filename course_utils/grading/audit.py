"""Static audit of a submission for code that tampers with the grader.

Hidden tests run in the same Python process as the student's code, so a notebook could replace a
check before the tests call it (``course_utils.checks.check_x = lambda f: ...``), or reach into the
interpreter to do the same less visibly. Such code is found here by reading the notebook, outside the
kernel where it cannot interfere. A flagged submission is not run; it scores 0 with the findings
listed, and the gradebook marks it for manual review.

Redefining a check under the same name in the notebook is *not* flagged: hidden tests import
``course_utils.checks`` afresh, so that only fools the learner's own visible test.

What is flagged, per code cell (after IPython syntax such as ``%magic`` and ``!cmd`` is translated):

* assigning to or deleting an attribute of a name bound by ``import course_utils...`` /
  ``from course_utils... import ...``, or ``setattr``/``delattr`` on one;
* ``sys.modules``, ``sys._getframe``, ``importlib``, ``builtins``/``__builtins__``, ``gc``,
  ``inspect.currentframe``/``inspect.stack``/``inspect.getouterframes``;
* ``exec``, ``eval``, ``compile``, ``__import__`` (code the audit cannot read);
* IPython hooks that see or rewrite later cells: ``input_transformers_*``, ``ast_transformers``,
  ``events.register``, ``set_custom_exc``, ``register_magic_function``.
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass

import nbformat

_FORBIDDEN_MODULES = {"importlib", "builtins", "gc"}
_FORBIDDEN_CALLS = {"exec", "eval", "compile", "__import__"}
_FORBIDDEN_NAMES = {"__builtins__"}
_FORBIDDEN_ATTRS = {
    ("sys", "modules"): "sys.modules",
    ("sys", "_getframe"): "sys._getframe",
    ("inspect", "currentframe"): "inspect.currentframe",
    ("inspect", "stack"): "inspect.stack",
    ("inspect", "getouterframes"): "inspect.getouterframes",
}
_IPYTHON_HOOKS = {
    "input_transformers_cleanup",
    "input_transformers_post",
    "input_transformer_manager",
    "ast_transformers",
    "set_custom_exc",
    "register_magic_function",
}


@dataclass(frozen=True)
class Finding:
    """One tampering construct: where it is and what it is."""

    cell: int  # index of the cell in the notebook
    line: int  # line within the cell, 1-based
    what: str

    def __str__(self) -> str:
        return f"cell {self.cell}, line {self.line}: {self.what}"


def _python_source(source: str) -> str:
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython ships with the course
        return source
    return TransformerManager().transform_cell(source)


class _Visitor(ast.NodeVisitor):
    def __init__(self, cell: int) -> None:
        self.cell = cell
        self.findings: list[Finding] = []
        self.course_names: set[str] = set()

    def flag(self, node: ast.AST, what: str) -> None:
        self.findings.append(Finding(self.cell, getattr(node, "lineno", 0), what))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            root = alias.name.split(".")[0]
            if root in _FORBIDDEN_MODULES:
                self.flag(node, f"import {alias.name}")
            if root == "course_utils":
                self.course_names.add(alias.asname or root)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        root = module.split(".")[0]
        if root in _FORBIDDEN_MODULES:
            self.flag(node, f"from {module} import ...")
        if root == "course_utils":
            self.course_names.update(a.asname or a.name for a in node.names)
        if module == "sys" and any(a.name in {"modules", "_getframe"} for a in node.names):
            self.flag(node, "from sys import modules/_getframe")
        if module == "inspect" and any(
            a.name in {"currentframe", "stack", "getouterframes"} for a in node.names
        ):
            self.flag(node, "from inspect import a frame accessor")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in _FORBIDDEN_NAMES:
            self.flag(node, node.id)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name):
            key = (node.value.id, node.attr)
            if key in _FORBIDDEN_ATTRS:
                self.flag(node, _FORBIDDEN_ATTRS[key])
        if node.attr in _IPYTHON_HOOKS:
            self.flag(node, f"IPython hook .{node.attr}")
        if node.attr == "register" and _attr_chain(node.value).endswith("events"):
            self.flag(node, "IPython hook .events.register")
        if isinstance(node.ctx, ast.Store | ast.Del) and _root_name(node) in self.course_names:
            self.flag(node, f"changes {_attr_chain(node)} (part of course_utils)")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name):
            name = node.func.id
            if name in _FORBIDDEN_CALLS:
                self.flag(node, f"{name}(...)")
            if name in {"setattr", "delattr"} and node.args:
                target = _root_name(node.args[0])
                if target in self.course_names or target in {"sys", "builtins"}:
                    self.flag(node, f"{name}({_attr_chain(node.args[0])}, ...)")
        self.generic_visit(node)


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _attr_chain(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # noqa: BLE001 - only used for messages
        return "?"


def audit_notebook(nb: nbformat.NotebookNode) -> list[Finding]:
    """Tampering constructs in the code cells of ``nb`` (see the module docstring), in order.

    Names bound to ``course_utils`` carry over from cell to cell, as they do in the kernel. A cell
    that does not parse is skipped: it raises when run, which costs what it costs.
    """
    with _PARSE_LOCK:
        return _audit(nb)


# CPython 3.11's ast.parse is not thread-safe ("AST constructor recursion depth mismatch" when
# grading workers audit at the same time), so one audit runs at a time; each takes milliseconds.
_PARSE_LOCK = threading.Lock()


def _audit(nb: nbformat.NotebookNode) -> list[Finding]:
    findings: list[Finding] = []
    course_names: set[str] = set()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_python_source(cell.source))
        except SyntaxError:
            continue
        visitor = _Visitor(index)
        visitor.course_names = course_names
        visitor.visit(tree)
        findings.extend(visitor.findings)
    return findings

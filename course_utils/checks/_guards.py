"""Guards the checks use: no calling the reference, and the right device.

``banned_names_in_source(fn, banned)`` finds calls of banned functions in the learner's answer's
syntax tree (calls only: a comment or a variable that mentions the name is not a call), and
``tripwires(banned)`` catches them at run time (the banned attributes are swapped for tripwires while
the answer runs), which also covers a call reached through an alias.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import torch


class ReferenceCalled(Exception):
    """The learner's answer called a function it was asked to write itself."""


def _source(fn: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def _calls_in_source(fn: Callable[..., Any]) -> tuple[set[str], set[str]]:
    """(the names called, the keyword names passed) in ``fn``'s source, read from its syntax tree.

    A call counts by its last name: ``F.group_norm(...)`` and ``group_norm(...)`` both give
    ``group_norm``. Comments, strings, variable names, a bare call of a name the answer assigns
    itself and the learner's own ``def``/``class`` are not calls. Source that cannot be read or
    parsed gives nothing (the run-time tripwires remain).
    """
    bare, attributes, keywords = call_sites(fn)
    return bare | attributes, keywords


def call_sites(fn: Callable[..., Any]) -> tuple[set[str], set[str], set[str]]:
    """``_calls_in_source`` split by form: (bare calls ``g(...)`` of names the answer does not bind
    itself, attribute calls ``m.g(...)`` by their last name, keyword names passed). A bare call may be
    the learner's own helper of the reference's name; an attribute call never is."""
    try:
        tree = ast.parse(textwrap.dedent(_source(fn)))
    except (SyntaxError, ValueError):
        return set(), set(), set()
    bare: set[str] = set()  # group_norm(...)
    attributes: set[str] = set()  # F.group_norm(...)
    keywords: set[str] = set()
    local: set[str] = set()  # names the answer binds itself (variables, arguments, inner defs)
    outer = tree.body[0] if len(tree.body) == 1 else None  # the answer's own def or class
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node is not outer
        ):
            local.add(node.name)  # a helper defined inside the answer
        elif isinstance(node, ast.ExceptHandler) and node.name:
            local.add(node.name)
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                bare.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                attributes.add(node.func.attr)
            keywords.update(k.arg for k in node.keywords if k.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)
        elif isinstance(node, ast.arg):
            local.add(node.arg)
    # A bare call of a name the answer bound itself is its own function; one bound to the library
    # (``gn = F.group_norm``) is caught at run time by the tripwires instead. Names bound by an
    # import inside the answer stay calls: ``from course_utils.tuning import log_uniform`` is the
    # library's.
    return bare - local, attributes, keywords


def banned_names_in_source(fn: Callable[..., Any], banned: list[str]) -> list[str]:
    """The dotted names in ``banned`` whose last part ``fn``'s source calls.

    ``"torch.nn.functional.group_norm"`` matches ``F.group_norm(...)`` or ``group_norm(...)``, and
    ``nn.GroupNorm(...)`` if that is banned too; a comment or string naming it does not. Class
    methods of modules are searched through ``inspect.getsource`` of the class.
    """
    called, _ = _calls_in_source(fn)
    return [dotted for dotted in banned if dotted.rsplit(".", 1)[-1] in called]


def keywords_in_source(fn: Callable[..., Any], names: list[str]) -> list[str]:
    """The ``names`` that ``fn``'s source passes as a keyword argument of some call
    (``F.cross_entropy(x, y, label_smoothing=eps)``), not as a variable name."""
    _, keywords = _calls_in_source(fn)
    return [name for name in names if name in keywords]


@contextlib.contextmanager
def tripwires(banned: list[str]) -> Iterator[None]:
    """Replace each dotted attribute in ``banned`` by a function raising ``ReferenceCalled``.

    A name whose module cannot be imported here (an optional dependency such as numba is missing)
    is skipped: the answer cannot call it either. So is one whose module is not imported yet and lies
    outside the course and torch (importing torchvision or scipy just to guard it costs seconds; the
    answer's import shows in its source). Every name stays in ``ARMED`` all the same, so the trusted
    scorer arms the answer process, and looks for aliases, with the whole list.
    """
    saved: list[tuple[object, str, object]] = []
    ARMED.append(list(banned))
    try:
        for dotted in banned:
            module = dotted.rsplit(".", 1)[0]
            cheap = module.split(".")[0] in ("course_utils", "torch")
            if (
                not cheap
                and module not in sys.modules
                and module.rsplit(".", 1)[0] not in sys.modules
            ):
                continue
            owner = _owner_of(dotted)
            if owner is None:
                continue
            attr = dotted.rsplit(".", 1)[1]
            original = getattr(owner, attr)

            def wire(*args: Any, _name: str = dotted, **kwargs: Any) -> Any:
                raise ReferenceCalled(
                    f"your answer called {_name}, which it should implement itself"
                )

            saved.append((owner, attr, original))
            setattr(owner, attr, wire)
        yield
    finally:
        ARMED.pop()
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


# The banned lists of the tripwires in force, innermost last. The trusted scorer's stand-ins for a
# learner's function read it, so the answer process arms the same tripwires around the real call.
ARMED: list[list[str]] = []


def _owner_of(dotted: str) -> object | None:
    """The module (or class in a module) holding the last part of ``dotted``; None if unimportable."""
    module_name = dotted.rsplit(".", 1)[0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:  # the module exists; a dependency of it is missing
            return None
    except ImportError:
        return None
    parent, cls = module_name.rsplit(".", 1)
    return getattr(importlib.import_module(parent), cls)


def meta_like(*shapes: tuple[int, ...], dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Tensors on the ``meta`` device: code that creates CPU tensors next to them raises."""
    return [torch.empty(shape, device="meta", dtype=dtype) for shape in shapes]


WRONG_DEVICE_HINT = (
    "your function creates a tensor without device=... (e.g. torch.zeros(n) or torch.tensor(...)); "
    "make new tensors with the input's device and dtype, e.g. torch.zeros_like(x) or "
    "x.new_zeros(n), so the same code runs on a GPU"
)


def one_cpu_thread(check: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``check`` with one intra-op thread, restoring the count after.

    Checks use tiny tensors: on a busy machine (a grading server, 2 shared cores) thread hand-offs
    made them 10-30x slower than one thread.
    """

    @functools.wraps(check)
    def run(*args: Any, **kwargs: Any) -> Any:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return check(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return run

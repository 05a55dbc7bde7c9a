"""Guards the checks use: no calling the reference, and the right device.

``reference_calls(fn, banned)`` finds calls of banned functions in the learner's answer, both in the
source text (catches ``from torchvision.ops import sigmoid_focal_loss`` at the top of the notebook) and at
run time (the banned attributes are swapped for tripwires while the answer runs).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import re
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


def banned_names_in_source(fn: Callable[..., Any], banned: list[str]) -> list[str]:
    """The dotted names in ``banned`` whose last part is called in ``fn``'s source text.

    ``"torch.nn.functional.group_norm"`` matches ``F.group_norm(``, ``group_norm(`` or
    ``nn.GroupNorm(`` if the latter is banned too. Class methods of modules are searched through
    ``inspect.getsource`` of the class.
    """
    # The learner's own ``def group_norm(`` / ``class ResidualBlock(`` is not a call of the reference.
    text = re.sub(r"\b(def|class)\s+\w+\s*\(", "", _source(fn))
    found = []
    for dotted in banned:
        leaf = dotted.rsplit(".", 1)[-1]
        if re.search(rf"(?<![\w]){re.escape(leaf)}\s*\(", text):
            found.append(dotted)
    return found


@contextlib.contextmanager
def tripwires(banned: list[str]) -> Iterator[None]:
    """Replace each dotted attribute in ``banned`` by a function raising ``ReferenceCalled``.

    A name whose module cannot be imported here (an optional dependency such as numba is missing)
    is skipped: the answer cannot call it either.
    """
    saved: list[tuple[object, str, object]] = []
    ARMED.append(list(banned))
    try:
        for dotted in banned:
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

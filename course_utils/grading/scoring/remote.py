"""The trusted side of the channel: the answer process, and stand-ins for the student's answers.

:class:`AnswerProcess` starts ``answers.py`` (in the sandbox when grading isolates), sends it the
cells to run, and carries requests. :meth:`AnswerProcess.function` and :meth:`AnswerProcess.klass`
return stand-ins that the unchanged checks of ``course_utils.checks`` can call as if they were the
learner's own function or class:

- arguments go over as plain data (modules and generators pickled, callables kept here and called
  back), results come back as plain data only (``wire.py``);
- a tensor argument arrives as it is here: a leaf with its ``.grad``, or the output of an op (a
  loss), so in-place edits and accumulated gradients behave as in a kernel;
- whatever the call changed in its arguments is applied to the caller's objects here (tensor values
  through ``copy_``, so ``_version`` counters move as they would; lists; module parameters, their
  ``.grad`` and replaced ``nn.Parameter`` objects; generator states);
- a result that carries gradients is joined to the caller's autograd graph by :class:`_Bridge`,
  whose backward asks the answer process for the gradients, so checks can differentiate answers;
- the optimizer steps the call took are added to the checks' recordings
  (``course_utils.checks._optimizers``), as a step hook here would have seen them;
- a class's instances are :class:`RemoteModule` mirrors: real ``nn`` submodules holding the
  student's parameters here, a forward that runs remotely, and forward hooks replayed from a trace;
- ``inspect.getsource`` on a stand-in gives the student's cell text (registered in ``linecache``;
  parsed by ``inspect``, never run here).
"""

from __future__ import annotations

import contextlib
import functools
import linecache
import os
import re
import select
import signal
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

import cloudpickle
import numpy as np
import torch
from torch import nn

from course_utils.grading.lifetime import die_with_parent
from course_utils.grading.scoring import wire
from course_utils.grading.scoring.graph import grad_inputs as _grad_inputs
from course_utils.grading.scoring.wire import Pickled, Ref

CALL_TIMEOUT = 60.0  # seconds one call of an answer may take before the process is restarted
START_TIMEOUT = 120.0  # seconds to start the process and run the cells


class AnswerProcessError(RuntimeError):
    """The answer process died, hung or sent something that is not a reply."""


class _CellFailed(Exception):
    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index, self.reason = index, reason


_SAFE_ERRORS = {
    cls.__name__: cls
    for cls in (
        ArithmeticError,
        AssertionError,
        AttributeError,
        IndexError,
        KeyError,
        LookupError,
        MemoryError,
        NameError,
        NotImplementedError,
        OverflowError,
        RecursionError,
        RuntimeError,
        TypeError,
        UnboundLocalError,
        ValueError,
        ZeroDivisionError,
    )
}


class AnswerProcess:
    """One answer process for one submission: started lazily, restarted after a crash or hang.

    ``argv_prefix`` is the sandbox wrapper (``sandbox.sandbox_argv(...)``) or ``[]`` without one;
    ``cells`` the ``(index, source)`` pairs to run before serving; ``env`` its environment.
    """

    def __init__(
        self,
        cells: list[tuple[int, str]],
        *,
        argv_prefix: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        call_timeout: float = CALL_TIMEOUT,
        cell_timeout: float = START_TIMEOUT,
    ) -> None:
        self.cells = cells
        self.cell_timeout = cell_timeout
        self.skipped: set[int] = set()
        self.broken: str | None = None
        self.sequence = 0  # every request is numbered; its replies carry the number
        self.banned_seen: set[str] = set()  # every banned name a check armed around a call
        self.argv_prefix = list(argv_prefix or [])
        self.env = env
        self.cwd = cwd
        self.call_timeout = call_timeout
        self.process: subprocess.Popen | None = None
        self.names: dict[str, list[str]] = {}  # the namespace's names: [kind, module]
        self._globals_of: dict[str, dict[str, list[str]]] = {}  # a defined value's own globals
        self.load_errors: list[list[Any]] = []
        self.callbacks: dict[int, Callable[..., Any]] = {}
        self.restarts = 0
        self.generation = 0  # bumped on each start: handles of an earlier process are stale
        self._module_name = f"_course_answers_{id(self):x}"
        self._sources: dict[str, str] = {}
        for index, source in cells:
            filename = f"<answer cell {index}>"
            self._sources[filename] = source
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        self._module = types.ModuleType(self._module_name)
        self._module.__file__ = f"<answer cells {id(self):x}>"
        joined = "\n".join(source for _, source in cells) + "\n"
        linecache.cache[self._module.__file__] = (
            len(joined),
            None,
            joined.splitlines(True),
            self._module.__file__,
        )
        sys.modules[self._module_name] = self._module

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the process and run the cells, one at a time.

        A cell that does not finish within ``cell_timeout`` or ends the process (``os._exit``) is
        noted in ``load_errors`` and left out when the process starts again, so one endless cell
        costs what it defines, not every answer. Raises :class:`AnswerProcessError` if the process
        cannot start at all.
        """
        while True:
            self.spawn()
            try:
                self.load_cells()
                return
            except _CellFailed as failed:
                self.note_failure(failed)

    def note_failure(self, failed: Exception) -> None:
        """Skip the cell that ``failed`` (a :class:`_CellFailed`) names from now on."""
        if not isinstance(failed, _CellFailed):
            raise failed
        self.skipped.add(failed.index)
        self.load_errors.append([failed.index, failed.reason])

    def spawn(self) -> None:
        """Start the process (no cells run yet); see :meth:`start`."""
        self.close()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        command = [
            sys.executable,
            "-m",
            "course_utils.grading.scoring.answers",
            str(to_child_r),
            str(from_child_w),
        ]
        self.process = subprocess.Popen(
            self.argv_prefix + command,
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("COURSE_DEBUG_ANSWERS") else subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # lifetime.py: it goes with whoever started it
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.write_fd, self.read_fd = to_child_w, from_child_r
        self.generation += 1
        try:
            self._expect("ready", START_TIMEOUT)
        except EOFError:
            self.close()
            raise AnswerProcessError("the answer process could not start") from None

    def load_cells(self) -> None:
        """Run the cells not skipped, one at a time (raises ``_CellFailed`` on the first that fails)."""
        names: dict[str, list[str]] = {}
        for index, source in self.cells:
            if index in self.skipped:
                continue
            try:
                wire.write_frame(self.write_fd, {"op": "load", "cells": [[index, source]]})
                reply = self._expect("loaded", self.cell_timeout)
            except AnswerProcessError as error:
                raise _CellFailed(
                    index, f"did not finish within {self.cell_timeout:g} s"
                ) from error
            except (OSError, EOFError):
                self.close()
                raise _CellFailed(index, "ended the process running your answers") from None
            self.load_errors += [list(e) for e in reply.get("errors", []) if isinstance(e, list)]
            names = _names(reply.get("names"))
        self.names = names

    def close(self) -> None:
        """Stop the process (if running) and close the channel."""
        if self.process is None:
            return
        for fd in (self.write_fd, self.read_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> AnswerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
        sys.modules.pop(self._module_name, None)

    def ensure(self) -> None:
        if self.process is None or self.process.poll() is not None:
            if self.process is not None:
                self.restarts += 1
            self.start()

    # --- requests -----------------------------------------------------------------------------

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send ``message``; answer callbacks until the reply comes; return the reply.

        After a call hung or ended the process, later requests fail at once until :meth:`reset`
        (the scorer resets between checks): one endless answer costs its own check, not minutes
        per case.
        """
        if self.broken:
            raise AnswerProcessError(f"not run: {self.broken}")
        self.ensure()
        self.sequence += 1
        message = {**message, "seq": self.sequence}
        try:
            wire.write_frame(self.write_fd, message)
            while True:
                reply = self._read(self.call_timeout)
                if reply.get("seq") != self.sequence:
                    continue  # not a reply to this request (a stale or forged frame): dropped
                if reply.get("op") != "callback":
                    return reply
                answer = self._run_callback(reply)
                wire.write_frame(self.write_fd, {**answer, "seq": self.sequence})
        except (OSError, EOFError):
            self.close()
            self.broken = "an earlier call ended the process running your answers"
            raise AnswerProcessError(
                "the process running your answers ended during the call (os._exit, a crash or "
                "running out of memory)"
            ) from None
        except AnswerProcessError as error:
            self.broken = f"an earlier call failed ({error})"
            raise

    def _arm(self, banned: list[str]) -> list[str]:
        names = _armed(banned)
        self.banned_seen.update(names)
        return names

    def reset(self) -> None:
        """Allow calls again after a hang or crash (the process restarts on the next call)."""
        self.broken = None

    def _run_callback(self, message: dict[str, Any]) -> dict[str, Any]:
        callback = self.callbacks.get(message.get("key"))  # type: ignore[arg-type]
        if callback is None:
            return {"op": "callback_result", "error": "no such callback"}
        try:
            args = list(message.get("args", []))
            kwargs = dict(message.get("kwargs", {}))
            return {"op": "callback_result", "value": self.encode(callback(*args, **kwargs))}
        except Exception as error:  # noqa: BLE001 - reported back to the answer process
            return {"op": "callback_result", "error": f"{type(error).__name__}: {error}"}

    def _read(self, timeout: float) -> dict[str, Any]:
        ready, _, _ = select.select([self.read_fd], [], [], timeout)
        if not ready:
            self.close()
            raise AnswerProcessError(
                f"timed out: your answer did not return within {timeout:g} s (an endless loop?)"
            )
        try:
            reply = wire.read_frame(self.read_fd)
        except wire.WireError as error:
            self.close()
            raise AnswerProcessError(
                f"the answer process sent an unreadable reply: {error}"
            ) from None
        if not isinstance(reply, dict):
            raise AnswerProcessError("the answer process sent something that is not a reply")
        return reply

    def _expect(self, op: str, timeout: float) -> dict[str, Any]:
        reply = self._read(timeout)
        if reply.get("op") != op:
            raise AnswerProcessError(f"expected {op!r} from the answer process, got {reply!r:.200}")
        return reply

    # --- encoding arguments -------------------------------------------------------------------

    def encode(self, value: Any) -> Any:
        """A trusted value as it crosses to the answer process."""
        if isinstance(value, RemoteModule):
            return Ref("handle", value._remote_handle)
        if isinstance(value, nn.Module):
            return _pickled_module(self, value)
        if isinstance(value, torch.Generator):
            return Ref("torch_rng", value.get_state())
        if isinstance(value, (np.random.Generator, np.random.RandomState)):
            return Pickled(cloudpickle.dumps(value))
        if isinstance(value, torch.Tensor) and value.requires_grad and not value.is_leaf:
            return Ref("non_leaf", value)  # arrives as the output of an op, as it is here
        if isinstance(value, torch.Tensor) and value.is_leaf and value.grad is not None:
            # The same tensor handed twice keeps its .grad in a kernel: x.grad accumulates there
            return Ref("tensor_with_grad", (value, value.grad))
        if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
            return value
        if isinstance(value, type) or callable(value):
            key = len(self.callbacks) + 1
            self.callbacks[key] = value
            return Ref("callback", key)
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.encode(v) for v in value)
        if isinstance(value, dict):
            return {k: self.encode(v) for k, v in value.items()}
        try:
            wire.encode(value)
            return value
        except TypeError:
            return Pickled(cloudpickle.dumps(value))

    def define(self, name: str, value: Any) -> None:
        """Put ``value`` (pickled by value or by reference) into the answer process as ``name``,
        with its source for ``inspect``; for checking functions that are not in a notebook."""
        import inspect

        with contextlib.suppress(OSError, TypeError):
            source = inspect.getsource(value)
            filename = f"<defined {name}>"
            self._sources[filename] = source
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        kind = "class" if isinstance(value, type) else "callable"
        self.names[name] = [kind, str(getattr(value, "__module__", "") or "")]
        reply = self.request(
            {"op": "define", "name": name, "value": Pickled(cloudpickle.dumps(value))}
        )
        if reply.get("op") != "defined":
            raise AnswerProcessError(f"could not define {name}: {reply.get('error')}")
        self._globals_of[name] = _names(reply.get("names"))

    # --- stand-ins ----------------------------------------------------------------------------

    def function(self, name: str, banned: list[str] | None = None) -> Callable[..., Any]:
        """A function that calls the student's ``name`` remotely (see the module docstring)."""
        banned = list(banned or [])

        def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return self.call(name, args, kwargs, banned)

        return self._stand_in(name, call)

    def klass(self, name: str, banned: list[str] | None = None) -> type:
        """A class whose instances are :class:`RemoteModule` mirrors of the student's ``name``."""
        banned = list(banned or [])
        process = self

        def new(cls: type, *args: Any, **kwargs: Any) -> Any:
            made = process.call(name, args, kwargs, banned)
            if isinstance(made, RemoteModule):
                made._remote_banned = banned
            return made

        stand_in = type(name, (), {"__new__": new, "__module__": self._module_name})
        stand_in.__qualname__ = name
        return stand_in

    def _stand_in(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        """A function with the student's source for ``inspect`` and, as its ``__globals__``, what the
        student's function sees under each name (kind and module only, never the object): the
        notebook's names, or a defined function's own globals. The checks read them to tell a call
        of the learner's own helper from a call of the library (``_library_calls``); its
        ``__module__`` is the answer's, so a library function handed in as the answer is named."""
        filename, line = self._definition(name)
        globals_: dict[str, Any] = {"__call": call, "__name__": self._module_name}
        seen = {**self.names, **self._globals_of.get(name, {})}
        for other, (_, module) in seen.items():
            globals_.setdefault(other, types.SimpleNamespace(__module__=module))
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ValueError(f"not a Python name: {name!r}")
        source = (
            "\n" * (line - 1) + f"def {name}(*args, **kwargs):\n    return __call(args, kwargs)\n"
        )
        exec(compile(source, filename, "exec"), globals_)  # noqa: S102 - our own two lines
        fn = globals_[name]
        module = self.names.get(name, ["", ""])[1]
        if module:
            fn.__module__ = module
        return fn

    def _definition(self, name: str) -> tuple[str, int]:
        """Where the student's ``def name`` / ``class name`` is: (its cell's file name, line)."""
        pattern = re.compile(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", re.M)
        found = ("<answer cells>", 1)
        for filename, source in self._sources.items():
            for match in pattern.finditer(source):
                found = (filename, source.count("\n", 0, match.start()) + 1)
        return found

    # --- calls --------------------------------------------------------------------------------

    def call(
        self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any], banned: list[str]
    ) -> Any:
        """Call ``target`` (a name or a held handle) with ``args``; the decoded, bridged result."""
        message = {
            "op": "call",
            "target": target,
            "args": [self.encode(a) for a in args],
            "kwargs": {k: self.encode(v) for k, v in kwargs.items()},
            "banned": self._arm(banned),
            "rng": _rng_state(),
        }
        reply = self.request(message)
        _set_rng_state(reply.get("rng"))
        grad_inputs = _grad_inputs(list(args), kwargs, None)
        return self._finish(reply, list(args), kwargs, grad_inputs)

    def _finish(
        self,
        reply: dict[str, Any],
        args: list[Any],
        kwargs: dict[str, Any],
        grad_inputs: list[torch.Tensor],
    ) -> Any:
        for change in reply.get("changes", []):
            _apply_change(args, kwargs, change)
        if reply.get("optimizer_steps"):
            from course_utils.checks._optimizers import add_remote_steps

            add_remote_steps(reply["optimizer_steps"])
        if reply.get("op") == "error":
            raise _rebuild_error(dict(reply.get("error", {})))
        if reply.get("op") != "result":
            raise AnswerProcessError(f"unexpected reply {reply.get('op')!r}")
        value = self._decode_value(reply.get("value"), args, kwargs)
        graph = reply.get("graph")
        if graph is not None and grad_inputs:
            value = _bridge(self, graph, value, grad_inputs)
        return value

    def _decode_value(self, value: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if isinstance(value, Ref):
            if value.kind == "arg":
                return _at(args, kwargs, value.key)
            if value.kind == "module":
                handle, description = value.key
                return RemoteModule(self, handle, description)
            if value.kind == "opaque":
                return _opaque(str(value.key))
            raise AnswerProcessError(f"unexpected reference {value.kind!r}")
        if isinstance(value, list):
            return [self._decode_value(v, args, kwargs) for v in value]
        if isinstance(value, tuple):
            return tuple(self._decode_value(v, args, kwargs) for v in value)
        if isinstance(value, dict):
            return {k: self._decode_value(v, args, kwargs) for k, v in value.items()}
        return value


# --------------------------------------------------------------------------------------------------
# Arguments: pickled modules (with their hooks as callbacks), paths, changes
# --------------------------------------------------------------------------------------------------


def _pickled_module(process: AnswerProcess, module: nn.Module) -> Pickled:
    """``module`` pickled, with each parameter hook turned into a callback to the original."""
    hooks: dict[str, list[int]] = {}
    for name, param in module.named_parameters():
        for hook in list(getattr(param, "_backward_hooks", None) or {}).copy():
            key = len(process.callbacks) + 1
            process.callbacks[key] = param._backward_hooks[hook]
            hooks.setdefault(name, []).append(key)
    with _hooks_removed(module) as stripped:
        data = cloudpickle.dumps(stripped)
    # Pickling drops .grad; the caller's parameters keep theirs (a loop without zero_grad adds to them)
    grads = {n: p.grad.detach() for n, p in module.named_parameters() if p.grad is not None}
    return Pickled(cloudpickle.dumps(_ModuleWithHooks(data, hooks, grads)))


class _ModuleWithHooks:
    """Unpickled in the answer process as the module with its parameter hooks calling back."""

    def __init__(
        self, data: bytes, hooks: dict[str, list[int]], grads: dict[str, torch.Tensor]
    ) -> None:
        self.data, self.hooks, self.grads = data, hooks, grads

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_module, (self.data, self.hooks, self.grads))


def _rebuild_module(
    data: bytes, hooks: dict[str, list[int]], grads: dict[str, torch.Tensor] | None = None
) -> nn.Module:
    import pickle

    module = pickle.loads(data)
    params = dict(module.named_parameters())
    for name, grad in (grads or {}).items():
        if name in params and params[name].shape == grad.shape:
            params[name].grad = grad.to(params[name].dtype)
    if hooks:
        from course_utils.grading.scoring import answers

        server = answers.CURRENT
        params = dict(module.named_parameters())
        for name, keys in hooks.items():
            for key in keys:
                stub = server.callback_stub(key)
                params[name].register_hook(lambda grad, stub=stub: stub(grad.detach()))
    return module


@contextlib.contextmanager
def _hooks_removed(module: nn.Module):
    saved = []
    for param in module.parameters():
        hooks = getattr(param, "_backward_hooks", None)
        if hooks:
            saved.append((param, hooks))
            param._backward_hooks = None
    try:
        yield module
    finally:
        for param, hooks in saved:
            param._backward_hooks = hooks


def _rng_state() -> dict[str, Any]:
    """The caller's global random states, so the answer draws what it would have drawn here (the
    checks seed torch's global generator around calls of code that draws, e.g. dropout masks)."""
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [numpy_state[0], numpy_state[1], *numpy_state[2:]],
    }


def _set_rng_state(state: Any) -> None:
    """Continue from where the answer's draws left the global generators."""
    if not isinstance(state, dict):
        return
    with contextlib.suppress(Exception):
        if isinstance(state.get("torch"), torch.Tensor):
            torch.set_rng_state(state["torch"].to(torch.uint8))
    with contextlib.suppress(Exception):
        numpy_state = state.get("numpy")
        if isinstance(numpy_state, list) and len(numpy_state) == 5:
            np.random.set_state(tuple(numpy_state))


def _names(value: Any) -> dict[str, list[str]]:
    """The ``{name: [kind, module]}`` of a reply, kept only where it has that form."""
    if not isinstance(value, dict):
        return {}
    return {
        str(k): [str(v[0]), str(v[1])]
        for k, v in value.items()
        if isinstance(v, list) and len(v) == 2
    }


def _armed(banned: list[str]) -> list[str]:
    """``banned`` plus every name the checks' tripwires guard right now (``_guards.ARMED``)."""
    from course_utils.checks._guards import ARMED

    names = list(banned)
    for group in ARMED:
        names += [n for n in group if n not in names]
    return names


def _at(args: list[Any], kwargs: dict[str, Any], path: Any) -> Any:
    where, key, *rest = path
    value = args[key] if where == "args" else kwargs[key]
    for step in rest:
        value = value[step]
    return value


def _apply_change(args: list[Any], kwargs: dict[str, Any], change: list[Any]) -> None:
    """Apply what the remote call did to one argument to the caller's object here."""
    path, kind, payload = change
    try:
        target = _at(args, kwargs, path)
    except (IndexError, KeyError, TypeError, ValueError):
        return
    if kind == "tensor" and isinstance(target, torch.Tensor):
        value = payload.get("value")
        if isinstance(value, torch.Tensor) and value.shape == target.shape:
            with torch.no_grad():
                target.copy_(value.to(target.dtype))
        if target.is_leaf and bool(payload.get("requires_grad")) != target.requires_grad:
            with contextlib.suppress(RuntimeError):
                target.requires_grad_(bool(payload.get("requires_grad")))
        if payload.get("grad_changed") and target.is_leaf:
            grad = payload.get("grad")
            target.grad = grad.to(target.dtype) if isinstance(grad, torch.Tensor) else None
    elif kind == "container" and isinstance(target, list) and isinstance(payload, list):
        target[:] = [_resolve_item(args, kwargs, v) for v in payload]
    elif kind == "container" and isinstance(target, dict) and isinstance(payload, dict):
        target.clear()
        target.update({k: _resolve_item(args, kwargs, v) for k, v in payload.items()})
    elif kind == "module" and isinstance(target, nn.Module) and isinstance(payload, dict):
        _apply_module_state(target, payload)
    elif kind == "numpy_rng" and isinstance(target, np.random.Generator):
        with contextlib.suppress(Exception):
            target.bit_generator.state = payload
    elif kind == "torch_rng" and isinstance(target, torch.Generator):
        with contextlib.suppress(Exception):
            target.set_state(payload)


def _resolve_item(args: list[Any], kwargs: dict[str, Any], value: Any) -> Any:
    if isinstance(value, Ref) and value.kind == "arg":
        return _at(args, kwargs, value.key)
    if isinstance(value, Ref) and value.kind == "opaque":
        return _opaque(str(value.key))
    return value


def _apply_module_state(module: nn.Module, state: dict[str, Any]) -> None:
    named = dict(module.named_modules())
    replaced = set(state.get("replaced", []))
    params = dict(state.get("params", {}))
    for name, value in params.items():
        owner_path, _, leaf = str(name).rpartition(".")
        owner = named.get(owner_path)
        if owner is None or not isinstance(value, torch.Tensor):
            continue
        current = owner._parameters.get(leaf)
        requires_grad = bool(state.get("requires_grad", {}).get(name, True))
        if current is None or name in replaced or current.shape != value.shape:
            owner._parameters[leaf] = nn.Parameter(
                value.to(current.dtype if current is not None else value.dtype),
                requires_grad=requires_grad,
            )
            current = owner._parameters[leaf]
        else:
            with torch.no_grad():
                current.copy_(value.to(current.dtype))
            if current.requires_grad != requires_grad:
                current.requires_grad_(requires_grad)
        grad = state.get("grads", {}).get(name)
        current.grad = grad.to(current.dtype) if isinstance(grad, torch.Tensor) else None
    for name, value in dict(state.get("buffers", {})).items():
        owner_path, _, leaf = str(name).rpartition(".")
        owner = named.get(owner_path)
        if owner is not None and isinstance(value, torch.Tensor) and leaf in owner._buffers:
            current = owner._buffers[leaf]
            if current is not None and current.shape == value.shape:
                with torch.no_grad():
                    current.copy_(value.to(current.dtype))
            else:
                owner._buffers[leaf] = value
    for path, flag in dict(state.get("training", {})).items():
        if path in named:
            named[path].training = bool(flag)


@functools.cache
def _opaque_class(name: str) -> type:
    safe = re.sub(r"\W", "_", name)[:60] or "object"
    return type(safe, (), {"__repr__": lambda self: f"<{safe} object>"})


def _opaque(name: str) -> Any:
    """Stand-in for a returned object that cannot cross as data; its type keeps the name."""
    return _opaque_class(name)()


def _rebuild_error(info: dict[str, Any]) -> BaseException:
    """The student's exception, raised from a frame named after their function and line."""
    name = str(info.get("type", "Exception"))
    message = str(info.get("message", ""))
    if name == "ReferenceCalled":
        from course_utils.checks._guards import ReferenceCalled

        error: BaseException = ReferenceCalled(message)
    elif name in _SAFE_ERRORS:
        error = _SAFE_ERRORS[name](message)
    else:
        error = _remote_error_class(name)(message)
    where = str(info.get("where", "answer"))
    where = where if re.fullmatch(r"[A-Za-z_]\w*", where) else "answer"
    line = info.get("line") if isinstance(info.get("line"), int) else 1
    line = min(max(line, 1), 100_000)
    source = "\n" * (line - 1) + "raise __error\n"
    code = compile(source, str(info.get("file", "<answer>"))[:200], "exec")
    frame_fn = types.FunctionType(code.replace(co_name=where), {"__error": error})
    try:
        frame_fn()
    except BaseException as raised:  # noqa: BLE001 - returned with its traceback
        return raised.with_traceback(raised.__traceback__.tb_next)  # type: ignore[union-attr]
    return error


@functools.cache
def _remote_error_class(name: str) -> type:
    safe = re.sub(r"\W", "_", name)[:60] or "Error"
    return type(safe, (Exception,), {})


# --------------------------------------------------------------------------------------------------
# Gradients across the channel
# --------------------------------------------------------------------------------------------------


class _Bridge(torch.autograd.Function):
    """Outputs computed remotely, joined to the local graph: backward asks the answer process."""

    @staticmethod
    def forward(ctx, link: Any, *inputs: torch.Tensor):  # type: ignore[override]
        ctx.link = link
        ctx.shapes = [(t.shape, t.dtype, t.device) for t in inputs]
        outputs = link["outputs"]
        return tuple(o.detach().clone() for o in outputs)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):  # type: ignore[override]
        link = ctx.link
        process: AnswerProcess = link["process"]
        if process.generation != link["generation"]:
            raise AnswerProcessError("the answer process was restarted; its graph is gone")
        reply = process.request({"op": "backward", "graph": link["graph"], "grads": list(grads)})
        if reply.get("op") == "error":
            raise _rebuild_error(dict(reply.get("error", {})))
        got = list(reply.get("grads", []))
        if len(got) != len(ctx.shapes):
            raise AnswerProcessError("the answer process sent the wrong number of gradients")
        out: list[torch.Tensor | None] = []
        for grad, (shape, dtype, device) in zip(got, ctx.shapes, strict=True):
            if not isinstance(grad, torch.Tensor) or grad.shape != shape:
                out.append(None)
            else:
                out.append(grad.to(device=device, dtype=dtype))
        return (None, *out)


def _bridge(process: AnswerProcess, graph: int, value: Any, inputs: list[torch.Tensor]) -> Any:
    """``value`` with its tensors (the remote graph's outputs) replaced by bridged ones."""
    if isinstance(value, torch.Tensor):
        slots = [value]
    elif isinstance(value, (list, tuple)):
        slots = [v for v in value if isinstance(v, torch.Tensor)]
    else:
        return value
    differentiable = [t for t in slots if t.requires_grad]
    if not differentiable:
        return value
    link = {
        "process": process,
        "graph": graph,
        "generation": process.generation,
        "outputs": [t.detach() for t in slots],
    }
    bridged = _Bridge.apply(link, *inputs)
    for out, original in zip(bridged, slots, strict=True):
        if not original.requires_grad:
            out.requires_grad_(False)
    if isinstance(value, torch.Tensor):
        return bridged[0]
    it = iter(bridged)
    items = [next(it) if isinstance(v, torch.Tensor) else v for v in value]
    return items if isinstance(value, list) else tuple(items)


# --------------------------------------------------------------------------------------------------
# Modules built by the student's class
# --------------------------------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "torch.nn.modules.conv.Conv1d": nn.Conv1d,
    "torch.nn.modules.conv.Conv2d": nn.Conv2d,
    "torch.nn.modules.linear.Linear": nn.Linear,
    "torch.nn.modules.batchnorm.BatchNorm1d": nn.BatchNorm1d,
    "torch.nn.modules.batchnorm.BatchNorm2d": nn.BatchNorm2d,
    "torch.nn.modules.normalization.GroupNorm": nn.GroupNorm,
    "torch.nn.modules.normalization.LayerNorm": nn.LayerNorm,
    "torch.nn.modules.pooling.MaxPool2d": nn.MaxPool2d,
    "torch.nn.modules.pooling.AvgPool2d": nn.AvgPool2d,
    "torch.nn.modules.pooling.AdaptiveAvgPool2d": nn.AdaptiveAvgPool2d,
    "torch.nn.modules.dropout.Dropout": nn.Dropout,
    "torch.nn.modules.flatten.Flatten": nn.Flatten,
    "torch.nn.modules.activation.ReLU": nn.ReLU,
    "torch.nn.modules.linear.Identity": nn.Identity,
    "torch.nn.modules.container.Sequential": nn.Sequential,
}
_REFERENCE_TYPES = {
    "torchvision.models.resnet.BasicBlock": ("torchvision.models.resnet", "BasicBlock"),
    "course_utils.layers.ResidualBlock": ("course_utils.layers", "ResidualBlock"),
}


def _plain_config(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        return {}
    ok = {}
    for key, value in config.items():
        items = value if isinstance(value, list) else [value]
        if isinstance(key, str) and all(
            v is None or isinstance(v, (bool, int, float, str)) for v in items
        ):
            ok[key] = tuple(value) if isinstance(value, list) else value
    return ok


def _submodule(kind: str, bases: list[str], config: Any) -> nn.Module:
    """A real module of the remote submodule's type when it is a known ``torch.nn`` one (built on
    the meta device: the parameters come separately), else an empty container named like it."""
    builder = _BUILDERS.get(kind)
    if builder is not None:
        with contextlib.suppress(Exception), torch.device("meta"):
            return builder(**_plain_config(config)) if config else builder()
    for name in [kind, *bases]:
        if name in _REFERENCE_TYPES:
            module_name, attr = _REFERENCE_TYPES[name]
            with contextlib.suppress(Exception):
                import importlib

                cls = getattr(importlib.import_module(module_name), attr)
                instance = cls.__new__(cls)
                nn.Module.__init__(instance)
                return instance
    return _container_class(kind.rsplit(".", 1)[-1])()


@functools.cache
def _container_class(name: str) -> type:
    safe = re.sub(r"\W", "_", name)[:60] or "Module"
    return type(safe, (nn.Module,), {})


class RemoteModule(nn.Module):
    """A mirror of a module that lives in the answer process (see the module docstring)."""

    def __init__(self, process: AnswerProcess, handle: int, description: Any) -> None:
        super().__init__()
        self._remote_process = process
        self._remote_handle = handle
        self._remote_generation = process.generation
        self._remote_banned: list[str] = []
        description = description if isinstance(description, dict) else {}
        entries = [m for m in description.get("modules", []) if isinstance(m, dict)]
        paths: dict[str, nn.Module] = {"": self}
        for entry in entries:
            path = str(entry.get("path", ""))
            if path == "":
                self.training = bool(entry.get("training", True))
                self._remote_type = str(entry.get("type", "Module"))
                continue
            parent_path, _, leaf = path.rpartition(".")
            parent = paths.get(parent_path)
            if parent is None or not leaf.isidentifier() and not leaf.isdigit():
                continue
            child = _submodule(
                str(entry.get("type", "")), list(entry.get("bases", [])), entry.get("config")
            )
            child.training = bool(entry.get("training", True))
            parent.add_module(leaf, child)
            paths[path] = child
        requires = dict(description.get("requires_grad", {}))
        for name, value in dict(description.get("params", {})).items():
            owner_path, _, leaf = str(name).rpartition(".")
            owner = paths.get(owner_path)
            if owner is not None and isinstance(value, torch.Tensor) and leaf.isidentifier():
                owner._parameters[leaf] = nn.Parameter(
                    value, requires_grad=bool(requires.get(name, True))
                )
        for name, value in dict(description.get("buffers", {})).items():
            owner_path, _, leaf = str(name).rpartition(".")
            owner = paths.get(owner_path)
            if owner is not None and isinstance(value, torch.Tensor) and leaf.isidentifier():
                owner._buffers[leaf] = value
        for module in paths.values():  # a known type built on meta may keep unsent tensors
            for key, param in list(module._parameters.items()):
                if (
                    param is not None
                    and param.device.type == "meta"
                    and key not in _sent(description, module, paths)
                ):
                    module._parameters[key] = None
            for key, buffer in list(module._buffers.items()):
                if (
                    buffer is not None
                    and buffer.device.type == "meta"
                    and key not in _sent(description, module, paths, buffers=True)
                ):
                    module._buffers[key] = None

    def forward(self, *args: Any) -> Any:  # type: ignore[override]
        process = self._remote_process
        if process.generation != self._remote_generation:
            raise AnswerProcessError("the answer process was restarted; this module is gone")
        params = list(self.named_parameters())
        state = {
            "params": {n: p.detach() for n, p in params},
            "requires_grad": {n: p.requires_grad for n, p in params},
            "buffers": {n: b for n, b in self.named_buffers()},
        }
        training = {path: m.training for path, m in self.named_modules()}
        hooked = any(m._forward_hooks for m in self.modules() if m is not self)
        message = {
            "op": "module_call",
            "handle": self._remote_handle,
            "state": state,
            "training": training,
            "args": [process.encode(a) for a in args],
            "trace": hooked,
            "banned": process._arm(self._remote_banned),
            "rng": _rng_state(),
        }
        reply = process.request(message)
        _set_rng_state(reply.get("rng"))
        extra = [p for _, p in params if p.requires_grad] if torch.is_grad_enabled() else []
        grad_inputs = _grad_inputs(list(args), {}, extra)
        if not torch.is_grad_enabled():
            grad_inputs = []
        with torch.no_grad():
            for name, value in dict(reply.get("buffers", {})).items():
                owner_path, _, leaf = str(name).rpartition(".")
                owner = dict(self.named_modules()).get(owner_path)
                current = None if owner is None else owner._buffers.get(leaf)
                if (
                    isinstance(value, torch.Tensor)
                    and current is not None
                    and current.shape == value.shape
                ):
                    current.copy_(value.to(current.dtype))
        result = process._finish(reply, list(args), {}, grad_inputs)
        if hooked:
            self._replay(list(args), list(reply.get("trace", [])))
        return result

    def _replay(self, args: list[Any], trace: list[Any]) -> None:
        """Call the forward hooks registered here with what each submodule read and returned."""
        named = dict(self.named_modules())
        outputs: list[torch.Tensor | None] = []
        for record in trace:
            try:
                path, (kind, source), output = record
            except (TypeError, ValueError):
                outputs.append(None)
                continue
            if kind == "input" and isinstance(source, int) and 0 <= source < len(args):
                first = args[source]
            elif kind == "record" and isinstance(source, int) and 0 <= source < len(outputs):
                first = outputs[source]
            else:
                first = source
            outputs.append(output if isinstance(output, torch.Tensor) else None)
            module = named.get(str(path))
            if (
                module is None
                or not isinstance(first, torch.Tensor)
                or not isinstance(output, torch.Tensor)
            ):
                continue
            for hook in list(module._forward_hooks.values()):
                hook(module, (first,), output)


def _sent(
    description: dict[str, Any],
    module: nn.Module,
    paths: dict[str, nn.Module],
    *,
    buffers: bool = False,
) -> set[str]:
    prefix = next((p for p, m in paths.items() if m is module), None)
    if prefix is None:
        return set()
    names = dict(description.get("buffers" if buffers else "params", {}))
    start = f"{prefix}." if prefix else ""
    return {n[len(start) :] for n in names if n.startswith(start) and "." not in n[len(start) :]}

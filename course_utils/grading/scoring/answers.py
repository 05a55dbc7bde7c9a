"""The answer process: holds a student's answer functions and runs them when the scorer asks.

``python -m course_utils.grading.scoring.answers READ_FD WRITE_FD`` runs inside the grading sandbox
(``sandbox.sandbox_argv``), started fresh for each submission by the trusted scorer (``remote.py``).
It executes the cells the scorer sends (the student's answer cells and the cells they need), then
serves requests over the two pipe descriptors until the scorer closes them:

- ``call``: call a name (or a held object) with decoded arguments; reply with the result as plain
  data, what the call changed in its arguments (tensors, lists, modules, generators), and a graph id
  when the result carries gradients;
- ``backward``: gradients of a held graph's outputs with respect to its inputs;
- ``module_call``: load the parameters the scorer sends into a held module, run its forward, and
  optionally trace which submodule read which tensor (for checks that register forward hooks).

Everything here is the student's to change: a hostile notebook may rewrite this module's objects in
its own process. That only changes what the student's answers *return*, which the trusted side
judges; nothing read from this process is executed or unpickled there (``wire.py``).
"""

from __future__ import annotations

import builtins
import contextlib
import io
import itertools
import linecache
import os
import sys
import traceback
import types
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.grading.scoring import wire
from course_utils.grading.scoring.cells import python_source
from course_utils.grading.scoring.graph import grad_inputs as _grad_inputs
from course_utils.grading.scoring.wire import Ref

MAX_GRAPHS = 64  # graphs kept for backward requests; older ones are dropped
CURRENT: Server | None = None  # the running server (pickled modules register callbacks on it)


class Server:
    """The request loop and the objects it holds (namespace, handles, graphs)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self.handles: dict[int, Any] = {}
        self.graphs: OrderedDict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = OrderedDict()
        self.ids = itertools.count(1)
        # id(argument) -> its leaf, for arguments that were not leaves on the caller's side
        self.leaf_of: dict[int, torch.Tensor] = {}
        self.sequence: Any = None  # the number of the request being served

    # --- the loop -------------------------------------------------------------------------------

    def serve(self, until: str | None = None) -> Any:
        """Answer requests until the channel closes, or until a ``until`` message (a callback's
        result) arrives, which is returned."""
        while True:
            try:
                message = wire.read_frame(self.read_fd, allow_pickle=True)
            except EOFError:
                os._exit(0)
            except Exception as error:  # noqa: BLE001 - e.g. an argument that cannot be unpickled
                self.send({"op": "error", "error": _error_info(error)})
                continue
            op = message.get("op")
            if until is not None and op == until:
                return message
            self.sequence = message.get("seq")
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                reply = {"op": "error", "error": _error_info(ValueError(f"unknown op {op!r}"))}
            else:
                try:
                    reply = handler(message)
                except BaseException as error:  # noqa: BLE001 - SystemExit from answers too
                    reply = {"op": "error", "error": _error_info(error)}
            self.send(reply)

    def send(self, message: dict[str, Any]) -> None:
        """Send a reply (or a callback request) tagged with the number of the request it serves."""
        message = {**message, "seq": self.sequence}
        try:
            wire.write_frame(self.write_fd, message)
        except TypeError as error:  # something in the reply cannot be sent: say so instead
            error_reply = {"op": "error", "error": _error_info(error), "seq": self.sequence}
            wire.write_frame(self.write_fd, error_reply)

    # --- ops --------------------------------------------------------------------------------------

    def op_load(self, message: dict[str, Any]) -> dict[str, Any]:
        """Run cells (``[(index, source)]``) in the namespace; report errors and defined names."""
        errors = []
        for index, source in message["cells"]:
            filename = f"<cell {index}>"
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            try:
                with _quiet():
                    exec(compile(python_source(source), filename, "exec"), self.namespace)  # noqa: S102
            except BaseException as error:  # noqa: BLE001 - a broken cell is the student's problem
                errors.append([index, f"{type(error).__name__}: {error}"[:300]])
        names = {
            name: _kind_and_module(value)
            for name, value in self.namespace.items()
            if not name.startswith("__")
        }
        return {"op": "loaded", "errors": errors, "names": names}

    def op_define(self, message: dict[str, Any]) -> dict[str, Any]:
        """Bind a name to a value the scorer ships (used to check functions written elsewhere, such
        as the test suite's buggy answers, exactly as notebook answers are checked). The reply
        names what the value's own global names hold (its helpers and imports), as ``op_load``
        names the notebook's: a function defined elsewhere does not see the namespace."""
        value = message["value"]
        self.namespace[str(message["name"])] = value
        return {"op": "defined", "names": _referenced_globals(value)}

    def op_call(self, message: dict[str, Any]) -> dict[str, Any]:
        self.leaf_of.clear()  # filled by materialise, read by invoke: this call's only
        target = self.resolve(message["target"])
        args = [self.materialise(a) for a in message.get("args", [])]
        kwargs = {k: self.materialise(v) for k, v in message.get("kwargs", {}).items()}
        _set_rng_state(message.get("rng"))
        reply = self.invoke(target, args, kwargs, message.get("banned", []))
        reply["rng"] = _rng_state()
        return reply

    def op_module_call(self, message: dict[str, Any]) -> dict[str, Any]:
        self.leaf_of.clear()
        module = self.handles[message["handle"]]
        _load_state(module, message["state"], message["training"])
        args = [self.materialise(a) for a in message.get("args", [])]
        trace: list[list[Any]] = []
        params = dict(module.named_parameters())
        extra = [params[n] for n in message["state"].get("params", {}) if n in params]
        extra = [p for p in extra if p.requires_grad]
        _set_rng_state(message.get("rng"))
        with _traced(module, args, trace) if message.get("trace") else contextlib.nullcontext():
            reply = self.invoke(module, args, {}, message.get("banned", []), extra=extra)
        reply["rng"] = _rng_state()
        reply["buffers"] = {name: b for name, b in module.named_buffers()}
        reply["trace"] = trace
        return reply

    def op_backward(self, message: dict[str, Any]) -> dict[str, Any]:
        outputs, inputs = self.graphs[message["graph"]]
        pairs = [(o, g) for o, g in zip(outputs, message["grads"], strict=True) if g is not None]
        if not pairs or not inputs:
            return {"op": "grads", "grads": [None] * len(inputs)}
        grads = torch.autograd.grad(
            [o for o, _ in pairs],
            inputs,
            [g.to(o.dtype) for o, g in pairs],
            retain_graph=True,
            allow_unused=True,
        )
        return {"op": "grads", "grads": [None if g is None else g.detach() for g in grads]}

    def op_release(self, message: dict[str, Any]) -> dict[str, Any]:
        for graph in message.get("graphs", []):
            self.graphs.pop(graph, None)
        return {"op": "released"}

    # --- calling ----------------------------------------------------------------------------------

    def resolve(self, target: Any) -> Any:
        if isinstance(target, Ref) and target.kind == "handle":
            return self.handles[target.key]
        if target not in self.namespace:
            raise NameError(f"name {target!r} is not defined in your notebook")
        return self.namespace[target]

    def materialise(self, value: Any) -> Any:
        """Decoded argument -> the object to pass: callbacks become stubs, pickles are loaded."""
        if isinstance(value, Ref) and value.kind == "callback":
            return self.callback_stub(value.key)
        if isinstance(value, Ref) and value.kind == "handle":
            return self.handles[value.key]
        if isinstance(value, Ref) and value.kind == "non_leaf":
            # The caller's tensor is the output of an op (a loss): so is the argument here, a clone
            # of a leaf, so in-place edits behave as in a kernel (on a leaf that requires grad they
            # raise) and gradients still reach the leaf, which stands for the caller's tensor.
            leaf = value.key
            if not isinstance(leaf, torch.Tensor) or not leaf.requires_grad:
                return leaf
            tensor = leaf.clone()
            self.leaf_of[id(tensor)] = leaf
            return tensor
        if isinstance(value, Ref) and value.kind == "tensor_with_grad":
            tensor, grad = value.key  # a leaf the caller holds with a .grad: it keeps it here too
            if isinstance(tensor, torch.Tensor) and isinstance(grad, torch.Tensor):
                tensor.grad = grad.to(tensor.dtype)
            return tensor
        if isinstance(value, Ref) and value.kind == "torch_rng":
            generator = torch.Generator()
            generator.set_state(value.key)
            return generator
        if isinstance(value, list):
            return [self.materialise(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.materialise(v) for v in value)
        if isinstance(value, dict):
            return {k: self.materialise(v) for k, v in value.items()}
        return value

    def callback_stub(self, key: Any) -> Callable[..., Any]:
        def callback(*args: Any, **kwargs: Any) -> Any:
            outer = self.sequence
            self.send({"op": "callback", "key": key, "args": list(args), "kwargs": kwargs})
            reply = self.serve(until="callback_result")
            self.sequence = outer
            if "error" in reply:
                raise RuntimeError(f"the grader's callback failed: {reply['error']}")
            return self.materialise(reply["value"])  # as an argument would arrive

        return callback

    def invoke(
        self,
        target: Any,
        args: list[Any],
        kwargs: dict[str, Any],
        banned: list[str],
        extra: list[torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        snapshot = _Snapshot(args, kwargs)
        grad_inputs = [self.leaf_of.get(id(t), t) for t in _grad_inputs(args, kwargs, extra)]
        self.leaf_of.clear()
        from course_utils.checks._guards import tripwires
        from course_utils.checks._optimizers import optimizer_steps

        with (
            _quiet(),
            _aliases_wired(self.namespace, target, banned),
            tripwires(banned),
            optimizer_steps() as steps,  # the checks' evidence of the optimizers used
        ):
            try:
                result = target(*args, **kwargs)
            except BaseException as error:  # noqa: BLE001 - reported to the scorer
                reply = {"op": "error", "error": _error_info(error), **snapshot.changes()}
                return {**reply, "optimizer_steps": steps} if steps else reply
        value = self.encodable(result, snapshot)
        reply: dict[str, Any] = {"op": "result", "value": value, **snapshot.changes()}
        if steps:
            reply["optimizer_steps"] = steps
        outputs = _flat_tensors(result)
        if grad_inputs and any(t.requires_grad for t in outputs):
            graph = next(self.ids)
            self.graphs[graph] = (outputs, grad_inputs)
            while len(self.graphs) > MAX_GRAPHS:
                self.graphs.popitem(last=False)
            reply["graph"] = graph
        return reply

    def encodable(self, value: Any, snapshot: _Snapshot) -> Any:
        """``value`` as plain data: arguments by reference, modules by handle, the rest opaque."""
        ref = snapshot.reference_to(value)
        if ref is not None:
            return ref
        if isinstance(value, nn.Module):
            handle = next(self.ids)
            self.handles[handle] = value
            return Ref("module", [handle, describe_module(value)])
        if isinstance(value, (list, tuple)):
            items = [self.encodable(v, snapshot) for v in value]
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, dict):
            return {k: self.encodable(v, snapshot) for k, v in value.items() if _plain_key(k)}
        try:
            wire.encode(value)
        except (TypeError, ValueError):
            return Ref("opaque", type(value).__name__)
        return value


# --------------------------------------------------------------------------------------------------
# What a call changed in its arguments
# --------------------------------------------------------------------------------------------------


class _Snapshot:
    """The arguments before a call, to report afterwards what the call changed in place."""

    def __init__(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        self.entries: list[tuple[list[Any], Any, Any]] = []
        for i, a in enumerate(args):
            self._add(["args", i], a, depth=0)
        for k, v in kwargs.items():
            self._add(["kwargs", k], v, depth=0)

    def _add(self, path: list[Any], value: Any, depth: int) -> None:
        if isinstance(value, torch.Tensor):
            before = None if value.device.type == "meta" else value.detach().clone()
            state = (before, value._version, value.requires_grad, _grad_of(value))
            self.entries.append((path, value, state))
        elif isinstance(value, (list, dict)):
            self.entries.append((path, value, _shallow(value)))
            if depth == 0:
                items = enumerate(value) if isinstance(value, list) else value.items()
                for key, item in items:
                    self._add([*path, key], item, depth + 1)
        elif isinstance(value, tuple) and depth == 0:
            for key, item in enumerate(value):
                self._add([*path, key], item, depth + 1)
        elif isinstance(value, nn.Module):
            ids = {name: id(p) for name, p in value.named_parameters()}
            self.entries.append((path, value, ids))
        elif isinstance(value, (np.random.Generator, torch.Generator)):
            self.entries.append((path, value, None))

    def reference_to(self, value: Any) -> Ref | None:
        if value is None or isinstance(value, (bool, int, float, str)):
            return None
        for path, original, _ in self.entries:
            if value is original:
                return Ref("arg", path)
        return None

    def changes(self) -> dict[str, Any]:
        """``{"changes": [[path, kind, payload], ...]}`` for every argument the call changed."""
        changes = []
        for path, value, state in self.entries:
            change = self._change(path, value, state)
            if change is not None:
                changes.append([path, *change])
        return {"changes": changes}

    def _change(self, path: list[Any], value: Any, state: Any) -> list[Any] | None:
        if isinstance(value, torch.Tensor):
            before, version, requires_grad, grad = state
            changed = value._version != version or (before is not None and not _same(before, value))
            payload = {
                "value": value.detach() if changed else None,
                "requires_grad": value.requires_grad,
                "grad": _grad_of(value),
                "grad_changed": not _same_grad(grad, _grad_of(value)),
            }
            if changed or value.requires_grad != requires_grad or payload["grad_changed"]:
                return ["tensor", payload]
            return None
        if isinstance(value, (list, dict)):
            if _shallow(value) == state:
                return None
            return ["container", self.encodable_items(value, path)]
        if isinstance(value, nn.Module):
            replaced = [n for n, p in value.named_parameters() if state.get(n) != id(p)]
            return ["module", _module_state(value, replaced)]
        if isinstance(value, np.random.Generator):
            return ["numpy_rng", value.bit_generator.state]
        if isinstance(value, torch.Generator):
            return ["torch_rng", value.get_state()]
        return None

    def encodable_items(self, value: Any, path: list[Any]) -> Any:
        def one(item: Any) -> Any:
            ref = self.reference_to(item)
            if ref is not None:
                return ref
            try:
                wire.encode(item)
            except (TypeError, ValueError):
                return Ref("opaque", type(item).__name__)
            return item

        if isinstance(value, list):
            return [one(v) for v in value]
        return {k: one(v) for k, v in value.items() if _plain_key(k)}


def _kind_and_module(value: Any) -> list[str]:
    """``[kind, module]`` of a name: what the scorer's stand-ins see of it (``remote._stand_in``)."""
    kind = "class" if isinstance(value, type) else "callable" if callable(value) else "value"
    return [kind, str(getattr(value, "__module__", "") or "")]


def _referenced_globals(value: Any) -> dict[str, list[str]]:
    """``[kind, module]`` of every global name the code of ``value`` (a function, or a class's
    methods) refers to, looked up in that code's own globals; nested functions included."""
    functions = [value] if isinstance(value, types.FunctionType) else []
    if isinstance(value, type):
        for member in vars(value).values():
            member = getattr(member, "__func__", member)  # staticmethod, classmethod
            if isinstance(member, types.FunctionType):
                functions.append(member)
    names: dict[str, list[str]] = {}
    for function in functions:
        codes = [function.__code__]
        while codes:
            code = codes.pop()
            codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
            for name in code.co_names:
                if name in function.__globals__ and not name.startswith("__"):
                    names.setdefault(name, _kind_and_module(function.__globals__[name]))
    return names


def _shallow(value: Any) -> Any:
    items = value if isinstance(value, list) else list(value.items())
    out = []
    for item in items:
        key = item[0] if isinstance(value, dict) else None
        element = item[1] if isinstance(value, dict) else item
        out.append((key, id(element), element if isinstance(element, (int, float, str)) else None))
    return out


def _plain_key(key: Any) -> bool:
    return isinstance(key, (str, int, float, bool, tuple)) or key is None


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    b = b.detach()
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    return bool(torch.equal(a, b)) or bool(
        (a.is_floating_point() and torch.equal(a.isnan(), b.isnan()))
        and torch.equal(a.nan_to_num(), b.nan_to_num())
    )


def _grad_of(value: torch.Tensor) -> torch.Tensor | None:
    grad = value.grad if value.is_leaf else None
    return None if grad is None else grad.detach().clone()


def _same_grad(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is b
    return _same(a, b)


def _module_state(module: nn.Module, replaced: list[str]) -> dict[str, Any]:
    return {
        "params": {n: p.detach() for n, p in module.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in module.named_parameters()},
        "grads": {n: _grad_of(p) for n, p in module.named_parameters()},
        "buffers": {n: b for n, b in module.named_buffers()},
        "training": {n: m.training for n, m in module.named_modules()},
        "replaced": replaced,
    }


def _flat_tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, torch.Tensor)]
    return []


# --------------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------------

_CONFIG = {
    "Conv1d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation"),
    "Linear": ("in_features", "out_features"),
    "BatchNorm1d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "BatchNorm2d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    "GroupNorm": ("num_groups", "num_channels", "eps", "affine"),
    "LayerNorm": ("normalized_shape", "eps", "elementwise_affine"),
    "MaxPool2d": ("kernel_size", "stride", "padding"),
    "AvgPool2d": ("kernel_size", "stride", "padding"),
    "AdaptiveAvgPool2d": ("output_size",),
    "Dropout": ("p",),
    "Flatten": ("start_dim", "end_dim"),
    "ReLU": (),
    "Identity": (),
    "Sequential": (),
}


def describe_module(module: nn.Module) -> dict[str, Any]:
    """A module as plain data: its submodules (type and settings), parameters and buffers."""
    modules = []
    for path, sub in module.named_modules():
        kind = type(sub)
        config: dict[str, Any] = {}
        if kind.__module__.startswith("torch.nn") and kind.__name__ in _CONFIG:
            for field in _CONFIG[kind.__name__]:
                value = getattr(sub, field, None)
                config[field] = list(value) if isinstance(value, tuple) else value
            if kind.__name__ in ("Conv1d", "Conv2d"):
                config.update(groups=sub.groups, bias=sub.bias is not None)
                config["padding_mode"] = sub.padding_mode
            if kind.__name__ == "Linear":
                config["bias"] = sub.bias is not None
        bases = [f"{c.__module__}.{c.__qualname__}" for c in kind.__mro__[1:-1]]
        modules.append(
            {
                "path": path,
                "type": f"{kind.__module__}.{kind.__qualname__}",
                "bases": bases[:8],
                "config": config,
                "training": sub.training,
            }
        )
    return {
        "modules": modules,
        "params": {n: p.detach() for n, p in module.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in module.named_parameters()},
        "buffers": {n: b for n, b in module.named_buffers()},
    }


def _load_state(module: nn.Module, state: dict[str, Any], training: dict[str, bool]) -> None:
    """Put the scorer's parameter and buffer values into ``module`` (new leaves each call)."""
    named = dict(module.named_modules())
    for name, value in state.get("params", {}).items():
        owner, _, leaf = name.rpartition(".")
        if owner in named and leaf in named[owner]._parameters:
            requires_grad = state.get("requires_grad", {}).get(name, True)
            named[owner]._parameters[leaf] = nn.Parameter(value, requires_grad=requires_grad)
    for name, value in state.get("buffers", {}).items():
        owner, _, leaf = name.rpartition(".")
        if owner in named and leaf in named[owner]._buffers:
            named[owner]._buffers[leaf] = value
    for path, flag in training.items():
        if path in named:
            named[path].training = bool(flag)


@contextlib.contextmanager
def _traced(module: nn.Module, args: list[Any], trace: list[list[Any]]) -> Iterator[None]:
    """Record each submodule call: [path, where its input came from, its output]."""
    outputs: dict[int, int] = {}
    inputs = {id(a): i for i, a in enumerate(args) if isinstance(a, torch.Tensor)}
    paths = {id(m): p for p, m in module.named_modules() if p}

    def hook(sub: nn.Module, hook_args: tuple[Any, ...], output: Any) -> None:
        if not hook_args or not isinstance(hook_args[0], torch.Tensor):
            return
        if not isinstance(output, torch.Tensor):
            return
        first = hook_args[0]
        if id(first) in inputs:
            source: list[Any] = ["input", inputs[id(first)]]
        elif id(first) in outputs:
            source = ["record", outputs[id(first)]]
        else:
            source = ["value", first.detach()]
        outputs[id(output)] = len(trace)
        trace.append([paths[id(sub)], source, output.detach()])

    handles = [m.register_forward_hook(hook) for p, m in module.named_modules() if p]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _aliases_wired(namespace: dict[str, Any], target: Any, banned: list[str]) -> Iterator[None]:
    """While a call runs, names in the notebook bound to a banned function raise as its tripwire
    would (``gn = F.group_norm`` in another cell, or as a default argument)."""
    from course_utils.checks._guards import ReferenceCalled, _owner_of

    originals = []
    for dotted in banned:
        owner = _owner_of(dotted)
        if owner is not None:
            originals.append((dotted, getattr(owner, dotted.rsplit(".", 1)[1], None)))
    saved: list[Callable[[], None]] = []

    def wire_for(name: str) -> Callable[..., Any]:
        def wire(*args: Any, **kwargs: Any) -> Any:
            raise ReferenceCalled(f"your answer called {name}, which it should implement itself")

        return wire

    for key, value in list(namespace.items()):
        for dotted, original in originals:
            if original is not None and value is original:
                namespace[key] = wire_for(dotted)
                saved.append(lambda key=key, value=value: namespace.__setitem__(key, value))
    for fn in [v for v in namespace.values() if isinstance(v, types.FunctionType)]:
        defaults = getattr(fn, "__defaults__", None)
        if defaults:
            new = tuple(
                next((wire_for(d) for d, o in originals if o is not None and v is o), v)
                for v in defaults
            )
            if new != defaults:
                fn.__defaults__ = new
                saved.append(lambda fn=fn, defaults=defaults: setattr(fn, "__defaults__", defaults))
    try:
        yield
    finally:
        for restore in reversed(saved):
            restore()


def _rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [*numpy_state]}


def _set_rng_state(state: Any) -> None:
    """Start from the scorer's global random states (see ``remote._rng_state``)."""
    if not isinstance(state, dict):
        return
    with contextlib.suppress(Exception):
        torch.set_rng_state(state["torch"].to(torch.uint8))
    with contextlib.suppress(Exception):
        np.random.set_state(tuple(state["numpy"]))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Student code's prints and warnings go nowhere (the scorer reads only the channel)."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield


def _error_info(error: BaseException) -> dict[str, Any]:
    frames = traceback.extract_tb(error.__traceback__)
    learner = [f for f in frames if f.filename.startswith("<cell ")] or frames[-1:]
    where = learner[-1] if learner else None
    return {
        "type": type(error).__name__,
        "message": str(error)[:2000],
        "line": where.lineno if where else 0,
        "where": where.name if where else "?",
        "file": where.filename if where else "?",
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    read_fd, write_fd = int(argv[0]), int(argv[1])
    os.environ.setdefault("MPLBACKEND", "Agg")
    torch.set_num_threads(1)
    global CURRENT
    server = CURRENT = Server(read_fd, write_fd)
    # Run as ``python -m``, this module is ``__main__``; pickled modules look the server up under
    # the module's own name.
    import course_utils.grading.scoring.answers as named

    named.CURRENT = server
    wire.write_frame(write_fd, {"op": "ready", "pid": os.getpid()})
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())

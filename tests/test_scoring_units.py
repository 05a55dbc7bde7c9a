"""Trusted scoring's parts, each against an oracle: the wire codec, the answer slice, the channel.

The channel tests start a real answer process (no sandbox: the sandbox is tested in
tests/test_sandbox_walls.py and the hostile batch) and compare what a call through it gives with a
direct call of the same function: values, in-place changes, gradients, random draws, modules.
"""

from __future__ import annotations

import math
import struct
import textwrap

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook
from torch import nn

from course_utils.grading.scoring import wire
from course_utils.grading.scoring.cells import answer_slice
from course_utils.grading.scoring.remote import AnswerProcess, AnswerProcessError
from course_utils.grading.scoring.score import aliased_references, dynamic_lookups

# --------------------------------------------------------------------------------------------------
# wire
# --------------------------------------------------------------------------------------------------


def _round_trip(value, **kw):
    frame = wire.encode(value)
    (size,) = struct.unpack(">Q", frame[:8])
    assert size == len(frame) - 8
    return wire.decode(frame[8:], **kw)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        2**70,
        -1.5,
        "text",
        b"\x00\xff",
        1 + 2j,
        [1, (2, 3), {"a": [4.0]}],
        {(1, 2): "tuple key", 3: None},
        torch.float64,
        torch.Size([2, 3]),
        np.float32(1.5),
        np.int64(7),
    ],
)
def test_plain_values_round_trip(value) -> None:
    assert _round_trip(value) == value


def test_special_floats_round_trip() -> None:
    got = _round_trip([math.nan, math.inf, -math.inf])
    assert math.isnan(got[0]) and got[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.bool]
)
def test_tensors_round_trip_with_dtype_shape_and_grad_flag(dtype) -> None:
    x = (torch.randn(3, 4) * 10).to(dtype)
    if dtype.is_floating_point:
        x.requires_grad_(True)
    got = _round_trip(x)
    assert got.dtype == dtype and got.shape == x.shape and torch.equal(got.detach(), x.detach())
    assert got.requires_grad == x.requires_grad


def test_memory_layout_survives_so_view_bugs_still_show() -> None:
    channels_last = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    got = _round_trip(channels_last)
    assert got.stride() == channels_last.stride() and torch.equal(got, channels_last)
    transposed = torch.randn(4, 6).t()
    assert not _round_trip(transposed).is_contiguous()
    gapped = torch.randn(4, 8)[:, ::2]
    got = _round_trip(gapped)
    assert got.stride() == gapped.stride() and torch.equal(got, gapped)


def test_meta_tensors_and_arrays_round_trip() -> None:
    meta = _round_trip(torch.empty(2, 3, device="meta"))
    assert meta.device.type == "meta" and meta.shape == (2, 3)
    array = np.arange(6, dtype=np.int16).reshape(2, 3)
    got = _round_trip(array)
    assert got.dtype == array.dtype and np.array_equal(got, array)


def test_what_the_answer_process_sends_is_never_unpickled() -> None:
    frame = wire.encode(wire.Pickled(b"cos\nsystem\n(S'echo hacked'\ntR."))
    with pytest.raises(wire.WireError, match="refused"):
        wire.decode(frame[8:])


@pytest.mark.parametrize(
    "header",
    [
        {"$tensor": {"dtype": "float32", "shape": [1000], "blob": 0}},  # bytes do not fit
        {"$tensor": {"dtype": "object", "shape": [1], "blob": 0}},
        {"$array": {"dtype": "|O", "shape": [1], "blob": 0}},
        {"$nonsense": 1},
        {"a": 1, "b": 2},
        {"$dict": [[[1], 2]]},  # a list as a key
    ],
)
def test_malformed_messages_are_refused_not_run(header) -> None:
    import json

    head = json.dumps(header).encode()
    blob = b"\x00" * 4
    body = struct.pack(">Q", len(head)) + head + struct.pack(">Q", len(blob)) + blob
    with pytest.raises(wire.WireError):
        wire.decode(body)


def test_a_frame_over_the_limit_is_not_read(monkeypatch) -> None:
    import os

    read, write = os.pipe()
    os.write(write, struct.pack(">Q", wire.MAX_FRAME + 1))
    with pytest.raises(wire.WireError, match="limit"):
        wire.read_frame(read)
    os.close(read)
    os.close(write)


# --------------------------------------------------------------------------------------------------
# the slice
# --------------------------------------------------------------------------------------------------


def _notebook(*sources: str, test_at: int | None = None) -> nbformat.NotebookNode:
    cells = [new_code_cell(textwrap.dedent(s)) for s in sources]
    if test_at is not None:
        cells[test_at].metadata["nbgrader"] = {"grade": True, "grade_id": "t", "solution": False}
    return new_notebook(cells=cells)


def test_slice_keeps_what_the_answer_needs_and_skips_training() -> None:
    nb = _notebook(
        "import math\nimport torch",
        "model = torch.nn.Linear(2, 2)\nfor step in range(10**9): pass  # training",
        "SCALE = 2.0",
        "def helper(x):\n    return x * SCALE",
        "def answer(n):\n    out = helper(math.log(n))\n    return out",
        "out = answer(3)  # a demo that rebinds 'out'",
        "check_answer(answer)",
        test_at=6,
    )
    assert [i for i, _ in answer_slice(nb, {"answer": 6}, {"t"})] == [0, 2, 3, 4]


def test_slice_takes_the_definition_in_force_at_the_test() -> None:
    nb = _notebook(
        "def answer():\n    return 1",
        "check(answer)",
        "def answer():\n    return 2  # redefined after the test",
        test_at=1,
    )
    assert [i for i, _ in answer_slice(nb, {"answer": 1}, {"t"})] == [0]


def test_slice_follows_names_read_at_definition_time() -> None:
    nb = _notebook(
        "C = 10",
        "def make(width=C):\n    return width",
        "def answer():\n    return make()",
    )
    assert [i for i, _ in answer_slice(nb, {"answer": 3}, set())] == [0, 1, 2]


# --------------------------------------------------------------------------------------------------
# references the notebook's text reaches
# --------------------------------------------------------------------------------------------------

BANNED = ["torch.nn.functional.group_norm"]


@pytest.mark.parametrize(
    "cells",
    [
        [
            "import torch.nn.functional as F\ngn = F.group_norm",
            "def answer(x):\n    return gn(x, 2)",
        ],
        ["from torch.nn.functional import group_norm as g", "def answer(x):\n    return g(x, 2)"],
        [
            "import torch\nh = torch.nn.functional.group_norm\nk = h",
            "def answer(x):\n    return k(x, 2)",
        ],
        ["import torch.nn.functional as F", "def answer(x, f=F.group_norm):\n    return f(x, 2)"],
        [
            "import torch.nn.functional as F",
            "def answer(x):\n    return getattr(F, 'group_norm')(x, 2)",
        ],
    ],
)
def test_aliased_references_are_found(cells) -> None:
    indexed = list(enumerate(cells))
    assert aliased_references(indexed, "answer", BANNED) == BANNED


def test_a_comment_or_an_unrelated_name_is_not_a_reference() -> None:
    cells = [
        (0, "import torch.nn.functional as F\nlabel = 'group_norm'"),
        (1, "def answer(x):\n    # unlike F.group_norm, by hand\n    return x - x.mean()"),
    ]
    assert aliased_references(cells, "answer", BANNED) == []


def test_computed_lookups_are_listed_but_course_cells_are_not() -> None:
    course = "import torch"
    cells = [(0, course), (1, "def answer(x):\n    return getattr(torch, 'gro' + 'up_norm')(x)")]
    found = dynamic_lookups(cells, "answer", {course})
    assert len(found) == 1 and found[0].startswith("cell 1, line 2: getattr")
    assert (
        dynamic_lookups([(0, "def answer(x):\n    return getattr(x, 'shape')")], "a", set()) == []
    )


# --------------------------------------------------------------------------------------------------
# the channel (a real answer process, without the sandbox)
# --------------------------------------------------------------------------------------------------

ANSWERS = textwrap.dedent(
    """
    import math, os, time
    import numpy as np
    import torch
    from torch import nn

    def scale(x, k):
        return x * k

    def in_place(x, values):
        x.add_(1.0)
        values.pop()
        values.append("changed")
        return x

    def draws(n):
        return torch.rand(n), np.random.rand(n)

    def detached(x):
        return (x * 2).detach()

    def train_bias(layer):
        with torch.no_grad():
            layer.bias.fill_(0.5)
        layer.weight = nn.Parameter(layer.weight.detach().clone())  # a new Parameter object
        return layer

    def calls_back(objective, values):
        return [objective(v) for v in values]

    def hangs():
        while True:
            time.sleep(0.01)

    def dies():
        os._exit(3)

    def raises(n):
        if n < 0:
            raise ValueError("n must be positive")
        return n

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(c)

        def forward(self, x):
            return torch.relu(self.bn(self.conv(x)) + x)
    """
)


@pytest.fixture(scope="module")
def answers():
    with AnswerProcess([(0, ANSWERS)], call_timeout=5) as process:
        process.start()
        yield process


def _local():
    namespace: dict = {}
    exec(ANSWERS, namespace)  # the same answers, run here as the oracle
    return namespace


def test_values_and_gradients_match_a_direct_call(answers) -> None:
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(4, 3, dtype=torch.float64)
    got = answers.function("scale")(x, 3.0)
    assert got.requires_grad and torch.allclose(got, x * 3.0)
    (grad,) = torch.autograd.grad(got, x, upstream)
    assert torch.allclose(grad, upstream * 3.0)
    assert torch.autograd.gradcheck(lambda t: answers.function("scale")(t, 2.5), (x,))


def test_a_detached_answer_stays_detached(answers) -> None:
    x = torch.randn(3, requires_grad=True)
    assert not answers.function("detached")(x).requires_grad


def test_in_place_changes_reach_the_callers_objects(answers) -> None:
    x = torch.zeros(3)
    values = ["a", "b"]
    version = x._version
    got = answers.function("in_place")(x, values)
    assert got is x, "returning an argument returns the caller's object"
    assert torch.equal(x, torch.ones(3)) and x._version > version
    assert values == ["a", "changed"]


def test_random_draws_follow_the_callers_global_seed(answers) -> None:
    local = _local()
    torch.manual_seed(5)
    np.random.seed(5)
    expected = local["draws"](4)
    torch.manual_seed(5)
    np.random.seed(5)
    got = answers.function("draws")(4)
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


def test_module_arguments_come_back_changed_with_new_parameters(answers) -> None:
    layer = nn.Linear(3, 2)
    old_weight = layer.weight
    returned = answers.function("train_bias")(layer)
    assert returned is layer
    assert torch.equal(layer.bias.detach(), torch.full((2,), 0.5))
    assert layer.weight is not old_weight, "a replaced nn.Parameter shows as a new object"


def test_callables_are_called_back_here(answers) -> None:
    seen = []

    def objective(v):
        seen.append(v)
        return v * 10

    assert answers.function("calls_back")(objective, [1, 2]) == [10, 20]
    assert seen == [1, 2]


def test_exceptions_keep_their_type_message_and_line(answers) -> None:
    with pytest.raises(ValueError, match="must be positive") as raised:
        answers.function("raises")(-1)
    frame = raised.traceback[-1]  # pytest numbers lines from 0
    raise_line = ANSWERS.splitlines().index('        raise ValueError("n must be positive")')
    assert frame.name == "raises" and frame.lineno == raise_line


def test_a_class_gives_a_mirror_that_trains_like_the_original(answers) -> None:
    torch.manual_seed(0)
    block = answers.klass("Block")(4)
    local = _local()["Block"](4)
    local.load_state_dict(block.state_dict())
    assert isinstance(block.bn, nn.BatchNorm2d) and isinstance(block.conv, nn.Conv2d)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    x_local = x.detach().clone().requires_grad_(True)
    out, out_local = block(x), local(x_local)
    assert torch.allclose(out, out_local, atol=1e-6)
    out.square().sum().backward()
    out_local.square().sum().backward()
    assert torch.allclose(x.grad, x_local.grad, atol=1e-5)
    assert torch.allclose(block.conv.weight.grad, local.conv.weight.grad, atol=1e-5)
    assert torch.allclose(block.bn.running_mean, local.bn.running_mean, atol=1e-6)
    seen = []
    block.bn.register_forward_hook(lambda m, inputs, output: seen.append(inputs[0]))
    block.conv.register_forward_hook(lambda m, inputs, output: seen.append(inputs[0] is x))
    with torch.no_grad():
        block(x)
    assert seen[0] is True and isinstance(seen[1], torch.Tensor)
    meta = block.to("meta")(torch.empty(1, 4, 5, 5, device="meta"))
    assert meta.device.type == "meta" and meta.shape == (1, 4, 5, 5)


def test_a_hanging_answer_times_out_and_the_next_call_restarts(answers) -> None:
    with pytest.raises(AnswerProcessError, match="did not return"):
        answers.function("hangs")()
    with pytest.raises(AnswerProcessError, match="not run"):
        answers.function("raises")(1)  # same check: fails fast
    answers.reset()
    assert answers.function("raises")(2) == 2  # next check: a fresh process
    with pytest.raises(AnswerProcessError, match="ended"):
        answers.function("dies")()
    answers.reset()
    assert answers.function("raises")(3) == 3


def test_a_cell_that_never_finishes_loading_costs_only_itself() -> None:
    cells = [
        (0, "def good():\n    return 1"),
        (1, "while True:\n    pass"),
        (2, "def later():\n    return 2"),
    ]
    with AnswerProcess(cells, cell_timeout=3) as process:
        process.start()
        assert process.function("good")() == 1 and process.function("later")() == 2
        assert process.load_errors and process.load_errors[0][0] == 1

"""course_utils.layers against PyTorch/torchvision: group norm, inverted dropout, residual block."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import select
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torchvision.models.resnet import BasicBlock

from course_utils import group_norm_cpu, layers
from course_utils.layers import (
    Dropout,
    Dropout2d,
    GroupNorm,
    ResidualBlock,
    dropout,
    dropout2d,
    group_norm,
    make_norm,
)

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------------
# group_norm / GroupNorm: every CPU test runs both paths, the composed ops and the fused kernel
# ----------------------------------------------------------------------------------------------------

BOTH_PATHS = pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])


@BOTH_PATHS
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("shape", "groups"),
    [
        ((6, 8), 4),
        ((4, 6, 10), 3),
        ((3, 8, 5, 5), 2),
        ((2, 6, 4, 4), 1),
        ((2, 6, 4, 4), 6),
        ((2, 4, 3, 3, 3), 2),
        ((2, 4, 1, 1), 4),
        ((1, 6, 3), 2),
    ],
)
def test_group_norm_matches_torch_on_random_inputs(shape, groups, dtype, fused):
    """Oracle: F.group_norm in float64 (its float32 kernel is less exact when a group's variance
    is 0: it returns noise of about 1e-5 where the exact output is the bias)."""
    gen = _gen(1)
    x = torch.randn(shape, generator=gen, dtype=dtype) * 3 + 1
    weight = torch.randn(shape[1], generator=gen, dtype=dtype)
    bias = torch.randn(shape[1], generator=gen, dtype=dtype)
    x64, w64, b64 = x.double(), weight.double(), bias.double()
    for args, oracle in [
        ((weight, bias), (w64, b64)),
        ((None, None), (None, None)),
    ]:
        out = group_norm(x, groups, *args, fused=fused)
        assert out.dtype == dtype
        torch.testing.assert_close(out.double(), F.group_norm(x64, groups, *oracle), **TOL[dtype])
    out = group_norm(x, groups, None, bias, eps=0.1, fused=fused)
    expected = F.group_norm(x64, groups, None, b64, eps=0.1)
    torch.testing.assert_close(out.double(), expected, **TOL[dtype])


@st.composite
def _group_norm_inputs(draw):
    groups = draw(st.integers(1, 4))
    channels = groups * draw(st.integers(1, 4))
    spatial = draw(st.lists(st.integers(1, 5), min_size=0, max_size=3))
    batch = draw(st.integers(1, 4))
    if batch * math.prod(spatial) == 1:
        batch = 2  # F.group_norm refuses a single value per channel
    seed = draw(st.integers(0, 2**16))
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    return (batch, channels, *spatial), groups, seed, eps


@BOTH_PATHS
@given(_group_norm_inputs())
def test_group_norm_matches_torch_for_any_shape_and_groups(fused, case):
    shape, groups, seed, eps = case
    gen = _gen(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2
    weight = torch.randn(shape[1], generator=gen, dtype=torch.float64)
    bias = torch.randn(shape[1], generator=gen, dtype=torch.float64)
    torch.testing.assert_close(
        group_norm(x, groups, weight, bias, eps, fused=fused),
        F.group_norm(x, groups, weight, bias, eps),
        rtol=1e-9,
        atol=1e-9,
    )


@BOTH_PATHS
def test_group_norm_gradients_pass_gradcheck(fused):
    gen = _gen(2)
    x = torch.randn(3, 6, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, generator=gen, dtype=torch.float64, requires_grad=True)
    gn = functools.partial(group_norm, fused=fused)
    assert torch.autograd.gradcheck(lambda a, w, b: gn(a, 3, w, b), (x, weight, bias))
    assert torch.autograd.gradcheck(lambda a: gn(a, 2), (x,))
    assert torch.autograd.gradcheck(lambda a, b: gn(a, 6, None, b), (x, bias))


@BOTH_PATHS
@pytest.mark.parametrize(
    ("shape", "groups", "affine"),
    [
        ((6, 8), 4, (True, True)),
        ((2, 4, 1, 1), 4, (True, True)),
        ((3, 8, 5, 5), 2, (True, False)),
        ((2, 6, 4, 4), 6, (False, True)),
        ((2, 4, 3, 3, 3), 1, (False, False)),
    ],
)
def test_group_norm_gradients_match_torch_in_float64(shape, groups, affine, fused):
    """The hand-written backwards against autograd through F.group_norm, on 2-D to 5-D inputs,
    G = 1 and G = C, a single value per group, and each combination of weight and bias."""
    gen = _gen(25)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    params = [torch.randn(shape[1], generator=gen, dtype=torch.float64) for _ in affine]
    params = [p.requires_grad_() if on else None for p, on in zip(params, affine, strict=True)]
    upstream = torch.randn(shape, generator=gen, dtype=torch.float64)
    wrt = [x] + [p for p in params if p is not None]
    ours = torch.autograd.grad(group_norm(x, groups, *params, fused=fused), wrt, upstream)
    theirs = torch.autograd.grad(F.group_norm(x, groups, *params), wrt, upstream)
    for got, want in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@BOTH_PATHS
@pytest.mark.parametrize("wanted", ["weight", "bias", "x"])
def test_group_norm_gradients_match_torch_with_partial_requires_grad(wanted, fused):
    gen = _gen(3)
    tensors = {
        "x": torch.randn(4, 8, 5, 5, generator=gen),
        "weight": torch.randn(8, generator=gen),
        "bias": torch.randn(8, generator=gen),
    }
    tensors[wanted].requires_grad_()
    upstream = torch.randn(4, 8, 5, 5, generator=gen)
    args = (tensors["x"], 4, tensors["weight"], tensors["bias"])
    (ours,) = torch.autograd.grad(group_norm(*args, fused=fused), tensors[wanted], upstream)
    (theirs,) = torch.autograd.grad(F.group_norm(*args), tensors[wanted], upstream)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@BOTH_PATHS
def test_group_norm_handles_non_contiguous_and_expanded_gradients(fused):
    x = torch.randn(3, 5, 5, 8, generator=_gen(4)).permute(0, 3, 1, 2).requires_grad_()
    out = group_norm(x, 4, fused=fused)
    torch.testing.assert_close(out, F.group_norm(x, 4), rtol=1e-5, atol=1e-5)
    out.sum().backward()  # d(sum)/dx of a normalised group is 0
    torch.testing.assert_close(x.grad, torch.zeros_like(x), rtol=0, atol=1e-5)


@BOTH_PATHS
@pytest.mark.parametrize("layout", ["channels_last", "transposed"])
def test_group_norm_gradients_match_torch_for_non_contiguous_upstream_gradients(layout, fused):
    gen = _gen(24)
    x = torch.randn(2, 8, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(8, generator=gen, dtype=torch.float64, requires_grad=True)
    if layout == "channels_last":
        upstream = torch.randn(2, 8, 4, 4, generator=gen, dtype=torch.float64)
        upstream = upstream.to(memory_format=torch.channels_last)
    else:
        upstream = torch.randn(8, 2, 4, 4, generator=gen, dtype=torch.float64).transpose(0, 1)
    ours = torch.autograd.grad(group_norm(x, 4, weight, fused=fused), (x, weight), upstream)
    theirs = torch.autograd.grad(F.group_norm(x, 4, weight), (x, weight), upstream)
    for got, want in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@BOTH_PATHS
def test_group_norm_is_stable_for_large_means(fused):
    x = torch.randn(2, 4, 8, 8, generator=_gen(5)) + 1e4
    expected = F.group_norm(x.double(), 2)
    torch.testing.assert_close(group_norm(x, 2, fused=fused).double(), expected, rtol=0, atol=2e-3)


@BOTH_PATHS
def test_group_norm_of_a_constant_group_is_the_bias_and_eps_zero_gives_inf_not_an_error(fused):
    x = torch.full((2, 4, 3, 3), 7.0, dtype=torch.float64)
    bias = torch.arange(4.0, dtype=torch.float64)
    expected = bias.view(1, 4, 1, 1).expand_as(x)
    torch.testing.assert_close(group_norm(x, 2, None, bias, fused=fused), expected)
    # 0 / sqrt(0): NaN, as F.group_norm gives, rather than a ZeroDivisionError from the kernel
    assert torch.isnan(group_norm(x, 2, None, bias, eps=0.0, fused=fused)).all()
    assert torch.isnan(F.group_norm(x, 2, None, bias, eps=0.0)).all()


@BOTH_PATHS
def test_group_norm_of_an_empty_batch_is_empty(fused):
    x = torch.randn(0, 4, 3, 3, requires_grad=True)
    out = group_norm(x, 2, fused=fused)
    assert out.shape == (0, 4, 3, 3)
    out.sum().backward()
    assert x.grad.shape == x.shape


def test_group_norm_runs_on_meta_tensors():
    x = torch.empty(2, 8, 4, 4, device="meta", requires_grad=True)
    weight = torch.empty(8, device="meta", requires_grad=True)
    out = group_norm(x, 4, weight, torch.empty(8, device="meta"))  # fused=None: composed ops
    assert out.device.type == "meta" and out.shape == x.shape
    out.sum().backward()
    assert x.grad.device.type == "meta" and weight.grad.shape == (8,)


@BOTH_PATHS
def test_group_norm_under_bfloat16_autocast_stays_close_to_float32(fused):
    gen = _gen(6)
    x = torch.randn(4, 8, 6, 6, generator=gen)
    conv = nn.Conv2d(8, 8, 3, padding=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = conv(x)
        out = group_norm(h, 4, fused=fused)
    assert h.dtype == torch.bfloat16 and out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), group_norm(h.float(), 4), rtol=0.05, atol=0.05)


@BOTH_PATHS
def test_group_norm_in_half_precision_keeps_the_dtype(fused):
    x = torch.randn(2, 4, 3, 3, generator=_gen(7)).half()
    out = group_norm(x, 2, fused=fused)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), F.group_norm(x.float(), 2), rtol=1e-2, atol=1e-2)


@BOTH_PATHS
@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((torch.randn(4, 6), 4), "divisible by num_groups, got C=6 and num_groups=4"),
        ((torch.randn(6), 2), "at least 2 dims, got shape \\(6,\\)"),
        ((torch.randn(2, 6), 0), "num_groups must be a positive int, got 0"),
        ((torch.randn(2, 6), 2, torch.ones(3)), "weight must have shape \\(C,\\) = \\(6,\\)"),
        ((torch.randn(2, 6), 2, None, torch.ones(6, 1)), "bias must have shape"),
    ],
)
def test_group_norm_rejects_bad_input(args, match, fused):
    with pytest.raises(ValueError, match=match):
        group_norm(*args, fused=fused)


def test_group_norm_fused_switch_rejects_what_the_kernel_cannot_run():
    with pytest.raises(ValueError, match="fused must be None, True or False, got 'yes'"):
        group_norm(torch.randn(2, 4), 2, fused="yes")
    with pytest.raises(
        ValueError, match="float CPU tensors only, got a torch.float32 tensor on meta"
    ):
        group_norm(torch.empty(2, 4, device="meta"), 2, fused=True)


# ----------------------------------------------------------------------------------------------------
# the fused CPU kernel: which path runs, threads, fork, concurrency, a missing numba, stderr
# ----------------------------------------------------------------------------------------------------


def _path_taken(monkeypatch: pytest.MonkeyPatch, x: torch.Tensor, **kwargs) -> str:
    calls = []
    real = group_norm_cpu.fused_group_norm
    monkeypatch.setattr(group_norm_cpu, "fused_group_norm", lambda *a: calls.append(1) or real(*a))
    group_norm(x, 2, **kwargs)
    return "fused" if calls else "composed"


def test_group_norm_picks_the_fused_kernel_on_the_cpu_only(monkeypatch):
    assert _path_taken(monkeypatch, torch.randn(2, 4, 3)) == "fused"
    assert _path_taken(monkeypatch, torch.randn(2, 4, 3).half()) == "fused"  # normalised in fp32
    assert _path_taken(monkeypatch, torch.randn(2, 4, 3), fused=False) == "composed"
    assert _path_taken(monkeypatch, torch.empty(2, 4, 3, device="meta")) == "composed"
    assert _path_taken(monkeypatch, torch.randn(0, 4, 3)) == "composed"
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert _path_taken(monkeypatch, torch.randn(2, 4, 3)) == "composed"


def test_group_norm_without_numba_falls_back_or_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(layers, "fused_kernel_unavailable_reason", lambda: "numba is missing")
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    torch.testing.assert_close(group_norm(x, 2), F.group_norm(x, 2))
    with pytest.raises(RuntimeError, match="fused=True needs the fused CPU kernel, but numba"):
        group_norm(x, 2, fused=True)


@pytest.mark.parametrize("shape", [(64, 32, 16, 16), (3, 6, 40, 40), (1, 8, 64, 64)])
def test_fused_kernel_gives_the_same_bits_with_any_number_of_threads(shape):
    """Rows are split across threads at arbitrary boundaries (a chunk may start mid-sample, or
    the batch may be 1); each row's sums are one thread's, so the result is bit-identical."""
    gen = _gen(11)
    x = torch.randn(shape, generator=gen, requires_grad=True)
    weight = torch.randn(shape[1], generator=gen, requires_grad=True)
    bias = torch.randn(shape[1], generator=gen, requires_grad=True)
    upstream = torch.randn(shape, generator=gen)
    results = []
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        out = group_norm(x, 2, weight, bias, fused=True)
        results.append((out, *torch.autograd.grad(out, (x, weight, bias), upstream)))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert torch.equal(a, b)
    torch.testing.assert_close(results[0][0], F.group_norm(x, 2, weight, bias))


def test_fused_kernel_is_safe_to_call_from_several_threads_at_once():
    torch.set_num_threads(2)
    inputs = [torch.randn(8, 16, 24, 24, generator=_gen(seed)) for seed in range(8)]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda x: group_norm(x, 4, fused=True), inputs))
    for x, out in zip(inputs, outs, strict=True):
        torch.testing.assert_close(out, F.group_norm(x, 4), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fused_kernel_works_in_a_forked_child_after_the_parent_used_its_threads():
    """A DataLoader worker is a forked child: numba's omp layer would kill it, and a thread pool
    inherited from the parent has no threads left. The child gets its own pool."""
    torch.set_num_threads(2)
    x = torch.randn(8, 16, 24, 24, generator=_gen(12))
    expected = group_norm(x, 4, fused=True)  # the parent's pool now has threads
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send the bytes, exit without running pytest's teardown
        try:
            os.close(read_end)
            torch.set_num_threads(2)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(group_norm(x, 4, fused=True).numpy().tobytes())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 60)
        assert ready, "the forked child did not answer within 60 s (a hung thread pool?)"
        with os.fdopen(read_end, "rb") as pipe:
            got = pipe.read()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert got == expected.numpy().tobytes()


def test_fused_kernel_first_use_in_a_new_process_writes_nothing_to_stderr(tmp_path):
    """nbgrader scores output on stderr as a failure: numba's import and first compile (a fresh,
    empty cache) must be silent."""
    script = (
        "import torch\n"
        "from course_utils.layers import group_norm\n"
        "x = torch.randn(4, 8, 5, 5, requires_grad=True)\n"
        "group_norm(x, 4, fused=True).square().sum().backward()\n"
        "group_norm(x.double(), 4, fused=True)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"
    assert done.stderr == ""


def test_fused_kernels_compile_without_a_writable_cache_location(monkeypatch):
    """In the grading sandbox the package is read-only and so may be every cache folder: numba's
    njit(cache=True) then raises RuntimeError, and the kernel compiles per process instead."""
    real_njit = group_norm_cpu.numba.njit

    def njit_without_cache(**options):
        if options.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real_njit(**options)

    monkeypatch.setattr(group_norm_cpu.numba, "njit", njit_without_cache)
    forward = group_norm_cpu._compile(group_norm_cpu._forward_rows)
    x = torch.randn(4, 2, 5, dtype=torch.float64)  # rows (N*G, C/G, S) = 2 samples x 2 groups
    out, stats, ones, zeros = torch.empty_like(x), x.new_empty(4, 2), x.new_ones(4), x.new_zeros(4)
    forward(0, x.numpy(), out.numpy(), stats.numpy(), ones.numpy(), zeros.numpy(), 1e-5)
    torch.testing.assert_close(out.view(2, 4, 5), F.group_norm(x.view(2, 4, 5), 2))


# ----------------------------------------------------------------------------------------------------
# GroupNorm module
# ----------------------------------------------------------------------------------------------------


def test_group_norm_module_matches_torch_module_in_train_and_eval():
    gen = _gen(8)
    ours, theirs = GroupNorm(4, 8), nn.GroupNorm(4, 8)
    with torch.no_grad():
        for module in (ours, theirs):
            module.weight.copy_(torch.linspace(0.5, 2, 8))
            module.bias.copy_(torch.linspace(-1, 1, 8))
    x = torch.randn(3, 8, 5, 5, generator=gen)
    torch.testing.assert_close(ours(x), theirs(x))
    train_out = ours(x)
    torch.testing.assert_close(ours.eval()(x), train_out)
    assert [n for n, _ in ours.named_parameters()] == ["weight", "bias"]
    assert "4, 8, eps=1e-05, affine=True" in repr(ours)


def test_group_norm_module_without_affine_has_no_parameters():
    module = GroupNorm(2, 4, affine=False)
    assert list(module.parameters()) == []
    x = torch.randn(2, 4, 3, generator=_gen(9))
    torch.testing.assert_close(module(x), F.group_norm(x, 2))


def test_group_norm_module_rejects_bad_configuration_and_input():
    with pytest.raises(ValueError, match="num_channels=6 and num_groups=4"):
        GroupNorm(4, 6)
    with pytest.raises(ValueError, match="expected input of shape \\(N, 8, \\*\\), got \\(2, 4\\)"):
        GroupNorm(4, 8)(torch.randn(2, 4))


def test_group_norm_module_builds_on_meta():
    module = GroupNorm(2, 4, device="meta")
    assert module.weight.device.type == "meta"
    assert module(torch.empty(2, 4, 3, 3, device="meta")).device.type == "meta"


# ----------------------------------------------------------------------------------------------------
# dropout / dropout2d
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_prob", [0.5, 0.8, 0.75, 0.3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_equals_torch_dropout_with_the_same_seed(keep_prob, dtype):
    x = torch.randn(64, 100, generator=_gen(10), dtype=dtype)
    torch.manual_seed(0)
    ours = dropout(x, keep_prob)
    torch.manual_seed(0)
    theirs = F.dropout(x, p=1 - keep_prob)
    assert torch.equal(ours != 0, theirs != 0)  # the same mask, draw for draw
    # 1 - (1 - 0.3) != 0.3 in floating point, so the scale may differ in the last bit
    torch.testing.assert_close(ours, theirs, rtol=1e-6 if dtype == torch.float32 else 1e-14, atol=0)


def test_dropout2d_equals_torch_dropout2d_with_the_same_seed():
    x = torch.randn(8, 6, 5, 5, generator=_gen(11))
    torch.manual_seed(1)
    ours = dropout2d(x, 0.75)
    torch.manual_seed(1)
    theirs = F.dropout2d(x, p=0.25)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_dropout2d_reads_3d_input_as_one_unbatched_sample():
    x = torch.randn(6, 5, 5, generator=_gen(12))
    torch.manual_seed(2)
    ours = dropout2d(x, 0.5)
    torch.manual_seed(2)
    theirs = F.dropout2d(x.unsqueeze(0), p=0.5).squeeze(0)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_dropout2d_zeroes_whole_channels():
    x = torch.rand(16, 32, 6, 6, generator=_gen(13)) + 0.5
    out = dropout2d(x, 0.6)
    zero_maps = (out == 0).flatten(2).all(-1)
    kept_maps = (out != 0).flatten(2).all(-1)
    assert bool((zero_maps | kept_maps).all())
    assert 0.25 < float(zero_maps.float().mean()) < 0.55
    torch.testing.assert_close(out[kept_maps], x[kept_maps] / 0.6)


@pytest.mark.parametrize("keep_prob", [0.2, 0.5, 0.8])
def test_dropout_keeps_the_right_fraction_and_preserves_the_mean(keep_prob):
    x = torch.rand(1000, 1000, generator=_gen(14)) + 0.5
    out = dropout(x, keep_prob)
    kept = out != 0
    assert abs(float(kept.float().mean()) - keep_prob) < 0.005
    torch.testing.assert_close(out[kept], x[kept] / keep_prob)
    assert abs(float(out.mean()) / float(x.mean()) - 1) < 0.01


@given(
    st.floats(0.05, 1.0),
    st.lists(st.integers(1, 6), min_size=1, max_size=4),
    st.integers(0, 2**16),
)
def test_dropout_output_is_zero_or_x_over_keep_prob(keep_prob, shape, seed):
    x = torch.rand(shape, generator=_gen(seed), dtype=torch.float64) + 0.5
    torch.manual_seed(seed)
    out = dropout(x, keep_prob)
    kept = out != 0
    torch.testing.assert_close(out[kept], x[kept] / keep_prob, rtol=1e-12, atol=0)
    channel_shape = [2, 3, *shape[:2]] if len(shape) >= 2 else [2, 3, shape[0], 1]
    y = torch.rand(channel_shape, generator=_gen(seed), dtype=torch.float64) + 0.5
    maps = dropout2d(y, keep_prob)
    assert bool(((maps == 0).flatten(2).all(-1) | (maps != 0).flatten(2).all(-1)).all())


def test_dropout_is_identity_in_eval_and_for_keep_one():
    x = torch.randn(5, 7, generator=_gen(15))
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 1.0) is x
    assert dropout(x, 1) is x
    maps = x.view(5, 7, 1)
    assert dropout2d(maps, 0.5, training=False) is maps
    assert dropout2d(maps, 1.0) is maps


def test_dropout_gradient_is_the_scaled_mask():
    x = torch.randn(50, 40, generator=_gen(16), requires_grad=True)
    out = dropout(x, 0.7)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out.detach() != 0).float() / 0.7)

    def seeded(t):
        torch.manual_seed(3)
        return dropout(t, 0.6)

    assert torch.autograd.gradcheck(
        seeded, (torch.randn(4, 5, dtype=torch.float64).requires_grad_(),)
    )


def test_dropout_runs_on_meta_tensors():
    x = torch.empty(4, 6, 3, 3, device="meta")
    assert dropout(x, 0.8).device.type == "meta"
    assert dropout2d(x, 0.8).shape == x.shape


def test_dropout_under_bfloat16_autocast_keeps_the_mean():
    linear = nn.Linear(64, 64)
    x = torch.randn(512, 64, generator=_gen(17))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = linear(x)
        out = dropout(h, 0.8)
    assert out.dtype == torch.bfloat16
    kept = out != 0
    torch.testing.assert_close(out[kept].float(), (h[kept] / 0.8).float(), rtol=0.02, atol=0.02)


@pytest.mark.parametrize("keep_prob", [0, 0.0, -0.1, 1.5, True, "0.5", None])
def test_dropout_rejects_keep_prob_outside_zero_one(keep_prob):
    with pytest.raises(ValueError, match="keep_prob must be"):
        dropout(torch.ones(3), keep_prob)
    with pytest.raises(ValueError, match="keep_prob must be"):
        Dropout(keep_prob)


def test_dropout2d_rejects_inputs_without_two_spatial_dims():
    with pytest.raises(ValueError, match="\\(N, C, H, W\\) or unbatched \\(C, H, W\\).*\\(4, 5\\)"):
        dropout2d(torch.ones(4, 5), 0.5)
    with pytest.raises(ValueError, match="keep_prob must be in \\(0, 1\\], got 2"):
        Dropout2d(2)


def test_dropout_modules_honour_train_and_eval():
    x = torch.rand(64, 8, 4, 4, generator=_gen(18)) + 0.5
    for module in (Dropout(0.5), Dropout2d(0.5)):
        assert bool((module(x) == 0).any())
        module.eval()
        assert module(x) is x
    assert repr(Dropout(0.8)) == "Dropout(keep_prob=0.8)"


# ----------------------------------------------------------------------------------------------------
# ResidualBlock
# ----------------------------------------------------------------------------------------------------


def _torchvision_twin(block: ResidualBlock, in_channels: int, out_channels: int, stride: int):
    downsample = None
    if block.downsample is not None:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    twin = BasicBlock(in_channels, out_channels, stride, downsample)
    twin.load_state_dict(block.state_dict())
    return twin


@pytest.mark.parametrize(("in_c", "out_c", "stride"), [(8, 8, 1), (8, 16, 2), (8, 8, 2), (4, 8, 1)])
def test_residual_block_matches_torchvision_basic_block(in_c, out_c, stride):
    torch.manual_seed(4)
    block = ResidualBlock(in_c, out_c, stride)
    with torch.no_grad():
        for module in block.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_()
    twin = _torchvision_twin(block, in_c, out_c, stride)
    x = torch.randn(4, in_c, 9, 9, generator=_gen(19))
    torch.testing.assert_close(block(x), twin(x))
    block.eval()
    twin.eval()
    torch.testing.assert_close(block(x), twin(x))
    assert block(x).shape == (4, out_c, -(-9 // stride), -(-9 // stride))


def test_residual_block_state_dict_loads_back_from_torchvision():
    block = ResidualBlock(8, 16, 2)
    twin = _torchvision_twin(block, 8, 16, 2)
    assert ResidualBlock(8, 16, 2).load_state_dict(twin.state_dict()) is not None


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_residual_block_norm_variants_shapes_and_gradients(norm):
    block = ResidualBlock(8, 16, 2, norm=norm, groups=4)
    x = torch.randn(2, 8, 8, 8, generator=_gen(20), requires_grad=True)
    out = block(x)
    assert out.shape == (2, 16, 4, 4)
    assert bool((out >= 0).all())
    out.sum().backward()
    assert x.grad is not None and bool(x.grad.abs().sum() > 0)
    assert (block.conv1.bias is not None) == (norm == "none")


def test_residual_block_with_zeroed_branch_returns_relu_of_x():
    block = ResidualBlock(6, 6)
    nn.init.zeros_(block.bn2.weight)
    x = torch.randn(2, 6, 5, 5, generator=_gen(21))
    torch.testing.assert_close(block(x), F.relu(x))


def test_plain_block_without_skip_has_no_projection():
    plain = ResidualBlock(8, 16, 2, skip=False)
    assert plain.downsample is None
    with torch.no_grad():
        x = torch.randn(2, 8, 6, 6, generator=_gen(22))
        expected = F.relu(plain.bn2(plain.conv2(F.relu(plain.bn1(plain.conv1(x))))))
        torch.testing.assert_close(plain(x), expected)


def test_residual_block_runs_on_meta_and_under_bfloat16_autocast():
    with torch.device("meta"):
        block = ResidualBlock(4, 8, 2)
    assert block(torch.empty(2, 4, 8, 8, device="meta")).shape == (2, 8, 4, 4)
    block = ResidualBlock(4, 8, 2).eval()
    x = torch.randn(2, 4, 8, 8, generator=_gen(23))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = block(x)
    torch.testing.assert_close(low.float(), block(x), rtol=0.05, atol=0.1)


def test_residual_block_rejects_bad_configuration():
    with pytest.raises(ValueError, match="norm must be one of .*got 'layer'"):
        ResidualBlock(4, 4, norm="layer")
    with pytest.raises(ValueError, match="channels=12 and groups=8"):
        ResidualBlock(4, 12, norm="group")
    with pytest.raises(ValueError, match="stride must be a positive int, got 0"):
        ResidualBlock(4, 4, stride=0)
    with pytest.raises(ValueError, match="norm must be one of"):
        make_norm("instance", 4)

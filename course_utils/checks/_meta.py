"""Running answers on ``meta`` tensors (batch independence, ensemble average): what a device error
means and the expected shape of the output.
"""

from __future__ import annotations

import torch

from course_utils.checks._guards import (
    WRONG_DEVICE_HINT,
)
from course_utils.checks._report import Report


def _device_error(error: Exception) -> bool:
    text = str(error)
    return "Expected all tensors to be on the same device" in text or "meta" in text


def _meta_failure(error: Exception) -> str:
    if "item()" in str(error) or "tolist" in str(error):
        return (
            "your function calls .item()/.tolist() or converts a tensor to a Python number; keep "
            "the computation in tensor operations so it runs on any device without a host sync"
        )
    return WRONG_DEVICE_HINT


def _expect_meta(report: Report, got: object, shape: tuple[int, ...]) -> None:
    if not isinstance(got, torch.Tensor):
        report.fail(f"should return a tensor, got {type(got).__name__}")
    if got.device.type != "meta":
        report.fail(
            f"the inputs were on the meta device but the output is on {got.device.type}. "
            + WRONG_DEVICE_HINT
        )
    if tuple(got.shape) != shape:
        report.fail(f"output has shape {tuple(got.shape)}, expected {shape}")

"""Per-image random rotations and shifts of a batch, in one ``grid_sample`` call.

A ``torchvision.transforms.v2.RandomAffine`` call draws *one* set of parameters for everything it is
given, so a batch passed whole gets the same rotation and shift for every image. Here every image
of a batch (N, C, H, W) gets its own draw::

    angle_i ~ U(-degrees, +degrees)                  degrees, counter-clockwise as displayed
    shift_i ~ U(-translate, +translate) * (W, H)     pixels, x to the right, y down
    output_i = shift_i(rotate_i(input_i))            about the image centre; bilinear; 0 outside

exactly what ``torchvision.transforms.v2.functional.affine(image, angle, translate, scale=1,
shear=0, interpolation=BILINEAR)`` does to one image (the tests compare the two). Pixels that come
from outside the image are 0, the background of MNIST-like images in [0, 1]. The random numbers
come from the global generator of the images' device (seed it for repeatable runs) or from
``generator`` (which must live on that device). Device-, dtype- and autograd-agnostic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def affine_matrices(
    angles: torch.Tensor, shifts: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """``F.affine_grid`` matrices (N, 2, 3) for ``angles`` (N,) in degrees and ``shifts`` (N, 2) in
    pixels (see the module docstring for the directions).

    ``affine_grid`` maps each *output* pixel to the input pixel it reads, in coordinates normalised
    to [-1, 1] across the image, so the matrix holds the inverse transform:
    ``x_in = R(angle)^-1 (x_out - shift)`` in pixels, then rescaled by ``2 / (W, H)`` per axis.
    """
    radians = torch.deg2rad(angles)
    cos, sin = torch.cos(radians), torch.sin(radians)
    # inverse of a counter-clockwise rotation on screen (y points down), in pixel units
    inverse = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    scale = shifts.new_tensor([2.0 / width, 2.0 / height])
    linear = scale[:, None] * inverse / scale  # diag(scale) @ inverse @ diag(1 / scale)
    offset = -scale * (inverse @ shifts[:, :, None]).squeeze(2)
    return torch.cat([linear, offset[:, :, None]], dim=2)


def random_affine(
    images: torch.Tensor,
    degrees: float = 10.0,
    translate: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Each image of ``images`` (N, C, H, W) rotated by its own U(-degrees, degrees) angle and
    shifted by its own U(-translate, translate) fraction of the width and of the height (defaults:
    torchvision's ``RandomAffine(10, translate=(0.1, 0.1))``, one draw per image). Returns a new
    tensor of the same shape, dtype and device."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape (N, C, H, W), got {shape}")
    if degrees < 0 or not 0 <= translate <= 1:
        raise ValueError(
            f"need degrees >= 0 and 0 <= translate <= 1, got degrees={degrees}, translate={translate}"
        )
    n, _, height, width = images.shape
    draw = torch.rand(n, 3, device=images.device, generator=generator).to(images.dtype) * 2 - 1
    angles = draw[:, 0] * degrees
    shifts = draw[:, 1:] * translate * images.new_tensor([width, height])
    theta = affine_matrices(angles, shifts, height, width)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

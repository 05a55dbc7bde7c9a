"""Tests of course_utils.random_affine: per-image rotations and shifts, against torchvision."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from course_utils.random_affine import affine_matrices, random_affine


def _apply(images: torch.Tensor, angles: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    theta = affine_matrices(angles, shifts, images.shape[-2], images.shape[-1])
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, align_corners=False)


@pytest.mark.parametrize("size", [(28, 28), (20, 32)])
@pytest.mark.parametrize(
    "angle,shift", [(0.0, (3, 0)), (30.0, (0, 0)), (-17.0, (2, 5)), (25, (3, -4))]
)
def test_affine_matrices_match_torchvision_affine(size, angle, shift):
    image = torch.rand(1, 2, *size, generator=torch.Generator().manual_seed(0))
    expected = TF.affine(
        image,
        angle=angle,
        translate=list(shift),
        scale=1.0,
        shear=[0.0, 0.0],
        interpolation=InterpolationMode.BILINEAR,
    )
    got = _apply(image, torch.tensor([float(angle)]), torch.tensor([[float(s) for s in shift]]))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_zero_ranges_leave_images_unchanged():
    images = torch.rand(5, 1, 28, 28)
    torch.testing.assert_close(
        random_affine(images, degrees=0, translate=0), images, atol=1e-5, rtol=0
    )


def test_every_image_gets_its_own_draw():
    torch.manual_seed(0)
    copies = torch.rand(1, 1, 28, 28).repeat(16, 1, 1, 1)
    out = random_affine(copies)
    assert len({tuple(o.flatten().round(decimals=4).tolist()) for o in out}) == 16


def test_draws_stay_inside_the_ranges():
    # a single bright pixel at the centre moves by at most the shift plus the rotation's reach
    image = torch.zeros(200, 1, 29, 29)
    image[:, :, 14, 14] = 1.0
    torch.manual_seed(1)
    out = random_affine(image, degrees=0, translate=0.1)
    ys, xs = torch.meshgrid(torch.arange(29.0), torch.arange(29.0), indexing="ij")
    mass = out.sum(dim=(1, 2, 3))
    cx = (out[:, 0] * xs).sum(dim=(1, 2)) / mass - 14
    cy = (out[:, 0] * ys).sum(dim=(1, 2)) / mass - 14
    assert cx.abs().max() <= 2.9 + 1e-4 and cy.abs().max() <= 2.9 + 1e-4
    assert cx.abs().max() > 2.0 and cy.abs().max() > 2.0  # the range is used


def test_same_generator_seed_gives_the_same_views():
    images = torch.rand(4, 1, 12, 12)
    a = random_affine(images, generator=torch.Generator().manual_seed(3))
    b = random_affine(images, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_keeps_dtype_device_and_gradients():
    images = torch.rand(3, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    out = random_affine(images)
    assert out.dtype == torch.float64 and out.shape == images.shape
    out.sum().backward()
    assert images.grad is not None
    meta = random_affine(torch.empty(2, 1, 8, 8, device="meta"))
    assert meta.device.type == "meta" and meta.shape == (2, 1, 8, 8)


def test_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match="N, C, H, W"):
        random_affine(torch.rand(8, 8))
    with pytest.raises(ValueError, match="translate"):
        random_affine(torch.rand(1, 1, 8, 8), translate=2.0)

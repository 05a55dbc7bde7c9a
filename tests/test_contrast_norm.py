"""Pixel standardisation, global and local contrast normalisation against their definitions."""

from __future__ import annotations

import pytest
import torch

from course_utils.contrast_norm import (
    gaussian_window,
    global_contrast_normalize,
    local_contrast_normalize,
    pixel_stats,
    standardize_pixels,
)


def images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_pixel_standardisation_gives_every_pixel_zero_mean_and_unit_std_on_the_training_set() -> (
    None
):
    x = images(50)
    mean, std = pixel_stats(x)
    assert mean.shape == std.shape == (1, 16, 16)
    z = standardize_pixels(x, mean, std, eps=0.0)
    assert torch.allclose(z.mean(0), torch.zeros(1, 16, 16), atol=1e-5)
    assert torch.allclose(z.std(0), torch.ones(1, 16, 16), atol=1e-4)


def test_a_constant_pixel_stays_finite_under_pixel_standardisation() -> None:
    x = images(10)
    x[:, :, 0, 0] = 0.0  # a border pixel that is always blank
    z = standardize_pixels(x, *pixel_stats(x))
    assert torch.isfinite(z).all() and float(z[:, :, 0, 0].abs().max()) == 0.0


def test_global_contrast_normalisation_gives_each_image_mean_zero_and_contrast_scale() -> None:
    z = global_contrast_normalize(images(), scale=2.0)
    flat = z.flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(6), atol=1e-5)
    assert torch.allclose(flat.std(1, correction=0), torch.full((6,), 2.0), atol=1e-4)


@pytest.mark.parametrize("normalise", [global_contrast_normalize, local_contrast_normalize])
def test_contrast_normalisation_ignores_brightness_and_contrast(normalise) -> None:
    x = images()
    assert torch.allclose(normalise(0.3 * x + 0.2), normalise(x), atol=1e-4)


def test_local_contrast_normalisation_removes_the_local_mean() -> None:
    x = images(2) + torch.linspace(0, 5, 16).view(1, 1, 1, 16)  # a strong left-to-right ramp
    z = local_contrast_normalize(x, size=5, sigma=1.0)
    assert z.shape == x.shape
    centre = z[..., 4:-4, 4:-4]
    assert abs(float(centre.mean())) < 0.1 and float(x[..., 4:-4, 4:-4].mean()) > 2


def test_the_gaussian_window_sums_to_one_and_rejects_even_sizes() -> None:
    window = gaussian_window(7, 1.5, channels=3)
    assert window.shape == (1, 3, 7, 7)
    assert float(window.sum()) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="odd"):
        gaussian_window(4)


def test_the_normalisers_keep_device_and_dtype() -> None:
    x = images().double()
    for out in (global_contrast_normalize(x), local_contrast_normalize(x)):
        assert out.dtype == torch.float64 and out.shape == x.shape
    meta = torch.zeros(2, 1, 16, 16, device="meta")
    assert local_contrast_normalize(meta).device.type == "meta"
    assert global_contrast_normalize(meta).device.type == "meta"

"""Three ways to rescale image intensities before a net sees them (the Deep Learning book, 12.2.1.1).

Images (N, C, H, W), float. Each returns a tensor of the same shape, dtype and device:

- ``standardize_pixels(images, mean, std)``: per-*pixel* standardisation with statistics of the
  training set, ``(x - mean[c,h,w]) / (std[c,h,w] + eps)``; ``pixel_stats(train_images)`` gives them.
  (The course's default, ``CourseData.normalize``, uses one mean and std per *channel*.)
- ``global_contrast_normalize``: per image, subtract its mean and rescale its contrast (the standard
  deviation over all its pixels) to ``scale``::

      x' = scale * (x - mean(x)) / max(eps, sqrt(lam + mean((x - mean(x))^2)))

  (the book's equation 12.3; ``lam`` regularises nearly blank images).
- ``local_contrast_normalize``: the same idea in every neighbourhood: subtract a Gaussian-weighted
  local mean and divide by the local standard deviation (Jarrett et al. 2009; Pinto et al. 2008)::

      v = x - G * x,     x' = v / max(c, sqrt(G * v^2)),     c = mean over the image of sqrt(G * v^2)

  with G a normalised Gaussian window of side ``size`` and std ``sigma``, summed over channels; at
  the borders the window is renormalised over the pixels inside the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_stats(train_images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of every pixel over the training images: two tensors of shape (C, H, W)."""
    return train_images.mean(dim=0), train_images.std(dim=0)


def standardize_pixels(
    images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, eps: float = 1e-2
) -> torch.Tensor:
    """``(images - mean) / (std + eps)`` with per-pixel statistics (C, H, W); ``eps`` keeps the
    always-blank border pixels (std 0) at 0 instead of dividing by zero."""
    return (images - mean.to(images)) / (std.to(images) + eps)


def global_contrast_normalize(
    images: torch.Tensor, scale: float = 1.0, lam: float = 0.0, eps: float = 1e-8
) -> torch.Tensor:
    """Per image: zero mean, and contrast (std over its pixels) ``scale``; the book's eq. 12.3."""
    flat = images.flatten(1)
    centred = flat - flat.mean(dim=1, keepdim=True)
    contrast = torch.sqrt(lam + centred.pow(2).mean(dim=1, keepdim=True)).clamp_min(eps)
    return (scale * centred / contrast).reshape(images.shape)


def gaussian_window(size: int = 9, sigma: float = 2.0, channels: int = 1) -> torch.Tensor:
    """A (1, channels, size, size) Gaussian kernel that sums to 1 (over all channels)."""
    if size % 2 == 0 or size < 1:
        raise ValueError(f"size must be a positive odd number, got {size}")
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    one_d = torch.exp(-(offsets**2) / (2 * sigma**2))
    window = (one_d[:, None] * one_d[None, :]).expand(channels, size, size)
    return (window / window.sum()).unsqueeze(0).float()


def local_contrast_normalize(
    images: torch.Tensor, size: int = 9, sigma: float = 2.0, eps: float = 1e-4
) -> torch.Tensor:
    """Subtractive then divisive normalisation in a Gaussian neighbourhood; see the module docstring."""
    channels = images.shape[1]
    window = gaussian_window(size, sigma, channels).to(images)
    pad = size // 2

    inside = F.conv2d(torch.ones_like(images[:1]), window, padding=pad)  # window mass in the image

    def local_mean(x: torch.Tensor) -> torch.Tensor:  # G * x, summed over channels: (N, 1, H, W)
        return F.conv2d(x, window, padding=pad) / inside

    centred = images - local_mean(images)
    local_std = local_mean(centred.pow(2)).sqrt()
    floor = local_std.mean(dim=(1, 2, 3), keepdim=True).clamp_min(eps)
    return centred / torch.maximum(local_std, floor)

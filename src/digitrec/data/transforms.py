"""Batched random transforms on whole tensors, the building blocks of training augmentation, the test
corruptions and the synthetic sets: float ``[N,1,H,W]`` batches, ink > 0 on a 0 background, randomness
from the ``torch.Generator`` given, so that a seeded run is reproducible. No per-image Python loop."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["uniform", "chosen", "random_warp", "dilate", "blur", "grid", "to_uint8"]


def uniform(n: int, gen: torch.Generator, *shape) -> torch.Tensor:
    """U(-1, 1) of shape ``[n, *shape]``."""
    return torch.rand(n, *shape, generator=gen) * 2 - 1


def chosen(n: int, p: float, gen: torch.Generator, device=None) -> torch.Tensor:
    return (torch.rand(n, generator=gen) < p).to(device)



def _affine_theta(n: int, h: int, w: int, gen: torch.Generator, rotate_deg: float, scale: float,
                  shear_deg: float, translate_px: float) -> torch.Tensor:
    u = uniform(n, gen, 4)
    angle = u[:, 0] * math.radians(rotate_deg)
    s = 1 + u[:, 1] * scale
    shear = u[:, 2] * math.radians(shear_deg)
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    # grid_sample maps output coords to input coords, so this is the inverse transform; its exact
    # form does not matter for augmentation as long as every parameter is symmetric around identity.
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos / s
    theta[:, 0, 1] = (-sin + tan * cos) / s
    theta[:, 1, 0] = sin / s
    theta[:, 1, 1] = (cos + tan * sin) / s
    shift = uniform(n, gen, 2) * translate_px
    theta[:, 0, 2] = shift[:, 0] * 2 / w
    theta[:, 1, 2] = shift[:, 1] * 2 / h
    return theta



def random_warp(x: torch.Tensor, gen: torch.Generator, rotate_deg: float = 10.0, scale: float = 0.1,
                shear_deg: float = 5.0, translate_px: float = 2.0, elastic_px: float = 0.0,
                elastic_cells: int = 3) -> torch.Tensor:
    """``random_affine`` plus an elastic distortion, in one resampling (two would blur the strokes twice).

    The elastic field (Simard et al. 2003) is a random displacement of up to ``elastic_px`` pixels at the
    nodes of an ``elastic_cells`` x ``elastic_cells`` grid, interpolated bicubically: smooth bends of a
    stroke, as different hands make, not pixel jitter.
    """
    n, _, h, w = x.shape
    # the parameters come from the (CPU) generator whatever the device, so a seeded run draws the same ones on GPU
    theta = _affine_theta(n, h, w, gen, rotate_deg, scale, shear_deg, translate_px)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    if elastic_px > 0:
        nodes = uniform(n, gen, 2, elastic_cells + 1, elastic_cells + 1) * elastic_px
        field = F.interpolate(nodes, size=(h, w), mode="bicubic", align_corners=True)
        # pixels -> grid_sample's [-1, 1] coordinates, x displacement first as in the grid
        grid = grid + field.permute(0, 2, 3, 1) * torch.tensor([2 / w, 2 / h])
    return F.grid_sample(x, grid.to(x.device), mode="bilinear", padding_mode="zeros", align_corners=False)


def dilate(x: torch.Tensor, k: int) -> torch.Tensor:
    # even kernels shift by half a pixel; cropping the padded output keeps the size
    return F.max_pool2d(F.pad(x, (k // 2, (k - 1) // 2, k // 2, (k - 1) // 2)), k, stride=1)



def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """1-D Gaussian kernels ``[N, 2*radius+1]``, one per sigma (sigma 0 gives the identity)."""
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=sigma.device)
    k = torch.exp(-t ** 2 / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))
    return k / k.sum(1, keepdim=True)


def blur(x: torch.Tensor, sigma: torch.Tensor, radius: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur with a sigma per image: one grouped convolution per axis."""
    n, c, h, w = x.shape
    radius = radius if radius is not None else max(1, math.ceil(3 * float(sigma.max())))
    k = _gaussian_kernels(sigma, radius).repeat_interleave(c, 0)
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), k[:, None, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), k[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)



def grid(n: int, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(size, dtype=torch.float32)
    return t[None, None, :].expand(n, size, size), t[None, :, None].expand(n, size, size)



def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float images in [0, 1] as the uint8 array an image file would hold (clipped, rounded)."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


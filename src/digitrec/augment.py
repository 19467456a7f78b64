"""Training-time augmentation, batched on whole tensors (no per-image Python loop).

All transforms take and return float ``[N,1,H,W]`` batches with ink > 0 on a 0 background
(before normalisation) and draw their randomness from the generator they are given, so a
seeded run is reproducible.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["random_affine"]


def random_affine(x: torch.Tensor, gen: torch.Generator, rotate_deg: float = 10.0, scale: float = 0.1,
                  shear_deg: float = 5.0, translate_px: float = 2.0) -> torch.Tensor:
    """Rotate by U(±rotate_deg), scale by U(1±scale), shear by U(±shear_deg), shift by U(±translate_px) pixels.

    One ``affine_grid`` + bilinear ``grid_sample`` for the whole batch.
    """
    n, _, h, w = x.shape
    u = torch.rand(n, 4, generator=gen) * 2 - 1
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
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * translate_px
    theta[:, 0, 2] = shift[:, 0] * 2 / w
    theta[:, 1, 2] = shift[:, 1] * 2 / h
    # the parameters come from the (CPU) generator whatever the device, so a seeded run draws the same ones on GPU
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

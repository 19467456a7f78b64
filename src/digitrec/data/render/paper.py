"""Digits photographed on paper, as a batch: uneven light, sensor noise, and a ruled page, a form's box or
dust. The test bed of the ink stage (``on_paper``)."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..transforms import grid, to_uint8

__all__ = ["on_paper", "PAPER_KINDS"]


PAPER_KINDS = ("shadow", "ruled", "box", "specks")


def on_paper(images: np.ndarray, kind: str = "shadow", seed: int = 0, size: int = 112) -> np.ndarray:
    """Return uint8 ``[N,size,size]`` photos of ``images`` (MNIST-style uint8) as dark ink on lit paper.

    Every kind has uneven light (a shadow falling across the page) and sensor noise; ``"ruled"`` adds
    lines of a ruled page, ``"box"`` the borders of a form's box running to the image edge, ``"specks"``
    dust. The test bed for preprocessing and the before/after figures.
    """
    gen = torch.Generator().manual_seed(seed)
    n = len(images)
    ink = F.interpolate(torch.from_numpy(np.asarray(images, np.float32) / 255)[:, None], size=(size, size),
                        mode="bilinear", align_corners=False)[:, 0]
    xs, ys = grid(n, size)
    ang = torch.rand(n, 1, 1, generator=gen) * 2 * math.pi
    ramp = (xs * torch.cos(ang) + ys * torch.sin(ang)) / size
    ramp = (ramp - ramp.amin((1, 2), keepdim=True)) / (ramp.amax((1, 2), keepdim=True) - ramp.amin((1, 2), keepdim=True))
    light = 0.95 - 0.45 * ramp  # a factor two between the brightest and darkest paper
    marks = torch.zeros(n, size, size)
    if kind == "ruled":
        gap = size // 4
        offset = torch.randint(0, gap, (n, 1, 1), generator=gen)
        marks = (((ys.long() - offset) % gap) < 2).float() * 0.6
    elif kind == "box":
        inset = 3
        edge = (ys.long() - inset).abs().le(1) | (ys.long() - (size - 1 - inset)).abs().le(1) | \
            (xs.long() - inset).abs().le(1) | (xs.long() - (size - 1 - inset)).abs().le(1)
        marks = edge.float() * 0.8
    elif kind == "specks":
        centres = torch.rand(n, 12, 2, generator=gen) * size
        radius = 0.8 + 1.5 * torch.rand(n, 12, 1, 1, generator=gen)
        d2 = (xs[:, None] - centres[..., 0, None, None]) ** 2 + (ys[:, None] - centres[..., 1, None, None]) ** 2
        marks = (d2 < radius ** 2).float().amax(1) * 0.8
    elif kind != "shadow":
        raise ValueError(f"kind must be one of {PAPER_KINDS}, not {kind!r}")
    page = light * (1 - 0.85 * torch.maximum(ink, marks)) + 0.03 * torch.randn(n, size, size, generator=gen)
    return to_uint8(page)

"""Training augmentation: stroke width, blur and down-sampling, contrast, noise, on top of the affine and
elastic warps of ``data.transforms``; ``augment(batch, gen, preset)`` applies what a preset asks for."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..data.transforms import blur, chosen, dilate, random_warp, uniform
from .presets import Preset

__all__ = ["augment", "stroke_width", "blur_resample", "contrast", "noise"]


def stroke_width(x: torch.Tensor, gen: torch.Generator, p: float = 0.3) -> torch.Tensor:
    """Thicken (3x3 max-pool) or thin (2x2 min-pool) a share ``p`` of the images, half each way.

    Thinning uses the smaller kernel because MNIST strokes are 2-3 pixels wide: a 3x3 erosion erases them.
    """
    n = len(x)
    r = torch.rand(n, generator=gen).to(x.device)
    thick, thin = r < p / 2, (r >= p / 2) & (r < p)
    out = x.clone()
    if thick.any():
        out[thick] = dilate(x[thick], 3)
    if thin.any():
        out[thin] = -dilate(-x[thin], 2)
    return out



def blur_resample(x: torch.Tensor, gen: torch.Generator, p_blur: float = 0.2, sigma_px: float = 1.0,
                  p_resample: float = 0.2, min_side: int = 14) -> torch.Tensor:
    """Blur a share ``p_blur`` by a Gaussian of sigma U(0, sigma_px) pixels; bring a share ``p_resample``
    down to a side of U(min_side, H) pixels and back up (a low-resolution camera or a thumbnail)."""
    n, _, h, w = x.shape
    out = x
    pick = chosen(n, p_blur, gen, x.device)
    sigma = (torch.rand(n, generator=gen) * sigma_px).to(x.device)
    if pick.any():
        out = out.clone()
        out[pick] = blur(x[pick], sigma[pick])
    pick = chosen(n, p_resample, gen, x.device)
    side = int(torch.randint(min_side, h + 1, (1,), generator=gen))
    if pick.any() and side < h:
        out = out.clone()
        small = F.interpolate(out[pick], size=(side, side * w // h), mode="area")
        out[pick] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out


def contrast(x: torch.Tensor, gen: torch.Generator, p: float = 0.3, gamma: float = 2.0, floor: float = 0.4) -> torch.Tensor:
    """For a share ``p``: ink -> ink ** g with g log-uniform in [1/gamma, gamma], times U(floor, 1) (faint ink)."""
    n = len(x)
    pick = chosen(n, p, gen, x.device).float()[:, None, None, None]
    g = torch.exp(uniform(n, gen) * math.log(gamma)).to(x.device)[:, None, None, None]
    gain = (floor + (1 - floor) * torch.rand(n, generator=gen)).to(x.device)[:, None, None, None]
    changed = x.clamp(0, 1).pow(g) * gain
    return pick * changed + (1 - pick) * x


def noise(x: torch.Tensor, gen: torch.Generator, p: float = 0.2, sigma: float = 0.1, salt: float = 0.01) -> torch.Tensor:
    """For a share ``p``: add Gaussian noise of std U(0, sigma) and turn a share U(0, salt) of pixels white."""
    n = len(x)
    pick = chosen(n, p, gen, x.device)[:, None, None, None]
    std = (torch.rand(n, generator=gen) * sigma).to(x.device)[:, None, None, None]
    rate = (torch.rand(n, generator=gen) * salt).to(x.device)[:, None, None, None]
    noisy = x + torch.randn(x.shape, generator=gen).to(x.device) * std
    salted = torch.rand(x.shape, generator=gen).to(x.device) < rate
    noisy = torch.where(salted, torch.ones_like(x), noisy).clamp(0, 1)
    return torch.where(pick, noisy, x)


def augment(xb: torch.Tensor, gen: torch.Generator, hp: Preset) -> torch.Tensor:
    """``xb`` with the augmentations of preset ``hp``: warps always, the others with their shares."""
    xb = random_warp(xb, gen, hp.rotate_deg, hp.scale, hp.shear_deg, hp.translate_px, hp.elastic_px,
                     hp.elastic_cells)
    if hp.stroke_p:
        xb = stroke_width(xb, gen, hp.stroke_p)
    if hp.blur_p or hp.resample_p:
        xb = blur_resample(xb, gen, hp.blur_p, hp.blur_sigma, hp.resample_p, hp.resample_min)
    if hp.contrast_p:
        xb = contrast(xb, gen, hp.contrast_p)
    if hp.noise_p:
        xb = noise(xb, gen, hp.noise_p, hp.noise_sigma)
    return xb

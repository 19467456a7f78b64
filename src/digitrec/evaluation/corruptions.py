"""MNIST-C-style test corruptions (Mu & Gilmer 2019, the parameters of their default severities).

Each takes a float batch ``[N,1,28,28]`` in [0, 1] and a generator and returns the corrupted batch,
following google-research/mnist-c's definitions at the severities its published set uses;
``CORRUPTIONS`` maps a name to one, ``corrupt`` applies one to uint8 images.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..data.transforms import blur, to_uint8, uniform

__all__ = ["CORRUPTIONS", "corrupt"]


def _centred_warp(x: torch.Tensor, a: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample ``x`` at ``a @ p`` for each output pixel ``p`` (pixel units, about the image centre)."""
    theta = torch.cat([a, torch.zeros(len(x), 2, 1)], 2)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _signs(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=gen).float() * 2 - 1


def _shift(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Move each image by (dx, dy) pixels (any real values), zeros coming in."""
    n, _, h, w = x.shape
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2], theta[:, 1, 2] = -dx * 2 / w, -dy * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def shot_noise(x, gen):
    return torch.poisson(x * 3, generator=gen).div(3).clamp(0, 1)


def impulse_noise(x, gen, amount: float = 0.17):
    r = torch.rand(x.shape, generator=gen)
    salt = torch.rand(x.shape, generator=gen) < 0.5
    return torch.where(r < amount, salt.float(), x)


def glass_blur(x, gen, sigma: float = 0.7, iterations: int = 2):
    # blur, quantise to 8 bits as MNIST-C does, then swap pixels with an up-left neighbour in a
    # sequential sweep (each swap sees the earlier ones), vectorised over the batch
    y = (blur(x, torch.full((len(x),), sigma), 3) * 255).floor().div(255)[:, 0].clone()
    n, h, w = y.shape
    ar = torch.arange(n)
    for _ in range(iterations):
        for r in range(h - 1, 1, -1):
            for c in range(w - 1, 1, -1):
                swap = torch.rand(n, generator=gen) < 0.5
                d = torch.randint(-1, 1, (2, n), generator=gen)
                rr, cc = r + d[0], c + d[1]
                a, b = y[:, r, c].clone(), y[ar, rr, cc].clone()
                y[:, r, c] = torch.where(swap, b, a)
                y[ar, rr, cc] = torch.where(swap, a, b)
    return blur(y[:, None], torch.full((n,), sigma), 3).clamp(0, 1)


def motion_blur(x, gen, radius: int = 10, sigma: float = 3.0):
    # ImageMagick's motion blur: a one-sided Gaussian trail along a random direction within ±45°
    angle = uniform(len(x), gen) * math.radians(45)
    out = torch.zeros_like(x)
    weights = torch.exp(-torch.arange(2 * radius + 1.0) ** 2 / (2 * sigma ** 2))
    for i, wt in enumerate(weights / weights.sum()):
        out += wt * _shift(x, -i * torch.cos(angle), -i * torch.sin(angle))
    return out.clamp(0, 1)


def shear(x, gen, amount: float = 0.4):
    c = amount * _signs(len(x), gen)
    a = torch.zeros(len(x), 2, 2)
    a[:, 0, 0] = 1
    a[:, 0, 1] = -torch.sin(c)
    a[:, 1, 1] = torch.cos(c)
    return _centred_warp(x, a)


def rotate(x, gen, radians: float = 0.4):
    c = radians * _signs(len(x), gen)
    a = torch.stack([torch.stack([torch.cos(c), -torch.sin(c)], 1), torch.stack([torch.sin(c), torch.cos(c)], 1)], 1)
    return _centred_warp(x, a)


def scale(x, gen, factor: float = 0.7):
    return _centred_warp(x, torch.eye(2).expand(len(x), 2, 2) / factor)


def translate(x, gen, px: float = 3.0):
    return _shift(x, px * _signs(len(x), gen), px * _signs(len(x), gen))


def brightness(x, gen, amount: float = 0.5):
    return (x + amount).clamp(0, 1)


def stripe(x, gen):
    y = x.clone()
    y[..., :7] = 1 - y[..., :7]
    y[..., 21:] = 1 - y[..., 21:]
    return y


def _plasma(n: int, gen: torch.Generator, size: int = 256, decay: float = 1.4) -> torch.Tensor:
    """Diamond-square fractal height maps ``[n, size, size]`` in [0, 1] (MNIST-C's fog texture)."""
    m = torch.zeros(n, size, size, dtype=torch.float64)
    step, wibble = size, 100.0

    def wibbled(a):
        return a / 4 + wibble * (torch.rand(a.shape, generator=gen, dtype=torch.float64) * 2 - 1) * wibble

    while step >= 2:
        half = step // 2
        corners = m[:, 0:size:step, 0:size:step]
        sq = corners + torch.roll(corners, -1, 1)
        sq = sq + torch.roll(sq, -1, 2)
        m[:, half:size:step, half:size:step] = wibbled(sq)
        dr = m[:, half:size:step, half:size:step]
        ul = m[:, 0:size:step, 0:size:step]
        lt = dr + torch.roll(dr, 1, 1) + ul + torch.roll(ul, -1, 2)
        m[:, 0:size:step, half:size:step] = wibbled(lt)
        tt = dr + torch.roll(dr, 1, 2) + ul + torch.roll(ul, -1, 1)
        m[:, half:size:step, 0:size:step] = wibbled(tt)
        step //= 2
        wibble /= decay
    lo = m.amin((1, 2), keepdim=True)
    hi = m.amax((1, 2), keepdim=True)
    return ((m - lo) / (hi - lo)).float()


def fog(x, gen, amount: float = 3.0, decay: float = 1.4):
    # MNIST-C crops 28x28 out of a fresh 256x256 map per image; any 28x28 tile of a map is as good a
    # sample, so one map gives 81 images' haze at 1/81 of the cost
    n = len(x)
    maps = _plasma(-(-n // 81), gen, decay=decay)[:, :252, :252]
    tiles = maps.reshape(-1, 9, 28, 9, 28).permute(0, 1, 3, 2, 4).reshape(-1, 28, 28)
    haze = tiles[torch.randperm(len(tiles), generator=gen)[:n]][:, None]
    peak = x.amax((1, 2, 3), keepdim=True)
    return ((x + amount * haze) * peak / (peak + amount)).clamp(0, 1)


def spatter(x, gen):
    n = len(x)
    liquid = 0.65 + 0.3 * torch.randn(x.shape, generator=gen)
    liquid = blur(liquid, torch.ones(n), 4)
    m = (liquid > 0.65).float()
    m = blur(m, torch.full((n,), 1.5), 6)
    m = torch.where(m < 0.8, torch.zeros_like(m), m)
    return (x * (1 - m) + 63 / 255 * m).clamp(0, 1)


def _lines(c0, r0, c1, r1, size: int = 28) -> torch.Tensor:
    """MNIST-C's anti-aliased line from (c0, r0) to (c1, r1), batched: ``[N, size, size]``; c1 > c0."""
    cc = torch.arange(size, dtype=torch.float32)[None, None, :]
    rr = torch.arange(size, dtype=torch.float32)[None, :, None]
    slope = ((r1 - r0) / (c1 - c0))[:, None, None]
    dist = (rr - (slope * (cc - c0[:, None, None]) + r0[:, None, None])).abs().clamp(max=2.3 - 1e-6)
    line = (torch.log(1 - dist / 2.3) + 1).clamp(0, 1)
    inside = (cc >= c0.floor()[:, None, None]) & (cc < c1.ceil()[:, None, None])
    return line * inside


def dotted_line(x, gen):
    n = len(x)
    r = torch.randint(0, 27, (2, n), generator=gen).float()
    line = _lines(torch.zeros(n), r[0], torch.full((n,), 27.0), r[1])
    dashes = (torch.arange(28) // 2) % 2 == 1  # MNIST-C blanks every other pair of columns
    line[..., ~dashes] = 0
    return (x + line[:, None]).clamp(0, 1)


def zigzag(x, gen, a: float = 2.0, b: float = 2.0):
    n = len(x)
    c0, c1 = 2.0, 25.0
    r0 = torch.randint(0, 27, (n,), generator=gen).float()
    r1 = r0 + torch.randint(-5, 5, (n,), generator=gen).float()
    theta = torch.atan((r1 - r0) / (c1 - c0))
    d = (c1 - c0) / torch.cos(theta)
    # zig-zag vertices along a horizontal baseline of length d, then rotated by theta and moved to (c0, r0)
    k = int(((d.max() - a) // (2 * a)).item()) + 1
    i = torch.arange(k, dtype=torch.float32)
    cs = torch.cat([torch.zeros(n, 1), ((2 * i + 1) * a).expand(n, k)], 1)
    rs = torch.cat([torch.zeros(n, 1), ((-1) ** i * b).expand(n, k)], 1)
    valid = torch.cat([torch.ones(n, 1, dtype=torch.bool), i[None] < ((d[:, None] - a) // (2 * a) + 1)], 1)
    cs, rs = cs * torch.cos(theta)[:, None] - rs * torch.sin(theta)[:, None] + c0, \
        cs * torch.sin(theta)[:, None] + rs * torch.cos(theta)[:, None] + r0[:, None]
    y = x[:, 0].clone()
    for j in range(1, k + 1):
        p, q = cs[:, j - 1], cs[:, j]
        lo_c, hi_c = torch.minimum(p, q), torch.maximum(p, q)
        lo_r = torch.where(p <= q, rs[:, j - 1], rs[:, j])
        hi_r = torch.where(p <= q, rs[:, j], rs[:, j - 1])
        seg = _lines(lo_c, lo_r, hi_c + 1e-3 * (hi_c == lo_c), hi_r)
        y = (y + seg * valid[:, j, None, None]).clamp(0, 1)
    return y[:, None]


def _sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(xp, kx[None, None]), F.conv2d(xp, kx.T[None, None])


def canny_edges(x, gen, sigma: float = 1.0, low: float = 0.1, high: float = 0.2):
    """Canny's edge detector (Gaussian, Sobel, non-maximum suppression, hysteresis), as skimage's defaults."""
    gx, gy = _sobel(blur(x, torch.full((len(x),), sigma), 4))
    mag = torch.hypot(gx, gy)
    # compare each pixel with its two neighbours across the edge, direction quantised to 45 degrees
    sector = torch.round(torch.atan2(gy, gx) / (math.pi / 4)) % 4
    pad = F.pad(mag, (1, 1, 1, 1))
    h, w = mag.shape[-2:]

    def at(dy, dx):
        return pad[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    neighbours = {0: ((0, 1), (0, -1)), 1: ((1, 1), (-1, -1)), 2: ((1, 0), (-1, 0)), 3: ((1, -1), (-1, 1))}
    peak = torch.zeros_like(mag, dtype=torch.bool)
    for s, (p, q) in neighbours.items():
        peak |= (sector == s) & (mag >= at(*p)) & (mag >= at(*q))
    weak = peak & (mag > low)
    edges = peak & (mag > high)
    while True:  # grow strong edges along connected weak ones
        grown = weak & (F.max_pool2d(edges.float(), 3, 1, 1) > 0)
        if torch.equal(grown, edges):
            return edges.float()
        edges = grown


def inverted(x, gen):
    return 1 - x



CORRUPTIONS = {
    "shot_noise": shot_noise, "impulse_noise": impulse_noise, "glass_blur": glass_blur,
    "motion_blur": motion_blur, "shear": shear, "scale": scale, "rotate": rotate, "brightness": brightness,
    "translate": translate, "stripe": stripe, "fog": fog, "spatter": spatter, "dotted_line": dotted_line,
    "zigzag": zigzag, "canny_edges": canny_edges, "inverted": inverted,
}


def corrupt(images: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """Return uint8 images ``[N,28,28]`` with the MNIST-C-style corruption ``name`` applied (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255)[:, None]
    y = CORRUPTIONS[name](x, gen)
    return to_uint8(y[:, 0])


"""Batched image transforms on whole tensors (no per-image Python loop on the hot path).

Three families, all on float ``[N,1,H,W]`` batches with ink > 0 on a 0 background (before
normalisation), drawing their randomness from the ``torch.Generator`` they are given so that a
seeded run is reproducible:

- training augmentation: ``random_warp`` (affine + elastic), ``stroke_width``, ``blur_resample``,
  ``contrast``, ``noise``;
- MNIST-C-style test corruptions (Mu & Gilmer 2019, parameters of their default severities):
  ``CORRUPTIONS`` maps a name to a function, ``corrupt`` applies one to uint8 images;
- synthetic non-digits (letters, doodles, shapes, noise) for training and measuring rejection:
  ``non_digits``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["random_affine", "random_warp", "stroke_width", "blur_resample", "contrast", "noise",
           "CORRUPTIONS", "corrupt", "to_uint8", "PAPER_KINDS", "on_paper", "NON_DIGIT_KINDS", "non_digits"]


def _u(n: int, gen: torch.Generator, *shape) -> torch.Tensor:
    """U(-1, 1) of shape ``[n, *shape]``."""
    return torch.rand(n, *shape, generator=gen) * 2 - 1


def _chosen(n: int, p: float, gen: torch.Generator, device=None) -> torch.Tensor:
    return (torch.rand(n, generator=gen) < p).to(device)


# --- training augmentation -------------------------------------------------------------------

def _affine_theta(n: int, h: int, w: int, gen: torch.Generator, rotate_deg: float, scale: float,
                  shear_deg: float, translate_px: float) -> torch.Tensor:
    u = _u(n, gen, 4)
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
    shift = _u(n, gen, 2) * translate_px
    theta[:, 0, 2] = shift[:, 0] * 2 / w
    theta[:, 1, 2] = shift[:, 1] * 2 / h
    return theta


def random_affine(x: torch.Tensor, gen: torch.Generator, rotate_deg: float = 10.0, scale: float = 0.1,
                  shear_deg: float = 5.0, translate_px: float = 2.0) -> torch.Tensor:
    """Rotate by U(±rotate_deg), scale by U(1±scale), shear by U(±shear_deg), shift by U(±translate_px) pixels.

    One ``affine_grid`` + bilinear ``grid_sample`` for the whole batch.
    """
    return random_warp(x, gen, rotate_deg, scale, shear_deg, translate_px)


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
        nodes = _u(n, gen, 2, elastic_cells + 1, elastic_cells + 1) * elastic_px
        field = F.interpolate(nodes, size=(h, w), mode="bicubic", align_corners=True)
        # pixels -> grid_sample's [-1, 1] coordinates, x displacement first as in the grid
        grid = grid + field.permute(0, 2, 3, 1) * torch.tensor([2 / w, 2 / h])
    return F.grid_sample(x, grid.to(x.device), mode="bilinear", padding_mode="zeros", align_corners=False)


def _dilate(x: torch.Tensor, k: int) -> torch.Tensor:
    # even kernels shift by half a pixel; cropping the padded output keeps the size
    return F.max_pool2d(F.pad(x, (k // 2, (k - 1) // 2, k // 2, (k - 1) // 2)), k, stride=1)


def stroke_width(x: torch.Tensor, gen: torch.Generator, p: float = 0.3) -> torch.Tensor:
    """Thicken (3x3 max-pool) or thin (2x2 min-pool) a share ``p`` of the images, half each way.

    Thinning uses the smaller kernel because MNIST strokes are 2-3 pixels wide: a 3x3 erosion erases them.
    """
    n = len(x)
    r = torch.rand(n, generator=gen).to(x.device)
    thick, thin = r < p / 2, (r >= p / 2) & (r < p)
    out = x.clone()
    if thick.any():
        out[thick] = _dilate(x[thick], 3)
    if thin.any():
        out[thin] = -_dilate(-x[thin], 2)
    return out


def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """1-D Gaussian kernels ``[N, 2*radius+1]``, one per sigma (sigma 0 gives the identity)."""
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=sigma.device)
    k = torch.exp(-t ** 2 / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))
    return k / k.sum(1, keepdim=True)


def _blur(x: torch.Tensor, sigma: torch.Tensor, radius: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur with a sigma per image: one grouped convolution per axis."""
    n, c, h, w = x.shape
    radius = radius if radius is not None else max(1, math.ceil(3 * float(sigma.max())))
    k = _gaussian_kernels(sigma, radius).repeat_interleave(c, 0)
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), k[:, None, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), k[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def blur_resample(x: torch.Tensor, gen: torch.Generator, p_blur: float = 0.2, sigma_px: float = 1.0,
                  p_resample: float = 0.2, min_side: int = 14) -> torch.Tensor:
    """Blur a share ``p_blur`` by a Gaussian of sigma U(0, sigma_px) pixels; bring a share ``p_resample``
    down to a side of U(min_side, H) pixels and back up (a low-resolution camera or a thumbnail)."""
    n, _, h, w = x.shape
    out = x
    pick = _chosen(n, p_blur, gen, x.device)
    sigma = (torch.rand(n, generator=gen) * sigma_px).to(x.device)
    if pick.any():
        out = out.clone()
        out[pick] = _blur(x[pick], sigma[pick])
    pick = _chosen(n, p_resample, gen, x.device)
    side = int(torch.randint(min_side, h + 1, (1,), generator=gen))
    if pick.any() and side < h:
        out = out.clone()
        small = F.interpolate(out[pick], size=(side, side * w // h), mode="area")
        out[pick] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out


def contrast(x: torch.Tensor, gen: torch.Generator, p: float = 0.3, gamma: float = 2.0, floor: float = 0.4) -> torch.Tensor:
    """For a share ``p``: ink -> ink ** g with g log-uniform in [1/gamma, gamma], times U(floor, 1) (faint ink)."""
    n = len(x)
    pick = _chosen(n, p, gen, x.device).float()[:, None, None, None]
    g = torch.exp(_u(n, gen) * math.log(gamma)).to(x.device)[:, None, None, None]
    gain = (floor + (1 - floor) * torch.rand(n, generator=gen)).to(x.device)[:, None, None, None]
    changed = x.clamp(0, 1).pow(g) * gain
    return pick * changed + (1 - pick) * x


def noise(x: torch.Tensor, gen: torch.Generator, p: float = 0.2, sigma: float = 0.1, salt: float = 0.01) -> torch.Tensor:
    """For a share ``p``: add Gaussian noise of std U(0, sigma) and turn a share U(0, salt) of pixels white."""
    n = len(x)
    pick = _chosen(n, p, gen, x.device)[:, None, None, None]
    std = (torch.rand(n, generator=gen) * sigma).to(x.device)[:, None, None, None]
    rate = (torch.rand(n, generator=gen) * salt).to(x.device)[:, None, None, None]
    noisy = x + torch.randn(x.shape, generator=gen).to(x.device) * std
    salted = torch.rand(x.shape, generator=gen).to(x.device) < rate
    noisy = torch.where(salted, torch.ones_like(x), noisy).clamp(0, 1)
    return torch.where(pick, noisy, x)


# --- MNIST-C-style corruptions ---------------------------------------------------------------
# Each takes a float batch [N,1,28,28] in [0, 1] and a generator and returns the corrupted batch,
# following google-research/mnist-c's definitions at the severities its published set uses.

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
    y = (_blur(x, torch.full((len(x),), sigma), 3) * 255).floor().div(255)[:, 0].clone()
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
    return _blur(y[:, None], torch.full((n,), sigma), 3).clamp(0, 1)


def motion_blur(x, gen, radius: int = 10, sigma: float = 3.0):
    # ImageMagick's motion blur: a one-sided Gaussian trail along a random direction within ±45°
    angle = _u(len(x), gen) * math.radians(45)
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
    liquid = _blur(liquid, torch.ones(n), 4)
    m = (liquid > 0.65).float()
    m = _blur(m, torch.full((n,), 1.5), 6)
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
    gx, gy = _sobel(_blur(x, torch.full((len(x),), sigma), 4))
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
    xs, ys = _grid(n, size)
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


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float images in [0, 1] as the uint8 array an image file would hold (clipped, rounded)."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


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


# --- synthetic non-digits --------------------------------------------------------------------
# What a digit reader is shown by mistake: letters, scribbles, shapes and objects, noise. Letters
# that a hand makes look like digits (O, I, l, S, Z, B, g, q, ...) are left out: rejecting them
# would teach the model to reject real digits.

LETTERS = "ACEFHKMNPRUVWXYacefhkmnruvwxy"
NON_DIGIT_KINDS = ("letters", "doodles", "shapes", "noise")


def _grid(n: int, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(size, dtype=torch.float32)
    return t[None, None, :].expand(n, size, size), t[None, :, None].expand(n, size, size)


def _letters(n: int, gen: torch.Generator, fonts: str) -> torch.Tensor:
    from PIL import Image, ImageDraw, ImageFont

    if fonts == "train":  # Pillow's own font: present everywhere, so training is reproducible
        faces = [ImageFont.load_default(size=40)]
    else:  # other typefaces when the system has them, so measuring does not replay training
        paths = sorted(Path("/usr/share/fonts").rglob("*.ttf"))
        faces = [ImageFont.truetype(str(p), 40) for p in paths if "Math" not in p.name] or \
            [ImageFont.load_default(size=34)]
    glyphs = []
    for face in faces:
        for ch in LETTERS:
            for bold in (0, 2):
                img = Image.new("L", (64, 64))
                ImageDraw.Draw(img).text((32, 32), ch, fill=255, font=face, anchor="mm", stroke_width=bold,
                                         stroke_fill=255)
                glyphs.append(np.asarray(img.resize((28, 28), Image.Resampling.BOX), np.float32) / 255)
    bank = torch.from_numpy(np.stack(glyphs))[:, None]
    pick = torch.randint(0, len(bank), (n,), generator=gen)
    return random_warp(bank[pick], gen, rotate_deg=15, scale=0.15, shear_deg=15, translate_px=2, elastic_px=1.5)


def _doodles(n: int, gen: torch.Generator) -> torch.Tensor:
    # scribbles: sums of four random sinusoids per axis (2-6 turns each, so few pass for a digit), Gaussian pen
    t = torch.linspace(0, 1, 128)
    out = []
    for m in [min(256, n - i) for i in range(0, n, 256)]:
        f = torch.randint(2, 7, (m, 2, 4), generator=gen).float()
        amp = torch.rand(m, 2, 4, generator=gen) * 14 / f
        phase = torch.rand(m, 2, 4, generator=gen) * 2 * math.pi
        path = 14 + (amp[..., None] * torch.sin(2 * math.pi * f[..., None] * t + phase[..., None])).sum(2)
        xs, ys = _grid(m)
        d2 = (xs.reshape(m, -1, 1) - path[:, None, 0]) ** 2 + (ys.reshape(m, -1, 1) - path[:, None, 1]) ** 2
        pen = 0.6 + 0.8 * torch.rand(m, 1, generator=gen)
        out.append(torch.exp(-d2.amin(2) / (2 * pen ** 2)).reshape(m, 1, 28, 28))
    return torch.cat(out)


def _shapes(n: int, gen: torch.Generator) -> torch.Tensor:
    # one to three ellipses or boxes, filled or outlined, some striped: objects, clothing, logos
    xs, ys = _grid(n)
    img = torch.zeros(n, 28, 28)
    for k in range(3):
        c = 8 + 12 * torch.rand(n, 2, 1, 1, generator=gen)
        ax = 3 + 9 * torch.rand(n, 2, 1, 1, generator=gen)
        ang = torch.rand(n, 1, 1, generator=gen) * math.pi
        dx, dy = xs - c[:, 0], ys - c[:, 1]
        u = (dx * torch.cos(ang) + dy * torch.sin(ang)) / ax[:, 0]
        v = (-dx * torch.sin(ang) + dy * torch.cos(ang)) / ax[:, 1]
        box = torch.rand(n, 1, 1, generator=gen) < 0.5
        r = torch.where(box, torch.maximum(u.abs(), v.abs()), torch.sqrt(u ** 2 + v ** 2))
        outline = torch.rand(n, 1, 1, generator=gen) < 0.3
        shape = torch.where(outline, (r - 1).abs() < 0.15, r < 1).float()
        stripes = torch.rand(n, 1, 1, generator=gen) < 0.3
        period = 2 + 3 * torch.rand(n, 1, 1, generator=gen)
        shape = torch.where(stripes, shape * (torch.sin(2 * math.pi * u * ax[:, 0] / period) > 0), shape)
        present = (k == 0) | (torch.rand(n, 1, 1, generator=gen) < 0.4)
        grey = 0.5 + 0.5 * torch.rand(n, 1, 1, generator=gen)
        img = torch.maximum(img, shape * grey * present)
    return img[:, None]


def _noise(n: int, gen: torch.Generator) -> torch.Tensor:
    # smoothed random fields, some thresholded into blobs, some left as grainy texture
    sigma = 0.5 + 2.5 * torch.rand(n, generator=gen)
    field = _blur(torch.rand(n, 1, 28, 28, generator=gen), sigma, 9)
    lo, hi = field.amin((1, 2, 3), keepdim=True), field.amax((1, 2, 3), keepdim=True)
    field = (field - lo) / (hi - lo + 1e-6)
    level = (0.4 + 0.4 * torch.rand(n, 1, 1, 1, generator=gen))
    blobs = torch.rand(n, 1, 1, 1, generator=gen) < 0.5
    return torch.where(blobs, (field > level).float(), field)


def non_digits(n: int, gen: torch.Generator, kind: str | tuple = "mixed", fonts: str = "train") -> torch.Tensor:
    """Return ``n`` synthetic images that are not digits, float ``[n,1,28,28]``, ink bright on 0.

    ``kind`` is one of ``NON_DIGIT_KINDS``, a tuple of them (an equal share of each, in random order)
    or ``"mixed"`` (all of them); ``fonts="train"`` draws letters in Pillow's built-in font, ``"eval"``
    in the system's other fonts.
    """
    if kind == "mixed":
        kind = NON_DIGIT_KINDS
    if isinstance(kind, tuple):
        counts = [n // len(kind) + (i < n % len(kind)) for i in range(len(kind))]
        parts = torch.cat([non_digits(c, gen, k, fonts) for k, c in zip(kind, counts) if c])
        return parts[torch.randperm(n, generator=gen)]
    if kind == "letters":
        return _letters(n, gen, fonts)
    return {"doodles": _doodles, "shapes": _shapes, "noise": _noise}[kind](n, gen)

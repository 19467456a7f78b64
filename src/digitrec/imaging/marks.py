"""The clean-up rules of the ink stage that act on marks: lines and box borders at the edge, stray lines
across the digit, specks, and strokes drawn as outlines. Each works on boolean masks ``[N,H,W]``."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

SPECK_SHARE = 0.04              # a component with fewer stroke pixels than this share of the largest is a speck
MIN_LEFT_AFTER_LINES = 0.2      # erase edge lines only if at least this share of the ink is left
HOLLOW_SHARE = 0.3              # thin enclosed gaps above this share of the stroke pixels: outlined strokes
HAIRLINE_SOLID = 0.5            # outlines: under this share of their pixels survive a 2x2 opening
HOLLOW_OPEN = 6                 # px: enclosed gaps narrower than this are the inside of an outlined stroke

# label components within each picture of a batch, never across pictures
CROSS = np.zeros((3, 3, 3), bool)
CROSS[1] = ndimage.generate_binary_structure(2, 1)
SQUARE = np.zeros((3, 3, 3), bool)
SQUARE[1] = True


def touching_edge(mask: np.ndarray) -> np.ndarray:
    """The 4-connected components of each picture of ``mask [N,H,W]`` that reach its edge."""
    labels, _ = ndimage.label(mask, structure=CROSS)
    return at_edge(labels)


def enclosed(mask: np.ndarray) -> np.ndarray:
    """The enclosed gaps of each picture of ``mask [N,H,W]``, labelled: the background's 4-connected regions
    that do not reach the picture's edge (``binary_fill_holes``' rule), 0 elsewhere. Every outline filler
    here starts from them."""
    labels, _ = ndimage.label(~mask, structure=CROSS)
    labels[at_edge(labels)] = 0
    return labels


def at_edge(labels: np.ndarray) -> np.ndarray:
    """Where ``labels [N,H,W]`` holds a component that has a pixel on its picture's edge."""
    edge = np.concatenate([labels[:, 0].ravel(), labels[:, -1].ravel(), labels[:, :, 0].ravel(),
                           labels[:, :, -1].ravel()])
    return np.isin(labels, edge[edge > 0])



def box_of(mask: np.ndarray) -> tuple | None:
    """The slices of ``mask [N,H,W]`` that hold every True pixel of every picture, one pixel wider
    where the picture allows (labelling only there is the same and cheaper); None when there is none."""
    rows, cols = np.flatnonzero(mask.any(axis=(0, 2))), np.flatnonzero(mask.any(axis=(0, 1)))
    if rows.size == 0:
        return None
    return (slice(None), slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2))



def hairlines(marks: np.ndarray) -> np.ndarray:
    """Which pictures of ``marks [N,H,W]`` are drawn in hairlines (outlines, a fine pen): most of their
    pixels fall to a 2x2 opening, where a pen's strokes mostly stay."""
    solid = ndimage.binary_opening(marks, structure=np.ones((1, 2, 2), bool)).sum(axis=(1, 2))
    return solid < HAIRLINE_SOLID * marks.sum(axis=(1, 2))


def fill_hollow_strokes(out: np.ndarray, ink: np.ndarray, strokes: np.ndarray) -> None:
    """Fill, in ``out``, the inside of strokes drawn as outlines: enclosed gaps too thin to survive an
    opening of ``HOLLOW_OPEN`` pixels, and at most a pixel wider (from their middle to their edge) than
    the thinnest, in pictures whose strokes are hairlines and where those gaps add
    up to over ``HOLLOW_SHARE`` of the stroke pixels (a solid digit's loops are wide, or rare); the fill
    is the median ink of the strokes."""
    box = box_of(strokes)
    if box is None:
        return
    # holes: the background's 4-connected regions that do not reach the border (binary_fill_holes' rule);
    # outside the strokes' box all is background joined to the border, so the box decides alone
    out, ink, strokes = out[box], ink[box], strokes[box]
    labels = enclosed(strokes)
    holes = labels > 0
    count = strokes.sum(axis=(1, 2))
    # thin gaps are holes: only pictures whose holes alone pass the share can pass it
    for i in np.flatnonzero(holes.sum(axis=(1, 2)) > HOLLOW_SHARE * count):
        if not hairlines(strokes[i][None])[0]:
            continue
        opened = ndimage.binary_opening(holes[i], structure=np.ones((HOLLOW_OPEN, HOLLOW_OPEN), bool))
        wide = np.unique(labels[i][opened])
        thin = holes[i] & ~np.isin(labels[i], wide[wide > 0])
        # the insides of the strokes are about equally wide; a hole clearly wider is a loop (a small 0's)
        found = np.unique(labels[i][thin])
        if found.size > 1:
            half = ndimage.maximum(ndimage.distance_transform_edt(thin), labels[i], found)
            thin &= np.isin(labels[i], found[half <= half.min() + 1])
        if thin.sum() > HOLLOW_SHARE * count[i]:
            out[i][thin] = float(np.median(ink[i][strokes[i]]))


def edge_lines(mask: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """Pixels of straight horizontal or vertical strokes over three quarters of the image long that reach its edge.

    Where a digit's stroke crosses such a line the crossing is kept (ink on both sides of the line),
    and nothing is erased when the lines are nearly all the ink: a tightly cropped 1 is a vertical run too.
    """
    lines = np.zeros_like(mask)
    for axis in (0, 1):
        length = line_length(mask.shape[axis])
        m = (strokes & mask).astype(np.uint8)
        if m.sum(axis=axis).max(initial=0) < length:  # no line of that length can be there
            continue
        # zeros beyond the edge: the default reflection would double a stroke that ends there
        runs = ndimage.maximum_filter1d(ndimage.minimum_filter1d(m, length, axis=axis, mode="constant"), length,
                                        axis=axis) > 0
        if not runs.any():
            continue
        labels, _ = ndimage.label(runs)
        edge = np.take(labels, [0, -1], axis=axis).ravel()
        found = np.isin(labels, edge[edge > 0])
        if not found.any():
            continue
        # the anti-aliased fringe of a line is part of it
        found = ndimage.binary_dilation(found, iterations=1) & mask
        thickness = int(np.ceil(found.sum() / max(1, found.any(axis=1 - axis).sum())))
        across = [1, 1]
        across[1 - axis] = 2 * thickness + 3
        bridged = ndimage.binary_closing(strokes & ~found, structure=np.ones(across, bool))
        lines |= found & ~bridged
    if lines.any() and (mask & ~lines).sum() < MIN_LEFT_AFTER_LINES * mask.sum():
        return np.zeros_like(mask)
    return lines


def stray_lines(mask: np.ndarray) -> np.ndarray:
    """Pixels of thin lines (a scribble, a dotted or ruled line) that run past the marks on both sides,
    in each picture of ``mask [N,H,W]``: what to erase so that the digit, not the line, is cropped.

    Such a line shows as thin columns (ink shorter than a fifth of the ink's height) at both ends of the
    ink, at least a tenth of its width each, on one near-horizontal straight line that goes on across the
    digit. A line apart from the digit goes whole. One joined to the digit loses the parts beyond it,
    if they are equally thick (the part across the digit stays: it cannot be told from the digit's
    strokes); a bar of the digit, a 7's or a 2's base, thickens where it meets the rest, and stays.
    """
    _, h, w = mask.shape
    out = np.zeros_like(mask)
    has = mask.any(axis=1)                                            # [N, W]
    rows, cols = np.arange(h), np.arange(w)
    top = np.where(mask, rows[:, None], h).min(axis=1)
    bottom = np.where(mask, rows[:, None], -1).max(axis=1)
    ink_rows = mask.any(axis=2)
    height = h - ink_rows[:, ::-1].argmax(axis=1) - ink_rows.argmax(axis=1)
    limit = np.maximum(3, 0.2 * height)
    thick = has & (bottom - top + 1 > limit[:, None])
    c0, c1 = has.argmax(axis=1), w - 1 - has[:, ::-1].argmax(axis=1)
    # the thin columns before the first thick one, and after the last
    first, last = thick.argmax(axis=1), w - 1 - thick[:, ::-1].argmax(axis=1)
    least = np.maximum(3, np.round(0.1 * (c1 - c0 + 1)))
    candidates = np.flatnonzero(thick.any(axis=1) & (first - c0 >= least) & (c1 - last >= least))
    for i in candidates:
        at = np.flatnonzero(has[i] & ((cols < first[i]) | (cols > last[i])))
        centre = (top[i, at] + bottom[i, at]) / 2
        slope, offset = np.polyfit(at, centre, 1)
        if abs(slope) > 0.3 or np.abs(centre - (slope * at + offset)).max() > limit[i]:
            continue
        near = np.abs(rows[:, None] - (slope * cols + offset)) <= limit[i]
        # a line goes on across the digit (a dotted one every other dash); two bars at either end do not
        if (mask[i] & near)[:, first[i]:last[i] + 1].any(axis=0).mean() < 0.4:
            continue
        labels, _ = ndimage.label(mask[i], structure=np.ones((3, 3), bool))
        line = np.isin(labels, np.unique(labels[:, at][mask[i][:, at]]))
        if (line & ~near).any():
            # where a bar of the digit (a 7's, a 2's base) meets the rest, its columns grow taller: a line
            # running past the digit is as thick at both ends
            extent = bottom[i, at] - top[i, at] + 1
            if extent.max() > 1.5 * np.median(extent) + 1:
                continue
            line[:, first[i]:last[i] + 1] = False
        out[i] = line
    return out


def line_length(size: int) -> int:
    """Pixels a ruled line or box border runs at least, along a side of ``size`` pixels (odd: a centred filter)."""
    return 3 * size // 4 | 1


def drop_specks(mask: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """Remove, in each picture, components whose stroke pixels are fewer than ``SPECK_SHARE`` of its
    largest component's."""
    box = box_of(mask)
    if box is None:
        return mask
    labels, n = ndimage.label(mask[box], structure=SQUARE)
    size = np.bincount(labels[strokes[box] & mask[box]], minlength=n + 1)
    size[0] = 0
    owner = np.zeros(n + 1, np.intp)  # the picture each component lies in
    owner[labels] = np.arange(len(mask))[:, None, None]
    largest = np.zeros(len(mask), np.int64)
    np.maximum.at(largest, owner[1:], size[1:])
    keep = size >= SPECK_SHARE * largest[owner]
    keep[0] = False
    kept = np.zeros_like(mask)
    kept[box] = keep[labels]
    return kept


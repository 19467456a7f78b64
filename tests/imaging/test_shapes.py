import numpy as np
from scipy import ndimage

from digitrec.imaging.shapes import outlines_filled


def _disk(r: int) -> np.ndarray:
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return xx ** 2 + yy ** 2 <= r ** 2


def _outlined(solid: np.ndarray) -> np.ndarray:
    return (solid & ~ndimage.binary_erosion(solid, _disk(1))).astype(np.float32)[None]


def test_a_wide_stroke_drawn_as_an_outline_is_filled():
    # a bar 24 px wide and 90 px tall: its inside is 11 px deep, more than a tenth of the height
    solid = np.zeros((112, 112), bool)
    solid[10:100, 44:68] = True
    assert np.array_equal(outlines_filled(_outlined(solid))[0] > 0.5, solid)


def test_the_round_loop_of_an_outlined_zero_stays_open():
    ring = np.zeros((112, 112), bool)
    yy, xx = np.mgrid[:112, :112]
    r = np.hypot((yy - 56) / 45, (xx - 56) / 30)
    ring[(r <= 1) & (r >= 0.6)] = True
    filled = outlines_filled(_outlined(ring))[0] > 0.5
    assert filled[56, 56] == 0 and filled.sum() >= 0.9 * ring.sum()

import numpy as np
from conftest import draw_digit

import digitrec
from digitrec.imaging import to_mnist
from digitrec.imaging.light import light_maps, two_tone_maps


def _bold_crop() -> np.ndarray:
    """A 0 drawn with a marker so bold that its ink covers more of the tight crop than the paper does."""
    img = np.asarray(draw_digit(0, size=64, width=60), np.float32) / 255
    rows, cols = np.flatnonzero((img < 0.5).any(1)), np.flatnonzero((img < 0.5).any(0))
    return img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def test_bold_ink_covering_most_of_a_tight_crop_is_the_ink_of_the_dark_tone():
    crop = _bold_crop()
    assert (crop < 0.5).mean() > 0.5
    ink = two_tone_maps(crop[None], dark=True)[0]
    assert np.array_equal(ink > 0.5, crop < 0.5)
    assert not np.array_equal(light_maps(crop[None])[0] > 0.5, crop < 0.5)  # the median is the ink's tone


def test_faint_ruled_lines_are_paper_in_two_tones():
    page = np.asarray(draw_digit(7, size=112, width=12), np.float32) / 255
    page[[30, 60, 90]] = 0.75
    ink = two_tone_maps(page[None], dark=True)[0]
    assert ink[[30, 60, 90]][page[[30, 60, 90]] > 0.7].max() == 0
    assert digitrec.load().probabilities(to_mnist(ink)[None]).argmax() == 7


def test_a_tone_running_round_the_edge_is_paper_not_ink():
    dot = np.ones((112, 112), np.float32)
    dot[50:55, 50:55] = 0
    assert two_tone_maps(dot[None], dark=False).max() == 0
    assert two_tone_maps(dot[None], dark=True).max() == 1

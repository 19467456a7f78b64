import numpy as np
import pytest
from conftest import draw_digit

from digitrec.imaging.locate import digit_boxes
from digitrec.inference.policy import HAND_SET

SEARCH = HAND_SET.searching  # the bundled model's search


def _sheet(h: int = 600, w: int = 800, seed: int = 0) -> np.ndarray:
    """Paper lit unevenly (darker towards one corner), with sensor noise, as a phone photographs it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    light = 0.9 - 0.25 * (yy / h + xx / w) / 2
    return np.clip(light + rng.normal(0, 0.01, (h, w)), 0, 1).astype(np.float32)


def _with_digit(sheet: np.ndarray, top: int, left: int, size: int = 60, digit: int = 7, width: int = 20) -> np.ndarray:
    ink = 1 - np.asarray(draw_digit(digit, size=size, width=width), np.float32) / 255
    out = sheet.copy()
    out[top:top + size, left:left + size] *= 1 - 0.8 * ink
    return out


def test_the_first_box_holds_a_small_digit_on_a_photographed_sheet():
    sheet = _sheet()
    picture = _with_digit(sheet, 400, 550)
    marked = (sheet - picture) > 0.2
    box = digit_boxes(picture, SEARCH)[0]
    assert marked[box].sum() == marked.sum()
    assert picture[box].size < 0.05 * picture.size


def test_a_digit_filling_most_of_a_photo_is_boxed_whole():
    sheet = _sheet()
    picture = _with_digit(sheet, 40, 140, size=480, width=40)
    marked = (sheet - picture) > 0.2
    box = digit_boxes(picture, SEARCH)[0]
    assert marked[box].sum() == marked.sum()


@pytest.mark.parametrize("digit", [0, 1, 7])
def test_a_bold_digit_gives_no_box_around_pieces_of_its_strokes(digit):
    sheet = _sheet()
    picture = _with_digit(sheet, 100, 200, size=400, digit=digit, width=80)
    marked = (sheet - picture) > 0.2
    assert all(marked[box].sum() > 0.95 * marked.sum() for box in digit_boxes(picture, SEARCH))


def test_blank_paper_has_no_box():
    assert digit_boxes(_sheet(), SEARCH) == []


def test_a_picture_of_a_digit_alone_is_not_searched():
    assert digit_boxes(np.asarray(draw_digit(7, size=112), np.float32) / 255, SEARCH) == []

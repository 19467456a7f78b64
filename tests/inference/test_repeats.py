import numpy as np
import pytest
from PIL import Image

import digitrec
from digitrec import data
from digitrec.inference.reader import _check
from digitrec.inference.repeats import repeated

HEIGHT = 60  # px: a digit's height in the inks below


@pytest.fixture(scope="module")
def recognizer():
    return digitrec.load()


def _broad(digit: int) -> np.ndarray:
    """An MNIST test digit as float ink, HEIGHT px tall and 1.3 times as wide as it is written, with a margin."""
    x, y = data.load_mnist("test")
    img = x[np.flatnonzero(y == digit)[0]]
    rows, cols = np.flatnonzero(img.any(1)), np.flatnonzero(img.any(0))
    crop = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    w = round(1.3 * crop.shape[1] * HEIGHT / crop.shape[0])
    ink = np.asarray(Image.fromarray(crop).resize((w, HEIGHT), Image.Resampling.BILINEAR), np.float32) / 255
    return np.pad(ink, 10)


def _halves(ink: np.ndarray, at: int):
    rr, cc = np.nonzero(ink > 0.3)
    return [(rr[cc < at], cc[cc < at]), (rr[cc >= at], cc[cc >= at])]


def test_one_broad_digit_read_twice_is_one(recognizer):
    ink = _broad(0)
    rr, cc = np.nonzero(ink > 0.3)
    owned = _halves(ink, int(cc.mean()))
    assert repeated([0, 0], owned, HEIGHT, lambda o: _check(recognizer, ink, o)) == [0]


def test_two_digits_apart_stay_two(recognizer):
    one = _broad(0)
    ink = np.concatenate([one, one], axis=1)
    owned = _halves(ink, one.shape[1])
    assert repeated([0, 0], owned, HEIGHT, lambda o: _check(recognizer, ink, o)) == []


def test_a_mark_the_recognizer_reads_as_another_digit_stays_two(recognizer):
    ink = _broad(0)
    rr, cc = np.nonzero(ink > 0.3)
    owned = _halves(ink, int(cc.mean()))
    assert repeated([3, 3], owned, HEIGHT, lambda o: _check(recognizer, ink, o)) == []

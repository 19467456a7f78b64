"""Preprocessing of photos and scans (the ink stage): uneven light, lines, specks, noise, polarity, blanks."""
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from digitrec import data
from digitrec.data.render.paper import PAPER_KINDS, on_paper
from digitrec.evaluation.corruptions import corrupt
from digitrec.imaging import deskewed, ink_map, preprocess


@pytest.fixture(scope="module")
def digits():
    x, _ = data.load_mnist("test")
    return x[:40]


def _agreement(a, b):
    """Correlation of two 28x28 preprocessed images, blurred to forgive a pixel of shift (1: identical)."""
    a, b = ndimage.gaussian_filter(a, 1.5), ndimage.gaussian_filter(b, 1.5)
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_mnist_digits_pass_through_the_ink_stage_unchanged(digits):
    x = digits.astype(np.float32) / 255
    assert all(np.array_equal(ink_map(a), a) for a in x)


@pytest.mark.parametrize("kind", PAPER_KINDS)
def test_photo_of_a_digit_reads_like_the_clean_digit(digits, kind, tmp_path):
    photos = on_paper(digits[:10], kind, seed=2)
    agree = []
    for i, photo in enumerate(photos):
        path = tmp_path / f"{kind}{i}.png"
        Image.fromarray(photo).save(path)
        agree.append(_agreement(preprocess(path), preprocess(digits[i])))
    assert np.median(agree) > 0.85


def test_ruled_lines_and_box_borders_reaching_the_edge_are_erased(digits):
    plain = on_paper(digits[:5], "shadow", seed=0)
    for kind in ("ruled", "box"):  # lines cover 7 % of these photos
        for photo, clean in zip(on_paper(digits[:5], kind, seed=0), plain):
            ink = ink_map(photo.astype(np.float32) / 255) > 0.1
            digit = ndimage.binary_dilation(ink_map(clean.astype(np.float32) / 255) > 0.1, iterations=2)
            assert (ink & ~digit).mean() < 0.01, kind


def test_salt_and_pepper_noise_is_filtered(digits):
    noisy = corrupt(digits[:10], "impulse_noise", seed=0)
    agree = [_agreement(preprocess(n), preprocess(c)) for n, c in zip(noisy, digits[:10])]
    assert np.median(agree) > 0.8


def test_specks_away_from_the_digit_are_dropped(digits):
    img = digits[0].copy()
    img[1, 1] = img[26, 2] = img[2, 25] = 255
    assert np.array_equal(ink_map(img.astype(np.float32) / 255), digits[0].astype(np.float32) / 255)


def test_blank_paper_photo_is_blank():
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.9, 0.5, 200)[None, :] * np.ones((150, 1))
    page = np.clip(ramp + rng.normal(0, 0.02, ramp.shape), 0, 1)
    assert preprocess((page * 255).astype(np.uint8)) is None


def test_light_ink_on_dark_and_dark_on_light_read_alike(digits):
    assert _agreement(preprocess(255 - digits[3]), preprocess(digits[3])) > 0.99


def test_brightened_and_fogged_digits_keep_their_shape(digits):
    # haze's long bright tail pulls the mean below the median: a polarity vote by the mean took these as dark ink
    for name in ("brightness", "fog"):
        moved = corrupt(digits[:10], name, seed=0)
        agree = [_agreement(preprocess(m), preprocess(c)) for m, c in zip(moved, digits[:10])]
        assert np.median(agree) > 0.8, name


def test_deskew_stands_a_slanted_stroke_upright():
    img = np.zeros((28, 28), np.float32)
    for r in range(4, 24):
        img[r, 8 + (24 - r) // 2:11 + (24 - r) // 2] = 1  # a stroke leaning right by 1 pixel in 2
    cols = np.flatnonzero(deskewed(img)[4:24].max(0) > 0.5)
    assert cols.max() - cols.min() <= 4
    cols = np.flatnonzero(preprocess(img, deskew=True).max(0) > 0.5)  # the whole pipeline, asked to deskew
    assert cols.max() - cols.min() <= 4  # 12 columns without deskew


def test_inverted_side_bands_read_like_the_clean_digit(digits):
    # a scan whose margins came out inverted (MNIST-C's "stripe"): the bands' paper is taken the other way round
    striped = corrupt(digits, "stripe")
    agree = [_agreement(preprocess(s), preprocess(d)) for s, d in zip(striped, digits)]
    assert np.median(agree) > 0.9


def test_edge_detected_digits_are_filled_and_solid_digits_are_left_alone(digits):
    outlined = corrupt(digits, "canny_edges")
    agree = [_agreement(preprocess(o), preprocess(d)) for o, d in zip(outlined, digits)]
    assert np.median(agree) > 0.9
    x = digits.astype(np.float32) / 255
    assert all(np.array_equal(ink_map(a), a) for a in x)  # small loops of solid 8s and 9s stay open


def test_grainy_strokes_are_filled(mnist_test_small):
    # photon noise pits the strokes (MNIST-C's "shot noise"); left as they are, pits read as loops: 8s
    import digitrec

    x, y = mnist_test_small[0][:200], mnist_test_small[1][:200]
    read = [p.digit for p in digitrec.load().predict_batch(corrupt(x, "shot_noise"))]
    assert np.mean(np.array(read) == y) > 0.95


def test_a_scribble_running_past_the_digit_is_cropped_away(mnist_test_small):
    # a wavy pen line across a narrow digit and beyond it on both sides: without its overhangs erased,
    # the crop takes the line's width and the digit comes out shrunk and off-centre
    from PIL import ImageDraw

    narrow = [d for d in mnist_test_small[0][:300] if (d > 60).any(axis=0).sum() <= 12][:20]
    rng = np.random.default_rng(0)
    agree = []
    for d in narrow:
        img = Image.fromarray(d)
        row = int(rng.integers(6, 22))
        ImageDraw.Draw(img).line([(c, row + (1 if (c // 3) % 2 else -1)) for c in range(1, 27, 3)], fill=255)
        agree.append(_agreement(preprocess(np.asarray(img)), preprocess(d)))
    assert np.median(agree) > 0.95


def test_broken_outlines_are_thickened_into_strokes(mnist_test_small):
    # edge-detected digits with pixels knocked out: the outlines are open, so no inside can be filled;
    # left as hairlines they read as 8s and 0s
    import digitrec

    x, y = mnist_test_small[0][:200], mnist_test_small[1][:200]
    outlined = corrupt(x, "canny_edges")
    broken = np.where(np.random.default_rng(0).random(outlined.shape) < 0.1, 0, outlined).astype(np.uint8)
    read = [p.digit for p in digitrec.load().predict_batch(broken)]
    assert np.mean(np.array(read) == y) > 0.7

"""Augmentation, MNIST-C-style corruptions and synthetic non-digits: batched, seeded, shape-preserving."""
import numpy as np
import pytest
import torch

from digitrec import data
from digitrec.data import transforms
from digitrec.data.render import non_digits as synthetic_nd
from digitrec.data.render import paper
from digitrec.evaluation import corruptions
from digitrec.training import augment


@pytest.fixture(scope="module")
def digits():
    x, _ = data.load_mnist("test")
    return x[:64]


def _tensor(x):
    return torch.from_numpy(x.astype(np.float32) / 255)[:, None]


def _batch():
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0
    return x


def test_random_affine_keeps_shape_and_range():
    out = transforms.random_warp(_batch(), torch.Generator().manual_seed(0))
    assert out.shape == (16, 1, 28, 28) and out.min() >= 0 and out.max() <= 1


def test_random_affine_is_reproducible_from_its_generator():
    a = transforms.random_warp(_batch(), torch.Generator().manual_seed(1))
    b = transforms.random_warp(_batch(), torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_random_affine_with_zero_ranges_is_the_identity():
    x = _batch()
    out = transforms.random_warp(x, torch.Generator().manual_seed(0), 0, 0, 0, 0)
    assert torch.allclose(out, x, atol=1e-5)


def test_random_affine_moves_each_image_differently():
    out = transforms.random_warp(_batch(), torch.Generator().manual_seed(0))
    assert not torch.allclose(out[0], out[1])


def test_same_seed_gives_the_same_augmented_tensor(digits):
    a = transforms.random_warp(_tensor(digits), torch.Generator().manual_seed(3), elastic_px=2.0)
    b = transforms.random_warp(_tensor(digits), torch.Generator().manual_seed(3), elastic_px=2.0)
    assert torch.equal(a, b)


def test_elastic_warp_bends_strokes_but_keeps_the_ink(digits):
    x = _tensor(digits)
    y = transforms.random_warp(x, torch.Generator().manual_seed(0), 0, 0, 0, 0, elastic_px=2.0)
    assert not torch.allclose(x, y)
    ratio = y.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert ((ratio > 0.8) & (ratio < 1.2)).float().mean() > 0.9


def test_stroke_width_thickens_and_thins(digits):
    x = _tensor(digits)
    y = augment.stroke_width(x, torch.Generator().manual_seed(0), p=1.0)
    change = (y > 0.5).sum((1, 2, 3)) - (x > 0.5).sum((1, 2, 3))
    assert (change > 0).any() and (change < 0).any()


def test_blur_resample_contrast_noise_keep_shape_and_range(digits):
    x, g = _tensor(digits), torch.Generator().manual_seed(0)
    for y in (augment.blur_resample(x, g, 1.0, 1.5, 1.0, 10), augment.contrast(x, g, 1.0), augment.noise(x, g, 1.0)):
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1 and not torch.equal(x, y)


@pytest.mark.parametrize("name", sorted(corruptions.CORRUPTIONS))
def test_each_corruption_changes_uint8_images_and_keeps_their_shape(digits, name):
    y = corruptions.corrupt(digits[:16], name, seed=1)
    assert y.dtype == np.uint8 and y.shape == (16, 28, 28) and not np.array_equal(y, digits[:16])


def test_inverted_corruption_is_the_negative(digits):
    assert np.array_equal(corruptions.corrupt(digits, "inverted"), 255 - digits)


@pytest.mark.parametrize("kind", synthetic_nd.NON_DIGIT_KINDS)
def test_non_digits_of_each_kind_have_ink(kind):
    x = synthetic_nd.non_digits(8, 0, kind)
    assert x.shape == (8, 1, 28, 28) and (x.amax((1, 2, 3)) > 0.3).all()


def test_on_paper_is_dark_ink_on_lit_paper(digits):
    photo = paper.on_paper(digits[:4], "shadow", seed=0).astype(np.float32) / 255
    ink = np.kron(digits[:4] > 128, np.ones((4, 4), bool))
    assert photo.shape == (4, 112, 112) and photo[ink].mean() < photo[~ink].mean() - 0.3

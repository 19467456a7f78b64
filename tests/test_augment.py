import torch

from digitrec.augment import random_affine


def _batch():
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0
    return x


def test_random_affine_keeps_shape_and_range():
    out = random_affine(_batch(), torch.Generator().manual_seed(0))
    assert out.shape == (16, 1, 28, 28) and out.min() >= 0 and out.max() <= 1


def test_random_affine_is_reproducible_from_its_generator():
    a = random_affine(_batch(), torch.Generator().manual_seed(1))
    b = random_affine(_batch(), torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_random_affine_with_zero_ranges_is_the_identity():
    x = _batch()
    out = random_affine(x, torch.Generator().manual_seed(0), 0, 0, 0, 0)
    assert torch.allclose(out, x, atol=1e-5)


def test_random_affine_moves_each_image_differently():
    out = random_affine(_batch(), torch.Generator().manual_seed(0))
    assert not torch.allclose(out[0], out[1])

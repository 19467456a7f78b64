"""Calibrated confidence and "not a digit": blanks and non-digits get no digit, real digits keep theirs."""
import numpy as np
import pytest
import torch

import digitrec
from digitrec import checkpoint, data
from digitrec.data.render.non_digits import non_digits
from digitrec.training import train


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("reject")
    # the network is pinned so that the fast preset's own choice of net does not move this check
    train("cnn", "fast", out, train_subset=4000, test_subset=200, epochs=1, progress=False,
          outlier_share=0.25, outlier_bank=400, stages=((16,), (32,), (64,)))
    return out / "model.pt"


@pytest.fixture(scope="module")
def test_digits():
    x, y = data.load_mnist("test")
    return x[:300], y[:300]


def test_checkpoint_carries_temperature_and_threshold_fitted_on_held_out_digits(model_path):
    ckpt = checkpoint.load(model_path)
    assert ckpt.temperature > 0 and np.isfinite(ckpt.reject_threshold)
    cal = ckpt.calibration
    assert cal["heldout_images"] == 400  # a tenth of the subset, from outside it
    assert cal["nll_after"] <= cal["nll_before"] + 1e-6


def test_blank_images_are_no_digit(model_path):
    r = digitrec.load(model_path)
    preds = r.predict_batch([np.zeros((28, 28), np.uint8), np.full((50, 80), 255, np.uint8)])
    assert [p.digit for p in preds] == [None, None]


def test_few_real_digits_are_rejected(model_path, test_digits):
    preds = digitrec.load(model_path).predict_batch(test_digits[0])
    assert np.mean([p.digit is None for p in preds]) < 0.05


def test_noise_and_shapes_are_rejected_more_often_than_digits(model_path, test_digits):
    r = digitrec.load(model_path)
    fakes = non_digits(100, 5, "mixed", fonts="eval")
    fakes = (fakes[:, 0] * 255).round().to(torch.uint8).numpy()
    rejected_fakes = np.mean([p.digit is None for p in r.predict_batch(fakes)])
    rejected_digits = np.mean([p.digit is None for p in r.predict_batch(test_digits[0][:100])])
    assert rejected_fakes > rejected_digits + 0.2


def test_reject_threshold_setting_overrides_the_checkpoint(model_path, test_digits):
    x = test_digits[0][:20]
    assert all(p.digit is None for p in digitrec.load(model_path, reject_threshold=float("inf")).predict_batch(x))
    assert all(p.digit is not None for p in digitrec.load(model_path, reject_threshold=float("-inf")).predict_batch(x))


def test_rejected_prediction_keeps_its_probabilities(model_path, test_digits):
    p = digitrec.load(model_path, reject_threshold=float("inf")).predict(test_digits[0][0])
    assert p.digit is None and abs(sum(p.probabilities) - 1) < 1e-4 and p.confidence == max(p.probabilities)


def test_a_preset_can_keep_its_fitted_threshold_switched_off(tmp_path, test_digits):
    # the default preset does this, so that the bundled model never refuses a real digit unless asked
    ckpt = train("cnn", "fast", tmp_path, train_subset=2000, test_subset=100, epochs=1, progress=False,
                 stages=((8,), (16,)), reject=False)
    fitted = ckpt.calibration["fitted_reject_threshold"]
    assert ckpt.reject_threshold is None and np.isfinite(fitted)
    assert digitrec.load(tmp_path / "model.pt").reject_threshold == float("-inf")
    assert digitrec.load(tmp_path / "model.pt", reject_threshold=fitted).reject_threshold == fitted

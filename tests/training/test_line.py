import subprocess
import sys

import numpy as np
import pytest

import digitrec
from digitrec import data
from digitrec.imaging.frame import FRAME, STRIP_HEIGHT
from digitrec.inference import reader
from digitrec.training.line import collate, sample, train_line


def test_training_examples_are_strips_of_the_field_and_its_digits():
    x, y = data.load_mnist("train")
    rng = np.random.default_rng(0)
    batch = [sample(x[:500], y[:500], rng) for _ in range(8)]
    for strip, target in batch:
        assert strip.shape[0] == STRIP_HEIGHT and strip.shape[1] % FRAME == 0
        assert 1 <= len(target) <= 10 and all(1 <= t <= 10 for t in target)
        assert strip.max() > 0.5
    xb, lengths, targets, target_lengths = collate(batch)
    assert xb.shape[:3] == (8, 1, STRIP_HEIGHT) and (lengths * FRAME <= xb.shape[3]).all()
    assert targets.numel() == target_lengths.sum()


def test_restyled_share_draws_fields_in_other_hands():
    x, y = data.load_mnist("train")

    def ink(share):
        rng = np.random.default_rng(0)
        return np.mean([sample(x[:500], y[:500], rng, restyled=share)[0].mean() for _ in range(30)])

    # strips are scaled to the digits' height, so thicker strokes mean more ink: other hands write thicker
    # on average (half of them with a broad pen)
    assert ink(1.0) > 1.1 * ink(0.0)


@pytest.fixture(scope="module")
def tiny_line_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("line")
    metrics = train_line(out, steps=40, batch_size=16, workers=0, progress=False, eval_fields=20)
    return out / "line.pt", metrics


@pytest.mark.slow
def test_training_lowers_the_ctc_loss_and_writes_a_loadable_model(tiny_line_model):
    path, metrics = tiny_line_model
    # an untrained model's CTC loss on these fields is about 25; a few dozen steps halve it
    assert metrics["final_loss"] < 0.6 * metrics["first_loss"]
    model = reader.load_line_model(str(path))
    reading = reader.read_number(digitrec.load(), np.full((60, 200), 255, np.uint8), model)
    assert reading.text == ""


@pytest.mark.slow
def test_fine_tuning_starts_from_the_given_model(tiny_line_model, tmp_path):
    path, metrics = tiny_line_model
    tuned = train_line(tmp_path, steps=12, batch_size=16, workers=0, progress=False, eval_fields=10,
                       restyled=0.5, init=path)
    # a fresh model starts near a CTC loss of 25; one that has already learnt starts well below its first loss
    assert tuned["first_loss"] < 0.8 * metrics["first_loss"]
    assert 0 <= tuned["held_out_restyled_field_accuracy"] <= 1


@pytest.mark.slow
def test_line_model_exports_to_onnx_runtime_with_the_same_reading(tiny_line_model, tmp_path):
    path, _ = tiny_line_model
    r = subprocess.run([sys.executable, "-m", "digitrec.apps.cli", "export", "--model", str(path), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "line model" in r.stdout and "same frame class on 100.00%" in r.stdout
    onnx_path = tmp_path / "line.onnx"
    onnx_model, torch_model = reader.load_line_model(str(onnx_path)), reader.load_line_model(str(path))
    strip = np.random.default_rng(0).random((1, 1, STRIP_HEIGHT, 98), np.float32)  # any even width
    assert np.allclose(onnx_model.logits(strip), torch_model.logits(strip), atol=1e-3)


def test_module_help_explains_itself():
    r = subprocess.run([sys.executable, "-m", "digitrec.training.line", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--time-limit" in r.stdout and "CTC" in r.stdout

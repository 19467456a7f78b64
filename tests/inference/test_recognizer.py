import numpy as np
import pytest
from PIL import Image

import digitrec
from digitrec import InputError, Prediction


@pytest.fixture(scope="module")
def bundled():
    return digitrec.load()


@pytest.mark.parametrize("mode", ["dark", "light", "rgba"])
@pytest.mark.parametrize("digit", [0, 1, 7])
def test_reads_digits_drawn_on_a_280px_canvas(bundled, drawn_png, digit, mode):
    p = bundled.predict(drawn_png(digit, mode))
    assert p.digit == digit and p.confidence > 0.5


def test_reads_mnist_test_digits(bundled, mnist_test_small):
    x, y = mnist_test_small
    preds = bundled.predict_batch(x)
    assert np.mean([p.digit == t for p, t in zip(preds, y)]) > 0.98


def test_batch_and_single_predictions_agree(bundled, mnist_test_small):
    x = mnist_test_small[0][:8]
    batch = bundled.predict_batch(x)
    for img, p in zip(x, batch):
        q = bundled.predict(img)
        assert q.digit == p.digit and q.confidence == pytest.approx(p.confidence, abs=1e-5)


def test_accepts_paths_pil_images_and_arrays(bundled, drawn_png):
    path = drawn_png(7)
    img = Image.open(path)
    assert {bundled.predict(path).digit, bundled.predict(img).digit, bundled.predict(np.asarray(img)).digit,
            bundled.predict(path.read_bytes()).digit} == {7}


def test_blank_image_has_no_digit(bundled):
    p = bundled.predict(np.full((280, 280), 255, np.uint8))
    assert p.digit is None and p.confidence == 0.0


def test_prediction_probabilities_are_a_distribution(bundled, drawn_png):
    p = bundled.predict(drawn_png(1))
    assert len(p.probabilities) == 10 and sum(p.probabilities) == pytest.approx(1, abs=1e-4)
    assert p.top3[0] == (p.digit, p.confidence)
    assert [d for d, _ in p.top3] == list(np.argsort(p.probabilities)[::-1][:3])


def test_prediction_serialises_to_json_ready_dict(bundled, drawn_png):
    d = bundled.predict(drawn_png(7)).to_dict()
    assert d["digit"] == 7 and len(d["top3"]) == 3 and isinstance(d["probabilities"], list)


def test_empty_batch_gives_no_predictions(bundled):
    assert bundled.predict_batch([]) == []


def test_loading_a_missing_model_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such model file"):
        digitrec.load(tmp_path / "absent.pt")


def test_any_checkpoint_can_be_loaded(small_model, drawn_png):
    r = digitrec.load(small_model)
    assert r.checkpoint.checksum != digitrec.load().checkpoint.checksum  # not the bundled model
    p = r.predict(drawn_png(1))
    assert isinstance(p, Prediction) and p.digit == 1


def test_batched_preprocessing_costs_no_accuracy_on_mnist(small_model, mnist_test_small):
    x, y = mnist_test_small
    r = digitrec.load(small_model, reject_threshold=float("-inf"))  # preprocessing alone, no "not a digit"
    via_predict_batch = np.mean([p.digit == t for p, t in zip(r.predict_batch(x), y)])
    raw_arrays = np.mean(r.probabilities(x / 255.0).argmax(1) == y)
    assert via_predict_batch >= raw_arrays - 0.002  # at most one digit of the 500

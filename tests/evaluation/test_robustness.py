"""The robustness table and the before/after pairs the report shows."""
import numpy as np
import pytest

import digitrec
from digitrec import data
from digitrec.data.render import non_digits as synthetic_nd
from digitrec.evaluation.corruptions import CORRUPTIONS
from digitrec.evaluation.robustness import FASHION_MNIST, not_a_digit_sets, preprocessing_examples, robustness


@pytest.fixture(scope="module")
def recognizer(small_model):
    return digitrec.load(small_model)


def test_robustness_table_has_each_corruption_and_non_digit_set(recognizer):
    x, y = data.load_mnist("test")
    blank_and_noise = np.stack([np.zeros((28, 28), np.uint8), np.random.default_rng(0).integers(0, 255, (28, 28))])
    t = robustness(recognizer, x[:60], y[:60], {"noise": blank_and_noise.astype(np.uint8)},
                   corruptions=["inverted", "rotate"])
    assert set(t["corruptions"]) == {"inverted", "rotate"}
    assert 0 <= t["mean_corruption_accuracy"] <= 1 and t["clean"]["accuracy"] > 0.5
    assert t["not_a_digit"]["noise"]["n"] == 2 and 0 <= t["not_a_digit"]["noise"]["auroc"] <= 1


def test_preprocessing_examples_pair_each_condition_with_its_result(recognizer):
    x, _ = data.load_mnist("test")
    pairs = preprocessing_examples(recognizer, x[:1])
    names = [p["condition"] for p in pairs]
    assert names[0] == "clean" and set(CORRUPTIONS) <= set(names)
    assert all(p["after"] is None or p["after"].shape == (28, 28) for p in pairs)
    assert any(p["before"].shape == (112, 112) for p in pairs)  # the photo-like ones


def test_not_a_digit_sets_hold_n_mnist_style_images_of_each_kind():
    sets = not_a_digit_sets(12)
    kinds = [f"synthetic {kind}" for kind in synthetic_nd.NON_DIGIT_KINDS]
    assert list(sets) == (["fashion-mnist"] if FASHION_MNIST.exists() else []) + kinds
    assert all(s.shape == (12, 28, 28) and s.dtype == np.uint8 for s in sets.values())
    assert all(np.array_equal(a, b) for a, b in zip(sets.values(), not_a_digit_sets(12).values()))  # seeded

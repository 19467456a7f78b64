import numpy as np
import pytest
from sklearn import metrics as skm

import digitrec
from digitrec.evaluation.metrics import evaluate, expected_calibration_error, scores


def _random_probs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    logits = rng.normal(size=(n, 10))
    logits[np.arange(n), y] += 2.5
    p = np.exp(logits)
    return y, p / p.sum(1, keepdims=True)


def test_scores_match_scikit_learn_computed_independently():
    y, p = _random_probs()
    s = scores(y, p)
    pred = p.argmax(1)
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert s["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert s["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    assert s["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert s["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(np.eye(10)[y], p)))
    assert np.array_equal(s["confusion"], skm.confusion_matrix(y, pred))


def test_rejected_images_count_as_errors():
    y, p = _random_probs()
    pred = p.argmax(1)
    pred[:10] = -1
    s = scores(y, p, pred)
    assert s["rejected"] == 10 and s["accuracy"] == pytest.approx(np.mean(pred == y))


def test_calibration_error_is_zero_when_confidence_matches_accuracy():
    y = np.array([0, 0, 0, 1])
    p = np.tile([0.75, 0.25] + [0.0] * 8, (4, 1))
    assert expected_calibration_error(y, p) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.eye(10)[[1, 1, 1, 1]]) == pytest.approx(0.75)


def test_per_class_table_has_every_digit():
    y, p = _random_probs()
    assert [c["digit"] for c in scores(y, p)["per_class"]] == list(range(10))


def test_evaluate_runs_the_full_recognizer_path(mnist_test_small):
    x, y = mnist_test_small
    s = evaluate(digitrec.load(), x[:200], y[:200])
    assert s["n"] == 200 and s["accuracy"] > 0.97

"""Metrics of a model on a split: pure functions returning dicts (the one source of the numbers shown anywhere)."""
from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

__all__ = ["scores", "evaluate", "expected_calibration_error"]


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy over ``bins`` equal-width bins."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def scores(y: np.ndarray, probs: np.ndarray, predicted: np.ndarray | None = None) -> dict:
    """Return accuracy, macro-F1, OvR ROC-AUC, probability RMSE, log-loss, ECE, per-class table and confusion matrix.

    ``predicted`` (digits, -1 for "no digit") defaults to the argmax of ``probs``; a rejected image counts as wrong.
    """
    y = np.asarray(y)
    probs = np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(1) if predicted is None else np.asarray(predicted)
    labels = list(range(10))
    onehot = np.eye(10)[y]
    p, r, f, support = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    return {
        "n": int(len(y)),
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f.mean()),
        "roc_auc_ovr": float(skm.roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=labels)),
        "rmse": float(np.sqrt(((probs - onehot) ** 2).mean())),
        "log_loss": float(skm.log_loss(y, np.clip(probs, 1e-12, 1), labels=labels)),
        "ece": expected_calibration_error(y, probs),
        "rejected": int((pred < 0).sum()),
        "per_class": [{"digit": d, "precision": float(p[d]), "recall": float(r[d]), "f1": float(f[d]),
                       "support": int(support[d])} for d in labels],
        "confusion": skm.confusion_matrix(y, pred, labels=labels).tolist(),
    }


def evaluate(recognizer, x: np.ndarray, y: np.ndarray) -> dict:
    """Score ``recognizer`` on images ``x`` with labels ``y`` through its full path (preprocessing included)."""
    preds = recognizer.predict_batch(x)
    probs = np.array([p.probabilities for p in preds])
    predicted = np.array([-1 if p.digit is None else p.digit for p in preds])
    return scores(y, probs, predicted)

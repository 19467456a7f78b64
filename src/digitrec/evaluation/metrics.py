"""Metrics of a model on a split: pure functions returning dicts (the one source of the numbers shown anywhere)."""
from __future__ import annotations

import os
import time

import numpy as np
from sklearn import metrics as skm
from tqdm import tqdm

__all__ = ["scores", "evaluate", "expected_calibration_error", "predictions", "reliability", "roc_curves",
           "top_confusions", "confident_errors", "throughput"]


def predictions(recognizer, x: np.ndarray, progress: bool = False, chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(probabilities [N,10] float64, predicted digits [N])`` of ``recognizer`` on images ``x``.

    The full path (preprocessing included); a digit of -1 means "no digit" (blank or rejected).
    """
    probs, predicted = [], []
    for i in tqdm(range(0, len(x), chunk), desc="predicting", unit="chunk", disable=not progress, leave=False):
        preds = recognizer.predict_batch(x[i:i + chunk])
        probs += [p.probabilities for p in preds]
        predicted += [-1 if p.digit is None else p.digit for p in preds]
    return np.array(probs, dtype=np.float64).reshape(-1, 10), np.array(predicted, dtype=np.int64)


def reliability(y: np.ndarray, probs: np.ndarray, bins: int = 15) -> dict:
    """Reliability-diagram bins over ``bins`` equal-width confidence bins: edges, count, mean confidence, accuracy.

    Confidence and accuracy are ``None`` for an empty bin.
    """
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    count, confidence, accuracy = [], [], []
    for b in range(bins):
        sel = which == b
        count.append(int(sel.sum()))
        confidence.append(float(conf[sel].mean()) if sel.any() else None)
        accuracy.append(float(correct[sel].mean()) if sel.any() else None)
    return {"edges": edges.tolist(), "count": count, "confidence": confidence, "accuracy": accuracy}


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy over ``bins`` equal-width bins."""
    r = reliability(y, probs, bins)
    n = max(sum(r["count"]), 1)
    return float(sum(c / n * abs(a - m) for c, a, m in zip(r["count"], r["accuracy"], r["confidence"]) if c))


def roc_curves(y: np.ndarray, probs: np.ndarray) -> list[dict]:
    """One-vs-rest ROC curve of each digit: ``{"digit", "fpr", "tpr", "auc"}``; the mean of the AUCs is the macro AUC."""
    out = []
    for d in range(10):
        fpr, tpr, _ = skm.roc_curve(y == d, probs[:, d])
        out.append({"digit": d, "fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(skm.auc(fpr, tpr))})
    return out


def top_confusions(confusion, k: int = 10) -> list[dict]:
    """The ``k`` most frequent mistakes ``{"true", "predicted", "count"}`` from a confusion matrix, most frequent first."""
    c = np.array(confusion)
    off = c.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    return [{"true": int(t), "predicted": int(p), "count": int(off[t, p])}
            for t, p in zip(*np.unravel_index(order, off.shape)) if off[t, p] > 0]


def confident_errors(y: np.ndarray, probs: np.ndarray, predicted: np.ndarray, k: int = 24) -> np.ndarray:
    """Indices of the ``k`` wrong predictions made with the highest confidence, most confident first.

    Rejected images ("no digit") are not confident mistakes and are left out.
    """
    wrong = np.flatnonzero((predicted != y) & (predicted >= 0))
    conf = probs[wrong, predicted[wrong]]
    return wrong[np.argsort(-conf, kind="stable")][:k]


def throughput(recognizer, x: np.ndarray, repeats: int = 3, min_seconds: float = 1.0) -> dict:
    """Images per second of ``recognizer`` on images ``x``: the model alone, and end to end (preprocessing + model).

    The model is timed on the preprocessed batch, best of at least ``repeats`` runs and of ``min_seconds``, so
    that a busy machine's hiccups count less; ``load_average`` (1 minute, where the OS has one) is the evidence
    of how busy it was.
    """
    t0 = time.perf_counter()
    x28, found = recognizer.preprocess(x)
    t_pre = time.perf_counter() - t0
    x28 = x28[found]
    t_model, runs, start = float("inf"), 0, time.perf_counter()
    while runs < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        recognizer.probabilities(x28)
        t_model = min(t_model, time.perf_counter() - t0)
        runs += 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"images": int(len(x)), "model": len(x28) / t_model, "end_to_end": len(x) / (t_pre + t_model),
            "load_average": load}


def scores(y: np.ndarray, probs: np.ndarray, predicted: np.ndarray | None = None) -> dict:
    """Return accuracy, macro-F1, OvR ROC-AUC, probability RMSE, log-loss, ECE, per-class table and confusion matrix.

    ``predicted`` (digits, -1 for "no digit") defaults to the argmax of ``probs``; a rejected image counts as wrong.
    """
    y = np.asarray(y)
    probs = np.asarray(probs, dtype=np.float64)
    # float32 softmax outputs miss 1 by ~1e-7, more than scikit-learn's log-loss check tolerates
    probs = probs / probs.sum(1, keepdims=True)
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
    probs, predicted = predictions(recognizer, x)
    return scores(y, probs, predicted)

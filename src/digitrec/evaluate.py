"""Metrics of a model on a split: pure functions returning dicts (the one source of the numbers shown anywhere)."""
from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

__all__ = ["scores", "evaluate", "expected_calibration_error", "robustness", "preprocessing_examples"]


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


def _scored(recognizer, images) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Preprocess ``images`` as ``Recognizer.predict_batch`` does; return digits (-1: none), probabilities
    and digit scores (-inf for blanks, which are never digits)."""
    from .preprocess import preprocess

    x28 = [preprocess(a) for a in images]
    found = [i for i, a in enumerate(x28) if a is not None]
    probs = np.full((len(x28), 10), 0.1)
    score = np.full(len(x28), -np.inf)
    if found:
        probs[found], score[found] = recognizer.scores(np.stack([x28[i] for i in found]))
    digits = np.where(score >= recognizer.reject_threshold, probs.argmax(1), -1)
    return digits, probs, score


def robustness(recognizer, x: np.ndarray, y: np.ndarray, non_digits: dict | None = None,
               corruptions=None, seed: int = 0) -> dict:
    """Accuracy on MNIST-C-style corruptions of ``x`` and "not a digit" rejection; the robustness table.

    Returns ``clean`` and ``corruptions[name]`` (accuracy, share rejected), ``mean_corruption_accuracy``,
    and for each named set of non-digit images in ``non_digits`` the share rejected and the AUROC of the
    digit score separating clean ``x`` from it. Rejected or blank images count as wrong.
    """
    from sklearn.metrics import roc_auc_score

    from .augment import CORRUPTIONS, corrupt

    digits, _, clean_score = _scored(recognizer, x)
    out = {"n": int(len(y)), "reject_threshold": recognizer.reject_threshold,
           "clean": {"accuracy": float((digits == y).mean()), "rejected": float((digits < 0).mean())},
           "corruptions": {}}
    for name in corruptions or CORRUPTIONS:
        d, _, _ = _scored(recognizer, corrupt(x, name, seed))
        out["corruptions"][name] = {"accuracy": float((d == y).mean()), "rejected": float((d < 0).mean())}
    out["mean_corruption_accuracy"] = float(np.mean([c["accuracy"] for c in out["corruptions"].values()]))
    out["not_a_digit"] = {}
    for name, images in (non_digits or {}).items():
        d, _, s = _scored(recognizer, images)
        both = np.r_[clean_score, s]
        both[~np.isfinite(both)] = np.nanmin(both[np.isfinite(both)]) - 1  # blanks: below every real score
        auroc = roc_auc_score(np.r_[np.ones(len(clean_score)), np.zeros(len(s))], both)
        out["not_a_digit"][name] = {"n": int(len(images)), "rejected": float((d < 0).mean()), "auroc": float(auroc)}
    return out


def preprocessing_examples(images: np.ndarray, seed: int = 0) -> list[dict]:
    """Before/after pairs for the report: each corruption of ``images`` and what preprocessing makes of it.

    Returns dicts ``{"condition", "before" (uint8 HxW), "after" (float 28x28 in [0, 1], or None: blank)}``.
    """
    from .augment import CORRUPTIONS, corrupt, on_paper
    from .preprocess import preprocess

    conditions = {"clean": np.asarray(images, np.uint8),
                  **{name: corrupt(images, name, seed) for name in CORRUPTIONS},
                  **{f"photo: {kind}": on_paper(images, kind, seed) for kind in ("shadow", "ruled", "box", "specks")}}
    return [{"condition": name, "before": b, "after": preprocess(b)} for name, batch in conditions.items() for b in batch]

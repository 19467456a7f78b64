"""Robustness of a model: MNIST-C-style corruptions and "not a digit" sets, scored through the full
preprocessing; and the before/after pairs the report shows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import metrics as skm
from tqdm import tqdm

from ..data import read_idx
from ..data.render.non_digits import NON_DIGIT_KINDS, non_digits
from ..data.render.paper import PAPER_KINDS, on_paper
from ..data.render.seeds import EVALUATION_SEED
from ..data.transforms import to_uint8
from .corruptions import CORRUPTIONS, corrupt

__all__ = ["robustness", "not_a_digit_sets", "preprocessing_examples", "FASHION_MNIST"]

# Debian's dataset-fashion-mnist: clothing, the classic "not a digit" test set (left out where not installed)
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def _scored(recognizer, images) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Preprocess ``images`` as ``Recognizer.predict_batch`` does; return digits (-1: none), probabilities
    and digit scores (-inf for blanks, which are never digits)."""
    x28, found = recognizer.preprocess(images)
    found = np.flatnonzero(found)
    probs = np.full((len(x28), 10), 0.1)
    score = np.full(len(x28), -np.inf)
    if len(found):
        probs[found], score[found] = recognizer.scores(x28[found])
    digits = np.where(score >= recognizer.reject_threshold, probs.argmax(1), -1)
    return digits, probs, score


def robustness(recognizer, x: np.ndarray, y: np.ndarray, non_digits: dict | None = None,
               corruptions=None, seed: int = 0, progress: bool = False) -> dict:
    """Accuracy on MNIST-C-style corruptions of ``x`` and "not a digit" rejection; the robustness table.

    Returns ``clean`` and ``corruptions[name]`` (accuracy, share rejected), ``mean_corruption_accuracy``,
    and for each named set of non-digit images in ``non_digits`` the share rejected and the AUROC of the
    digit score separating clean ``x`` from it. Rejected or blank images count as wrong.
    """
    corruptions = list(corruptions or CORRUPTIONS)
    non_digits = non_digits or {}
    steps = tqdm(total=1 + len(corruptions) + len(non_digits), desc="robustness", unit="set", disable=not progress,
                 leave=False)
    digits, _, clean_score = _scored(recognizer, x)
    steps.update()
    out = {"n": int(len(y)), "reject_threshold": recognizer.reject_threshold,
           "clean": {"accuracy": float((digits == y).mean()), "rejected": float((digits < 0).mean())},
           "corruptions": {}}
    for name in corruptions:
        d, _, _ = _scored(recognizer, corrupt(x, name, seed))
        out["corruptions"][name] = {"accuracy": float((d == y).mean()), "rejected": float((d < 0).mean())}
        steps.update()
    out["mean_corruption_accuracy"] = float(np.mean([c["accuracy"] for c in out["corruptions"].values()]))
    out["not_a_digit"] = {}
    for name, images in non_digits.items():
        d, _, s = _scored(recognizer, images)
        steps.update()
        both = np.r_[clean_score, s]
        both[~np.isfinite(both)] = np.nanmin(both[np.isfinite(both)]) - 1  # blanks: below every real score
        auroc = skm.roc_auc_score(np.r_[np.ones(len(clean_score)), np.zeros(len(s))], both)
        out["not_a_digit"][name] = {"n": int(len(images)), "rejected": float((d < 0).mean()), "auroc": float(auroc)}
    steps.close()
    return out


def not_a_digit_sets(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The non-digit sets of the robustness table, ``n`` uint8 28x28 images each, ink bright on 0 as in MNIST.

    Fashion-MNIST test (when ``FASHION_MNIST`` is installed) and each of ``data.render.non_digits.NON_DIGIT_KINDS``, letters
    drawn in other fonts than training uses, so that measuring does not replay training.
    """
    sets = {}
    if FASHION_MNIST.exists():
        sets["fashion-mnist"] = read_idx(FASHION_MNIST)[:n]
    # drawn as one set in order, so each kind's pictures are those of one generator run through the kinds
    every = to_uint8(non_digits(n * len(NON_DIGIT_KINDS), EVALUATION_SEED + seed, NON_DIGIT_KINDS, "eval", shuffle=False)[:, 0])
    for i, kind in enumerate(NON_DIGIT_KINDS):
        sets[f"synthetic {kind}"] = every[i * n:(i + 1) * n]
    return sets


def preprocessing_examples(recognizer, images: np.ndarray, seed: int = 0) -> list[dict]:
    """Before/after pairs for the report: each corruption of ``images`` and what ``recognizer`` reads of it
    (the reading ``predict`` takes).

    Returns dicts ``{"condition", "before" (uint8 HxW), "after" (float 28x28 in [0, 1], or None: blank)}``.
    """
    conditions = {"clean": np.asarray(images, np.uint8),
                  **{name: corrupt(images, name, seed) for name in CORRUPTIONS},
                  **{f"photo: {kind}": on_paper(images, kind, seed) for kind in PAPER_KINDS}}
    pairs = [(name, b) for name, batch in conditions.items() for b in batch]
    x28, found = recognizer.preprocess([b for _, b in pairs])
    return [{"condition": name, "before": b, "after": x if f else None} for (name, b), x, f in zip(pairs, x28, found)]

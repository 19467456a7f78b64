"""Fit a model's ``ReadPolicy`` on what it will be shown: held-out MNIST *training* digits rendered into every
realistic context (``data.render.contexts``) and pictures with no digit (``data.render.non_digits``,
Fashion-MNIST *train* where installed), all read through ``Recognizer.read_batch``, the path users get.

What is fitted (the readings themselves do not depend on these, so one pass reads everything):
- ``reject_score``: the digit score under which at most ``reject_right`` of the right digit reads fall; the
  pictures with no digit under it are "not a digit".
- ``unsure_score``, ``unsure_confidence`` and ``doubted_confidence`` (the confidence a reading the light path
  doubted must reach): of the triples that flag at most ``flag_right`` of the right reads (the flags kept as
  they are, an overruled reading's and the second opinion's, counted in), the one that flags the most
  misreads and accepted non-digits.
- ``light_accept``: the digit score that the light path's reading of ``light_pass`` of the clean renders
  reaches, so that every model sends the same share of clean digits past the ink stage (a model's scores have
  a scale of their own: the logistic regression's run far higher than the CNN's).
The shapes' margins and ``locate_least`` are kept as they are.

    digitrec calibrate MODEL [--out PATH] [--n 200]
"""
from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data import load_mnist, read_idx
from ..data.render.contexts import CONTEXTS
from ..data.render.non_digits import NON_DIGITS
from ..data.render.seeds import CALIBRATION_SEED
from ..imaging import light_x28
from ..inference.policy import ReadPolicy

__all__ = ["fit_policy", "held_out_digits", "held_out_renders", "FASHION_MNIST_TRAIN"]

FASHION_MNIST_TRAIN = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
HOLDOUT = 5000                    # the training digits training holds out (``Preset.holdout``)
CHUNK = 100                       # pictures read at once: batched, and few 1600x1200 photos in memory
LARGE_SHARE = 0.2                 # photo contexts are read this share as often as the others (they are slow)
CONFIDENCES = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)  # candidates of unsure_confidence, and
QUANTILES = np.linspace(0, 0.2, 41)   # ... of both, these quantiles of the right reads' scores and confidences


def held_out_digits() -> tuple[np.ndarray, np.ndarray]:
    """The last ``HOLDOUT`` MNIST training digits and their labels: those training holds out."""
    x, y = load_mnist("train")
    return x[-HOLDOUT:], y[-HOLDOUT:]


def held_out_renders(x: np.ndarray, y: np.ndarray, n: int, seed: int = CALIBRATION_SEED):
    """``(name, pictures, labels)`` chunks to fit on: the digits ``x`` (``held_out_digits``) drawn into every
    context, ``n`` each (fewer for photos), then non-digits labelled -1."""
    rng = np.random.default_rng(seed)
    for name, context in CONTEXTS.items():
        k = max(1, round(n * LARGE_SHARE)) if context.large else n
        pick = rng.choice(len(x), k, replace=False)
        for start in range(0, k, CHUNK):
            yield name, context.render(x[pick[start:start + CHUNK]], seed, start), y[pick[start:start + CHUNK]]
    for name, maker in NON_DIGITS.items():
        k = max(1, round(n * LARGE_SHARE)) if maker.large else n
        for start in range(0, k, CHUNK):
            m = min(CHUNK, k - start)
            yield name, maker.render(m, seed, start), np.full(m, -1)
    if not FASHION_MNIST_TRAIN.exists():  # not installed: the other non-digits still fit the policy
        return
    fashion = read_idx(FASHION_MNIST_TRAIN)
    yield "fashion_mnist_train", list(fashion[rng.choice(len(fashion), n, replace=False)]), np.full(n, -1)


def _read_all(recognizer, x: np.ndarray, y: np.ndarray, n: int, seed: int, progress: bool) -> dict:
    """Each rendered picture's label, what was read (digit, digit score, confidence) and the flags the policy
    keeps as they are (an overruled or doubted reading's, the second opinion's), as arrays."""
    policy = recognizer.policy
    cols = {k: [] for k in ("label", "digit", "score", "confidence", "kept_flag", "doubted", "source")}
    for name, pictures, labels in tqdm(held_out_renders(x, y, n, seed), desc="reading renders", unit="chunk",
                                       disable=not progress):
        r = recognizer.read_batch(pictures)
        probs = r.probs
        conf = probs.max(1)
        kept = r.overruled.copy()
        if recognizer.second_opinion is not None:
            # flags as judged with unsure thresholds that flag nothing: what the second opinion adds alone
            loose = replace(policy, unsure_score=-np.inf, unsure_confidence=0.0, reject_score=-np.inf)
            kept |= np.array([p.unsure for p in recognizer.judge(r, loose)], bool)
        cols["label"].append(np.asarray(labels))
        cols["digit"].append(np.where(r.found, probs.argmax(1), -1))
        cols["score"].append(np.where(r.found, r.score, -np.inf))
        cols["confidence"].append(np.where(r.found, conf, 0.0))
        cols["kept_flag"].append(kept & r.found)
        cols["doubted"].append(r.found & (r.score < policy.light_accept))
        cols["source"].append(np.full(len(labels), name, dtype=object))
    return {k: np.concatenate(v) for k, v in cols.items()}


def _flag_counts(t: dict, reject: float, score: float, confidence: float, doubted: float) -> dict:
    """What a policy with these values does to the rendered pictures: shares of right reads doubted (flagged
    or rejected), of misreads caught, of non-digits rejected or flagged."""
    digit = t["label"] >= 0
    found = t["digit"] >= 0
    right = digit & found & (t["digit"] == t["label"])
    wrong = digit & ~right
    rejected = ~found | (t["score"] < reject)
    flagged = t["kept_flag"] | (t["score"] < score) | (t["confidence"] < confidence) | \
        (t["doubted"] & (t["confidence"] < doubted))
    doubted = rejected | flagged
    return {"right_doubted": float(doubted[right].mean()) if right.any() else 0.0,
            "right_rejected": float(rejected[right].mean()) if right.any() else 0.0,
            "misreads_caught": float(doubted[wrong].mean()) if wrong.any() else 1.0,
            "non_digits_caught": float(doubted[~digit].mean()) if (~digit).any() else 1.0,
            "non_digits_rejected": float(rejected[~digit].mean()) if (~digit).any() else 1.0}


def _light_accept(recognizer, x: np.ndarray, n: int, seed: int, light_pass: float) -> float:
    """The digit score the light path's reading of ``light_pass`` of ``n`` of the clean digits ``x`` reaches."""
    pick = np.random.default_rng(seed).choice(len(x), n, replace=False)
    x28, found = light_x28([(a.astype(np.float32) / 255, True) for a in x[pick]])
    score = recognizer.scores(x28[found])[1]
    return float(np.quantile(score, 1 - light_pass)) if score.size else recognizer.policy.light_accept


def fit_policy(recognizer, n: int = 200, seed: int = CALIBRATION_SEED, flag_right: float = 0.02,
               reject_right: float = 0.005, light_pass: float = 0.93, progress: bool = True) -> ReadPolicy:
    """The recognizer's policy with ``light_accept``, ``reject_score``, ``unsure_score`` and ``unsure_confidence``
    fitted on held-out training renders (``n`` per context), and ``fitted`` saying on what and with which
    figures. The recognizer reads by the fitted ``light_accept`` from then on."""
    x, y = held_out_digits()
    recognizer.policy = replace(recognizer.policy, light_accept=_light_accept(recognizer, x, n, seed, light_pass))
    t = _read_all(recognizer, x, y, n, seed, progress)
    right = (t["label"] >= 0) & (t["digit"] == t["label"])
    scores = t["score"][right & np.isfinite(t["score"])]
    reject = float(np.quantile(scores, reject_right)) if scores.size else -np.inf
    best, best_key = None, None
    confidences = sorted(set(CONFIDENCES) | set(np.quantile(t["confidence"][right], QUANTILES).tolist())) \
        if right.any() else CONFIDENCES
    for s, c, d in itertools.product(np.unique(np.quantile(scores, QUANTILES)) if scores.size else [-np.inf],
                                     confidences, confidences):
        if d < c:  # a doubted reading is held to at least the confidence every reading is
            continue
        f = _flag_counts(t, reject, float(s), c, d)
        if f["right_doubted"] > flag_right:
            continue
        key = (f["misreads_caught"] + f["non_digits_caught"], -f["right_doubted"])
        if best_key is None or key > best_key:
            best, best_key = (float(s), c, d, f), key
    if best is None:  # even rejecting alone doubts more right reads than allowed: flag by the kept rules only
        best = (-np.inf, 0.0, 0.0, _flag_counts(t, reject, -np.inf, 0.0, 0.0))
    s, c, d, figures = best
    fitted = {"by": "digitrec calibrate", "renders_per_context": n, "seed": seed, "pictures": int(len(t["label"])),
              "targets": {"right_doubted_at_most": flag_right, "right_rejected_at_most": reject_right,
                          "clean_past_the_ink_stage": light_pass},
              **{k: round(v, 4) for k, v in figures.items()}}
    return replace(recognizer.policy, reject_score=reject, unsure_score=s, unsure_confidence=c, doubted_confidence=d,
                                         fitted=fitted)

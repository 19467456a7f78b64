"""Cues that might flag the non-digits the recognizer still reads as sure digits, each held to the same budget.

A test bench for the open problem of ``benchmarks/wild.py``'s scribbles: on the tuning split only (MNIST
test's even half, its contexts, non-digits drawn with seeds 1-3) it reads every picture, then for each cue
sets the threshold at which the cue flags ``--budget`` (default 0.2 %) more of MNIST's right reads than the
recognizer flags now, and prints what that threshold adds: scribbles and x marks rejected or flagged, per
seed; misreads caught; and the contexts whose right reads it flags most. A cue is a number per picture,
computed on what the model reads (the preprocessed 28x28), higher meaning "less like a digit":

- ``mahalanobis``: distance of the model's penultimate features to the nearest digit class (a Gaussian per
  class with one shared covariance, fitted on MNIST training digits; Lee et al. 2018);
- ``logreg``: minus the log-probability that the bundled logistic regression gives the CNN's digit;
- ``path_length``: length of the strokes' skeleton over the ink's height (a scribble is a long pen path);
- ``second_opinion``: minus the log-probability that the bundled second network (``weights/second.pt``) gives
  the CNN's digit, for readings under ``ReadPolicy.second_opinion_score`` (the others: no cue). The recognizer flags with
  it (``inference.recognizer``); the last line prints what its fixed threshold ``ReadPolicy.second_opinion_agree`` does.
  ``second_opinion_everywhere``: the same on every sure reading, whatever its score.

"Now" is the recognizer without its second opinion, so that each cue is weighed against the same baseline.

    python benchmarks/non_digit_cues.py [--n 300] [--n-large 100] [--n-fit 20000] [--budget 0.002]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from _machine import header

import digitrec
from digitrec import checkpoint, data
from digitrec.data.render.contexts import CONTEXTS
from digitrec.data.render.draw import skeleton
from digitrec.data.render.non_digits import NON_DIGITS
from digitrec.data.render.seeds import split
from digitrec.inference import Recognizer, bundled_model_path
from digitrec.inference.policy import HAND_SET
from digitrec.models import from_checkpoint

SEEDS = (1, 2, 3)   # the tuning seeds of the non-digit sets (benchmarks/wild.py reports seed 0)
CHUNK = 100


def readings(r, pictures: list) -> dict:
    """What the recognizer answers, and the 28x28 it read, for the pictures it is sure of (two calls: no public
    one gives both, and reading twice would lose what the reading overruled)."""
    preds = []
    for i in range(0, len(pictures), CHUNK):
        preds += r.predict_batch(pictures[i:i + CHUNK])
    digit = np.array([-1 if p.digit is None else p.digit for p in preds])
    sure = np.array([p.digit is not None and not p.unsure for p in preds])
    x28 = np.zeros((len(preds), 28, 28), np.float32)
    idx = np.flatnonzero(sure)
    for i in range(0, len(idx), CHUNK):
        x28[idx[i:i + CHUNK]] = r.preprocess([pictures[j] for j in idx[i:i + CHUNK]])[0]
    return {"digit": digit, "sure": sure, "x28": x28}


@torch.inference_mode()
def features(r, x28: np.ndarray) -> np.ndarray:
    """The CNN's penultimate features (after its global max-pool) of preprocessed pictures."""
    model, mean, std = r.backend.model, r.backend.mean, r.backend.std
    out = [model.head[:2](model.features(((torch.from_numpy(x28[i:i + 512]) - mean) / std)[:, None]))
           for i in range(0, len(x28), 512)]
    return torch.cat(out).numpy() if out else np.zeros((0, 1), np.float32)


def mahalanobis_cue(r, fit_x28: np.ndarray, fit_y: np.ndarray):
    f = features(r, fit_x28)
    means = np.stack([f[fit_y == c].mean(0) for c in range(10)])
    centred = f - means[fit_y]
    precision = np.linalg.pinv(centred.T @ centred / len(f))

    def cue(x28: np.ndarray) -> np.ndarray:
        g = features(r, x28)
        return np.min([np.einsum("ij,jk,ik->i", g - m, precision, g - m) for m in means], axis=0)
    return cue


def logreg_log_probs():
    """The bundled logistic regression's log-probabilities of preprocessed pictures: a second, unrelated reader."""
    ckpt = checkpoint.load(bundled_model_path("torch").with_name("logreg.pt"))
    model, (mean, std) = from_checkpoint(ckpt).eval(), ckpt.norm

    @torch.inference_mode()
    def log_probs(x28: np.ndarray) -> np.ndarray:
        return torch.log_softmax(model((torch.from_numpy(x28)[:, None] - mean) / std), 1).numpy()
    return log_probs


def second_opinion_cue(r, gate: float = HAND_SET.second_opinion_score):
    """Minus the second network's log-probability of the CNN's digit, where the CNN's digit score is under ``gate``."""
    second = r.second_opinion
    t = float(second.checkpoint.temperature)

    def cue(s: dict) -> np.ndarray:
        logits = torch.from_numpy(second.logits(s["x28"])) / t
        digit = np.clip(s["digit"], 0, 9)
        doubt = -torch.log_softmax(logits, 1).numpy()[np.arange(len(digit)), digit]
        return np.where(r.scores(s["x28"])[1] < gate, doubt, -np.inf)
    return cue


def path_length_cue(x28: np.ndarray) -> np.ndarray:
    m = x28 > 0.35
    rows = m.any(2)
    height = np.where(rows.any(1), rows.shape[1] - rows[:, ::-1].argmax(1) - rows.argmax(1), 1)
    return skeleton(m).sum((1, 2)) / height


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300, help="digits per context, non-digits per set and seed")
    p.add_argument("--n-large", type=int, default=100, help="digits per photo context")
    p.add_argument("--n-fit", type=int, default=20000, help="MNIST training digits the Mahalanobis cue is fitted on")
    p.add_argument("--budget", type=float, default=0.002, help="share of MNIST's right reads a cue may add to the flags")
    a = p.parse_args()
    print(header())
    bundled = digitrec.load()
    r = Recognizer(bundled.backend)
    x, y = split(*data.load_mnist("test"), "tuning")
    sets = {"mnist": (readings(r, x), y)}
    for name, ctx in CONTEXTS.items():
        n = min(a.n_large if ctx.large else a.n, len(x))
        sets[name] = (readings(r, ctx.render(x[:n], 0)), y[:n])
    for name in ("scribble", "x_mark"):
        for seed in SEEDS:
            sets[f"{name} {seed}"] = (readings(r, NON_DIGITS[name].render(a.n, seed)), None)
    xt, yt = data.load_mnist("train")
    fit = r.preprocess(xt[:a.n_fit])[0]
    maha, lr = mahalanobis_cue(r, fit, yt[:a.n_fit]), logreg_log_probs()
    cues = {"mahalanobis": lambda s: maha(s["x28"]),
            "logreg": lambda s: -lr(s["x28"])[np.arange(len(s["digit"])), np.clip(s["digit"], 0, 9)],
            "path_length": lambda s: path_length_cue(s["x28"]),
            "second_opinion": second_opinion_cue(bundled),
            "second_opinion_everywhere": second_opinion_cue(bundled, np.inf)}

    mnist, labels = sets["mnist"]
    right = mnist["digit"] == labels
    print(f"# tuning split, {len(labels)} MNIST digits, {a.n} pictures per context and per non-digit set and seed; "
          f"budget {a.budget:.2%} of MNIST's right reads")
    base = {k: 1 - s["sure"].mean() for k, (s, lab) in sets.items() if lab is None}
    print("now: " + ", ".join(f"{k} {v:.3f}" for k, v in base.items()))
    agree = {k: float((lr(s["x28"][s["sure"]]).argmax(1) == s["digit"][s["sure"]]).mean()) for k, (s, lab) in sets.items()
             if k == "mnist" or k.startswith("scribble")}
    print("logistic regression reads the CNN's digit, of the sure reads: "
          + ", ".join(f"{k} {v:.3f}" for k, v in agree.items()))
    cue_values = {name: {k: np.where(s["sure"], cue(s), -np.inf) for k, (s, _) in sets.items()}
                  for name, cue in cues.items()}
    # each cue at the budget's threshold (None), and the second opinion at the recognizer's own as well
    rows = [(name, name, None) for name in cues]
    rows.append(("second_opinion as bundled", "second_opinion", -np.log(HAND_SET.second_opinion_agree)))
    for name, cue, threshold in rows:
        values = cue_values[cue]
        free = np.sort(values["mnist"][right & mnist["sure"]])[::-1]
        if threshold is None:
            threshold = free[int(a.budget * right.sum())]
        else:
            print(f"# the recognizer's second opinion flags {(free > threshold).sum() / right.sum():.2%} more of "
                  "MNIST's right reads")
        caught = {k: 1 - (s["sure"] & ~(values[k] > threshold)).mean() for k, (s, lab) in sets.items() if lab is None}
        misreads, extra = [0, 0], []
        for k, (s, lab) in sets.items():
            if lab is None or k == "mnist":
                continue
            flagged, wrong = values[k] > threshold, (s["digit"] != lab) & (s["digit"] >= 0)
            misreads[0] += (flagged & wrong).sum()
            misreads[1] += (wrong & s["sure"]).sum()
            extra.append(((flagged & ~wrong).sum() / max(1, (~wrong).sum()), k))
        worst = ", ".join(f"{k} +{v:.1%}" for v, k in sorted(extra, reverse=True)[:3])
        print(f"{name:12s} threshold {threshold:8.3f}: " + ", ".join(f"{k} {v:.3f}" for k, v in caught.items())
              + f"; sure misreads caught {misreads[0]} of {misreads[1]}; most right reads flagged: {worst}")


if __name__ == "__main__":
    main()

"""Recognizer: image -> preprocess -> model -> Prediction, one image or a batch."""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .models import build
from .preprocess import preprocess
from .train import digit_score, load_checkpoint

__all__ = ["Prediction", "Recognizer", "load", "bundled_model_path"]


@dataclass(frozen=True)
class Prediction:
    """What the model read in one image. ``digit`` is None when there is no digit (blank or rejected).

    A rejected image keeps the probabilities and confidence of what it looked most like.
    """
    digit: int | None
    confidence: float
    probabilities: tuple[float, ...]
    box: tuple[int, int, int, int] | None = None  # (x, y, width, height) in the input image, for multi-digit reads

    @property
    def top3(self) -> list[tuple[int, float]]:
        """The three most probable digits with their probabilities, most probable first."""
        order = np.argsort(self.probabilities)[::-1][:3]
        return [(int(d), float(self.probabilities[d])) for d in order]

    def to_dict(self) -> dict:
        """A JSON-ready dict: digit, confidence, probabilities, top3 (and box when set)."""
        d = {"digit": self.digit, "confidence": self.confidence, "probabilities": list(self.probabilities),
             "top3": [{"digit": k, "probability": p} for k, p in self.top3]}
        if self.box is not None:
            d["box"] = list(self.box)
        return d


_BLANK = Prediction(digit=None, confidence=0.0, probabilities=(0.1,) * 10)


def bundled_model_path() -> Path:
    """Path of the default model shipped inside the package."""
    return Path(str(resources.files("digitrec") / "weights" / "default.pt"))


class Recognizer:
    """A trained model with its preprocessing; build one with ``digitrec.load()``.

    ``reject_threshold``: an image whose digit score (minus the energy of the calibrated logits) falls
    below it is "not a digit" (``digit`` None). Default: the checkpoint's, fitted on held-out training
    digits; ``None`` there or ``-inf`` here turns rejection off.
    """

    def __init__(self, checkpoint: dict, batch_size: int = 256, reject_threshold: float | None = None):
        self.checkpoint = checkpoint
        self.model = build(checkpoint["arch"], checkpoint.get("config"))
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.eval()
        self.mean, self.std = checkpoint["norm"]
        self.temperature = float(checkpoint.get("temperature", 1.0))
        self.batch_size = batch_size
        if reject_threshold is None:
            reject_threshold = checkpoint.get("reject_threshold")
        self.reject_threshold = float("-inf") if reject_threshold is None else float(reject_threshold)

    @torch.inference_mode()
    def probabilities(self, x28: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities ``[N,10]`` for preprocessed float arrays ``[N,28,28]`` in [0, 1]."""
        return self.scores(x28)[0]

    @torch.inference_mode()
    def scores(self, x28: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return calibrated probabilities ``[N,10]`` and digit scores ``[N]`` (higher: more like a digit)."""
        probs, score = [], []
        for i in range(0, len(x28), self.batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x28[i:i + self.batch_size], dtype=np.float32)).unsqueeze(1)
            logits = self.model((xb - self.mean) / self.std)
            probs.append(torch.softmax(logits / self.temperature, dim=1).numpy())
            score.append(digit_score(logits, self.temperature).numpy())
        if not probs:
            return np.zeros((0, 10), np.float32), np.zeros(0, np.float32)
        return np.concatenate(probs), np.concatenate(score)

    def predict(self, image) -> Prediction:
        """Read one image (path, bytes, PIL image or array of any size and layout)."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images) -> list[Prediction]:
        """Read many images; preprocessing per image, the model in batches. An ``[N,H,W]`` array is N images."""
        x28 = [preprocess(img) for img in images]
        found = [i for i, a in enumerate(x28) if a is not None]
        probs, score = self.scores(np.stack([x28[i] for i in found])) if found else (np.zeros((0, 10)), np.zeros(0))
        preds = [_BLANK] * len(x28)
        for i, p, s in zip(found, probs, score):
            digit = int(p.argmax())
            preds[i] = Prediction(digit=digit if s >= self.reject_threshold else None, confidence=float(p[digit]),
                                  probabilities=tuple(map(float, p)))
        return preds


def load(path: str | os.PathLike | None = None, reject_threshold: float | None = None) -> Recognizer:
    """Return a Recognizer for the checkpoint at ``path``, or for the bundled default model.

    ``reject_threshold`` overrides the checkpoint's "not a digit" threshold (``float('-inf')``: never reject).
    """
    return Recognizer(load_checkpoint(path if path is not None else bundled_model_path()), reject_threshold=reject_threshold)

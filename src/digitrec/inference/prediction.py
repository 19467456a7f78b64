"""What a reading returns for one digit: ``Prediction``."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Prediction", "BLANK"]


@dataclass(frozen=True)
class Prediction:
    """What the model read in one image. ``digit`` is None when there is no digit (blank or rejected).

    A rejected image keeps the probabilities and confidence of what it looked most like. ``unsure``: the
    reading should be checked by a person (the picture looks little like a digit, or like two).
    """
    digit: int | None
    confidence: float
    probabilities: tuple[float, ...]
    box: tuple[int, int, int, int] | None = None  # (x, y, width, height) in the input image, for multi-digit reads
    unsure: bool = False

    @property
    def top3(self) -> list[tuple[int, float]]:
        """The three most probable digits with their probabilities, most probable first."""
        order = np.argsort(self.probabilities)[::-1][:3]
        return [(int(d), float(self.probabilities[d])) for d in order]

    def to_dict(self) -> dict:
        """A JSON-ready dict: digit, confidence, unsure, probabilities, top3 (and box when set)."""
        d = {"digit": self.digit, "confidence": self.confidence, "unsure": self.unsure,
             "probabilities": list(self.probabilities), "top3": [{"digit": k, "probability": p} for k, p in self.top3]}
        if self.box is not None:
            d["box"] = list(self.box)
        return d


BLANK = Prediction(digit=None, confidence=0.0, probabilities=(0.1,) * 10)

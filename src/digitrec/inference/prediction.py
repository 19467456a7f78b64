"""What a reading returns: ``Prediction`` for one digit, ``NumberReading`` for a number."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

__all__ = ["Prediction", "NumberReading", "Readings", "BLANK"]


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
    reading: str = ""  # the reading that won: light, ink, paper_frame, box, outlines, dark_tone, light_tone, located

    @property
    def top3(self) -> list[tuple[int, float]]:
        """The three most probable digits with their probabilities, most probable first."""
        order = np.argsort(self.probabilities)[::-1][:3]
        return [(int(d), float(self.probabilities[d])) for d in order]

    def to_dict(self) -> dict:
        """A JSON-ready dict: digit, confidence, unsure, reading, probabilities, top3 (and box when set)."""
        d = {"digit": self.digit, "confidence": self.confidence, "unsure": self.unsure, "reading": self.reading,
             "probabilities": list(self.probabilities), "top3": [{"digit": k, "probability": p} for k, p in self.top3]}
        if self.box is not None:
            d["box"] = list(self.box)
        return d


BLANK = Prediction(digit=None, confidence=0.0, probabilities=(0.1,) * 10)


@dataclass(frozen=True)
class Readings:
    """What ``Recognizer.read_batch`` read of N pictures, before the policy judges it."""
    x28: np.ndarray          # [N,28,28] the reading the model read of each picture (0 where nothing was found)
    found: np.ndarray        # [N] bool: a mark was found
    probs: np.ndarray        # [N,10] calibrated probabilities of that reading
    score: np.ndarray        # [N] its digit score (-inf where nothing was found)
    overruled: np.ndarray    # [N] bool: it names another digit than a confident light-path reading
    reading: list            # [N] the name of the reading that won ('' where nothing was found)


@dataclass(frozen=True)
class NumberReading:
    """A field read as a number: ``text`` ('' when there is no digit), a Prediction per digit, and marks left out.

    ``confidence`` is the product of the digits' confidences (the probability that every digit is right,
    if the classifier is calibrated); 0.0 for an empty field, as for a blank single digit.
    ``marks`` are the boxes (x, y, width, height) of marks that were not read as digits: those no digit
    was read in (a hyphen, a dot, a scribble) and those the recognizer rejects as "not a digit".
    ``separators``: ``(character, box)`` of the marks read as separators and written into ``text``;
    ``value``: an amount's value; ``unsure``: a person should check the reading (a digit or a separator is
    doubtful, a digit-sized mark was left out, or the text is not written as the kind of field writes it).
    A row of boxes has a Prediction per box in ``digits``, an empty box's with digit None, and a space for
    it in ``text``.
    """
    text: str
    digits: list[Prediction] = field(default_factory=list)
    confidence: float = 0.0
    marks: list[tuple[int, int, int, int]] = field(default_factory=list)
    separators: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    value: Decimal | None = None
    unsure: bool = False

    def to_dict(self) -> dict:
        """A JSON-ready dict: text, confidence, unsure, value (a string, or None), digits (each with its box),
        marks, separators."""
        return {"text": self.text, "confidence": self.confidence, "unsure": self.unsure,
                "value": None if self.value is None else str(self.value),
                "digits": [p.to_dict() for p in self.digits], "marks": [list(b) for b in self.marks],
                "separators": [{"char": c, "box": list(b)} for c, b in self.separators]}

"""ReadPolicy: every value that decides how a picture is read (which reading wins, when a photo is searched)
and how its reading is judged (when it is unsure, when it is "not a digit"), in one frozen object saved in the
model's checkpoint. It belongs to the model it was fitted for: ``digitrec calibrate`` fits one on renders of
held-out *training* digits (``training.policy``); a checkpoint without one is read by ``HAND_SET``.

Scores are digit scores (minus the energy of the calibrated logits, ``recognizer.digit_score``); confidences
are calibrated probabilities.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from ..errors import InputError
from ..imaging.locate import Search

__all__ = ["ReadPolicy", "HAND_SET", "SHAPES"]

# the readings of ``imaging.preprocess.HEAVY`` after the ink stage, each weighed against the light path's and
# the ink stage's by a margin of its own
SHAPES = ("paper_frame", "box", "outlines", "dark_tone", "light_tone")


@dataclass(frozen=True)
class ReadPolicy:
    """How a model's readings are chosen and judged; each value with its unit."""
    light_accept: float             # digit score from which the light path's reading stands, no other competes
    shape_margins: dict = field(default_factory=dict)  # SHAPES name -> digit score a shape's reading must win by
    locate_least: float = 1.6       # digit score from which a digit found in a large picture and read alone wins
    unsure_score: float = 1.6       # unsure under this digit score ...
    unsure_confidence: float = 0.95  # ... or under this confidence
    doubted_confidence: float = 0.97  # unsure: a reading the light path doubted, under this confidence
    overruled_confidence: float = 0.98  # unsure: another digit than a light-path reading at least this confident
    reject_score: float = -math.inf  # "not a digit" (digit None) under this digit score; -inf: never
    # how a large picture the light path doubts is searched for a digit (``imaging.locate.Search``'s fields);
    # a policy fitted before these were in it reads by the hand-set ones
    search: dict = field(default_factory=lambda: dict(HAND_SEARCH))
    second_opinion: str | None = None  # checksum of the checkpoint that rereads low-scoring sure readings ...
    second_opinion_score: float = 2.1  # ... under this digit score ...
    second_opinion_agree: float = 0.94  # ... and flags them unsure where it gives their digit less than this
    fitted: dict = field(default_factory=dict)  # how it was fitted: data, targets and the figures reached

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and math.isnan(v):
                raise InputError(f"read policy: {f.name} is not a number")
        if set(self.shape_margins) != set(SHAPES):
            raise InputError(f"read policy: shape_margins must name {', '.join(SHAPES)}")
        if set(self.search) != {f.name for f in fields(Search)}:
            raise InputError(f"read policy: search must name {', '.join(f.name for f in fields(Search))}")

    @property
    def searching(self) -> Search:
        """The search values as ``imaging.locate`` takes them."""
        return Search(**self.search)

    def margin(self, k: int) -> float:
        """The margin of ``imaging.preprocess.HEAVY``'s reading ``k`` (0, the ink stage, needs none)."""
        return self.shape_margins[SHAPES[k - 1]] if k else 0.0

    def to_dict(self) -> dict:
        """The plain dict a checkpoint stores (``-inf`` as None: checkpoints and ONNX metadata are JSON-safe)."""
        d = asdict(self)
        d["reject_score"] = None if self.reject_score == -math.inf else self.reject_score
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "checkpoint") -> ReadPolicy:
        """The policy ``d`` describes; ``InputError`` naming ``source`` where it is not one."""
        if not isinstance(d, dict) or set(d) - {f.name for f in fields(cls)} or "light_accept" not in d:
            raise InputError(f"{source}: its read policy is not one this digitrec reads")
        d = dict(d)
        if d.get("reject_score") is None:
            d["reject_score"] = -math.inf
        for k, v in d.items():
            if k in ("shape_margins", "search", "second_opinion", "fitted"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InputError(f"{source}: read policy {k} must be a number, not {v!r}")
        return cls(**d)


# how a photo is searched, set by hand over rounds 2-4 on the tuning split of benchmarks/wild.py
HAND_SEARCH = {"searched_from": 256, "min_height": 0.04, "max_height": 0.8, "max_wide": 2.0, "noise_sigmas": 6.0,
               "crop_margin": 0.3, "candidates": 3, "ring_ink": 0.05, "ring_tone": 0.8}
# the values set by hand, over six rounds, for the bundled pair of networks on MNIST test's even half: what a
# checkpoint without a fitted policy is read by until ``digitrec calibrate`` fits one
HAND_SET = ReadPolicy(light_accept=2.0, shape_margins={"paper_frame": 1.0, "box": 1.0, "outlines": 0.25,
                                                       "dark_tone": 1.0, "light_tone": 1.5},
                      fitted={"by": "hand, on MNIST test's even half, for the bundled pair"})

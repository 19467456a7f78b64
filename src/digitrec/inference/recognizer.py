"""Recognizer: pictures -> ``read_batch`` (the one reading path: the readings of each picture, the model's
scores, the one that wins by the model's ``ReadPolicy``) -> Predictions; ``load()`` makes one."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..errors import InputError
from ..imaging import COMPATIBLE_VERSIONS, HEAVY, digit_boxes, heavy_x28, light_x28, read_pictures
from .backends import Backend, OnnxDigits, TorchDigits, open_backend
from .bundled import BACKENDS, bundled_model_path, bundled_second_path
from .policy import HAND_SET, SHAPES, ReadPolicy
from .prediction import BLANK, Prediction, Readings
from .reader import NumberReading, read_number

__all__ = ["Recognizer", "load", "bundled_model_path", "bundled_second_opinion", "digit_score", "BACKENDS"]

READINGS = ("ink", *SHAPES)  # the names of imaging.HEAVY's readings, in its order


def digit_score(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """How much the model sees a digit: minus the energy, ``T * logsumexp(logits / T)`` (Liu et al. 2020)."""
    return temperature * torch.logsumexp(logits / temperature, dim=1)


class Recognizer:
    """A trained model with its reading policy; build one with ``digitrec.load()``.

    ``policy``: the ``ReadPolicy`` the readings are chosen and judged by (default: the checkpoint's, else
    ``HAND_SET``). ``reject_threshold``: overrides the policy's "not a digit" score (``-inf``: never reject).
    ``second_opinion``: a backend of a second digit model that rereads low-scoring sure readings; ``load()``
    gives it where the policy names its checksum.
    """

    def __init__(self, model: Checkpoint | Backend, batch_size: int = 256, reject_threshold: float | None = None,
                 second_opinion: Backend | None = None, policy: ReadPolicy | None = None):
        self.backend = TorchDigits(model) if isinstance(model, Checkpoint) else model
        self.second_opinion = second_opinion
        ckpt = self.checkpoint = self.backend.checkpoint
        if ckpt.arch == "line":
            raise InputError("a line model reads numbers, not single digits; load a digit model")
        if ckpt.preprocess_version is not None and ckpt.preprocess_version not in COMPATIBLE_VERSIONS:
            raise InputError(f"the model was made for preprocessing version {ckpt.preprocess_version}; this digitrec "
                             f"reads versions {', '.join(map(str, COMPATIBLE_VERSIONS))}: retrain it with this "
                             "version, or read it with the digitrec that made it")
        self.temperature = float(ckpt.temperature)
        self.batch_size = batch_size
        if policy is None:
            policy = ReadPolicy.from_dict(ckpt.policy) if ckpt.policy else \
                replace(HAND_SET, reject_score=-np.inf if ckpt.reject_threshold is None else ckpt.reject_threshold)
        if reject_threshold is not None:
            policy = replace(policy, reject_score=float(reject_threshold))
        self.policy = policy

    @property
    def reject_threshold(self) -> float:
        """The digit score under which a picture is "not a digit" (``-inf``: never)."""
        return self.policy.reject_score

    def probabilities(self, x28: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities ``[N,10]`` for preprocessed float arrays ``[N,28,28]`` in [0, 1]."""
        return self.scores(x28)[0]

    def scores(self, x28: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return calibrated probabilities ``[N,10]`` and digit scores ``[N]`` (higher: more like a digit)."""
        return _calibrated(self.backend, self.temperature, x28, self.batch_size)

    def predict(self, image) -> Prediction:
        """Read one image (path, bytes, PIL image or array of any size and layout)."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images) -> list[Prediction]:
        """Read many images; preprocessing and the model both batched. An ``[N,H,W]`` array is N images."""
        return self.judge(self.read_batch(images))

    def read_batch(self, images, limit: int | None = None) -> Readings:
        """The one reading path: each image (``limit``: the most pixels) read as the model will read it.

        First the light path (polarity and paper tone only); where the model's digit score of that reading is
        under the policy's ``light_accept``, the ink stage's readings (``imaging.HEAVY``) compete with it and the
        highest score wins (a shape's by its margin), unless the ink stage finds no mark at all: then the
        picture is blank. A large picture the others doubt is searched for digit-sized marks, each read alone.
        """
        return self.read_decoded(read_pictures(images, limit))

    def read_decoded(self, pictures: list) -> Readings:
        """``read_batch`` of decoded pictures: ``(grey [H,W] in [0, 1], is_ink)`` each (``imaging.read_pictures``)."""
        return Readings(*self._chosen(pictures, search=True))

    def preprocess(self, images, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x28 [N,28,28], found [N])``: each image as the model will read it (``read_batch``)."""
        r = self.read_batch(images, limit)
        return r.x28, r.found

    def _chosen(self, pictures: list, search: bool):
        """``read_decoded``'s parts; ``search``: look for a digit in the large pictures the others doubt."""
        policy = self.policy
        x28, found = light_x28(pictures)
        probs, best = np.full((len(x28), 10), 0.1, np.float32), np.full(len(x28), -np.inf)
        marked = np.flatnonzero(found)
        probs[marked], best[marked] = self.scores(x28[marked])
        reading = np.where(found, "light", "").astype(object)
        light_digit = np.where(probs.max(1) >= policy.overruled_confidence, probs.argmax(1), -1)
        # pictures that are ink already (a canvas's alpha, an MNIST array) have no paper to clean
        is_ink = np.array([ink for _, ink in pictures], bool)
        doubtful = np.flatnonzero(found & ~is_ink & (best < policy.light_accept))
        if doubtful.size:
            # a crop of a photograph is read by the ink stage and the paper frame only, no other shape (``_located``)
            for k, (hx, hf) in enumerate(heavy_x28(pictures, doubtful, readings=HEAVY if search else HEAVY[:2])):
                p, score = self.scores(hx)
                score = np.where(hf, score, -np.inf)
                if k == 0:  # the ink stage sees no mark: noise, haze or blank paper that the light path magnified
                    found[doubtful[~hf]] = False
                better = score > best[doubtful] + policy.margin(k)
                i = doubtful[better]
                x28[i], best[i], probs[i], reading[i] = hx[better], score[better], p[better], READINGS[k]
                if k == 0:
                    plain = best.copy()
            if search:
                self._located(pictures, doubtful, plain, x28, found, probs, best, reading)
        x28[~found] = 0
        reading[~found] = ""
        overruled = found & (light_digit >= 0) & (probs.argmax(1) != light_digit)
        return x28, found, probs, best, overruled, reading.tolist()

    def _located(self, pictures: list, doubtful: np.ndarray, plain: np.ndarray, x28, found, probs, best,
                 reading) -> None:
        """Where a crop around a mark of a doubtful picture (``imaging.locate``) reads as a digit better than the
        whole picture does through the light path and the ink stage (``plain``), take its reading (in place).

        A shape's reading does not compete, of the whole picture or of a crop: on a large photograph a box,
        outlines or two tones fit the sheet's light and shadows, not a digit. Each crop is read by the light path,
        the ink stage and the paper frame."""
        owners, crops = [], []
        search = self.policy.searching
        for i in doubtful.tolist():
            for box in digit_boxes(pictures[i][0], search):
                owners.append(i)
                crops.append((pictures[i][0][box], False))
        if not crops:
            return
        cx, cf, cp, cs, _, _ = self._chosen(crops, search=False)
        cs = np.where(cf, cs, -np.inf)
        for j in np.argsort(cs, kind="stable").tolist():  # each picture's best crop last
            i = owners[j]
            if cs[j] >= self.policy.locate_least and cs[j] > plain[i]:
                x28[i], found[i], probs[i], best[i], reading[i] = cx[j], True, cp[j], cs[j], "located"

    def judge(self, r: Readings, policy: ReadPolicy | None = None) -> list[Prediction]:
        """A ``Prediction`` per picture of ``r`` by the policy (``policy``: another, as a fitting tries them): its
        digit (None where rejected or blank), its confidence and whether a person should check it; ``BLANK``
        where nothing was found."""
        policy = policy or self.policy
        n, found = len(r.found), np.flatnonzero(r.found)
        probs, score, confidence = r.probs[found], r.score[found], r.probs[found].max(1)
        accepted = (score >= policy.reject_score).tolist()
        unsure = ((score < policy.unsure_score) | (confidence < policy.unsure_confidence) | r.overruled[found]
                  | ((score < policy.light_accept) & (confidence < policy.doubted_confidence)))
        if self.second_opinion is not None:
            ask = np.flatnonzero(~unsure & (score < policy.second_opinion_score))
            if ask.size:
                second = _calibrated(self.second_opinion, float(self.second_opinion.checkpoint.temperature),
                                     r.x28[found[ask]], self.batch_size)[0]
                unsure[ask] = second[np.arange(ask.size), probs[ask].argmax(1)] < policy.second_opinion_agree
        unsure = unsure.tolist()
        preds = [BLANK] * n
        # one tolist() instead of per-element float(): at 20,000 images/s every microsecond per image counts
        for i, digit, p, ok, u in zip(found.tolist(), probs.argmax(1).tolist(), probs.tolist(), accepted, unsure):
            preds[i] = Prediction(digit=digit if ok else None, confidence=p[digit], probabilities=tuple(p), unsure=u,
                                  reading=r.reading[i])
        return preds

    def read_number(self, image, kind: str = "any") -> NumberReading:
        """Read a line of handwritten digits (a ZIP code, an amount, a date, a row of boxes): a ``NumberReading``
        with a box per digit. ``kind``: 'digits', 'amount', 'date', 'any' or 'boxes' (``inference.reader``)."""
        return read_number(self, image, kind=kind)


def load(path: str | os.PathLike | None = None, backend: str = "torch", reject_threshold: float | None = None,
         trust_unverified: bool = False) -> Recognizer:
    """Return a Recognizer for the model at ``path`` (default: the bundled one), run by ``backend``.

    'torch' reads a checkpoint (.pt); 'onnx' and 'onnx-int8' read a file made by ``digitrec export``.
    ``reject_threshold`` overrides the checkpoint's "not a digit" threshold (``float('-inf')``: never reject).
    ``trust_unverified`` loads a checkpoint that has no content checksum (files of old versions).
    """
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path must be a file path (str or os.PathLike), not {type(path).__name__}")
    if reject_threshold is not None and not isinstance(reject_threshold, (int, float)):
        raise InputError(f"reject_threshold must be a number, not {type(reject_threshold).__name__}")
    path = Path(path) if path is not None else bundled_model_path(backend)
    if backend == "torch" and path.suffix == ".onnx":
        raise InputError(f"{path}: is an ONNX model; load it with backend 'onnx'")
    if backend != "torch" and path.suffix != ".onnx":
        raise InputError(f"{path}: is a PyTorch checkpoint; use backend 'torch', or export it with "
                         f"`digitrec export --model {path}`")
    model = OnnxDigits(path) if backend != "torch" else open_backend(path, trust_unverified=trust_unverified)
    r = Recognizer(model, reject_threshold=reject_threshold)
    # the second opinion belongs to the policy that was fitted with it, by the checksum of its file's content:
    # a copy of the bundled model keeps it, a model fine-tuned or fitted without it has none
    if r.policy.second_opinion is not None:
        second = bundled_second_opinion(backend)
        if _checksum(second) == r.policy.second_opinion:
            r.second_opinion = second
    return r


def _checksum(backend: Backend) -> str | None:
    """The checksum of the checkpoint a backend runs (of the one an ONNX file was exported from)."""
    return getattr(backend, "source_checksum", None) or backend.checkpoint.checksum


def bundled_second_opinion(backend: str = "torch") -> Backend:
    """The bundled model's second opinion (``weights/second.pt``, or its ONNX export), run by ``backend``."""
    path = bundled_second_path(backend)
    # one thread: it reads a few pictures a batch, and a second pool of ONNX Runtime threads spinning beside
    # the first's cost the whole batch a quarter of its speed
    return OnnxDigits(path, threads=1) if backend != "torch" else open_backend(path)


def _calibrated(backend: Backend, temperature: float, x28: np.ndarray, batch_size: int):
    """``backend``'s calibrated probabilities ``[N,10]`` and digit scores ``[N]`` of preprocessed pictures."""
    probs, score = [], []
    for i in range(0, len(x28), batch_size):
        logits = torch.from_numpy(backend.logits(np.ascontiguousarray(x28[i:i + batch_size], dtype=np.float32)))
        probs.append(torch.softmax(logits / temperature, dim=1).numpy())
        score.append(digit_score(logits, temperature).numpy())
    if not probs:
        return np.zeros((0, 10), np.float32), np.zeros(0, np.float32)
    return np.concatenate(probs), np.concatenate(score)

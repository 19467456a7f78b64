"""Recognizer: image -> preprocessing -> model -> Prediction, one image or a batch; ``load()`` makes one."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..errors import InputError
from ..imaging import COMPATIBLE_VERSIONS, HEAVY, digit_boxes, heavy_x28, light_x28, read_pictures
from .backends import Backend, OnnxDigits, TorchDigits, open_backend
from .bundled import BACKENDS, bundled_model_path, bundled_second_path
from .prediction import BLANK, Prediction
from .reader import NumberReading, read_number

__all__ = ["Recognizer", "load", "bundled_model_path", "bundled_second_opinion", "digit_score", "BACKENDS"]


# digit score from which the light path's reading stands; under it the ink stage's readings compete. Set on
# the tuning split of benchmarks/wild.py (from 1.5 up, the light path read as well as the best of all readings
# in every context) and on the MNIST-C corruptions of benchmarks/robustness.py (under 2.0 their mean fell);
# it holds for about 93 % of drawings, clean scans and crops, which skip the ink stage
LIGHT_ACCEPT = 2.0
# how much higher the score of a reading made for one shape must be to win over the light path's and the ink
# stage's, for each reading of ``imaging.HEAVY`` after the ink stage: a paper frame, a box, outlines filled, two
# tones (dark ink, light ink). The light path and the ink stage are right more often, and a shape can fit what is
# not there; outlines are filled only where thin enclosed gaps make up much of the ink, so they need less. Set on
# the tuning split of benchmarks/wild.py: at 1.0 outlined digits lost to their own outlines read as 8s; with
# every margin at 0.5 more crosses, scribbles and MNIST misreads took a shape's reading with confidence; light
# ink in two tones took one MNIST digit from the light path, wrongly, under 1.5
SHAPE_MARGINS = (1.0, 1.0, 0.25, 1.0, 1.5)
# a reading is unsure (to be checked by a person) under this digit score or this confidence. Set for the
# bundled model on the tuning split of benchmarks/wild.py (non-digits drawn with seed 1): 1.6 % of MNIST's
# correct reads flagged, 85 % of the misreads left in the small-picture contexts, every dot and letter. From a
# confidence of 0.9 to 0.95 the misreads flagged rose from 83 %, MNIST's flags by 0.1 point; beyond, flags rose
# faster than catches
UNSURE_SCORE = 1.6
UNSURE_CONFIDENCE = 0.95
# two more ways a reading is unsure, set on the same tuning split: a reading the light path doubted (a digit
# score under ``LIGHT_ACCEPT``) under this confidence, for a picture that reads well only once cleaned is less
# sure to read right; and a reading that names another digit than the light path's reading did with at least
# ``OVERRULED_CONFIDENCE``, for a shape or a crop that overrules a clear reading has as likely found one stroke
# (a box's side, a bold stroke read as a 1) as the digit. Misreads flagged went from 83 to 88 %, MNIST's
# correct reads flagged from 1.58 to 1.60 %; from 0.98 under ``LIGHT_ACCEPT`` MNIST's flags rose with no more
# misreads caught, and under 0.98 for the light reading outlined digits read right were flagged more
DOUBTED_CONFIDENCE = 0.97
OVERRULED_CONFIDENCE = 0.98
# a digit found in a large picture (``imaging.locate``) and read alone wins where it scores higher than the whole
# picture's reading, and from this score up: a mark the model does not take for a digit tells nothing
LOCATE_LEAST = UNSURE_SCORE
# a sure reading under this digit score is read again by a second network, smaller and trained apart (the
# bundled ``weights/second.pt``, preset ``second``); where that one gives the digit a probability under
# ``SECOND_OPINION_AGREE``, the reading is unsure. The two networks agree on digits and far less on the
# non-digits the first reads firmly (scribbles), whose scores are low. Set for the bundled pair on the tuning
# split of benchmarks/wild.py (``benchmarks/non_digit_cues.py``): scribbles rejected or flagged 95.8 / 93.2 /
# 96.0 -> 97.0 / 95.8 / 97.2 % over seeds 1-3 for 0.2 % more of MNIST's right reads flagged. 8 % of MNIST's
# sure reads score under 2.1, so the second network reads few pictures; asked on every sure reading, for the
# same 0.2 %, it caught no more scribbles (0.2 points fewer), though 5 of 9 sure misreads instead of 2
SECOND_OPINION_SCORE = 2.1
SECOND_OPINION_AGREE = 0.94


def digit_score(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """How much the model sees a digit: minus the energy, ``T * logsumexp(logits / T)`` (Liu et al. 2020)."""
    return temperature * torch.logsumexp(logits / temperature, dim=1)


class Recognizer:
    """A trained model with its preprocessing; build one with ``digitrec.load()``.

    ``reject_threshold``: an image whose digit score (minus the energy of the calibrated logits) falls
    below it is "not a digit" (``digit`` None). Default: the checkpoint's, fitted on held-out training
    digits; ``None`` there or ``-inf`` here turns rejection off.
    """

    def __init__(self, model: Checkpoint | Backend, batch_size: int = 256, reject_threshold: float | None = None,
                 second_opinion: Backend | None = None):
        """``model``: a checkpoint (run in PyTorch) or a backend (``inference.backends``). ``second_opinion``: a
        backend of a second digit model that rereads low-scoring sure readings (``SECOND_OPINION_SCORE``); the
        thresholds are set for the bundled pair, which ``load()`` gives."""
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
        if reject_threshold is None:
            reject_threshold = ckpt.reject_threshold
        self.reject_threshold = float("-inf") if reject_threshold is None else float(reject_threshold)

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
        return self._predictions(*self._readings(images))

    def preprocess(self, images, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x28 [N,28,28], found [N])``: each image as the model will read it (``limit``: pixels).

        First the light path (polarity and paper tone only); where the model's digit score of that
        reading is under ``LIGHT_ACCEPT``, the ink stage's readings (``imaging.HEAVY``) compete with it
        and the highest score wins, unless the ink stage finds no mark at all: then the picture is blank.
        """
        return self._readings(images, limit)[:2]

    def _readings(self, images, limit: int | None = None):
        """``preprocess``, with the probabilities and digit scores of the chosen readings (of the found ones), and
        whether each names another digit than a confident light-path reading (``OVERRULED_CONFIDENCE``)."""
        return self._chosen(read_pictures(images, limit), search=True)

    def _chosen(self, pictures: list, search: bool):
        """``_readings`` of decoded pictures; ``search``: look for a digit in the large ones the others doubt."""
        x28, found = light_x28(pictures)
        probs, best = np.full((len(x28), 10), 0.1, np.float32), np.full(len(x28), -np.inf)
        marked = np.flatnonzero(found)
        probs[marked], best[marked] = self.scores(x28[marked])
        light_digit = np.where(probs.max(1) >= OVERRULED_CONFIDENCE, probs.argmax(1), -1)
        # pictures that are ink already (a canvas's alpha, an MNIST array) have no paper to clean
        is_ink = np.array([ink for _, ink in pictures], bool)
        doubtful = np.flatnonzero(found & ~is_ink & (best < LIGHT_ACCEPT))
        if doubtful.size:
            # a crop of a photograph is read by the ink stage and the paper frame only, no other shape (``_located``)
            for k, (hx, hf) in enumerate(heavy_x28(pictures, doubtful, readings=HEAVY if search else HEAVY[:2])):
                p, score = self.scores(hx)
                score = np.where(hf, score, -np.inf)
                if k == 0:  # the ink stage sees no mark: noise, haze or blank paper that the light path magnified
                    found[doubtful[~hf]] = False
                better = score > best[doubtful] + (SHAPE_MARGINS[k - 1] if k else 0.0)
                i = doubtful[better]
                x28[i], best[i], probs[i] = hx[better], score[better], p[better]
                if k == 0:
                    plain = best.copy()
            if search:
                self._located(pictures, doubtful, plain, x28, found, probs, best)
        x28[~found] = 0
        overruled = found & (light_digit >= 0) & (probs.argmax(1) != light_digit)
        return x28, found, probs, best, overruled

    def _located(self, pictures: list, doubtful: np.ndarray, plain: np.ndarray, x28, found, probs, best) -> None:
        """Where a crop around a mark of a doubtful picture (``imaging.locate``) reads as a digit better than the
        whole picture does through the light path and the ink stage (``plain``), take its reading (in place).

        A shape's reading does not compete, of the whole picture or of a crop: on a large photograph a box,
        outlines or two tones fit the sheet's light and shadows, not a digit. Each crop is read by the light path,
        the ink stage and the paper frame."""
        owners, crops = [], []
        for i in doubtful.tolist():
            for box in digit_boxes(pictures[i][0]):
                owners.append(i)
                crops.append((pictures[i][0][box], False))
        if not crops:
            return
        cx, cf, cp, cs, _ = self._chosen(crops, search=False)
        cs = np.where(cf, cs, -np.inf)
        for j in np.argsort(cs, kind="stable").tolist():  # each picture's best crop last
            i = owners[j]
            if cs[j] >= LOCATE_LEAST and cs[j] > plain[i]:
                x28[i], found[i], probs[i], best[i] = cx[j], True, cp[j], cs[j]

    def predict_preprocessed(self, x28: list) -> list[Prediction]:
        """Read images already made MNIST-like by ``imaging.preprocess`` (28x28 arrays; ``None`` is a blank)."""
        has_mark = np.array([a is not None for a in x28], bool)
        found = np.flatnonzero(has_mark)
        probs, score = np.full((len(x28), 10), 0.1, np.float32), np.full(len(x28), -np.inf)
        images = np.zeros((len(x28), 28, 28), np.float32)
        if found.size:
            images[found] = np.array([x28[i] for i in found], np.float32).reshape(-1, 28, 28)
            probs[found], score[found] = self.scores(images[found])
        return self._predictions(images, has_mark, probs, score, np.zeros(len(x28), bool))

    def _predictions(self, x28: np.ndarray, found: np.ndarray, probs: np.ndarray, score: np.ndarray,
                     overruled: np.ndarray) -> list[Prediction]:
        """A ``Prediction`` per image from what the model read, its probabilities, digit score and whether its
        reading overruled a confident light path's; ``BLANK`` where nothing was found."""
        n, found = len(found), np.flatnonzero(found)
        probs, score, confidence = probs[found], score[found], probs[found].max(1)
        accepted = (score >= self.reject_threshold).tolist()
        unsure = ((score < UNSURE_SCORE) | (confidence < UNSURE_CONFIDENCE) | overruled[found]
                  | ((score < LIGHT_ACCEPT) & (confidence < DOUBTED_CONFIDENCE)))
        if self.second_opinion is not None:
            ask = np.flatnonzero(~unsure & (score < SECOND_OPINION_SCORE))
            if ask.size:
                second = _calibrated(self.second_opinion, float(self.second_opinion.checkpoint.temperature),
                                     x28[found[ask]], self.batch_size)[0]
                unsure[ask] = second[np.arange(ask.size), probs[ask].argmax(1)] < SECOND_OPINION_AGREE
        unsure = unsure.tolist()
        preds = [BLANK] * n
        # one tolist() instead of per-element float(): at 20,000 images/s every microsecond per image counts
        for i, digit, p, ok, u in zip(found.tolist(), probs.argmax(1).tolist(), probs.tolist(), accepted, unsure):
            preds[i] = Prediction(digit=digit if ok else None, confidence=p[digit], probabilities=tuple(p), unsure=u)
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
    # the second opinion's thresholds hold for the bundled pair only; another model is read without one
    second = bundled_second_opinion(backend) if path.resolve() == bundled_model_path(backend).resolve() else None
    return Recognizer(model, reject_threshold=reject_threshold, second_opinion=second)


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

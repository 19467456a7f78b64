"""The model file: one typed description of what a checkpoint holds, written and read in one place.

A checkpoint is a dict of plain values and tensors, written by ``torch.save`` and read with
``torch.load(weights_only=True)``, so no pickled code runs. ``torch.load`` happily returns flipped bits
inside tensor data, so a SHA-256 over the content (``checksum``) is written with it and verified on
load; a file without one is refused unless the caller trusts it (``trust_unverified``). Writes are
atomic (a temporary file renamed over the old one), so a crash or a full disk leaves the previous
file intact.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from .errors import InputError

__all__ = ["Checkpoint", "FORMAT", "load", "content_hash"]

FORMAT = "digitrec-checkpoint/1"
# what a run needs to continue, and a bundled or exported model does not
_TRAINING_STATE = ("optimizer", "scheduler", "scaler", "rng", "epoch_state")


@dataclass
class Checkpoint:
    """Every field a digitrec model file may hold; ``None`` where a kind of model has no such thing."""
    arch: str                                  # 'cnn', 'logreg' or 'line' (models.registry)
    config: dict = field(default_factory=dict)  # the architecture's constructor arguments
    state_dict: dict | None = None             # the weights; None in the metadata an ONNX file carries
    format: str = FORMAT
    norm: list | None = None                   # [mean, std] the digit models normalise pixels with
    temperature: float = 1.0                   # softmax temperature fitted on held-out digits
    reject_threshold: float | None = None      # "not a digit" below this digit score; None: never
    calibration: dict | None = None            # the evidence of the temperature and threshold fit
    preprocess_version: int | None = None      # imaging.PREPROCESS_VERSION the model was trained with
    preset: str | None = None                  # training.presets name ('custom' for a Preset object)
    hyperparameters: dict | None = None        # the Preset's fields
    seed: int | None = None
    data_hash: str | None = None               # data.data_hash of the training images
    parameters: int | None = None              # trainable parameters
    history: list = field(default_factory=list)  # per epoch: loss, train_acc, test_acc, seconds
    train_seconds: float | None = None
    epoch: int = 0                             # epochs completed
    step: int = 0                              # steps done of the next epoch (a mid-epoch checkpoint)
    world_size: int | None = None              # processes it was trained on
    device: str | None = None                  # 'cpu' or 'cuda'
    metrics: dict | None = None                # held-out scores: a line model's fields, a fine-tuning's before/after
    command: str | None = None                 # the command that made a line model
    policy: dict | None = None                 # inference.policy.ReadPolicy's fields, fitted for this model
    optimizer: dict | None = None              # training state, for --resume ...
    scheduler: dict | None = None
    scaler: dict | None = None
    rng: dict | None = None
    epoch_state: dict | None = None            # ... mid-epoch: the permutation and running sums
    checksum: str | None = None                # content_hash of everything else, as written

    @classmethod
    def from_dict(cls, d: dict, source: str = "checkpoint") -> Checkpoint:
        """The checkpoint a dict describes; ``InputError`` naming ``source`` for fields this version does not know."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"{source}: fields {', '.join(map(str, unknown))} are unknown to this digitrec "
                             "(made by a newer version?)")
        if "arch" not in d:
            raise InputError(f"{source}: not a digitrec model (no architecture recorded)")
        temperature = d.get("temperature", 1.0)
        # every probability is divided by it: 0 or NaN would make every reading NaN, yet confidently shown
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not math.isfinite(temperature) or temperature <= 0:
            raise InputError(f"{source}: temperature must be a positive finite number, not {temperature!r}")
        threshold = d.get("reject_threshold")
        if threshold is not None and (not isinstance(threshold, (int, float)) or not math.isfinite(threshold)):
            raise InputError(f"{source}: reject_threshold must be a finite number or none, not {threshold!r}")
        return cls(**d)

    def to_dict(self) -> dict:
        """The dict ``torch.save`` writes: every field that is set (None ones left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def without_training_state(self) -> Checkpoint:
        """A copy without optimizer, scheduler, RNG and mid-epoch state: what a bundled model needs."""
        d = self.to_dict()
        for k in (*_TRAINING_STATE, "checksum"):
            d.pop(k, None)
        return Checkpoint(**d)

    def save(self, path: str | os.PathLike) -> None:
        """Write with a content checksum, atomically; a full disk is an ``InputError`` and leaves no temp file."""
        path = Path(path)
        content = self.to_dict()
        content.pop("checksum", None)
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({**content, "checksum": content_hash(content)}, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            # the rename itself is only durable once the directory entry is on disk
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except (OSError, RuntimeError) as e:  # torch.save reports a failed write as RuntimeError
            tmp.unlink(missing_ok=True)
            reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
            raise InputError(f"cannot write {path}: {reason}") from None


def load(path: str | os.PathLike, trust_unverified: bool = False) -> Checkpoint:
    """Read a checkpoint without executing pickled code; ``InputError`` if it is missing, corrupt or foreign.

    A file without a content checksum is refused unless ``trust_unverified`` (files of old versions).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"{path}: not a readable digitrec checkpoint ({type(e).__name__})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise InputError(f"{path}: not a digitrec checkpoint (format {found!r}, expected {FORMAT!r})")
    if "checksum" not in raw:
        if not trust_unverified:
            raise InputError(f"{path}: has no content checksum, so its weights cannot be verified; "
                             "if you trust the file, load it with trust_unverified (--trust-unverified)")
    else:
        try:
            actual = content_hash({k: v for k, v in raw.items() if k != "checksum"})
        except TypeError:
            actual = None
        if actual != raw["checksum"]:
            raise InputError(f"{path}: corrupt checkpoint (content checksum mismatch); retrain or restore it")
    return Checkpoint.from_dict(raw, str(path))


def content_hash(obj) -> str:
    """SHA-256 over a checkpoint's content (tensor bytes, numbers, strings), independent of how torch.save lays it out."""
    h = hashlib.sha256()

    def feed(o):
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu().contiguous().reshape(-1)
            h.update(f"T{t.dtype}{tuple(o.shape)}:".encode())
            h.update(t.view(torch.uint8).numpy())
        elif isinstance(o, dict):
            h.update(b"D%d:" % len(o))
            for k in sorted(o, key=repr):
                feed(k)
                feed(o[k])
        elif isinstance(o, (list, tuple)):
            h.update(b"L%d:" % len(o))
            for v in o:
                feed(v)
        elif o is None or isinstance(o, (str, int, float)):
            r = f"{type(o).__name__}{o!r}".encode()
            h.update(b"S%d:" % len(r) + r)
        else:
            raise TypeError(f"checkpoint entries must be tensors, containers or plain values, not {type(o).__name__}")

    feed(obj)
    return "sha256:" + h.hexdigest()

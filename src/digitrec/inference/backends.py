"""What runs a model: PyTorch on a checkpoint, or ONNX Runtime on an exported file, behind one call.

Every backend has ``logits(batch)`` on numpy arrays: a digit model takes preprocessed images
``[N,28,28]`` in [0, 1] and gives logits ``[N,10]``; a line model takes strips ``[N,1,40,W]`` and gives
log-probabilities ``[N,W/2,11]``. ``checkpoint`` is the model's metadata (the whole checkpoint for
PyTorch; for ONNX what the exporter stored in the file, weights left out). The readers above never ask
which backend they hold.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .. import checkpoint
from ..checkpoint import Checkpoint
from ..errors import InputError
from ..models import from_checkpoint

__all__ = ["Backend", "open_backend", "TorchDigits", "OnnxDigits", "TorchLines", "OnnxLines", "METADATA_KEY", "ONNX_EXTRAS",
           "DIGIT_IO", "LINE_IO", "CHECKSUM_KEY", "UNSIGNED"]

METADATA_KEY = "digitrec"   # the ONNX metadata entry holding the checkpoint's metadata as JSON
CHECKSUM_KEY = "digitrec_sha256"  # ... and the one holding the SHA-256 of the file, its own value read as UNSIGNED
UNSIGNED = "0" * 64
# what an exported file's metadata holds besides the checkpoint's fields
ONNX_EXTRAS = ("precision", "source_checksum", "calibration_images")
DIGIT_IO = ("image", "logits")     # input and output names of an exported digit model
LINE_IO = ("strip", "log_probs")   # ... of an exported line model


class Backend(Protocol):
    checkpoint: Checkpoint

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


class TorchDigits:
    """A digit checkpoint run in PyTorch, the MNIST normalisation applied here."""

    def __init__(self, ckpt: Checkpoint):
        self.checkpoint = ckpt
        # channels-last convolutions run about 1.4x faster on this CPU (oneDNN's preferred layout)
        self.model = _bn_folded(from_checkpoint(ckpt)).to(memory_format=torch.channels_last)
        self.mean, self.std = ckpt.norm

    @torch.inference_mode()
    def logits(self, batch: np.ndarray) -> np.ndarray:
        xt = (torch.from_numpy(np.ascontiguousarray(batch, np.float32)).unsqueeze(1) - self.mean) / self.std
        return self.model(xt.contiguous(memory_format=torch.channels_last)).numpy()


def _bn_folded(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (in eval mode) with each BatchNorm that follows a convolution folded into its weights and
    bias: reading then skips a pass over every activation map, and the logits agree to float rounding."""
    for seq in [m for m in model.modules() if isinstance(m, torch.nn.Sequential)]:
        for i in range(len(seq) - 1):
            if isinstance(seq[i], torch.nn.Conv2d) and isinstance(seq[i + 1], torch.nn.BatchNorm2d):
                seq[i] = torch.nn.utils.fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = torch.nn.Identity()
    return model


class TorchLines:
    """A line-model checkpoint run in PyTorch."""

    def __init__(self, ckpt: Checkpoint):
        self.checkpoint = ckpt
        self.model = from_checkpoint(ckpt)

    @torch.inference_mode()
    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).numpy()


def _session(path: Path, threads: int) -> tuple:
    """An ONNX Runtime session over the file at ``path``, and the bytes it was made from."""
    import onnxruntime as ort  # here: `import digitrec` and the PyTorch path do not load ONNX Runtime

    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    raw = path.read_bytes()  # read once: what is verified is what runs
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0: one per physical core
    options.log_severity_level = 3          # errors only; ORT's warnings are not the user's business
    try:
        session = ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])
    except Exception as e:
        # ORT's messages read "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from X failed:Why."
        reason = str(e).strip().splitlines()[0].split(" : ")[-1].split("failed:")[-1].strip(" .")
        raise InputError(f"{path}: not a readable ONNX model ({reason[:160] or type(e).__name__})") from None
    return session, raw


def _verify(path: Path, raw: bytes, stored: str | None) -> None:
    """Refuse an ONNX file whose bytes are not those ``digitrec export`` wrote (its own SHA-256 in its metadata)."""
    if stored is None or len(stored) != len(UNSIGNED):
        raise InputError(f"{path}: has no checksum of its own; export it again with `digitrec export`")
    if hashlib.sha256(raw.replace(stored.encode(), UNSIGNED.encode(), 1)).hexdigest() != stored:
        raise InputError(f"{path}: its content does not match its checksum (damaged or altered)")


class _Onnx:
    """An ONNX Runtime session over a file made by ``digitrec export``, with the metadata it carries."""
    io: tuple[str, str]
    what: str

    def __init__(self, path: str | os.PathLike, threads: int):
        path = Path(path)
        self.path = path
        self.session, content = _session(path, threads)
        found = self.session.get_modelmeta().custom_metadata_map
        raw = found.get(METADATA_KEY)
        inputs = self.session.get_inputs()
        if raw is None or len(inputs) != 1 or inputs[0].name != self.io[0] or not self._fits(inputs[0].shape):
            raise InputError(f"{path}: not a digitrec ONNX model (expected a {self.what} model made by `digitrec export`)")
        _verify(path, content, found.get(CHECKSUM_KEY))
        try:
            meta = json.loads(raw)
        except ValueError:
            raise InputError(f"{path}: its digitrec metadata is not JSON") from None
        extras = {k: meta.pop(k) for k in ONNX_EXTRAS if k in meta}
        self.precision = extras.get("precision")              # 'fp32' or 'int8'
        self.source_checksum = extras.get("source_checksum")  # of the checkpoint it was exported from
        self.checkpoint = Checkpoint.from_dict(meta, str(path))

    def _fits(self, shape) -> bool:
        return True

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.io[1]], {self.io[0]: np.ascontiguousarray(batch, dtype=np.float32)})[0]


class OnnxDigits(_Onnx):
    """An exported digit model (the normalisation is inside the graph)."""
    io, what = DIGIT_IO, "digit"

    def __init__(self, path: str | os.PathLike, threads: int = 0):
        super().__init__(path, threads)

    def _fits(self, shape) -> bool:
        return list(shape[1:]) == [1, 28, 28]

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.run(np.asarray(batch)[:, None])


class OnnxLines(_Onnx):
    """An exported line model; one thread, since the graph is small and mostly a recurrence."""
    io, what = LINE_IO, "line"

    def __init__(self, path: str | os.PathLike, threads: int = 1):
        super().__init__(path, threads)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.run(batch)


def open_backend(path: str | os.PathLike, line: bool = False, trust_unverified: bool = False) -> Backend:
    """The backend a model file needs: ONNX Runtime for ``.onnx``, PyTorch for a checkpoint."""
    path = Path(path)
    if path.suffix == ".onnx":
        return OnnxLines(path) if line else OnnxDigits(path)
    ckpt = checkpoint.load(path, trust_unverified)
    if (ckpt.arch == "line") != line:
        raise InputError(f"{path}: is a {'line' if ckpt.arch == 'line' else 'digit'} model, not a "
                         f"{'line' if line else 'digit'} model")
    return TorchLines(ckpt) if line else TorchDigits(ckpt)

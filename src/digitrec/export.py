"""ONNX export (fp32 with a dynamic batch axis; int8, statically quantized), checked on the spot.

An exported digit model takes preprocessed images ``image [N,1,28,28]`` in [0, 1] and returns ``logits [N,10]``;
the MNIST normalisation is inside it, so the file alone is a deployable model. What a Recognizer needs
besides the graph (temperature, preprocessing version, metrics) travels as JSON in the model's
metadata under ``"digitrec"`` (read back by ``inference.backends``). Every export is checked on the spot: ONNX checker, then ONNX Runtime
against PyTorch on 1,000 MNIST test images. A line model (multi-digit reading, ``inference.reader``)
exports as ``strip [N,1,40,W] -> log_probs [N,W/2,11]``, fp32 only, checked on strips of MNIST test digits.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from . import checkpoint, data
from .checkpoint import Checkpoint
from .data.render.fields import Condition, make_field
from .errors import InputError
from .inference.backends import CHECKSUM_KEY, DIGIT_IO, LINE_IO, METADATA_KEY, UNSIGNED, OnnxDigits, OnnxLines
from .models import from_checkpoint

__all__ = ["export", "export_onnx", "export_line", "quantize_int8", "check", "check_line", "opset", "write_signed"]

INPUT, OUTPUT = DIGIT_IO
LINE_INPUT, LINE_OUTPUT = LINE_IO
CALIBRATION_IMAGES = 3000   # training images whose activation ranges fix the int8 scales
PARITY_IMAGES = 1000        # test images on which ONNX Runtime is compared with PyTorch
# ONNX Runtime 1.32 runs QuantizeLinear/DequantizeLinear only up to opset 25 (onnx 1.23 defines 28):
# a newer stamp makes the int8 model unloadable, and one opset for both files keeps them interchangeable
MAX_OPSET = 25


def opset() -> int:
    """The opset of our exports: the installed onnx's current one, capped at what ONNX Runtime runs."""
    return min(onnx.defs.onnx_opset_version(), MAX_OPSET)


class _Normalised(nn.Module):
    """The model with MNIST normalisation in front, so the ONNX graph takes plain [0, 1] pixels."""

    def __init__(self, model: nn.Module, mean: float, std: float):
        super().__init__()
        self.model, self.mean, self.std = model, mean, std

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model((image - self.mean) / self.std)


def _torch_model(ckpt: Checkpoint) -> nn.Module:
    return _Normalised(from_checkpoint(ckpt), *ckpt.norm).eval()


@contextmanager
def _quiet():
    """Silence the exporter's chatter (missing torchvision, opset conversion notes, deprecations)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _finish(model: onnx.ModelProto, meta: dict, path: Path) -> None:
    """Attach our metadata, drop what a runtime does not need (the exporter's per-node stack traces hold
    local paths and were a fifth of a small model's bytes), and write ``path`` atomically."""
    for node in model.graph.node:
        del node.metadata_props[:]
    del model.graph.value_info[:]  # intermediate shapes: ONNX Runtime infers them; they only cost bytes
    del model.metadata_props[:]
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps(meta, default=_jsonable))
    write_signed(model, path)


def write_signed(model: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Write ``model`` atomically with its own checksum: a SHA-256 over its bytes with the checksum's place
    written as zeros, which the backends verify before they run it."""
    path = Path(path)
    for i in reversed(range(len(model.metadata_props))):
        if model.metadata_props[i].key == CHECKSUM_KEY:
            del model.metadata_props[i]
    model.metadata_props.add(key=CHECKSUM_KEY, value=UNSIGNED)
    raw = model.SerializeToString()
    raw = raw.replace(UNSIGNED.encode(), hashlib.sha256(raw).hexdigest().encode(), 1)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _write(model: nn.Module, example: torch.Tensor, names: tuple[str, str], dynamic: dict, meta: dict,
           path: str | os.PathLike) -> Path:
    """Export ``model`` (traced on ``example``, ``dynamic`` axes) as fp32 ONNX to ``path`` with our metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet():
        program = torch.onnx.export(model, (example,), input_names=[names[0]], output_names=[names[1]],
                                    opset_version=opset(), dynamo=True, external_data=False, verbose=False,
                                    dynamic_shapes=(dynamic,))
    _finish(program.model_proto, {**meta, "precision": "fp32"}, path)
    return path


def _metadata(ckpt: Checkpoint) -> dict:
    """What the file carries besides the graph: the checkpoint without weights and training state, and the
    checksum of the checkpoint it came from, which names the exact weights (stale-export checks)."""
    meta = ckpt.without_training_state().to_dict()
    meta.pop("state_dict")
    return {**meta, "source_checksum": ckpt.checksum}


def export_onnx(ckpt: Checkpoint, path: str | os.PathLike) -> Path:
    """Write the checkpoint's model as fp32 ONNX with a dynamic batch axis, at the newest usable ``opset()``."""
    meta = _metadata(ckpt)
    return _write(_torch_model(ckpt), torch.zeros(2, 1, 28, 28), (INPUT, OUTPUT), {0: torch.export.Dim("batch")},
                  meta, path)


def export_line(ckpt: Checkpoint, path: str | os.PathLike) -> Path:
    """Write a line model's checkpoint as fp32 ONNX, its batch and strip width dynamic."""
    meta = _metadata(ckpt)
    dynamic = {0: torch.export.Dim("batch"), 3: 2 * torch.export.Dim("half_width", min=4)}  # strips are whole frames
    return _write(from_checkpoint(ckpt), torch.zeros(2, 1, 40, 64), (LINE_INPUT, LINE_OUTPUT), dynamic, meta, path)


class _Calibration:
    """ONNX Runtime's CalibrationDataReader protocol over an in-memory array, a few hundred images per call."""

    def __init__(self, x: np.ndarray, batch: int = 500):
        self.batches = iter([x[i:i + batch] for i in range(0, len(x), batch)])

    def get_next(self):
        xb = next(self.batches, None)
        return None if xb is None else {INPUT: xb}


def quantize_int8(fp32_path: str | os.PathLike, path: str | os.PathLike, calibration: np.ndarray) -> Path:
    """Write an int8 copy of the fp32 model at ``fp32_path``, statically quantized with activation ranges from
    ``calibration`` (``[N,1,28,28]`` float32 in [0, 1])."""
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    fp32_path, path = Path(fp32_path), Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        # symbolic shape inference trips over the exporter's Reshape; ONNX's own shape inference suffices
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        out = Path(tmp) / "int8.onnx"
        # reduce_range (7-bit weights) matters: without VNNI, AVX2's u8*s8 multiply-add saturates its int16
        # pair sums, and full 8-bit weights cost the default model 0.21 pp of test accuracy (7-bit: none).
        # Per-channel scales cost 3 % of file size and guard retrained models whose filters differ in scale.
        quantize_static(str(pre), str(out), _Calibration(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
        model = onnx.load(out)
    meta = json.loads(OnnxDigits(fp32_path).session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    _finish(model, {**meta, "precision": "int8", "calibration_images": len(calibration)}, path)
    return path


def line_strips(n: int = 64, seed: int = 0) -> np.ndarray:
    """``n`` strips of 3 to 8 MNIST test digits, 40 px tall and 200 wide, as a line model is given."""
    x, y = data.load_mnist("test")
    rng = np.random.default_rng(seed)
    cond = Condition("check", (3, 8), (-0.1, 0.4), canvas=(200 / 24, 40 / 24))
    return np.stack([1 - make_field(x, y, cond, rng, height=24).image / np.float32(255) for _ in range(n)])[:, None]


@torch.inference_mode()
def check_line(path: str | os.PathLike, ckpt: Checkpoint) -> dict:
    """Check an exported line model: ONNX checker, then ONNX Runtime vs PyTorch on ``line_strips()``."""
    onnx.checker.check_model(str(path), full_check=True)
    strips = line_strips()
    ours = OnnxLines(path).logits(strips)
    ref = from_checkpoint(ckpt)(torch.from_numpy(strips)).numpy()
    return {"max_abs_log_prob_diff": float(np.abs(ours - ref).max()),
            "frame_agreement": float((ours.argmax(2) == ref.argmax(2)).mean())}


@torch.inference_mode()
def check(path: str | os.PathLike, ckpt: Checkpoint, x: np.ndarray) -> dict:
    """Check an exported model: ONNX checker, then ONNX Runtime vs PyTorch on images ``x [N,28,28]`` in [0, 1].

    Returns ``max_abs_logit_diff`` and ``argmax_agreement`` (fraction of images with the same digit).
    """
    onnx.checker.check_model(str(path), full_check=True)
    ort_logits = OnnxDigits(path).logits(x)
    torch_logits = _torch_model(ckpt)(torch.from_numpy(np.asarray(x, np.float32)[:, None])).numpy()
    return {"max_abs_logit_diff": float(np.abs(ort_logits - torch_logits).max()),
            "argmax_agreement": float((ort_logits.argmax(1) == torch_logits.argmax(1)).mean())}


def _accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    m = OnnxDigits(path)
    pred = np.concatenate([m.logits(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).mean())


def export(model: str | os.PathLike, out: str | os.PathLike = ".", int8: bool = False) -> dict:
    """Export the checkpoint at ``model`` to ``out/<name>.onnx`` (and ``out/<name>.int8.onnx``), check each file,
    and return a report: paths, sizes, parity with PyTorch, MNIST test accuracy of each file.

    Raises ``RuntimeError`` if the fp32 model disagrees with PyTorch on any of the parity images.
    """
    model = Path(model)
    ckpt = checkpoint.load(model)
    out = Path(out)
    if ckpt.arch == "line":
        if int8:
            raise InputError(f"{model}: a line model exports as fp32 only")
        path = export_line(ckpt, out / f"{model.stem}.onnx")
        report = {"model": str(model), "fp32": {"path": str(path), "bytes": path.stat().st_size,
                                                **check_line(path, ckpt)}}
        if report["fp32"]["frame_agreement"] < 1:
            raise RuntimeError(f"{path}: ONNX Runtime and PyTorch disagree on "
                               f"{1 - report['fp32']['frame_agreement']:.2%} of the check strips' frames")
        return report
    xt, yt = data.load_mnist("test")
    xt = xt.astype(np.float32) / 255
    files = {"fp32": export_onnx(ckpt, out / f"{model.stem}.onnx")}
    if int8:
        xc, _ = data.load_mnist("train")
        pick = np.random.default_rng(0).choice(len(xc), CALIBRATION_IMAGES, replace=False)
        files["int8"] = quantize_int8(files["fp32"], out / f"{model.stem}.int8.onnx",
                                      xc[np.sort(pick)].astype(np.float32)[:, None] / 255)
    report = {"model": str(model)}
    for precision, path in files.items():
        parity = check(path, ckpt, xt[:PARITY_IMAGES])
        report[precision] = {"path": str(path), "bytes": path.stat().st_size, "parity_images": PARITY_IMAGES, **parity,
                             "test_accuracy": _accuracy(path, xt, yt)}
    if report["fp32"]["argmax_agreement"] < 1:
        raise RuntimeError(f"{files['fp32']}: ONNX Runtime and PyTorch disagree on "
                           f"{1 - report['fp32']['argmax_agreement']:.1%} of {PARITY_IMAGES} test images")
    if int8:
        report["int8"]["size_ratio"] = report["fp32"]["bytes"] / report["int8"]["bytes"]
        report["int8"]["accuracy_drop_pp"] = 100 * (report["fp32"]["test_accuracy"] - report["int8"]["test_accuracy"])
    return report

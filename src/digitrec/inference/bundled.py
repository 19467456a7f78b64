"""The models shipped inside the package and the names of what runs them; free of PyTorch so that the CLI's
parser can list the backends without loading it."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["BACKENDS", "bundled_model_path", "bundled_second_path"]

# what runs the model: PyTorch on a checkpoint, or ONNX Runtime on an exported file (for the bundled
# model, 'onnx-int8' picks its quantized file; for a given .onnx file the two ONNX names are the same)
BACKENDS = ("torch", "onnx", "onnx-int8")
_BUNDLED = {"torch": "default.pt", "onnx": "default.onnx", "onnx-int8": "default.int8.onnx"}
# the second opinion reads few pictures (``ReadPolicy.second_opinion_score``), so it ships in fp32 only
_SECOND = {"torch": "second.pt", "onnx": "second.onnx", "onnx-int8": "second.onnx"}


def bundled_model_path(backend: str = "torch") -> Path:
    """Path of the default model shipped inside the package, in the file that ``backend`` runs."""
    return Path(str(resources.files("digitrec") / "weights" / _BUNDLED[backend]))


def bundled_second_path(backend: str = "torch") -> Path:
    """Path of the bundled second opinion (a smaller network trained apart), in the file that ``backend`` runs."""
    return Path(str(resources.files("digitrec") / "weights" / _SECOND[backend]))

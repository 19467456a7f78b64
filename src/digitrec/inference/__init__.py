"""Reading: ``backends`` (PyTorch and ONNX Runtime behind one call), ``recognizer`` (one digit per image),
``reader`` (a number on a line). Never imports ``training``."""
from .prediction import Prediction
from .reader import NumberReading, read_number
from .recognizer import BACKENDS, Recognizer, bundled_model_path, load

__all__ = ["Prediction", "NumberReading", "Recognizer", "load", "read_number", "bundled_model_path", "BACKENDS"]

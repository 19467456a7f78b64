"""Reading: ``backends`` (PyTorch and ONNX Runtime behind one call), ``recognizer`` (one digit per image),
``reader`` (a number on a line). Never imports ``training``."""
from .bundled import BACKENDS, bundled_model_path

__all__ = ["Prediction", "NumberReading", "Recognizer", "load", "read_number", "bundled_model_path", "BACKENDS"]

_LAZY = {"Prediction": "prediction", "NumberReading": "prediction", "read_number": "reader", "Recognizer": "recognizer",
         "load": "recognizer"}


def __getattr__(name: str):
    # these pull in PyTorch; loaded on first use so that the CLI's parser (``bundled``) stays light
    if name in _LAZY:
        from importlib import import_module
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

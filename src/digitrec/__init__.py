"""digitrec: handwritten digit recognition, from MNIST training to a web app.

>>> import digitrec
>>> r = digitrec.load()               # the bundled default model
>>> r.predict("digit.png").digit
"""
from .errors import InputError

__all__ = ["load", "Recognizer", "Prediction", "NumberReading", "InputError"]

_LAZY = {"load": "recognizer", "Recognizer": "recognizer", "Prediction": "recognizer", "NumberReading": "sequence"}


def __getattr__(name):
    # PyTorch takes seconds to import: load it on first use so `digitrec --help` answers at once
    if name in _LAZY:
        from importlib import import_module
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'digitrec' has no attribute {name!r}")

"""digitrec: handwritten digit recognition, from MNIST training to a web app.

>>> import digitrec
>>> r = digitrec.load()               # the bundled default model
>>> r.predict("digit.png").digit
"""
from .errors import InputError

__all__ = ["load", "Recognizer", "Prediction", "NumberReading", "InputError"]


def __getattr__(name):
    # PyTorch takes seconds to import: load it on first use so `digitrec --help` answers at once
    if name in ("load", "Recognizer", "Prediction", "NumberReading"):
        from . import inference
        return getattr(inference, name)
    raise AttributeError(f"module 'digitrec' has no attribute {name!r}")

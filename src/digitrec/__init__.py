"""digitrec: handwritten digit recognition, from MNIST training to a web app.

>>> import digitrec
>>> r = digitrec.load()               # the bundled default model
>>> r.predict("digit.png").digit
"""
from .errors import InputError
from .recognizer import Prediction, Recognizer, load
from .sequence import NumberReading

__all__ = ["load", "Recognizer", "Prediction", "NumberReading", "InputError"]

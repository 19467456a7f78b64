"""Making models: ``presets`` (hyperparameters), ``augment``, ``loop`` (training, DDP, resume), ``calibrate``
(temperature and "not a digit" threshold), ``line`` (the line model), ``launch`` (the command, torchrun).
Nothing on the reading path imports this package."""
from .loop import train
from .presets import PRESETS, Preset

__all__ = ["train", "PRESETS", "Preset"]

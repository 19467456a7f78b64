"""Making models: ``presets`` (hyperparameters), ``augment``, ``loop`` (training, DDP, resume), ``calibrate``
(temperature and "not a digit" threshold), ``line`` (the line model), ``launch`` (the command, torchrun).
Nothing on the reading path imports this package."""
from .presets import PRESETS, Preset

__all__ = ["train", "PRESETS", "Preset"]


def __getattr__(name: str):
    # ``train`` pulls in PyTorch; loaded on first use so that the CLI's parser (training.flags) stays light
    if name == "train":
        from .loop import train
        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

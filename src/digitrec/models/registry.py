"""Architectures by name: a fresh model, or the one a checkpoint holds.

Every digit model takes a float batch ``[N,1,28,28]`` already normalised (``MNIST_MEAN``/``MNIST_STD``)
and returns logits ``[N,10]``; the line model reads a strip ``[N,1,40,W]`` instead.
"""
from __future__ import annotations

import torch
from torch import nn

from ..checkpoint import Checkpoint
from ..errors import InputError
from .cnn import CNN
from .line import LineNet
from .logreg import LogReg

__all__ = ["MNIST_MEAN", "MNIST_STD", "ARCHS", "MAX_PARAMETERS", "build", "from_checkpoint", "count_parameters"]

# of the 60,000 training images scaled to [0, 1]
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

ARCHS = {"cnn": CNN, "logreg": LogReg, "line": LineNet}
# a model file's network may be this large: the bundled ones have under a million parameters, and a file
# of a few kB may ask for billions (its weights are allocated before they could be found missing)
MAX_PARAMETERS = 50_000_000
_MAX_CONFIG_CHARS = 1_000  # a configuration is a few numbers; a long one would build a long network first


def build(arch: str, config: dict | None = None) -> nn.Module:
    """Return a freshly initialised model of architecture ``arch`` ('cnn', 'logreg' or 'line'); an
    ``InputError`` for an unknown one, a configuration it does not take, or one over ``MAX_PARAMETERS``."""
    if arch not in ARCHS:
        raise InputError(f"unknown model architecture {str(arch)[:40]!r}; this digitrec has {', '.join(ARCHS)}")
    config = config or {}
    if not isinstance(config, dict) or len(repr(config)) > _MAX_CONFIG_CHARS:
        raise InputError(f"the {arch} model's configuration is not a short dict of its settings")
    try:
        with torch.device("meta"):  # shapes only, no memory: the size is known before anything is allocated
            size = count_parameters(ARCHS[arch](**config))
    except (TypeError, ValueError, RuntimeError, IndexError) as e:
        raise InputError(f"the {arch} model's configuration {repr(config)[:120]} does not build "
                         f"({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None
    if size > MAX_PARAMETERS:
        raise InputError(f"the {arch} model's configuration asks for {size:,} parameters, over the "
                         f"{MAX_PARAMETERS:,} a digitrec model may have")
    return ARCHS[arch](**config)


def from_checkpoint(ckpt: Checkpoint) -> nn.Module:
    """The model a checkpoint holds (its ``arch``, ``config`` and ``state_dict``), in eval mode; an
    ``InputError`` when the weights do not fit the network."""
    model = build(ckpt.arch, ckpt.config)
    try:
        model.load_state_dict(ckpt.state_dict)
    except (RuntimeError, TypeError, AttributeError, KeyError) as e:
        raise InputError(f"the model file's weights do not fit its {ckpt.arch} network "
                         f"({str(e).splitlines()[0][:160] if str(e) else type(e).__name__})") from None
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

"""Architectures by name: a fresh model, or the one a checkpoint holds.

Every digit model takes a float batch ``[N,1,28,28]`` already normalised (``MNIST_MEAN``/``MNIST_STD``)
and returns logits ``[N,10]``; the line model reads a strip ``[N,1,40,W]`` instead.
"""
from __future__ import annotations

from torch import nn

from ..checkpoint import Checkpoint
from .cnn import CNN
from .line import LineNet
from .logreg import LogReg

__all__ = ["MNIST_MEAN", "MNIST_STD", "ARCHS", "build", "from_checkpoint", "count_parameters"]

# of the 60,000 training images scaled to [0, 1]
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

ARCHS = {"cnn": CNN, "logreg": LogReg, "line": LineNet}


def build(arch: str, config: dict | None = None) -> nn.Module:
    """Return a freshly initialised model of architecture ``arch`` ('cnn', 'logreg' or 'line')."""
    return ARCHS[arch](**(config or {}))


def from_checkpoint(ckpt: Checkpoint) -> nn.Module:
    """The model a checkpoint holds (its ``arch``, ``config`` and ``state_dict``), in eval mode."""
    model = build(ckpt.arch, ckpt.config)
    model.load_state_dict(ckpt.state_dict)
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

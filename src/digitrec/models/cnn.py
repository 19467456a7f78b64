"""The digit CNNs: VGG-style stages of 3x3 conv-BN-ReLU."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["CNN", "conv_bn"]


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    # no conv bias: BatchNorm's shift makes it redundant
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class CNN(nn.Module):
    """VGG-style stages of 3x3 conv-BN-ReLU, each stage ending in 2x2 max-pool; global max-pool, one linear layer.

    ``stages`` gives each stage's conv widths, e.g. ``((32,), (64, 64), (128,))``. The first stage
    has a single conv because at 28x28 every extra conv is four times dearer than at 14x14: on a
    2-core CPU the network pays for its depth at 14x14 and 7x7.
    """

    def __init__(self, stages=((32,), (64, 64), (128,)), dropout: float = 0.0):
        super().__init__()
        layers, c_in = [], 1
        for widths in stages:
            for c_out in widths:
                layers.append(conv_bn(c_in, c_out))
                c_in = c_out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


"""The line model of multi-digit reading: a convolutional-recurrent reader of a strip, for CTC."""
from __future__ import annotations

import torch
from torch import nn

from .cnn import conv_bn

__all__ = ["LineNet"]


class LineNet(nn.Module):
    """Convolutional-recurrent reader of a field, for CTC: strip ``[N,1,40,W]`` of ink -> ``[N,W//2,11]`` log-probs.

    Class 0 is CTC's blank, class ``1+d`` digit ``d``. The convolutions halve the width once and the
    height to 1, so each output frame covers 2 px of the strip (a digit is about 24 px tall there, a
    "1" a few frames wide, which CTC needs: two equal neighbours take a blank frame between them); a
    bidirectional GRU along the frames gives each frame the context of its neighbours, what tells a
    digit from the half of one that touches it.
    """

    def __init__(self, widths=(32, 64, 96, 128), hidden: int = 96):
        super().__init__()
        w1, w2, w3, w4 = widths
        self.features = nn.Sequential(
            conv_bn(1, w1), nn.MaxPool2d(2),                        # 20 x W/2
            conv_bn(w1, w2), nn.MaxPool2d((2, 1)),                  # 10
            conv_bn(w2, w3), conv_bn(w3, w3), nn.MaxPool2d((2, 1)),  # 5
            conv_bn(w3, w4), nn.MaxPool2d((5, 1)))                  # 1
        self.rnn = nn.GRU(w4, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 11)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = self.features(x).squeeze(2).transpose(1, 2)  # [N, W//2, C]
        return torch.log_softmax(self.head(self.rnn(frames)[0]), dim=-1)


"""The baseline: multinomial logistic regression, held as one linear layer so that it runs (and exports) as
every other digit model does. It is fitted by scikit-learn (``training.loop``)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["LogReg"]


class LogReg(nn.Module):
    """Multinomial logistic regression on the 784 normalised pixels."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


"""Model architectures: the CNNs (PyTorch), the logistic-regression baseline and the line reader.

Every digit model takes a float batch ``[N,1,28,28]`` already normalised (MNIST mean/std) and
returns logits ``[N,10]``; the baseline is fitted by scikit-learn and then held as a single
linear layer so that one inference path (and one ONNX export) serves all models. The line reader
(``LineNet``) reads a strip of a whole field instead, for multi-digit reading.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["MNIST_MEAN", "MNIST_STD", "build", "from_checkpoint", "count_parameters", "fit_logreg"]

# of the 60,000 training images scaled to [0, 1]
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
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
                layers.append(_conv_bn(c_in, c_out))
                c_in = c_out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class LogReg(nn.Module):
    """Multinomial logistic regression on the 784 normalised pixels."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


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
            _conv_bn(1, w1), nn.MaxPool2d(2),                        # 20 x W/2
            _conv_bn(w1, w2), nn.MaxPool2d((2, 1)),                  # 10
            _conv_bn(w2, w3), _conv_bn(w3, w3), nn.MaxPool2d((2, 1)),  # 5
            _conv_bn(w3, w4), nn.MaxPool2d((5, 1)))                  # 1
        self.rnn = nn.GRU(w4, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 11)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = self.features(x).squeeze(2).transpose(1, 2)  # [N, W//2, C]
        return torch.log_softmax(self.head(self.rnn(frames)[0]), dim=-1)


_ARCHS = {"cnn": CNN, "logreg": LogReg, "line": LineNet}


def build(arch: str, config: dict | None = None) -> nn.Module:
    """Return a freshly initialised model of architecture ``arch`` ('cnn', 'logreg' or 'line')."""
    return _ARCHS[arch](**(config or {}))


def from_checkpoint(ckpt: dict) -> nn.Module:
    """The model a checkpoint holds (its ``arch``, ``config`` and ``state_dict``), in eval mode."""
    model = build(ckpt["arch"], ckpt.get("config"))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fit_logreg(x: torch.Tensor, y: torch.Tensor, max_iter: int = 100, seed: int = 0) -> LogReg:
    """Fit the baseline with scikit-learn (L-BFGS, multinomial) on normalised ``x [N,1,28,28]``; return it as a LogReg."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=max_iter, C=0.05, random_state=seed)
    clf.fit(x.flatten(1).numpy(), y.numpy())
    model = LogReg()
    with torch.no_grad():
        model.linear.weight.copy_(torch.from_numpy(clf.coef_).float())
        model.linear.bias.copy_(torch.from_numpy(clf.intercept_).float())
    return model

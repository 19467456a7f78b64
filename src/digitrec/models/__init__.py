"""Network definitions only: ``cnn`` (the digit CNNs), ``logreg`` (the baseline), ``line`` (multi-digit
reading), and ``registry`` (architectures by name, from a checkpoint)."""
from .registry import (
    ARCHS,
    MNIST_MEAN,
    MNIST_STD,
    build,
    count_parameters,
    from_checkpoint,
)

__all__ = ["ARCHS", "MNIST_MEAN", "MNIST_STD", "build", "from_checkpoint", "count_parameters"]

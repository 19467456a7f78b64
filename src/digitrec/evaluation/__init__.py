"""How well a model does: ``metrics`` (accuracy, F1, ROC, calibration, speed), ``corruptions`` (MNIST-C-style),
``robustness`` (corruptions and non-digits through the full preprocessing), ``wild`` (realistic inputs)."""

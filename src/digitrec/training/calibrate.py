"""After training: fit the softmax temperature and the "not a digit" threshold on held-out digits, seen
through the Recognizer's own preprocessing; and the bank of synthetic non-digits for outlier exposure."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.render.non_digits import non_digits
from ..data.render.seeds import CALIBRATION_SEED, OUTLIER_BANK_SEED
from ..evaluation.metrics import expected_calibration_error
from ..imaging import preprocess_batch
from ..inference.recognizer import digit_score
from ..models import MNIST_MEAN, MNIST_STD

__all__ = ["calibrate", "outlier_bank", "preprocessed"]


def preprocessed(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Images as the Recognizer sees them (``[M,28,28]`` in [0, 1]) and the indices of those not blank."""
    x28, found = preprocess_batch(images)
    kept = np.flatnonzero(found)
    return x28[kept], kept


def outlier_bank(n: int, seed: int) -> torch.Tensor:
    """Synthetic non-digits, preprocessed as the Recognizer would: ``[M,1,28,28]`` (blank ones dropped)."""
    raw = non_digits(n, OUTLIER_BANK_SEED + seed)
    x28, _ = preprocessed(raw[:, 0].numpy())
    return torch.from_numpy(x28)[:, None]


@torch.no_grad()
def calibrate(net: torch.nn.Module, images: np.ndarray, labels: np.ndarray, reject_rate: float, seed: int = 0) -> dict:
    """Fit the softmax temperature and the "not a digit" threshold on held-out training images.

    Returns the checkpoint fields ``temperature``, ``reject_threshold`` and ``calibration`` (the evidence:
    held-out NLL and ECE before and after, the share rejected, AUROC against synthetic non-digits).
    """
    from scipy.optimize import minimize_scalar
    from sklearn.metrics import roc_auc_score

    net.eval()
    x28, kept = preprocessed(images)
    y = torch.from_numpy(np.asarray(labels)[kept])
    logits = net((torch.from_numpy(x28)[:, None] - MNIST_MEAN) / MNIST_STD)

    def nll(log_t):
        return F.cross_entropy(logits / np.exp(log_t), y).item()

    t = float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))
    score = digit_score(logits, t)
    threshold = float(torch.quantile(score, reject_rate))
    fakes = non_digits(min(1000, len(y)), CALIBRATION_SEED + seed)
    outliers, _ = preprocessed(fakes[:, 0].numpy())
    out_score = digit_score(net((torch.from_numpy(outliers)[:, None] - MNIST_MEAN) / MNIST_STD), t)
    both = torch.cat([score, out_score]).numpy()
    ece = [expected_calibration_error(y.numpy(), torch.softmax(logits / temp, 1).numpy()) for temp in (1.0, t)]
    return {"temperature": t, "reject_threshold": threshold,
            "calibration": {"heldout_images": len(y), "nll_before": nll(0.0), "nll_after": nll(np.log(t)),
                            "ece_before": ece[0], "ece_after": ece[1],
                            "heldout_rejected": float((score < threshold).float().mean()),
                            "synthetic_non_digits_rejected": float((out_score < threshold).float().mean()),
                            "auroc_vs_synthetic": float(roc_auc_score(np.r_[np.ones(len(score)), np.zeros(len(out_score))], both))}}

"""Every hyperparameter of a training run, one frozen dataclass; the presets are instances of it, not code paths."""
from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["Preset", "PRESETS"]


@dataclass(frozen=True)
class Preset:
    """Every hyperparameter of a run; presets below are instances, not code paths."""
    stages: tuple = ((16,), (32, 32), (64, 64))  # conv widths per stage, see models.CNN
    epochs: int = 20               # passes over the 60,000 training images
    batch_size: int = 128          # images per optimizer step
    lr: float = 4e-3               # AdamW peak learning rate of the one-cycle schedule
    warmup: float = 0.2            # fraction of steps spent rising to the peak
    weight_decay: float = 5e-4     # AdamW decoupled weight decay
    label_smoothing: float = 0.1   # softens targets; temperature scaling restores calibration
    rotate_deg: float = 12.0       # augmentation: rotation range, degrees either way
    scale: float = 0.12            # augmentation: relative zoom range either way
    shear_deg: float = 8.0         # augmentation: shear range, degrees either way
    translate_px: float = 2.5      # augmentation: shift range, pixels either way
    augment: bool = True           # apply the augmentations of this preset to each batch
    elastic_px: float = 0.0        # augmentation: elastic displacement at the grid nodes, pixels either way
    elastic_cells: int = 3         # augmentation: elastic grid cells per side (fewer = smoother bends)
    stroke_p: float = 0.0          # augmentation: share of images thickened (3x3) or thinned (2x2), half each
    blur_p: float = 0.0            # augmentation: share blurred by a Gaussian of sigma U(0, blur_sigma)
    blur_sigma: float = 1.0        # augmentation: largest blur sigma, pixels
    resample_p: float = 0.0        # augmentation: share brought down to U(resample_min, 28) pixels and back
    resample_min: int = 14         # augmentation: smallest side of that round trip, pixels
    contrast_p: float = 0.0        # augmentation: share with ink gamma in [1/2, 2] and gain U(0.4, 1)
    noise_p: float = 0.0           # augmentation: share with Gaussian noise and up to 1 % salt pixels
    noise_sigma: float = 0.1       # augmentation: largest noise std, ink units (0-1)
    outlier_share: float = 0.0     # synthetic non-digits added per digit in a batch (outlier exposure)
    outlier_weight: float = 0.5    # weight of their loss (cross-entropy to the uniform distribution)
    outlier_bank: int = 6000       # synthetic non-digits made, through preprocessing, before training
    holdout: int = 5000            # last training images kept out: temperature and rejection threshold (0: none)
    reject_rate: float = 0.005     # share of held-out digits the "not a digit" threshold may refuse
    reject: bool = True            # switch that threshold on (False: kept as calibration's fitted_reject_threshold)
    eval_batch: int = 1000         # images per forward pass when scoring


# the bundled model's recipe: affine warps, blur/down-sampling and noise for photos and scans, and outlier
# exposure weighted lightly, which separates non-digits without refusing corrupted digits. Its "not a digit"
# threshold is fitted but off: refusing 0.5 % of real digits costs more accuracy than it buys
_DEFAULT = Preset(blur_p=0.2, resample_p=0.2, noise_p=0.2, outlier_share=0.25, outlier_weight=0.2, reject=False)

PRESETS = {
    # the quickest run past 99 %: one epoch, no augmentation (docs/benchmarks.md, "Training")
    "fast": Preset(stages=((16,), (32, 32), (64,)), epochs=1, batch_size=128, lr=6e-3, warmup=0.25,
                   label_smoothing=0.0, augment=False, holdout=2000),
    "default": _DEFAULT,
    # the bundled second opinion (``weights/second.pt``, seed 2): the default recipe on a network of half the
    # arithmetic. Trained apart, it disagrees with the bundled model on non-digits far more than on digits
    "second": replace(_DEFAULT, stages=((16,), (24, 24), (48, 48))),
    # wider warps, elastic bends and stroke width for unusual hands; a little clean accuracy is the price
    "robust": Preset(rotate_deg=15.0, shear_deg=15.0, elastic_px=1.5, stroke_p=0.3, blur_p=0.2,
                     resample_p=0.2, outlier_share=0.25),
}

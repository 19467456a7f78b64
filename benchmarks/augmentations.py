"""Effect of each training augmentation: short runs, scored on clean and MNIST-C-style corrupted test images.

Each variant trains the default preset briefly on a subset with the augmentations beyond the affine
one switched off, then one (or several) switched back on; every model sees the same test images through the full preprocessing, so
the differences are the augmentations'. Short runs rank the augmentations; they do not reach the
final accuracies.

    python benchmarks/augmentations.py [--epochs 2] [--train 20000] [--test 1000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

from digitrec import data
from digitrec.evaluation.corruptions import CORRUPTIONS, corrupt
from digitrec.inference import Recognizer
from digitrec.training import PRESETS, train
from digitrec.training.calibrate import preprocessed

# the default preset with every augmentation beyond the affine one, and outlier exposure, switched off
BASE = {"elastic_px": 0.0, "stroke_p": 0.0, "blur_p": 0.0, "resample_p": 0.0, "contrast_p": 0.0, "noise_p": 0.0,
        "outlier_share": 0.0}
VARIANTS = {
    "affine only": {},
    "+ elastic": {"elastic_px": 1.5},
    "+ stroke width": {"stroke_p": 0.3},
    "+ blur/resample": {"blur_p": 0.2, "resample_p": 0.2},
    "+ contrast": {"contrast_p": 0.3},
    "+ noise": {"noise_p": 0.2},
    "+ elastic, stroke, blur/resample": {"elastic_px": 1.5, "stroke_p": 0.3, "blur_p": 0.2, "resample_p": 0.2},
    "+ all five": {"elastic_px": 1.5, "stroke_p": 0.3, "blur_p": 0.2, "resample_p": 0.2, "contrast_p": 0.3,
                   "noise_p": 0.2},
    "robust preset's (+ outlier exposure)": {k: v for k, v in vars(PRESETS["robust"]).items() if k in BASE},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train", type=int, default=20000, help="training images (the first N)")
    p.add_argument("--test", type=int, default=1000, help="test images per condition (the first N)")
    p.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    a = p.parse_args()
    print("command: python " + " ".join(sys.argv))
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    xt, yt = data.load_mnist("test")
    xt, yt = xt[:a.test], yt[:a.test]
    conditions = {"clean": xt, **{name: corrupt(xt, name, seed=1) for name in CORRUPTIONS}}
    t0 = time.perf_counter()
    prepared = {name: preprocessed(x) for name, x in conditions.items()}
    print(f"preprocessed {len(conditions)} x {a.test} test images in {time.perf_counter() - t0:.0f} s")
    print(f"{'variant':36s} {'clean':>6s} {'corrupt':>7s} {'s/epoch':>7s}  worst three corruptions")
    for name, extra in VARIANTS.items():
        if a.only and name not in a.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = train("cnn", "default", tmp, train_subset=a.train, epochs=a.epochs, test_subset=1000,
                         progress=False, holdout=500, **{**BASE, **extra})
        r = Recognizer(ckpt)
        acc = {}
        for cond, (x28, kept) in prepared.items():
            pred = np.full(len(yt), -1)
            pred[kept] = r.probabilities(x28).argmax(1)
            acc[cond] = float((pred == yt).mean())
        corrupted = [v for k, v in acc.items() if k != "clean"]
        worst = sorted((v, k) for k, v in acc.items() if k != "clean")[:3]
        per_epoch = np.mean([h["seconds"] for h in ckpt.history])
        print(f"{name:36s} {acc['clean']:6.4f} {np.mean(corrupted):7.4f} {per_epoch:7.1f}  "
              + ", ".join(f"{k} {v:.3f}" for v, k in worst), flush=True)


if __name__ == "__main__":
    main()

"""Training recipes side by side: full-length runs, scored on clean MNIST test and on its corruptions.

Each recipe is a preset with some fields replaced; every recipe x seed trains in its own
process (on a GPU they share it), then is scored through ``predict_batch`` on all 10,000 test images
with rejection off, and through ``digitrec.evaluation.robustness`` (its own fitted threshold on) on the
first ``--n`` test images, their 16 corruptions and Fashion-MNIST. This is how the default preset was
chosen; six recipes at two seeds took about 8 minutes on one H200 GPU.

    python benchmarks/recipes.py [--device cuda] [--seeds 0 1] [--n 2000] [--recipe NAME ...]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from dataclasses import replace

import numpy as np

from digitrec.evaluation.robustness import FASHION_MNIST

# the robust preset's warps (rotation and shear up to 15 degrees) with its other augmentations off
WARPS_ONLY = dict(elastic_px=0.0, stroke_p=0.0, blur_p=0.0, resample_p=0.0, outlier_share=0.0)
BLUR_NOISE = dict(WARPS_ONLY, blur_p=0.2, resample_p=0.2, noise_p=0.2)
# every recipe: (preset it starts from, fields replaced); thresholds on, so the robustness tables compare
RECIPES = {
    "robust": ("robust", {}),  # the robust preset as it is
    "warps": ("robust", WARPS_ONLY),
    "warps-holdout2000": ("robust", dict(WARPS_ONLY, holdout=2000)),
    "warps-blur-noise": ("robust", BLUR_NOISE),
    "warps-blur-noise-oe": ("robust", dict(BLUR_NOISE, outlier_share=0.25)),
    "warps-blur-noise-stroke-oe": ("robust", dict(BLUR_NOISE, stroke_p=0.3, outlier_share=0.25)),
    "default": ("default", {"reject": True}),
}


def run(job: tuple) -> dict:
    name, seed, device, n, workdir = job
    import torch

    torch.set_num_threads(1)  # the runs share the cores
    import digitrec
    from digitrec import data
    from digitrec.evaluation.robustness import robustness
    from digitrec.training import PRESETS, train

    base, fields = RECIPES[name]
    out = os.path.join(workdir, f"{list(RECIPES).index(name)}-{seed}")
    t0 = time.perf_counter()
    ckpt = train("cnn", replace(PRESETS[base], **fields), out, seed=seed, progress=False, device=device,
                 checkpoint_every=0)
    seconds = time.perf_counter() - t0
    x, y = data.load_mnist("test")
    preds = digitrec.load(os.path.join(out, "model.pt"), reject_threshold=float("-inf")).predict_batch(list(x))
    fashion = {"fashion": data.read_idx(FASHION_MNIST)[:n]} if FASHION_MNIST.exists() else {}
    table = robustness(digitrec.load(os.path.join(out, "model.pt")), x[:n], y[:n], fashion)
    return {"recipe": name, "seed": seed, "seconds": seconds,
            "accuracy": float(np.mean([p.digit == t for p, t in zip(preds, y)])),
            "clean_rejected": table["clean"]["rejected"], "mean_corruption": table["mean_corruption_accuracy"],
            "fashion_auroc": table["not_a_digit"].get("fashion", {}).get("auroc", float("nan")),
            "ece": ckpt.calibration["ece_after"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--n", type=int, default=2000, help="test images (and Fashion-MNIST images) for the robustness table")
    p.add_argument("--recipe", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    p.add_argument("--json", help="also write the rows to this file")
    a = p.parse_args()
    print("command: python " + " ".join(sys.argv), flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        jobs = [(r, s, a.device, a.n, workdir) for s in a.seeds for r in a.recipe]
        # spawn: CUDA cannot be used in forked children
        with mp.get_context("spawn").Pool(len(jobs) if a.device == "cuda" else 1) as pool:
            rows = sorted(pool.map(run, jobs), key=lambda r: (a.recipe.index(r["recipe"]), r["seed"]))
    print(f"{'recipe':28s} {'seed':>4s} {'train s':>7s} {'test acc':>8s} {'corrupt':>7s} {'rejected':>8s} "
          f"{'Fashion AUROC':>13s} {'ECE':>6s}")
    for r in rows:
        print(f"{r['recipe']:28s} {r['seed']:4d} {r['seconds']:7.0f} {r['accuracy']:8.4f} {r['mean_corruption']:7.4f} "
              f"{r['clean_rejected']:8.4f} {r['fashion_auroc']:13.4f} {r['ece']:6.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()

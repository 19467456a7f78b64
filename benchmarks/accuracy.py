"""Train each preset and the baseline from scratch; print MNIST test accuracy and training seconds.

Also scores each model through the public path, digitrec.load(path).predict_batch (preprocessing included).
Usage: python benchmarks/accuracy.py [--skip-default]   (the default preset takes ~10 min on 2 cores)
"""
import argparse
import tempfile
import time

import numpy as np
from _machine import header

import digitrec
from digitrec import data
from digitrec.training import train


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--skip-default", action="store_true", help="skip the ~10-minute default preset")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    print(header())
    runs = [("logreg", "default"), ("cnn", "fast")] + ([] if a.skip_default else [("cnn", "default")])
    xt, yt = data.load_mnist("test")
    print(f"{'model':8} {'preset':8} {'train s':>8} {'wall s':>8} {'test acc':>9} {'via predict_batch':>18}")
    with tempfile.TemporaryDirectory() as tmp:
        for model, preset in runs:
            out = f"{tmp}/{model}-{preset}"
            t0 = time.perf_counter()
            ckpt = train(model, preset, out, seed=a.seed, progress=False)
            wall = time.perf_counter() - t0
            preds = digitrec.load(f"{out}/model.pt").predict_batch(xt)
            acc_api = np.mean([q.digit == t for q, t in zip(preds, yt)])
            print(f"{model:8} {preset:8} {ckpt.train_seconds:8.1f} {wall:8.1f} "
                  f"{ckpt.history[-1]['test_acc']:9.4f} {acc_api:18.4f}", flush=True)


if __name__ == "__main__":
    main()

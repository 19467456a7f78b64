"""A read policy fitted by ``digitrec calibrate`` against the one the model had: what each flags on MNIST test.

The policy is fitted on renders of held-out MNIST *training* digits and generated non-digits
(``training.policy``); MNIST test is only read here, to report. Per policy it prints the accuracy on MNIST
test through ``predict_batch``, the share of right reads doubted (flagged unsure or rejected), the share of
misreads doubted, the share rejected, and the fitted values.

    python benchmarks/calibrate.py --model PATH [--n 200] [--flag-right 0.02]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import header

import digitrec
from digitrec import data
from digitrec.training.policy import fit_policy


def flags(r, x: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and the shares of right reads and misreads doubted, of rejected pictures."""
    preds = r.predict_batch(x)
    digit = np.array([-1 if p.digit is None else p.digit for p in preds])
    doubted = np.array([p.unsure or p.digit is None for p in preds])
    right = digit == y
    return {"accuracy": right.mean(), "right_doubted": doubted[right].mean(), "misreads_doubted": doubted[~right].mean(),
            "rejected": (digit < 0).mean()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a checkpoint (.pt)")
    ap.add_argument("--n", type=int, default=200, help="renders per context to fit on (default: 200)")
    ap.add_argument("--flag-right", type=float, default=0.02, help="the most right renders doubted (default: 0.02)")
    a = ap.parse_args()
    print(header())
    x, y = data.load_mnist("test")
    r = digitrec.load(a.model)
    rows = [("the model's own", r.policy, flags(r, x, y))]
    t0 = time.perf_counter()
    fitted = fit_policy(r, n=a.n, flag_right=a.flag_right)
    seconds = time.perf_counter() - t0
    r.policy = fitted
    rows.append(("fitted", fitted, flags(r, x, y)))
    print(f"# fitted in {seconds:.0f} s on {fitted.fitted['pictures']:,} renders; on them: right doubted "
          f"{fitted.fitted['right_doubted']:.4f}, misreads caught {fitted.fitted['misreads_caught']:.4f}, "
          f"non-digits caught {fitted.fitted['non_digits_caught']:.4f}")
    print(f"{'policy':16} {'MNIST acc':>9} {'right doubted':>13} {'misreads doubted':>16} {'rejected':>8}   values")
    for name, p, f in rows:
        print(f"{name:16} {f['accuracy']:9.4f} {f['right_doubted']:13.4f} {f['misreads_doubted']:16.4f} "
              f"{f['rejected']:8.4f}   light_accept {p.light_accept:.3f}, reject {p.reject_score:.3f}, unsure "
              f"score {p.unsure_score:.3f} / confidence {p.unsure_confidence:.3f}, doubted {p.doubted_confidence:.3f}")


if __name__ == "__main__":
    main()

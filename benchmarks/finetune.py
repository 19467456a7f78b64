"""Fine-tuning on one writer's corrections: does the model learn a style it reads badly, and keep MNIST?

The "writer" draws with an outlining pen (``data.render.contexts``'s ``hollow`` context, the style the bundled
model reads worst of the broad benchmark): their corrections are ``--corrections`` MNIST *training* digits
drawn that way (what a person would have corrected), their unseen digits ``--unseen`` MNIST *test* digits
drawn that way (never trained on). Every picture goes through ``Recognizer.preprocess`` as a user's would;
``training.finetune.finetune`` then continues the model on the corrections mixed with MNIST. Prints the
writer's accuracy before and after (through ``predict_batch``), MNIST test before and after, and the
fine-tuning seconds.

    python benchmarks/finetune.py [--corrections 200] [--unseen 1000] [--steps 300] [--style hollow] [--seed 0]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import header

import digitrec
from digitrec import data
from digitrec.data.render.contexts import CONTEXTS
from digitrec.training.finetune import LEARNING_RATE, NEW_SHARE, STEPS, _mnist_test, finetune


def _accuracy(r, pictures, labels) -> float:
    digits = np.array([-1 if p.digit is None else p.digit for p in r.predict_batch(pictures)])
    return float((digits == labels).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corrections", type=int, default=200)
    ap.add_argument("--unseen", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--lr", type=float, default=LEARNING_RATE)
    ap.add_argument("--new-share", type=float, default=NEW_SHARE, help="share of each batch from the corrections")
    ap.add_argument("--style", default="hollow", choices=sorted(CONTEXTS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(header())
    r = digitrec.load()
    style = CONTEXTS[args.style]
    x, y = data.load_mnist("train")
    xt, yt = data.load_mnist("test")
    pick = np.random.default_rng(args.seed).choice(50_000, args.corrections, replace=False)  # not the held-out tail
    corrections = style.render(x[pick], seed=args.seed)
    unseen = style.render(xt[1::2][:args.unseen], seed=args.seed + 1)  # the report half of MNIST test
    unseen_y = yt[1::2][:args.unseen]
    x28, found = r.preprocess(corrections)
    before = {"writer": _accuracy(r, unseen, unseen_y), "mnist": _mnist_test(r.checkpoint)}
    t0 = time.perf_counter()
    new = finetune(r.checkpoint, x28[found], y[pick][found], steps=args.steps, lr=args.lr, new_share=args.new_share,
                   seed=args.seed)
    seconds = time.perf_counter() - t0
    r2 = digitrec.Recognizer(new)
    after = {"writer": _accuracy(r2, unseen, unseen_y), "mnist": _mnist_test(new)}
    print(f"style {args.style}: {int(found.sum())} corrections, {args.unseen} unseen digits, {args.steps} steps, "
          f"lr {args.lr:g}, corrections {args.new_share:.0%} of each batch")
    print(f"  writer's unseen digits  {before['writer']:.2%} -> {after['writer']:.2%}  "
          f"({100 * (after['writer'] - before['writer']):+.1f} pt)")
    print(f"  MNIST test              {before['mnist']:.2%} -> {after['mnist']:.2%}  "
          f"({100 * (after['mnist'] - before['mnist']):+.2f} pt)")
    print(f"  fine-tuning {seconds:.0f} s (training {new.history[-1]['seconds']:.0f} s, the rest calibration)")


if __name__ == "__main__":
    main()

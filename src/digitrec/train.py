"""Training: presets, the loop on whole in-memory tensors, atomic checkpoints, resume.

Run as ``digitrec train`` or ``python -m digitrec.train``. The whole training set is one
float tensor; each step slices a shuffled batch out of it and augments it in one batched call,
so there is no per-sample loader on the hot path.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import augment, data
from .errors import InputError
from .evaluate import expected_calibration_error
from .preprocess import preprocess
from .models import MNIST_MEAN, MNIST_STD, build, count_parameters, fit_logreg

__all__ = ["Preset", "PRESETS", "train", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT", "calibrate",
           "digit_score"]

CHECKPOINT_FORMAT = "digitrec-checkpoint/1"
PREPROCESS_VERSION = 1


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
    holdout: int = 5000            # last training images kept out: temperature and rejection threshold
    reject_rate: float = 0.005     # share of held-out digits the "not a digit" threshold may refuse
    eval_batch: int = 1000         # images per forward pass when scoring


PRESETS = {
    # >= 99.0 % in about 20 s of training on a 2-core CPU
    "fast": Preset(stages=((16,), (32,), (64,)), epochs=2, batch_size=128, lr=6e-3, warmup=0.25,
                   label_smoothing=0.0, augment=False, holdout=2000),
    # >= 99.70 % in under 15 min on a 2-core CPU; the augmentations and outlier exposure are for
    # real-world input (benchmarks/robustness.py, benchmarks/augmentations.py)
    "default": Preset(rotate_deg=15.0, shear_deg=15.0, elastic_px=1.5, stroke_p=0.3, blur_p=0.2,
                      resample_p=0.2, outlier_share=0.25),
}


# --- checkpoints -----------------------------------------------------------------------------

def save_checkpoint(path: str | os.PathLike, ckpt: dict) -> None:
    """Write ``ckpt`` atomically: a crash mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint without executing pickled code; ``InputError`` if it is missing, corrupt or foreign."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"{path}: not a readable digitrec checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not a digitrec checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else None!r})")
    return ckpt


def _write_metrics(out: Path, ckpt: dict) -> None:
    summary = {k: ckpt[k] for k in ("arch", "preset", "seed", "data_hash", "parameters", "history", "temperature",
                                    "reject_threshold", "calibration") if k in ckpt}
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / "metrics.json")


# --- training --------------------------------------------------------------------------------

def _as_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).float().div_(255).unsqueeze(1)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - MNIST_MEAN) / MNIST_STD


@torch.no_grad()
def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        xb = _normalise(x[i:i + batch]).contiguous(memory_format=torch.channels_last)
        correct += (model(xb).argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / len(x)


def train(model: str = "cnn", preset: str | Preset = "default", out: str | os.PathLike = "runs/default",
          resume: bool = False, seed: int = 0, train_subset: int | None = None,
          test_subset: int | None = None, progress: bool = True, **overrides) -> dict:
    """Train a model and return its final checkpoint dict; ``out/model.pt`` and ``out/metrics.json`` are written.

    ``train_subset``/``test_subset`` take the first N images (tests use them); ``overrides`` replace preset fields.
    """
    out = Path(out)
    hp = PRESETS[preset] if isinstance(preset, str) else preset
    hp = replace(hp, **overrides)
    preset_name = preset if isinstance(preset, str) else "custom"
    x_np, y_np = data.load_mnist("train")
    xt_np, yt_np = data.load_mnist("test")
    x_np, y_np = x_np[:train_subset], y_np[:train_subset]
    xt_np, yt_np = xt_np[:test_subset], yt_np[:test_subset]
    data_hash = data.data_hash(x_np, y_np)
    # the held-out images are MNIST's own validation split (the last 10,000) when training on all of it
    n_hold = min(hp.holdout, len(x_np) // 5)
    hold = (x_np[len(x_np) - n_hold:], y_np[len(y_np) - n_hold:])
    x_np, y_np = x_np[:len(x_np) - n_hold], y_np[:len(y_np) - n_hold]
    x, y, xt, yt = _as_tensor(x_np), torch.from_numpy(y_np), _as_tensor(xt_np), torch.from_numpy(yt_np)
    meta = {"format": CHECKPOINT_FORMAT, "arch": model, "preset": preset_name, "hyperparameters": asdict(hp),
            "seed": seed, "data_hash": data_hash, "norm": [MNIST_MEAN, MNIST_STD],
            "preprocess_version": PREPROCESS_VERSION, "temperature": 1.0}
    if model == "logreg":
        ckpt = _train_logreg(x, y, xt, yt, out, meta, seed)
    elif model == "cnn":
        ckpt = _train_cnn(x, y, xt, yt, hp, out, meta, seed, resume, progress)
    else:
        raise InputError(f"model must be 'cnn' or 'logreg', not {model!r}")
    net = build(ckpt["arch"], ckpt["config"])
    net.load_state_dict(ckpt["state_dict"])
    ckpt.update(calibrate(net, *hold, hp.reject_rate, seed))
    save_checkpoint(out / "model.pt", ckpt)
    _write_metrics(out, ckpt)
    return ckpt


def _train_logreg(x, y, xt, yt, out: Path, meta: dict, seed: int) -> dict:
    t0 = time.perf_counter()
    net = fit_logreg(_normalise(x), y, seed=seed)
    seconds = time.perf_counter() - t0
    history = [{"epoch": 1, "loss": None, "train_acc": _accuracy(net, x, y, 4096),
                "test_acc": _accuracy(net, xt, yt, 4096), "seconds": seconds}]
    ckpt = {**meta, "config": {}, "state_dict": net.state_dict(), "epoch": 1, "history": history,
            "parameters": count_parameters(net), "train_seconds": seconds}
    save_checkpoint(out / "model.pt", ckpt)
    _write_metrics(out, ckpt)
    return ckpt


def _train_cnn(x, y, xt, yt, hp: Preset, out: Path, meta: dict, seed: int, resume: bool, progress: bool) -> dict:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    config = {"stages": hp.stages}
    net = build("cnn", config).to(memory_format=torch.channels_last)
    steps_per_epoch = len(x) // hp.batch_size  # drop the ragged last batch: BN dislikes tiny ones
    opt = torch.optim.AdamW(net.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp.lr, total_steps=hp.epochs * steps_per_epoch,
                                                pct_start=hp.warmup)
    start_epoch, history = 0, []
    path = out / "model.pt"
    n_out = round(hp.outlier_share * hp.batch_size)
    bank = _outlier_bank(hp.outlier_bank, seed) if n_out else None
    if resume and path.exists():
        ckpt = load_checkpoint(path)
        if ckpt.get("hyperparameters") != meta["hyperparameters"] or ckpt.get("seed") != seed:
            raise InputError(f"{path}: was trained with other settings; resume with the same preset and seed")
        net.load_state_dict(ckpt["state_dict"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        gen.set_state(ckpt["rng"]["generator"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        start_epoch, history = ckpt["epoch"], ckpt["history"]
    ckpt = None
    for epoch in range(start_epoch, hp.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x), generator=gen)
        loss_sum = correct = seen = 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{hp.epochs}", disable=not progress,
                   leave=False, unit="step")
        for step in bar:
            idx = perm[step * hp.batch_size:(step + 1) * hp.batch_size]
            xb, yb = x[idx], y[idx]
            if n_out:
                xb = torch.cat([xb, bank[torch.randint(0, len(bank), (n_out,), generator=gen)]])
            if hp.augment:
                xb = _augment(xb, gen, hp)
            logits = net(_normalise(xb).contiguous(memory_format=torch.channels_last))
            if n_out:
                # outlier exposure (Hendrycks et al. 2019): non-digits should leave every digit equally likely
                outlier_loss = -F.log_softmax(logits[len(yb):], 1).mean()
                logits = logits[:len(yb)]
            loss = F.cross_entropy(logits, yb, label_smoothing=hp.label_smoothing)
            if n_out:
                loss = loss + hp.outlier_weight * outlier_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(yb)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.4f}")
        seconds = time.perf_counter() - t0
        test_acc = _accuracy(net, xt, yt, hp.eval_batch)
        history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "train_acc": correct / seen,
                        "test_acc": test_acc, "seconds": seconds})
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{hp.epochs}  loss {loss_sum / seen:.4f}  train {correct / seen:.4f}"
                       f"  test {test_acc:.4f}  {seconds:.1f}s")
        ckpt = {**meta, "config": config, "state_dict": net.state_dict(), "epoch": epoch + 1, "history": history,
                "parameters": count_parameters(net), "train_seconds": sum(h["seconds"] for h in history),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "rng": {"generator": gen.get_state(), "torch": torch.get_rng_state()}}
        save_checkpoint(path, ckpt)
        _write_metrics(out, ckpt)
    return ckpt if ckpt is not None else load_checkpoint(path)


def _augment(xb: torch.Tensor, gen: torch.Generator, hp: Preset) -> torch.Tensor:
    xb = augment.random_warp(xb, gen, hp.rotate_deg, hp.scale, hp.shear_deg, hp.translate_px, hp.elastic_px,
                             hp.elastic_cells)
    if hp.stroke_p:
        xb = augment.stroke_width(xb, gen, hp.stroke_p)
    if hp.blur_p or hp.resample_p:
        xb = augment.blur_resample(xb, gen, hp.blur_p, hp.blur_sigma, hp.resample_p, hp.resample_min)
    if hp.contrast_p:
        xb = augment.contrast(xb, gen, hp.contrast_p)
    if hp.noise_p:
        xb = augment.noise(xb, gen, hp.noise_p, hp.noise_sigma)
    return xb


def _preprocessed(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Images as the Recognizer sees them (``[M,28,28]`` in [0, 1]) and the indices of those not blank."""
    x28 = [preprocess(a) for a in images]
    kept = np.array([i for i, a in enumerate(x28) if a is not None], dtype=np.int64)
    return (np.stack([x28[i] for i in kept]) if len(kept) else np.zeros((0, 28, 28), np.float32)), kept


def _outlier_bank(n: int, seed: int) -> torch.Tensor:
    """Synthetic non-digits, preprocessed as the Recognizer would: ``[M,1,28,28]`` (blank ones dropped)."""
    raw = augment.non_digits(n, torch.Generator().manual_seed(10_000 + seed))
    x28, _ = _preprocessed(raw[:, 0].numpy())
    return torch.from_numpy(x28)[:, None]


def digit_score(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """How much the model sees a digit: minus the energy, ``T * logsumexp(logits / T)`` (Liu et al. 2020)."""
    return temperature * torch.logsumexp(logits / temperature, dim=1)


@torch.no_grad()
def calibrate(net: torch.nn.Module, images: np.ndarray, labels: np.ndarray, reject_rate: float, seed: int = 0) -> dict:
    """Fit the softmax temperature and the "not a digit" threshold on held-out training images.

    Returns the checkpoint keys ``temperature``, ``reject_threshold`` and ``calibration`` (the evidence:
    held-out NLL and ECE before and after, the share rejected, AUROC against synthetic non-digits).
    """
    from scipy.optimize import minimize_scalar
    from sklearn.metrics import roc_auc_score

    net.eval()
    x28, kept = _preprocessed(images)
    y = torch.from_numpy(np.asarray(labels)[kept])
    logits = net(_normalise(torch.from_numpy(x28)[:, None]))

    def nll(log_t):
        return F.cross_entropy(logits / np.exp(log_t), y).item()

    t = float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))
    score = digit_score(logits, t)
    threshold = float(torch.quantile(score, reject_rate))
    outliers, _ = _preprocessed(augment.non_digits(1000, torch.Generator().manual_seed(20_000 + seed))[:, 0].numpy())
    out_score = digit_score(net(_normalise(torch.from_numpy(outliers)[:, None])), t)
    both = torch.cat([score, out_score]).numpy()
    ece = [expected_calibration_error(y.numpy(), torch.softmax(logits / temp, 1).numpy()) for temp in (1.0, t)]
    return {"temperature": t, "reject_threshold": threshold,
            "calibration": {"heldout_images": len(y), "nll_before": nll(0.0), "nll_after": nll(np.log(t)),
                            "ece_before": ece[0], "ece_after": ece[1],
                            "heldout_rejected": float((score < threshold).float().mean()),
                            "synthetic_non_digits_rejected": float((out_score < threshold).float().mean()),
                            "auroc_vs_synthetic": float(roc_auc_score(np.r_[np.ones(len(score)), np.zeros(len(out_score))], both))}}


def export_weights(ckpt: dict) -> dict:
    """The checkpoint without optimizer, scheduler and RNG state: what a bundled model needs."""
    return {k: v for k, v in ckpt.items() if k not in ("optimizer", "scheduler", "rng")}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m digitrec.train", description="Train a digitrec model on MNIST.")
    p.add_argument("--model", choices=["cnn", "logreg"], default="cnn")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--out", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    ckpt = train(a.model, a.preset, a.out or f"runs/{a.model}-{a.preset}", resume=a.resume, seed=a.seed)
    print(json.dumps(ckpt["history"][-1]))


if __name__ == "__main__":
    main()

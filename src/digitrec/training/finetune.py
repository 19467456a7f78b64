"""Fine-tuning a trained digit model on new digits (people's corrections) without forgetting MNIST.

Every step's batch mixes the new digits (a fixed share of it, drawn again and again) with MNIST training
images, both augmented as the model's preset says, at a small learning rate that decays to zero. On the
MNIST part the model is also held to the old model's answers (learning without forgetting), and
BatchNorm keeps its statistics, so that MNIST test stays where it was (docs/benchmarks.md). Then
the temperature and "not a digit" threshold are fitted again on the held-out MNIST images, as after
training. The new digits come already preprocessed (``[N,28,28]`` in [0, 1], as ``Recognizer.preprocess``
gives them), so the model learns what it will be shown.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .. import data
from ..checkpoint import Checkpoint
from ..errors import InputError
from ..models import build
from .augment import augment
from .calibrate import calibrate
from .loop import as_tensor, normalise
from .presets import PRESETS, Preset

__all__ = ["finetune", "finetune_checked", "held_out", "STEPS", "LEARNING_RATE", "NEW_SHARE", "KEEP",
           "MAX_MNIST_DROP"]

STEPS = 300          # optimizer steps: ~40 s on two CPU cores for the bundled CNN
LEARNING_RATE = 3e-4  # a tenth of the bundled preset's peak: the model moves, MNIST stays
NEW_SHARE = 0.25     # share of each batch drawn from the new digits
KEEP = 3.0           # weight of staying close to the old model's answers on MNIST (0: plain fine-tuning)
KEEP_T = 2.0         # softmax temperature of that comparison: the old model's second choices count too


def _preset(ckpt: Checkpoint) -> Preset:
    known = set(Preset.__dataclass_fields__)
    fields = {k: tuple(map(tuple, v)) if k == "stages" else v for k, v in (ckpt.hyperparameters or {}).items()
              if k in known}
    return Preset(**fields) if fields else PRESETS["default"]


def _networks(ckpt: Checkpoint) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The network to train (its BatchNorm frozen: a few hundred new digits should not move MNIST's statistics)
    and a frozen copy of the model as it was, whose answers on MNIST the training stays close to."""
    net = build(ckpt.arch, ckpt.config).to(memory_format=torch.channels_last)
    net.load_state_dict(ckpt.state_dict)
    frozen = build(ckpt.arch, ckpt.config).to(memory_format=torch.channels_last)
    frozen.load_state_dict(ckpt.state_dict)
    frozen.eval()
    net.train()
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    return net, frozen


def finetune(ckpt: Checkpoint, x_new: np.ndarray, y_new: np.ndarray, steps: int = STEPS,
             lr: float = LEARNING_RATE, new_share: float = NEW_SHARE, seed: int = 0,
             progress: bool = True, keep: float = KEEP) -> Checkpoint:
    """Return ``ckpt`` continued on the digits ``x_new [N,28,28]`` (in [0, 1]) labelled ``y_new``, mixed with MNIST."""
    if ckpt.arch != "cnn" or ckpt.state_dict is None:
        raise InputError(f"only a CNN checkpoint (.pt) can be fine-tuned, not a {ckpt.arch} model")
    if len(x_new) == 0:
        raise InputError("no digits to fine-tune on")
    if steps < 1:
        raise InputError(f"steps must be at least 1, not {steps}")
    hp = _preset(ckpt)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_np, y_np = data.load_mnist("train")
    n_train = len(x_np) - hp.holdout  # the held-out tail stays unseen, for calibration below
    x, y = as_tensor(x_np[:n_train]), torch.from_numpy(y_np[:n_train])
    xn = torch.from_numpy(np.asarray(x_new, np.float32))[:, None]
    yn = torch.as_tensor(np.asarray(y_new), dtype=torch.long)
    net, frozen = _networks(ckpt)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=hp.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    k = max(1, round(new_share * hp.batch_size))
    t0 = time.perf_counter()
    losses = []
    for _ in tqdm(range(steps), desc="fine-tuning", unit="step", disable=not progress, leave=False):
        old = torch.randint(0, len(x), (hp.batch_size - k,), generator=gen)
        new = torch.randint(0, len(xn), (k,), generator=gen)
        xb, yb = torch.cat([x[old], xn[new]]), torch.cat([y[old], yn[new]])
        if hp.augment:
            xb = augment(xb, gen, hp)
        logits = net(normalise(xb).contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits, yb, label_smoothing=hp.label_smoothing)
        if keep:
            # learning without forgetting (Li & Hoiem 2016): on the MNIST part, stay close to what the model said
            with torch.no_grad():
                was = frozen(normalise(xb[:len(old)]).contiguous(memory_format=torch.channels_last))
            loss = loss + keep * KEEP_T ** 2 * F.kl_div(F.log_softmax(logits[:len(old)] / KEEP_T, 1),
                                                        F.log_softmax(was / KEEP_T, 1), log_target=True,
                                                        reduction="batchmean")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - t0
    fit = calibrate(net, x_np[n_train:], y_np[n_train:], hp.reject_rate, seed) if hp.holdout else {}
    if fit and not hp.reject:
        fit["calibration"]["fitted_reject_threshold"] = fit["reject_threshold"]
        fit["reject_threshold"] = None
    entry = {"finetune_steps": steps, "new_digits": int(len(xn)), "loss": float(np.mean(losses[-20:])),
             "seconds": seconds}
    # the read policy was fitted for the weights it came with (and its second opinion for that pair): the new model
    # reads by the hand-set one until ``digitrec calibrate`` fits its own
    return replace(ckpt.without_training_state(), state_dict=net.state_dict(), history=[*ckpt.history, entry],
                   train_seconds=(ckpt.train_seconds or 0) + seconds, policy=None, **fit)


MAX_MNIST_DROP = 0.001  # a fine-tuned model that reads MNIST test worse than this is not kept
HELD_OUT_SHARE = 0.2    # of the new digits, by writer, scored and never trained on


def held_out(groups, share: float = HELD_OUT_SHARE, seed: int = 0) -> np.ndarray:
    """Which digits to hold out: whole groups (writers, else sources), in a seeded order, until ``share`` of
    the digits is out; with one group only, every fifth digit (a weaker check: same writer both sides)."""
    groups = np.asarray(groups, dtype=object)
    names = sorted(set(groups.tolist()))
    if len(names) < 2:
        return np.arange(len(groups)) % round(1 / share) == round(1 / share) - 1
    mask = np.zeros(len(groups), bool)
    for name in np.random.default_rng(seed).permutation(names):
        if mask.mean() >= share:
            break
        mask |= groups == name
    return mask


def _accuracy(ckpt: Checkpoint, x: np.ndarray, y: np.ndarray) -> float:
    from .loop import count_correct

    net = build(ckpt.arch, ckpt.config).to(memory_format=torch.channels_last)
    net.load_state_dict(ckpt.state_dict)
    return count_correct(net, torch.from_numpy(np.asarray(x, np.float32))[:, None],
                         torch.as_tensor(np.asarray(y), dtype=torch.long), 1024) / max(len(y), 1)


def _mnist_test(ckpt: Checkpoint) -> float:
    """MNIST test accuracy read as a user reads it: through the Recognizer's preprocessing."""
    from ..inference import Recognizer

    xt, yt = data.load_mnist("test")
    digits = np.array([-1 if p.digit is None else p.digit for p in Recognizer(ckpt).predict_batch(xt)])
    return float((digits == yt).mean())


def finetune_checked(ckpt: Checkpoint, x: np.ndarray, y: np.ndarray, groups, steps: int = STEPS, seed: int = 0,
                     progress: bool = True) -> tuple[Checkpoint, dict]:
    """Fine-tune on the digits not held out (``held_out(groups)``), score before and after on the held-out ones
    and on MNIST test; return the new checkpoint (its ``metrics['finetune']`` the scores) and the scores.
    ``scores['kept']`` is False when MNIST test fell by more than ``MAX_MNIST_DROP``."""
    hold = held_out(groups, seed=seed)
    if hold.all() or not hold.any():
        raise InputError(f"{len(y)} digits are too few to hold some out for scoring; store a few more")
    new = finetune(ckpt, x[~hold], y[~hold], steps=steps, seed=seed, progress=progress)
    scores = {"trained_on": int((~hold).sum()), "held_out": int(hold.sum()),
              "held_out_groups": len(set(np.asarray(groups, dtype=object)[hold].tolist())),
              "held_out_before": _accuracy(ckpt, x[hold], y[hold]), "held_out_after": _accuracy(new, x[hold], y[hold]),
              "mnist_test_before": _mnist_test(ckpt), "mnist_test_after": _mnist_test(new),
              "seconds": new.history[-1]["seconds"]}
    scores["kept"] = scores["mnist_test_before"] - scores["mnist_test_after"] <= MAX_MNIST_DROP
    return replace(new, metrics={**(ckpt.metrics or {}), "finetune": scores}), scores

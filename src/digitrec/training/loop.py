"""Training: the loop on whole in-memory tensors, checkpointing and resume, DDP in a few guarded lines.

The whole training set is one float tensor; each step slices a shuffled batch out of it and augments
it in one batched call, so there is no per-sample loader on the hot path. Under torchrun every rank
holds the whole tensor and takes its slice of each global batch; rank 0 writes the files.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .. import checkpoint, data
from ..checkpoint import Checkpoint
from ..errors import InputError
from ..imaging import PREPROCESS_VERSION
from ..models import MNIST_MEAN, MNIST_STD, build, count_parameters
from ..models.logreg import LogReg
from .augment import augment
from .calibrate import calibrate, outlier_bank
from .presets import PRESETS, Preset

__all__ = ["train", "fit_logreg", "as_tensor", "normalise", "count_correct"]


def as_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 images ``[N,28,28]`` as the float batch ``[N,1,28,28]`` in [0, 1] the loop trains on."""
    return torch.from_numpy(x).float().div_(255).unsqueeze(1)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] -> the model's input (MNIST mean and standard deviation)."""
    return (x - MNIST_MEAN) / MNIST_STD


@torch.no_grad()
def count_correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> int:
    """How many of the images ``x [N,1,28,28]`` (in [0, 1]) ``model`` labels ``y``."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        xb = normalise(x[i:i + batch]).contiguous(memory_format=torch.channels_last)
        correct += (model(xb).argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct


def _setup(device: str) -> tuple[int, int, torch.device, bool]:
    """Rank, world size, device, and whether this call opened the process group (torchrun sets WORLD_SIZE etc.)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise InputError("device 'cuda' was asked for but PyTorch sees no CUDA GPU; use --device cpu")
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(dev)
    elif device == "cpu":
        dev = torch.device("cpu")
    else:
        raise InputError(f"device must be 'auto', 'cuda' or 'cpu', not {device!r}")
    opened = int(os.environ.get("WORLD_SIZE", 1)) > 1 and not dist.is_initialized()
    if opened:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", device_id=dev if dev.type == "cuda" else None)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), dev, opened
    return 0, 1, dev, opened


def train(model: str = "cnn", preset: str | Preset = "default", out: str | os.PathLike = "runs/default",
          resume: bool = False, seed: int = 0, train_subset: int | None = None,
          test_subset: int | None = None, progress: bool = True, device: str = "auto",
          checkpoint_every: int = 200, **overrides) -> Checkpoint:
    """Train a model and return its final checkpoint; ``out/model.pt`` and ``out/metrics.json`` are written.

    ``train_subset``/``test_subset`` take the first N images (tests use them); ``overrides`` replace preset fields.
    Under torchrun every rank calls this and gets its own replica's checkpoint; only rank 0 writes files.
    ``checkpoint_every`` also checkpoints every that many steps inside an epoch (0: at epoch ends only).
    """
    out = Path(out)
    if isinstance(preset, str) and preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose from: {', '.join(sorted(PRESETS))}")
    hp = replace(PRESETS[preset] if isinstance(preset, str) else preset, **overrides)
    if model not in ("cnn", "logreg"):
        raise InputError(f"model must be 'cnn' or 'logreg', not {model!r}")
    x_np, y_np = data.load_mnist("train")
    xt_np, yt_np = data.load_mnist("test")
    # held out: the last images of MNIST's validation split (the last 10,000), never trained on; a
    # subset run (tests) holds out a tenth of its size from there, so that calibration stays quick
    n_hold = hp.holdout if train_subset is None else min(hp.holdout, train_subset // 10)
    hold = (x_np[len(x_np) - n_hold:], y_np[len(y_np) - n_hold:])
    x_np, y_np = x_np[:len(x_np) - hp.holdout][:train_subset], y_np[:len(y_np) - hp.holdout][:train_subset]
    xt_np, yt_np = xt_np[:test_subset], yt_np[:test_subset]
    x, y, xt, yt = as_tensor(x_np), torch.from_numpy(y_np), as_tensor(xt_np), torch.from_numpy(yt_np)
    meta = Checkpoint(arch=model, preset=preset if isinstance(preset, str) else "custom",
                      hyperparameters=asdict(hp), seed=seed, data_hash=data.data_hash(x_np, y_np),
                      norm=[MNIST_MEAN, MNIST_STD], preprocess_version=PREPROCESS_VERSION)
    rank, world, dev, opened = _setup(device)
    try:
        if model == "logreg":
            if world > 1:
                raise InputError("logreg is fitted by scikit-learn in one process; train it without torchrun/--nproc")
            ckpt = _train_logreg(x, y, xt, yt, out, meta, seed)
        else:
            ckpt = _CnnRun(x, y, hp, out, meta, seed, rank, world, dev).fit(xt, yt, resume, progress, checkpoint_every)
    finally:
        if opened:
            dist.destroy_process_group()
    if n_hold:
        net = build(ckpt.arch, ckpt.config)
        net.load_state_dict(ckpt.state_dict)
        fit = calibrate(net, *hold, hp.reject_rate, seed)
        ckpt = replace(ckpt, **fit)
        if not hp.reject:
            ckpt.calibration["fitted_reject_threshold"] = ckpt.reject_threshold
            ckpt.reject_threshold = None
    if rank == 0:
        _write(out, ckpt)
    return ckpt


def _write(out: Path, ckpt: Checkpoint) -> None:
    """``out/model.pt`` and the summary ``out/metrics.json``, each atomically."""
    ckpt.save(out / "model.pt")
    summary = {k: v for k, v in asdict(ckpt).items() if v is not None and k in (
        "arch", "preset", "seed", "data_hash", "parameters", "history", "temperature", "reject_threshold",
        "calibration")}
    tmp = out / "metrics.json.tmp"
    try:
        tmp.write_text(json.dumps(summary, indent=2))
        os.replace(tmp, out / "metrics.json")
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {out / 'metrics.json'}: {e.strerror or e}") from None


def fit_logreg(x: torch.Tensor, y: torch.Tensor, max_iter: int = 100, seed: int = 0) -> LogReg:
    """The baseline fitted by scikit-learn (L-BFGS, multinomial) on normalised ``x [N,1,28,28]``."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=max_iter, C=0.05, random_state=seed)
    clf.fit(x.flatten(1).numpy(), y.numpy())
    model = LogReg()
    with torch.no_grad():
        model.linear.weight.copy_(torch.from_numpy(clf.coef_).float())
        model.linear.bias.copy_(torch.from_numpy(clf.intercept_).float())
    return model


def _train_logreg(x, y, xt, yt, out: Path, meta: Checkpoint, seed: int) -> Checkpoint:
    t0 = time.perf_counter()
    net = fit_logreg(normalise(x), y, seed=seed)
    seconds = time.perf_counter() - t0
    history = [{"epoch": 1, "loss": None, "train_acc": count_correct(net, x, y, 4096) / len(x),
                "test_acc": count_correct(net, xt, yt, 4096) / len(xt), "seconds": seconds}]
    ckpt = replace(meta, config={}, state_dict=net.state_dict(), epoch=1, history=history,
                   parameters=count_parameters(net), train_seconds=seconds)
    _write(out, ckpt)
    return ckpt


def _all_sum(t: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(t)
    return t


def _average_buffers(net: torch.nn.Module, world: int) -> None:
    # BatchNorm running statistics: each rank tracked them over its own shards; their mean estimates
    # what one process would track over the global batches, and makes every replica identical
    for b in net.buffers():
        if b.is_floating_point():
            _all_sum(b, world).div_(world)


class _CnnRun:
    """One CNN training run: the model, its optimizer and schedule, the generator, and this rank's shards."""

    def __init__(self, x, y, hp: Preset, out: Path, meta: Checkpoint, seed: int, rank: int, world: int,
                 dev: torch.device):
        self.hp, self.meta, self.rank, self.world, self.dev = hp, meta, rank, world, dev
        self.is_main = rank == 0
        self.path = out / "model.pt"
        self.out = out
        self.steps = len(x) // hp.batch_size  # drop the ragged last batch: BN dislikes tiny ones
        if self.steps == 0:
            raise InputError(f"{len(x)} training images do not fill one batch of {hp.batch_size}")
        if hp.batch_size % world:
            raise InputError(f"batch size {hp.batch_size} does not split evenly over {world} processes")
        # the global batch stays hp.batch_size whatever the world size, so the recipe (and its learning rate) holds
        self.shard = slice(rank * hp.batch_size // world, (rank + 1) * hp.batch_size // world)
        self.n_out = round(hp.outlier_share * hp.batch_size)
        if self.n_out % world:
            raise InputError(f"{self.n_out} outliers per batch do not split evenly over {world} processes")
        self.out_shard = slice(rank * self.n_out // world, (rank + 1) * self.n_out // world)
        torch.manual_seed(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.config = {"stages": hp.stages}
        self.net = build("cnn", self.config).to(dev, memory_format=torch.channels_last)
        self.x, self.y = x.to(dev), y.to(dev)
        amp_dtype = None
        if dev.type == "cuda":
            # bf16 where the GPU computes it natively (no loss scaling needed), else fp16 with a GradScaler;
            # on CPU fp32 stays: bf16 autocast measured 10x slower per step on a 2-core EPYC without AVX-512/AMX
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
            torch.backends.cudnn.benchmark = True  # fixed shapes: the autotuned conv kernels pay off from step 2
        self.autocast = partial(torch.autocast, dev.type, dtype=amp_dtype, enabled=amp_dtype is not None)
        self.scaler = torch.amp.GradScaler(dev.type, enabled=amp_dtype == torch.float16)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=hp.lr, total_steps=hp.epochs * self.steps,
                                                         pct_start=hp.warmup)
        self.bank = outlier_bank(hp.outlier_bank, seed).to(dev) if self.n_out else None
        self.history: list[dict] = []
        # Plain BatchNorm, not SyncBatchNorm: SyncBatchNorm refuses CPU tensors, and per-rank statistics over
        # batch_size/world images (64 at 2 ranks) cost no accuracy here (docs/benchmarks.md, "Training at
        # scale"). Buffers are averaged at sync points instead of broadcast on every forward.
        self.model = self.net if world == 1 else DistributedDataParallel(
            self.net, device_ids=[dev] if dev.type == "cuda" else None, forward_sync_buffers=False)

    def _resume(self) -> tuple[int, dict | None]:
        """Load the run's last checkpoint; return the epoch to start at and the mid-epoch state (or None)."""
        if not self.path.exists():
            if self.is_main:
                print(f"digitrec: no checkpoint at {self.path} to resume from; starting fresh", file=sys.stderr)
            return 0, None
        ckpt = checkpoint.load(self.path)
        m = self.meta
        if ckpt.hyperparameters != m.hyperparameters or ckpt.seed != m.seed or ckpt.data_hash != m.data_hash:
            raise InputError(f"{self.path}: was trained with other settings; resume with the same preset, seed and data")
        self.net.load_state_dict(ckpt.state_dict)
        self.opt.load_state_dict(ckpt.optimizer)
        self.sched.load_state_dict(ckpt.scheduler)
        if self.scaler.is_enabled() and ckpt.scaler:
            self.scaler.load_state_dict(ckpt.scaler)
        self.gen.set_state(ckpt.rng["generator"])
        torch.set_rng_state(ckpt.rng["torch"])
        if self.dev.type == "cuda" and "cuda" in ckpt.rng:
            torch.cuda.set_rng_state(ckpt.rng["cuda"], self.dev)
        self.history = ckpt.history
        if self.is_main:
            where = f"epoch {ckpt.epoch + 1}, step {ckpt.step} of {self.steps}" if ckpt.step else \
                f"the end of epoch {ckpt.epoch}"
            print(f"digitrec: resuming {self.path} from {where} (of {self.hp.epochs} epochs)", file=sys.stderr)
        return ckpt.epoch, ({**ckpt.epoch_state, "step": ckpt.step} if ckpt.step else None)

    def _snapshot(self, epoch: int, step: int = 0, epoch_state: dict | None = None) -> Checkpoint:
        # epoch: epochs completed; step: steps done of the next one (then epoch_state holds the rest of it)
        rng = {"generator": self.gen.get_state(), "torch": torch.get_rng_state()}
        if self.dev.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.dev)
        return replace(self.meta, config=self.config, state_dict=self.net.state_dict(), epoch=epoch, step=step,
                       history=self.history, parameters=count_parameters(self.net),
                       train_seconds=sum(h["seconds"] for h in self.history), world_size=self.world,
                       device=self.dev.type, optimizer=self.opt.state_dict(), scheduler=self.sched.state_dict(),
                       scaler=self.scaler.state_dict(), rng=rng, epoch_state=epoch_state or None)

    def _step(self, idx: torch.Tensor, sums: torch.Tensor) -> None:
        """One optimizer step on the global batch ``idx`` (this rank's shard of it), adding to ``sums``."""
        hp = self.hp
        xb, yb = self.x[idx], self.y[idx]
        if self.n_out:
            pick = torch.randint(0, len(self.bank), (self.n_out,), generator=self.gen).to(self.dev)
            xb = torch.cat([xb, self.bank[pick]])
        if hp.augment:
            # every rank augments the whole global batch: the shared generator stays in lockstep across
            # ranks, and each image gets the transform a single-process run would give it
            xb = augment(xb, self.gen, hp)
        xb, yb = torch.cat([xb[:hp.batch_size][self.shard], xb[hp.batch_size:][self.out_shard]]), yb[self.shard]
        with self.autocast():
            logits = self.model(normalise(xb).contiguous(memory_format=torch.channels_last))
            if self.n_out:
                # outlier exposure (Hendrycks et al. 2019): non-digits should leave every digit equally likely
                outlier_loss = -F.log_softmax(logits[len(yb):].float(), 1).mean()
                logits = logits[:len(yb)]
            loss = F.cross_entropy(logits, yb, label_smoothing=hp.label_smoothing)
            if self.n_out:
                loss = loss + hp.outlier_weight * outlier_loss
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        sums[0] += loss.detach() * len(yb)
        sums[1] += (logits.argmax(1) == yb).sum()
        sums[2] += len(yb)

    def _epoch(self, epoch: int, state: dict | None, progress: bool, checkpoint_every: int) -> tuple[torch.Tensor, float]:
        """Train one epoch (from ``state``'s step when resuming mid-epoch); return the summed loss, hits, images
        over all ranks and the epoch's seconds."""
        t0 = time.perf_counter()
        sums = torch.zeros(3, dtype=torch.float64, device=self.dev)  # loss x images, correct, images
        if state:  # resuming mid-epoch: same permutation, and the totals so far counted once (on rank 0)
            perm, start = state["perm"].to(self.dev), state["step"]
            t0 -= state["seconds"]
            if self.is_main:
                sums += state["sums"].to(self.dev)
        else:
            perm, start = torch.randperm(len(self.x), generator=self.gen).to(self.dev), 0
        bs = self.hp.batch_size
        bar = tqdm(range(start, self.steps), initial=start, total=self.steps, desc=f"epoch {epoch + 1}/{self.hp.epochs}",
                   disable=not (progress and self.is_main), leave=False, unit="step")
        for step in bar:
            self._step(perm[step * bs:(step + 1) * bs], sums)
            if step % 50 == 0 and not bar.disable:
                bar.set_postfix(loss=f"{sums[0] / sums[2]:.3f}", acc=f"{sums[1] / sums[2]:.4f}")
            if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < self.steps:
                totals = _all_sum(sums.clone(), self.world)  # collectives: every rank takes part, rank 0 writes
                _average_buffers(self.net, self.world)
                mid = {"perm": perm.cpu(), "sums": totals.cpu(), "seconds": time.perf_counter() - t0}
                if self.is_main:
                    self._snapshot(epoch, step + 1, mid).save(self.path)
        _all_sum(sums, self.world)
        _average_buffers(self.net, self.world)
        return sums, time.perf_counter() - t0

    def fit(self, xt: torch.Tensor, yt: torch.Tensor, resume: bool, progress: bool,
            checkpoint_every: int) -> Checkpoint:
        """Train to the preset's last epoch (from the last checkpoint if ``resume``); return the final checkpoint."""
        start, state = self._resume() if resume else (0, None)
        xt, yt = xt.to(self.dev), yt.to(self.dev)
        ckpt = None
        for epoch in range(start, self.hp.epochs):
            sums, seconds = self._epoch(epoch, state, progress, checkpoint_every)
            state = None
            with self.autocast():  # each rank scores its share of the test set
                hits = count_correct(self.net, xt.tensor_split(self.world)[self.rank],
                                     yt.tensor_split(self.world)[self.rank], self.hp.eval_batch)
            hits = _all_sum(torch.tensor(float(hits), dtype=torch.float64, device=self.dev), self.world).item()
            loss_avg, train_acc = (sums[0] / sums[2]).item(), (sums[1] / sums[2]).item()
            self.history.append({"epoch": epoch + 1, "loss": loss_avg, "train_acc": train_acc,
                                 "test_acc": hits / len(xt), "seconds": seconds})
            if progress and self.is_main:
                tqdm.write(f"epoch {epoch + 1}/{self.hp.epochs}  loss {loss_avg:.4f}  train {train_acc:.4f}"
                           f"  test {hits / len(xt):.4f}  {seconds:.1f}s")
            ckpt = self._snapshot(epoch + 1)
            if self.is_main:
                _write(self.out, ckpt)
        return ckpt if ckpt is not None else checkpoint.load(self.path)

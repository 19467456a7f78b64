"""Time to 99.0 % MNIST test accuracy: digitrec's fast preset vs the pytorch/examples MNIST recipe, same run.

The reference is pytorch/examples mnist/main.py re-expressed on in-memory tensors (no DataLoader, so
the comparison is of models and schedules, not of loaders): conv 32 -> conv 64 -> max-pool -> dropout
-> fc 9216->128 -> dropout -> fc 10, Adadelta lr 1.0, StepLR gamma 0.7 per epoch, batch 64. It is
scored every quarter epoch (in its favour); digitrec at the end of each epoch. Only training time counts.
Usage: python benchmarks/time_to_accuracy.py [--target 0.99] [--max-epochs 4]
"""
import argparse
import tempfile
import time

import torch
import torch.nn.functional as F
from _machine import header
from torch import nn

from digitrec import data
from digitrec.training import train
from digitrec.training.loop import as_tensor, count_correct, normalise


class ExamplesNet(nn.Module):
    """pytorch/examples mnist/main.py's Net."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = self.fc2(self.dropout2(F.relu(self.fc1(torch.flatten(self.dropout1(x), 1)))))
        return F.log_softmax(x, dim=1)


def reference_time_to(target: float, max_epochs: int, seed: int = 1) -> tuple[float | None, float]:
    """Train the reference; return (training seconds when test accuracy first reached target, best accuracy)."""
    torch.manual_seed(seed)
    x, y = data.load_mnist("train")
    xt, yt = data.load_mnist("test")
    x, y, xt, yt = as_tensor(x), torch.from_numpy(y), as_tensor(xt), torch.from_numpy(yt)
    net = ExamplesNet()
    opt = torch.optim.Adadelta(net.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    steps = (len(x) + 63) // 64
    marks = {steps * k // 4 for k in range(1, 5)}  # scored every quarter epoch
    elapsed, best = 0.0, 0.0
    for epoch in range(max_epochs):
        perm = torch.randperm(len(x))
        t0 = time.perf_counter()
        for step in range(steps):
            idx = perm[step * 64:(step + 1) * 64]
            loss = F.nll_loss(net(normalise(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step + 1 in marks:
                elapsed += time.perf_counter() - t0
                acc = count_correct(net, xt, yt, 1000) / len(xt)
                best = max(best, acc)
                print(f"  reference epoch {epoch + (step + 1) / steps:.2f}: test {acc:.4f} after {elapsed:.1f} s",
                      flush=True)
                if acc >= target:
                    return elapsed, best
                t0 = time.perf_counter()
        sched.step()
    return None, best


def digitrec_time_to(target: float, seed: int = 0) -> tuple[float | None, float]:
    """Train the fast preset; return (training seconds at the first epoch reaching target, final accuracy)."""
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = train("cnn", "fast", tmp, seed=seed, progress=False)
    elapsed = 0.0
    for h in ckpt.history:
        elapsed += h["seconds"]
        print(f"  digitrec fast epoch {h['epoch']}: test {h['test_acc']:.4f} after {elapsed:.1f} s", flush=True)
        if h["test_acc"] >= target:
            return elapsed, h["test_acc"]
    return None, ckpt.history[-1]["test_acc"]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--max-epochs", type=int, default=4, help="cap on the reference's epochs")
    a = p.parse_args()
    print(header())
    ours, ours_acc = digitrec_time_to(a.target)
    ref, ref_acc = reference_time_to(a.target, a.max_epochs)
    fmt = lambda t: "not reached" if t is None else f"{t:.1f} s"  # noqa: E731
    print(f"time to {a.target:.1%}: digitrec fast {fmt(ours)} (acc {ours_acc:.4f}); "
          f"pytorch/examples {fmt(ref)} (best {ref_acc:.4f})")
    if ours and ref:
        print(f"speed-up: {ref / ours:.1f}x")


if __name__ == "__main__":
    main()

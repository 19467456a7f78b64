"""Training throughput on 1 and N processes (torchrun + DistributedDataParallel), CPU or CUDA.

    python benchmarks/scaling.py                      # fast preset, 2 epochs on all 60,000 images, 1 and 2 processes
    python benchmarks/scaling.py --nprocs 1,2,4 --device cuda --preset default --epochs 1

Every configuration runs the command users run, ``torchrun --standalone --nproc_per_node=N -m digitrec.training``
(N=1 is the same command: no process group, no DDP), each process with cores/N threads so that every
configuration uses the same cores. images/s = images trained / seconds in the training loop, read from
the checkpoint's history (test-set scoring excluded); wall s includes start-up. The global batch is the
preset's at every N, so the test accuracy column checks that the recipe, and so the result, is unchanged.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from digitrec import checkpoint  # noqa: E402
from digitrec.training import PRESETS  # noqa: E402


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="fast")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-subset", type=int, help="first N training images (default: all 60,000)")
    p.add_argument("--nprocs", default="1,2", help="comma-separated process counts (default: 1,2)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, help="threads per process (default: cores / processes)")
    p.add_argument("--runs", type=int, default=1, help="runs per configuration; the best is reported")
    a = p.parse_args()

    cores = len(os.sched_getaffinity(0))
    cuda = torch.cuda.is_available() and a.device != "cpu"
    print("command: python " + " ".join(sys.argv))
    print(f"machine: {cores} cores ({_cpu_model()}), torch {torch.__version__}, python {platform.python_version()}")
    if cuda:
        print(f"device: CUDA, {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}")
    else:
        print("device: CPU" + ("" if torch.cuda.is_available() else " (no CUDA GPU visible to PyTorch: GPU figures not measured)"))
    hp = PRESETS[a.preset]
    print(f"preset {a.preset}: global batch {hp.batch_size}, {a.epochs} epoch(s), "
          f"{a.train_subset or 60000} training images, {a.runs} run(s) per row (best shown)\n")
    print(f"{'processes':>9} {'threads/proc':>12} {'images/s':>9} {'speed-up':>8} {'wall s':>7} {'test acc':>8}")
    base = None
    for n in (int(s) for s in a.nprocs.split(",")):
        if cuda and n > torch.cuda.device_count():
            print(f"{n:>9}  skipped: only {torch.cuda.device_count()} GPU(s)")
            continue
        threads = a.threads or max(1, cores // n)
        best = None
        for _ in range(a.runs):
            with tempfile.TemporaryDirectory() as out:
                cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                       "-m", "digitrec.training", "--preset", a.preset, "--epochs", str(a.epochs), "--out", out,
                       "--device", "cuda" if cuda else "cpu", "--checkpoint-every", "0"]
                if a.train_subset:
                    cmd += ["--train-subset", str(a.train_subset)]
                env = {**os.environ, "OMP_NUM_THREADS": str(threads),
                       "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
                t0 = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                wall = time.perf_counter() - t0
                ckpt = checkpoint.load(Path(out) / "model.pt")
            images = a.epochs * ((a.train_subset or 60000) // hp.batch_size) * hp.batch_size
            rate = images / sum(h["seconds"] for h in ckpt.history)
            if best is None or rate > best[0]:
                best = (rate, wall, ckpt.history[-1]["test_acc"])
        base = base or best[0]
        print(f"{n:>9} {threads:>12} {best[0]:>9.0f} {best[0] / base:>7.2f}x {best[1]:>7.1f} {best[2]:>8.4f}")


if __name__ == "__main__":
    main()

"""Fault tolerance: SIGKILL mid-run and --resume, atomic checkpoints, corrupt checkpoints refused."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from digitrec import InputError, checkpoint
from digitrec.apps import cli
from digitrec.training import train

SRC = str(Path(__file__).resolve().parents[2] / "src")
RUN = dict(train_subset=2000, test_subset=500, epochs=2)  # 15 steps of 128 per epoch
# a checkpoint every 5 steps, so the first one lands mid-epoch
FLAGS = ["--preset", "fast", "--device", "cpu", "--checkpoint-every", "5",
         *(f for k, v in RUN.items() for f in ("--" + k.replace("_", "-"), str(v)))]


def _train_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "digitrec.training", *FLAGS, "--out", str(out), *extra]


def _env() -> dict:
    # one thread each: the same CPU kernels in every run, so resumed and uninterrupted runs can match bit for bit
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "training ended before writing a checkpoint"
        assert time.monotonic() < deadline, f"no checkpoint after {timeout} s"
        time.sleep(0.005)


@pytest.mark.slow
def test_run_killed_after_its_first_checkpoint_resumes_to_the_same_weights(tmp_path):
    victim = subprocess.Popen(_train_cmd(tmp_path / "killed"), env=_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    ckpt_path = tmp_path / "killed" / "model.pt"
    _wait_for(ckpt_path, victim)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    interrupted = checkpoint.load(ckpt_path)
    assert (interrupted.epoch, interrupted.step) < (2, 0), "the kill came after training had finished"

    resumed = subprocess.run(_train_cmd(tmp_path / "killed", "--resume"), env=_env(), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses run
    try:
        a = train("cnn", "fast", tmp_path / "whole", progress=False, device="cpu", checkpoint_every=5, **RUN)
    finally:
        torch.set_num_threads(threads)
    b = checkpoint.load(ckpt_path)
    assert (b.epoch, b.step) == (2, 0)
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.history[-1]["test_acc"] == b.history[-1]["test_acc"]


@pytest.mark.slow
def test_checkpoint_written_every_step_is_loadable_while_written_and_after_sigkill(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_train_cmd(out, "--checkpoint-every", "1"), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_for(out / "model.pt", proc)
    steps = set()
    while len(steps) < 6 and proc.poll() is None:  # read while the trainer keeps replacing the file
        ckpt = checkpoint.load(out / "model.pt")
        steps.add((ckpt.epoch, ckpt.step))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(steps) >= 2
    checkpoint.load(out / "model.pt")


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> tuple[bytes, dict]:
    out = tmp_path_factory.mktemp("small")
    ckpt = train("cnn", "fast", out, train_subset=1024, test_subset=100, epochs=1, progress=False, device="cpu")
    return (out / "model.pt").read_bytes(), ckpt


def _flip_a_weight_bit(raw: bytes, ckpt: dict) -> bytes:
    weights = ckpt.state_dict["head.3.weight"].numpy().tobytes()
    at = raw.find(weights) + len(weights) // 2
    assert at > len(weights) // 2
    return raw[:at] + bytes([raw[at] ^ 0x10]) + raw[at + 1:]


def test_bit_flip_in_the_weights_is_reported_as_corrupt(tmp_path, checkpoint_bytes):
    path = tmp_path / "model.pt"
    path.write_bytes(_flip_a_weight_bit(*checkpoint_bytes))
    torch.load(path, weights_only=True)  # torch itself does not notice
    with pytest.raises(InputError, match="corrupt"):
        checkpoint.load(path)


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_checkpoint_is_reported(tmp_path, checkpoint_bytes, keep):
    raw, _ = checkpoint_bytes
    path = tmp_path / "model.pt"
    path.write_bytes(raw[:int(len(raw) * keep)])
    with pytest.raises(InputError, match=str(path)):
        checkpoint.load(path)


@pytest.mark.parametrize("nproc", ["1", "2"])
def test_cli_resume_from_a_corrupt_checkpoint_exits_2_with_one_line(tmp_path, checkpoint_bytes, capsys, nproc):
    (tmp_path / "model.pt").write_bytes(_flip_a_weight_bit(*checkpoint_bytes))
    status = cli.main(["train", "--preset", "fast", "--out", str(tmp_path), "--resume", "--nproc", nproc,
                       "--device", "cpu", "--train-subset", "1024"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("digitrec: error: ") and err.count("\n") == 1 and "corrupt" in err


@pytest.mark.slow
def test_resume_says_when_there_is_nothing_to_resume_and_what_it_resumes_from(tmp_path):
    fresh = subprocess.run(_train_cmd(tmp_path, "--resume"), capture_output=True, text=True, env=_env(), timeout=300)
    assert fresh.returncode == 0 and "starting fresh" in fresh.stderr and str(tmp_path / "model.pt") in fresh.stderr
    again = subprocess.run(_train_cmd(tmp_path, "--resume"), capture_output=True, text=True, env=_env(), timeout=300)
    assert again.returncode == 0 and "resuming" in again.stderr and "end of epoch 2" in again.stderr


@pytest.mark.slow
def test_a_full_disk_during_training_is_one_line_exit_2_and_no_stray_file(tmp_path):
    (tmp_path / "model.pt.tmp").symlink_to("/dev/full")
    r = subprocess.run([sys.executable, "-m", "digitrec.apps.cli", "train", *FLAGS, "--out", str(tmp_path)],
                       capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("digitrec: error: cannot write")
    assert "Traceback" not in r.stderr
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())

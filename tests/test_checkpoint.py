"""The model file: typed, checksummed, verified on load; an unverifiable file is refused unless trusted."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import digitrec
from digitrec import InputError, checkpoint
from digitrec.inference import bundled_model_path


def _tampered(tmp_path, drop_checksum: bool):
    raw = torch.load(bundled_model_path(), weights_only=True)
    first = next(k for k in raw["state_dict"] if raw["state_dict"][k].is_floating_point())
    raw["state_dict"][first] = torch.zeros_like(raw["state_dict"][first])  # a layer zeroed
    if drop_checksum:
        del raw["checksum"]
    path = tmp_path / "model.pt"
    torch.save(raw, path)
    return path


def test_a_tampered_layer_is_caught_by_the_checksum(tmp_path):
    with pytest.raises(InputError, match="checksum mismatch"):
        checkpoint.load(_tampered(tmp_path, drop_checksum=False))


def test_a_file_without_checksum_is_refused_unless_trusted(tmp_path):
    path = _tampered(tmp_path, drop_checksum=True)
    with pytest.raises(InputError, match="no content checksum"):
        digitrec.load(path)
    assert digitrec.load(path, trust_unverified=True).checkpoint.checksum is None
    r = subprocess.run([sys.executable, "-m", "digitrec.apps.cli", "predict", "examples/seven.png", "--model", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--trust-unverified" in r.stderr and "Traceback" not in r.stderr


def test_the_typed_checkpoint_round_trips(tmp_path):
    ckpt = checkpoint.load(bundled_model_path())
    ckpt.without_training_state().save(tmp_path / "copy.pt")
    again = checkpoint.load(tmp_path / "copy.pt")
    assert again.arch == ckpt.arch and again.temperature == ckpt.temperature
    assert all(torch.equal(again.state_dict[k], v) for k, v in ckpt.state_dict.items())


def test_unknown_fields_and_preprocessing_versions_are_named(tmp_path):
    raw = torch.load(bundled_model_path(), weights_only=True)
    ckpt = checkpoint.Checkpoint.from_dict({k: v for k, v in raw.items() if k != "checksum"})
    ckpt.preprocess_version = 99
    ckpt.save(tmp_path / "future.pt")
    with pytest.raises(InputError, match="preprocessing version 99"):
        digitrec.load(tmp_path / "future.pt")
    with pytest.raises(InputError, match="unknown to this digitrec"):
        checkpoint.Checkpoint.from_dict({"arch": "cnn", "wings": 2})


def test_a_full_disk_is_one_error_and_leaves_no_temporary_file(tmp_path):
    ckpt = checkpoint.load(bundled_model_path()).without_training_state()
    (tmp_path / "model.pt.tmp").symlink_to("/dev/full")  # every write there fails: no space left
    with pytest.raises(InputError, match="cannot write .*model.pt"):
        ckpt.save(tmp_path / "model.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_a_model_file_whose_temperature_is_not_positive_and_finite_is_refused(tmp_path, temperature):
    ckpt = checkpoint.load(bundled_model_path())
    ckpt.temperature = temperature
    ckpt.save(tmp_path / "model.pt")
    with pytest.raises(InputError, match="temperature must be a positive finite number"):
        digitrec.load(tmp_path / "model.pt")

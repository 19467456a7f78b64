import dataclasses
import json

import pytest
import torch

from digitrec import InputError, checkpoint
from digitrec.training import PRESETS, train

TINY = dict(train_subset=1024, test_subset=256, progress=False)


def test_training_writes_checkpoint_and_per_epoch_metrics(tmp_path):
    ckpt = train("cnn", "fast", tmp_path, epochs=2, **TINY)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert {"loss", "train_acc", "test_acc", "seconds"} <= set(metrics["history"][0])
    saved = checkpoint.load(tmp_path / "model.pt")
    assert saved.epoch == 2 and saved.data_hash == ckpt.data_hash


@pytest.mark.slow
def test_same_seed_gives_identical_weights(tmp_path):
    a = train("cnn", "fast", tmp_path / "a", epochs=1, seed=3, **TINY)
    b = train("cnn", "fast", tmp_path / "b", epochs=1, seed=3, **TINY)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_resuming_a_finished_run_keeps_its_weights(tmp_path):
    done = train("cnn", "fast", tmp_path, epochs=1, **TINY)
    again = train("cnn", "fast", tmp_path, epochs=1, resume=True, **TINY)
    assert again.epoch == 1
    assert all(torch.equal(done.state_dict[k], again.state_dict[k]) for k in done.state_dict)


def test_resume_refuses_a_checkpoint_with_other_settings(tmp_path):
    train("cnn", "fast", tmp_path, epochs=1, **TINY)
    with pytest.raises(InputError, match="other settings"):
        train("cnn", "fast", tmp_path, epochs=1, resume=True, lr=1e-2, **TINY)


def test_logreg_baseline_trains_and_scores(tmp_path):
    ckpt = train("logreg", out=tmp_path, train_subset=2000, test_subset=500, progress=False)
    assert ckpt.arch == "logreg" and ckpt.history[-1]["test_acc"] > 0.8


def test_corrupt_checkpoint_is_refused(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(InputError, match="model.pt"):
        checkpoint.load(tmp_path / "model.pt")


def test_exported_weights_drop_the_optimizer_state(tmp_path):
    trained = train("cnn", "fast", tmp_path, epochs=1, **TINY)
    lean = trained.without_training_state()
    assert trained.optimizer is not None and lean.optimizer is None
    assert lean.state_dict.keys() == trained.state_dict.keys()
    assert all(torch.equal(lean.state_dict[k], trained.state_dict[k]) for k in trained.state_dict)


def test_presets_are_frozen_data():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["default"].epochs = 1

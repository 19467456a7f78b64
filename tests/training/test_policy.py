"""``digitrec calibrate``: a read policy fitted on held-out training renders, for any model, stored in its file."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import digitrec
from digitrec import checkpoint, data
from digitrec.training import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def logreg_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("logreg")
    train("logreg", "default", out, train_subset=6000, test_subset=500, progress=False)
    return out / "model.pt"


def _calibrated(model, tmp_path) -> str:
    out = tmp_path / "calibrated.pt"
    r = subprocess.run([sys.executable, "-m", "digitrec.apps.cli", "calibrate", str(model), "--n", "20",
                        "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "read policy fitted on" in r.stdout
    return str(out)


def _flags(path) -> tuple[float, float]:
    """Shares of the right reads and of the misreads of 2,000 MNIST test digits that are flagged or rejected."""
    x, y = data.load_mnist("test")
    preds = digitrec.load(path).predict_batch(x[:2000])
    right = np.array([p.digit == t for p, t in zip(preds, y[:2000])])
    doubted = np.array([p.unsure or p.digit is None for p in preds])
    return float(doubted[right].mean()), float(doubted[~right].mean())


@pytest.mark.parametrize("which", ["cnn", "logreg"])
def test_a_fitted_policy_flags_few_right_reads_and_tells_misreads_apart(which, small_model, logreg_model, tmp_path):
    model = small_model if which == "cnn" else logreg_model
    path = _calibrated(model, tmp_path)
    policy = checkpoint.load(path).policy
    assert policy["fitted"]["by"] == "digitrec calibrate" and policy["fitted"]["pictures"] > 400
    right, misreads = _flags(path)
    assert right <= 0.03
    assert misreads >= 4 * right  # a misread is far likelier to be flagged than a right read
    if which == "logreg":
        # read by the hand-set values made for the bundled CNN, over a fifth of its right reads went to a person
        assert _flags(model)[0] > 3 * right

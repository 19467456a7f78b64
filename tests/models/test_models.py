import time

import pytest
import torch

from digitrec.models import build, count_parameters
from digitrec.training.loop import as_tensor, fit_logreg, normalise


def test_cnn_maps_a_batch_to_ten_logits():
    net = build("cnn", {"stages": ((8,), (16,))}).eval()
    assert net(torch.zeros(5, 1, 28, 28)).shape == (5, 10)


def test_cnn_width_is_set_by_its_stages():
    assert count_parameters(build("cnn", {"stages": ((8,), (16,))})) < count_parameters(build("cnn"))


def test_logreg_is_one_linear_layer_over_784_pixels():
    net = build("logreg")
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert count_parameters(net) == 7850


def test_fitted_logreg_learns_mnist(mnist_test_small):
    x, y = mnist_test_small
    xt = normalise(as_tensor(x))
    net = fit_logreg(xt[:400], torch.from_numpy(y[:400]), max_iter=200)
    acc = (net(xt[400:]).argmax(1).numpy() == y[400:]).mean()
    assert acc > 0.75


def _hostile(tmp_path, **changes):
    """The bundled model's file with ``changes``, saved with a valid checksum: the file vouches for itself."""
    from digitrec import checkpoint
    from digitrec.inference import bundled_model_path

    ckpt = checkpoint.load(bundled_model_path())
    for k, v in changes.items():
        setattr(ckpt, k, v)
    path = tmp_path / "hostile.pt"
    ckpt.save(path)
    return path


@pytest.mark.parametrize("changes, words", [
    ({"config": {"stages": [[6000], [6000]]}}, "parameters, over the"),
    ({"arch": "resnet"}, "unknown model architecture"),
    ({"config": {"depth": 9}}, "does not build"),
    ({"config": {"stages": [[8]] * 2000}}, "not a short dict"),
    ({"config": {"stages": [[8], [16]]}}, "weights do not fit"),
])
def test_a_hostile_model_file_is_one_line_and_exit_2_before_anything_large_is_built(tmp_path, capsys, drawn_png,
                                                                                    changes, words):
    from digitrec.apps import cli

    path = _hostile(tmp_path, **changes)
    t0 = time.perf_counter()
    assert cli.main(["predict", str(drawn_png(7)), "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert time.perf_counter() - t0 < 5

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

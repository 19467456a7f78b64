import numpy as np
import torch

from digitrec import checkpoint
from digitrec.inference.backends import TorchDigits
from digitrec.inference.bundled import bundled_model_path
from digitrec.models import from_checkpoint


def test_torch_backend_gives_the_logits_of_the_checkpoints_own_network(mnist_test_small):
    ckpt = checkpoint.load(bundled_model_path("torch"))
    x = mnist_test_small[0][:200].astype(np.float32) / 255
    mean, std = ckpt.norm
    with torch.inference_mode():
        want = from_checkpoint(ckpt)((torch.from_numpy(x)[:, None] - mean) / std).numpy()
    got = TorchDigits(ckpt).logits(x)
    assert np.abs(got - want).max() < 1e-4
    assert (got.argmax(1) == want.argmax(1)).all()

"""The ink stage alone (decode, clean ink, MNIST framing) as the imaging tests read a picture through it."""
from digitrec.imaging import load_image, to_mnist


def ink_stage(src):
    """``src`` as a 28x28 float array through the ink stage alone, or None where it finds no mark."""
    return to_mnist(load_image(src, one_digit=True))

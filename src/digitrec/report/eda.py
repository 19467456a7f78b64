"""The data analysis of the report: label counts, pixel statistics, duplicates, mean digits and 2-D
embeddings (PCA, t-SNE) of a stratified sample; cached, since t-SNE takes a while."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from .. import data

__all__ = ["eda", "TSNE_SAMPLE"]

TSNE_SAMPLE = 3000      # training images in the 2-D embeddings, stratified by digit
_EDA_VERSION = 1        # bump when eda() computes something different: old cache files are then ignored


def eda(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
        sample: int = TSNE_SAMPLE, cache: str | os.PathLike | None = None, progress: bool = False) -> dict:
    """Return the data analysis the report shows: class counts, pixel histograms, mean images, duplicates, embeddings.

    The result is cached under ``cache`` (default: ``data.cache_dir()``) keyed by the data's hash and ``sample``,
    so t-SNE runs once per dataset. ``summary`` holds the table; the rest are arrays.
    """
    key = hashlib.sha256((data.data_hash(x_train, y_train) + data.data_hash(x_test, y_test)).encode()).hexdigest()
    path = Path(cache if cache is not None else data.cache_dir()) / f"report-eda-v{_EDA_VERSION}-{key[:16]}-{sample}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
            out["summary"] = json.loads(str(out["summary"]))
            return out
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is recomputed and replaced
    steps = tqdm(total=3, desc="data analysis", unit="step", disable=not progress, leave=False)
    out = {"counts_train": np.bincount(y_train, minlength=10), "counts_test": np.bincount(y_test, minlength=10),
           "hist_train": np.bincount(x_train.ravel(), minlength=256),
           "hist_test": np.bincount(x_test.ravel(), minlength=256),
           "mean_images": np.stack([x_train[y_train == d].mean(0) for d in range(10)]).astype(np.float32)}
    steps.update()
    summary = {"train_images": int(len(x_train)), "test_images": int(len(x_test)), "image_shape": list(x_train.shape[1:]),
               "dtype": str(x_train.dtype), "min": int(min(x_train.min(), x_test.min())),
               "max": int(max(x_train.max(), x_test.max())), "mean_pixel": float(x_train.mean()),
               "zero_pixels": float(out["hist_train"][0] / x_train.size), **_duplicates(x_train, y_train, x_test, y_test)}
    steps.update()
    steps.set_description(f"t-SNE of {sample:,} images")
    idx, pca, variance, tsne = _embeddings(x_train, y_train, sample)
    steps.update()
    steps.close()
    out.update(sample_index=idx, sample_labels=y_train[idx], pca=pca, pca_variance=variance, tsne=tsne)
    summary["embedding_sample"] = int(len(idx))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, summary=np.array(json.dumps(summary)), **out)
    os.replace(tmp, path)
    out["summary"] = summary
    return out


def _duplicates(x_train, y_train, x_test, y_test) -> dict:
    # exact duplicates by content hash: a copy of a test image in the training set would inflate test scores
    def digests(x):
        return np.array([hashlib.blake2b(im.tobytes(), digest_size=16).digest() for im in x])

    d_train, d_test = digests(x_train), digests(x_test)
    d_all, y_all = np.concatenate([d_train, d_test]), np.concatenate([y_train, y_test])
    labelled = np.array([d + bytes([label]) for d, label in zip(d_all, y_all)])
    return {"duplicates_train": int(len(d_train) - len(np.unique(d_train))),
            "duplicates_test": int(len(d_test) - len(np.unique(d_test))),
            "test_in_train": int(np.isin(d_test, d_train).sum()),
            "conflicting_labels": int(len(np.unique(labelled)) - len(np.unique(d_all)))}


def _embeddings(x, y, sample: int):
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(0)
    per_digit = sample // 10
    idx = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == d), min(per_digit, int((y == d).sum())), replace=False)
                                  for d in range(10)]))
    flat = x[idx].reshape(len(idx), -1).astype(np.float32) / 255
    pca = PCA(n_components=min(50, len(idx) - 1), random_state=0)
    reduced = pca.fit_transform(flat)
    # t-SNE on the first 50 principal components: the usual denoising step, and several times faster.
    # One thread: its OpenMP workers busy-wait, so on a shared 2-core machine two threads burned ~15x the
    # CPU time of one (10.8 s vs 0.7 s for 300 images) and finished later.
    with threadpool_limits(1):
        tsne = TSNE(2, perplexity=min(30.0, (len(idx) - 1) / 3), init="pca", max_iter=500,
                    random_state=0).fit_transform(reduced)
    return idx, reduced[:, :2].astype(np.float32), pca.explained_variance_ratio_[:2], tsne.astype(np.float32)


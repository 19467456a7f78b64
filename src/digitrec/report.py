"""The evaluation and EDA report: one self-contained HTML page (figures embedded as PNG data) plus metrics.json.

The page is the list ``SECTIONS``: each entry is a function ``(Context) -> Section`` that draws its own
figures and writes its own HTML; a new section is one more function in that list. Every model number
comes from ``digitrec.evaluate`` and every data number from ``eda()``; this module arranges and draws them.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from . import data, evaluate
from .recognizer import Recognizer, bundled_model_path, load

__all__ = ["build_report", "default_models", "eda", "Context", "ModelResult", "Section", "SECTIONS"]

TSNE_SAMPLE = 3000      # training images in the 2-D embeddings, stratified by digit
SPEED_IMAGES = 2000     # test images timed for the images/s figures
GALLERY = 24            # most confidently wrong test images shown per model
ROBUSTNESS_IMAGES = 1000  # test images in the robustness table, and images in each not-a-digit set
BEFORE_AFTER = 3        # test digits in the preprocessing before/after figure
_EDA_VERSION = 1        # bump when eda() computes something different: old cache files are then ignored

_DIGIT_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_MODEL_COLORS = ["#3b5bdb", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#1098ad"]
_SPLIT_COLORS = {"train": "#3b5bdb", "test": "#e8590c"}
_RC = {
    "font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.titlepad": 8,
    "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#adb5bd",
    "axes.grid": True, "axes.axisbelow": True, "grid.color": "#e9ecef", "grid.linewidth": 0.8,
    "axes.labelcolor": "#343a40", "xtick.color": "#495057", "ytick.color": "#495057",
    "legend.frameon": False, "legend.fontsize": 9, "savefig.dpi": 110, "image.interpolation": "nearest",
}


# --- what the sections draw from ----------------------------------------------------------------

@dataclass
class ModelResult:
    """One model's evaluation on the test images: everything the sections need about it."""
    name: str
    path: Path
    recognizer: Recognizer
    labels: np.ndarray         # [N] true digits of the test images scored
    probs: np.ndarray          # [N,10] calibrated probabilities on the test images
    predicted: np.ndarray      # [N] predicted digit, -1 for "no digit"
    scores: dict               # evaluate.scores
    roc: list                  # evaluate.roc_curves
    reliability: dict          # evaluate.reliability
    confusions: list           # evaluate.top_confusions
    wrong: np.ndarray          # evaluate.confident_errors: test indices, most confident first
    speed: dict                # evaluate.throughput
    robustness: dict           # evaluate.robustness on the first Context.robustness_images test images

    @property
    def checkpoint(self) -> dict:
        return self.recognizer.checkpoint

    @property
    def file_bytes(self) -> int:
        return self.path.stat().st_size

    def summary(self) -> dict:
        """The JSON-ready record of this model in metrics.json."""
        c = self.checkpoint
        return {"name": self.name, "path": str(self.path), "arch": c["arch"], "preset": c.get("preset"),
                "parameters": c.get("parameters"), "file_bytes": self.file_bytes,
                "train_seconds": c.get("train_seconds"), "data_hash": c.get("data_hash"), "speed": self.speed,
                "scores": self.scores, "roc_auc_per_digit": [r["auc"] for r in self.roc],
                "reliability": self.reliability, "top_confusions": self.confusions,
                "confident_errors": [{"index": int(i), "true": int(self.labels[i]), "predicted": int(self.predicted[i]),
                                      "confidence": float(self.probs[i, self.predicted[i]])} for i in self.wrong]}


@dataclass
class Context:
    """Everything a section may draw: the evaluated models (first = the main one), the test images, the EDA."""
    models: list[ModelResult]
    x_test: np.ndarray
    y_test: np.ndarray
    eda: dict
    speed_images: int
    robustness_images: int

    def color(self, i: int) -> str:
        return _MODEL_COLORS[i % len(_MODEL_COLORS)]


@dataclass
class Section:
    """A part of the page: its heading, its HTML body and, optionally, numbers for metrics.json under ``key``."""
    title: str
    body: str
    metrics: dict | None = None

    @property
    def key(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


# --- data analysis (cached) -----------------------------------------------------------------------

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


# --- models -----------------------------------------------------------------------------------

def default_models() -> list[Path]:
    """The bundled default model and, when shipped, the bundled logistic-regression baseline."""
    main = bundled_model_path()
    baseline = main.with_name("logreg.pt")
    if not baseline.exists():
        if main.exists():  # else loading it fails with the one error line that matters
            print(f"digitrec: note: no bundled baseline at {baseline}; reporting the default model alone",
                  file=sys.stderr)
        return [main]
    return [main, baseline]


def _model_name(ckpt: dict) -> str:
    if ckpt["arch"] == "logreg":
        return "Logistic regression (baseline)"
    return f"CNN ({ckpt.get('preset', 'custom')} preset)"


def _evaluate_model(name: str, path: Path, r: Recognizer, x: np.ndarray, y: np.ndarray, speed_images: int,
                    robustness_images: int, non_digits: dict, progress: bool) -> ModelResult:
    probs, predicted = evaluate.predictions(r, x, progress=progress)
    s = evaluate.scores(y, probs, predicted)
    return ModelResult(name=name, path=path, recognizer=r, labels=y, probs=probs, predicted=predicted, scores=s,
                       roc=evaluate.roc_curves(y, probs), reliability=evaluate.reliability(y, probs),
                       confusions=evaluate.top_confusions(s["confusion"]),
                       wrong=evaluate.confident_errors(y, probs, predicted, GALLERY),
                       speed=evaluate.throughput(r, x[:speed_images]),
                       robustness=evaluate.robustness(r, x[:robustness_images], y[:robustness_images], non_digits,
                                                      progress=progress))


# --- drawing helpers --------------------------------------------------------------------------

def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _figure(fig: Figure, name: str, caption: str) -> str:
    """Embed ``fig`` as a PNG data URI inside a <figure> named ``name`` (the page test looks for it)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure data-figure="{_esc(name)}"><img src="{uri}" alt="{_esc(caption)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


def _table(header: list[str], rows: list[list], cls: str = "", head_html: str | None = None) -> str:
    """An HTML table; cells are already-safe HTML strings (numbers formatted by the caller)."""
    head = head_html or "<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="table-wrap"><table class="{cls}"><thead>{head}</thead><tbody>{body}</tbody></table></div>'


def _pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}&nbsp;%"


def _size(n: int) -> str:
    return f"{n / 1024:.0f}&nbsp;KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f}&nbsp;MiB"


def _rate(x: float) -> str:
    return f"{x:,.0f}"


def _percent_label(v: float, _pos=None) -> str:
    return f"{100 * v:.6g} %"


def _best(values: list[float], higher: bool) -> int | None:
    """Index of the best value (None when there is nothing to compare)."""
    if len(values) < 2:
        return None
    return int(np.argmax(values) if higher else np.argmin(values))


def _swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>'


def _model_label(ctx: Context, i: int) -> str:
    return f"{_swatch(ctx.color(i))}{_esc(ctx.models[i].name)}"


# --- sections -----------------------------------------------------------------------------------

def data_section(ctx: Context) -> Section:
    e, s = ctx.eda, ctx.eda["summary"]
    rows = [["Images", f"{s['train_images']:,} train · {s['test_images']:,} test"],
            ["Image", f"{s['image_shape'][0]} × {s['image_shape'][1]} pixels, {s['dtype']}"],
            ["Value range", f"{s['min']} – {s['max']} (mean {s['mean_pixel']:.1f}; "
                            f"{_pct(s['zero_pixels'], 1)} of pixels are 0)"],
            ["Exact duplicates in train", f"{s['duplicates_train']:,}"],
            ["Exact duplicates in test", f"{s['duplicates_test']:,}"],
            ["Test images also in train", f"{s['test_in_train']:,}"],
            ["Duplicates with conflicting labels", f"{s['conflicting_labels']:,}"]]
    parts = [_table(["Property", "Value"], rows, "kv")]

    fig = Figure(figsize=(10, 3.2))
    for ax, split in zip(fig.subplots(1, 2), ("train", "test")):
        counts = e[f"counts_{split}"]
        bars = ax.bar(range(10), counts, color=_DIGIT_COLORS, width=0.75)
        ax.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=8, padding=2)
        ax.set(title=f"{split.capitalize()} set: images per digit", xticks=range(10), xlabel="digit",
               ylim=(0, counts.max() * 1.15))
        ax.axhline(counts.mean(), color="#495057", lw=1, ls="--")
        ax.grid(axis="x", visible=False)
    c = e["counts_train"]
    parts.append(_figure(fig, "class-counts", f"Class counts; the dashed line is the mean per digit. In train, the "
                                              f"most frequent digit is {c.argmax()} ({c.max():,}), the rarest "
                                              f"{c.argmin()} ({c.min():,})."))

    fig = Figure(figsize=(10, 3.2))
    ax = fig.subplots()
    for split in ("train", "test"):
        h = e[f"hist_{split}"]
        ax.step(range(256), h / h.sum(), where="mid", color=_SPLIT_COLORS[split], lw=1.4, label=split)
    ax.set(yscale="log", xlim=(0, 255), xlabel="pixel value (0 = background, 255 = ink)", ylabel="share of pixels",
           title="Pixel-intensity histogram (log scale)")
    ax.legend()
    parts.append(_figure(fig, "pixel-histogram", "Share of pixels at each grey value, train and test overlaid."))

    fig = Figure(figsize=(10, 1.6))
    for d, ax in enumerate(fig.subplots(1, 10)):
        ax.imshow(e["mean_images"][d], cmap="magma", vmin=0, vmax=255)
        ax.set_title(str(d), fontsize=11)
        ax.axis("off")
    fig.suptitle("Mean training image per digit", fontweight="bold", fontsize=11, y=1.08)
    parts.append(_figure(fig, "mean-images", "The average of all training images of each digit."))

    fig = Figure(figsize=(10, 4.8))
    labels = e["sample_labels"]
    var = e["pca_variance"]
    for ax, key, title in zip(fig.subplots(1, 2), ("pca", "tsne"),
                              (f"PCA (PC1 {100 * var[0]:.1f} %, PC2 {100 * var[1]:.1f} % of variance)", "t-SNE")):
        xy = e[key]
        ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap=ListedColormap(_DIGIT_COLORS), vmin=-0.5, vmax=9.5,
                   s=4, alpha=0.7, linewidths=0)
        for d in range(10):
            mx, my = np.median(xy[labels == d], axis=0)
            ax.text(mx, my, str(d), fontsize=13, fontweight="bold", ha="center", va="center", color=_DIGIT_COLORS[d],
                    path_effects=[patheffects.withStroke(linewidth=3, foreground="white")])
        ax.set(title=title, xticks=[], yticks=[])
        ax.grid(False)
    parts.append(_figure(fig, "embedding", f"2-D embeddings of {len(labels):,} training images "
                                           f"(stratified: {len(labels) // 10:,} per digit), coloured by digit; "
                                           "each number sits at its digit's median."))
    return Section("Data (EDA)", "".join(parts), metrics={**s, "counts_train": e["counts_train"].tolist(),
                                                         "counts_test": e["counts_test"].tolist()})


def training_section(ctx: Context) -> Section:
    fig = Figure(figsize=(10, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    rows = []
    for i, m in enumerate(ctx.models):
        c, color = m.checkpoint, ctx.color(i)
        hist = c.get("history", [])
        epochs = [h["epoch"] for h in hist]
        losses = [(h["epoch"], h["loss"]) for h in hist if h.get("loss") is not None]
        if losses:
            ax_loss.plot(*zip(*losses), color=color, marker="o", ms=3, label=m.name)
        for split, ls in (("train", "--"), ("test", "-")):
            acc = np.clip([h[f"{split}_acc"] for h in hist], 1e-4, 1 - 1e-4)
            ax_acc.plot(epochs, acc, color=color, ls=ls, marker="o", ms=3, label=f"{m.name}, {split}")
        hp, cnn = c.get("hyperparameters", {}), c["arch"] == "cnn"
        last = hist[-1] if hist else {}
        rows.append([_model_label(ctx, i), _esc(c.get("preset", "")), f"{c.get('epoch', len(hist))}",
                     f"{hp.get('batch_size', '')}" if cnn else "—", f"{hp.get('lr', '')}" if cnn else "L-BFGS",
                     ("yes" if hp.get("augment") else "no") if cnn else "—",
                     f"{c.get('train_seconds', float('nan')):,.1f}&nbsp;s",
                     _pct(last["train_acc"]) if last else "—", _pct(last["test_acc"]) if last else "—",
                     f"{c.get('seed', '')}", f"<code>{_esc(str(c.get('data_hash', ''))[:12])}</code>"])
    ax_loss.set(title="Training loss per epoch", xlabel="epoch", ylabel="cross-entropy (train)")
    if not ax_loss.lines:
        ax_loss.text(0.5, 0.5, "no per-epoch loss recorded", ha="center", va="center", transform=ax_loss.transAxes)
    ax_acc.set(title="Accuracy per epoch (logit scale)", xlabel="epoch", ylabel="accuracy", yscale="logit")
    ax_acc.yaxis.set_major_formatter(FuncFormatter(_percent_label))
    ax_acc.yaxis.set_minor_formatter(NullFormatter())
    for ax in (ax_loss, ax_acc):
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.legend(fontsize=8)
    if ax_loss.lines:
        ax_loss.legend(fontsize=8)
    table = _table(["Model", "Preset", "Epochs", "Batch", "Peak LR", "Augment", "Training time",
                    "Final train acc.", "Final test acc.", "Seed", "Data hash"], rows)
    note = ("<p class='note'>From each checkpoint's record. Train accuracy is measured on the (augmented) batches "
            "during the epoch, test accuracy on the raw MNIST test tensors after it; the scores below go through "
            "the full recognizer path (preprocessing included), so they can differ slightly. The logistic "
            "regression is fitted in one L-BFGS run, so it has one point and no per-epoch loss.</p>")
    return Section("Training", _figure(fig, "training-curves", "Loss and accuracy per epoch; dashed: train, "
                                                               "solid: test.") + table + note)


_SCORE_ROWS = [  # key, label, format, higher is better
    ("accuracy", "Accuracy", _pct, True),
    ("macro_f1", "Macro-F1", lambda v: f"{v:.4f}", True),
    ("roc_auc_ovr", "ROC-AUC (one-vs-rest, macro)", lambda v: f"{v:.5f}", True),
    ("rmse", "RMSE of probabilities vs one-hot", lambda v: f"{v:.4f}", False),
    ("log_loss", "Log-loss", lambda v: f"{v:.4f}", False),
    ("ece", "Expected calibration error (15 bins)", lambda v: f"{v:.4f}", False),
]


def scores_section(ctx: Context) -> Section:
    n = ctx.models[0].scores["n"]
    header = ["Metric"] + [_model_label(ctx, i) for i in range(len(ctx.models))]
    rows = []
    for key, label, fmt, higher in _SCORE_ROWS:
        values = [m.scores[key] for m in ctx.models]
        best = _best(values, higher)
        rows.append([label] + [f"<b>{fmt(v)}</b>" if j == best else fmt(v) for j, v in enumerate(values)])
    errors = [n - round(m.scores["accuracy"] * n) for m in ctx.models]
    rows.insert(1, ["Errors"] + [f"{e:,} of {n:,}" for e in errors])
    rows.append(["Rejected as “no digit”"] + [f"{m.scores['rejected']:,}" for m in ctx.models])
    parts = [_table(header, rows, "scores")]

    head = ("<tr><th rowspan='2'>Digit</th><th rowspan='2'>Support</th>"
            + "".join(f"<th colspan='3' class='group'>{_model_label(ctx, i)}</th>" for i in range(len(ctx.models)))
            + "</tr><tr>" + "<th>Precision</th><th>Recall</th><th>F1</th>" * len(ctx.models) + "</tr>")
    rows = []
    for d in range(10):
        row = [f"<b>{d}</b>", f"{ctx.models[0].scores['per_class'][d]['support']:,}"]
        for m in ctx.models:
            c = m.scores["per_class"][d]
            row += [f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}"]
        rows.append(row)
    parts.append(_table([], rows, "per-class", head_html=head))

    fig = Figure(figsize=(10, 3.4))
    ax = fig.subplots()
    width = 0.8 / len(ctx.models)
    floor = 0.3 / max(c["support"] for c in ctx.models[0].scores["per_class"])  # below one mistake: no bar
    for i, m in enumerate(ctx.models):
        err = np.array([1 - c["recall"] for c in m.scores["per_class"]])
        ax.bar(np.arange(10) + (i - (len(ctx.models) - 1) / 2) * width, np.maximum(err, floor), width,
               color=ctx.color(i), label=m.name)
    ax.set(yscale="log", ylim=(floor, None), xticks=range(10), xlabel="true digit", ylabel="error rate (1 − recall)",
           title="Per-digit error rate (log scale)")
    ax.yaxis.set_major_formatter(FuncFormatter(_percent_label))
    ax.grid(axis="x", visible=False)
    ax.legend()
    parts.append(_figure(fig, "per-class", "Share of each digit's test images that the model gets wrong "
                                           "(no bar: none wrong)."))
    intro = (f"<p class='note'>On the MNIST test set ({n:,} images) through the full recognizer path: "
             "preprocessing, model, calibrated probabilities. Best value per row in bold.</p>")
    return Section("Scores", intro + "".join(parts))


def comparison_section(ctx: Context) -> Section:
    rows_spec = [  # label, value of a model, format, higher is better
        ("Accuracy", lambda m: m.scores["accuracy"], _pct, True),
        ("Macro-F1", lambda m: m.scores["macro_f1"], lambda v: f"{v:.4f}", True),
        ("ROC-AUC (OvR, macro)", lambda m: m.scores["roc_auc_ovr"], lambda v: f"{v:.5f}", True),
        ("RMSE of probabilities", lambda m: m.scores["rmse"], lambda v: f"{v:.4f}", False),
        ("Log-loss", lambda m: m.scores["log_loss"], lambda v: f"{v:.4f}", False),
        ("ECE", lambda m: m.scores["ece"], lambda v: f"{v:.4f}", False),
        ("Parameters", lambda m: m.checkpoint.get("parameters", 0), lambda v: f"{v:,}", False),
        ("Model file size", lambda m: m.file_bytes, _size, False),
        ("Training time", lambda m: m.checkpoint.get("train_seconds", float("nan")), lambda v: f"{v:,.1f}&nbsp;s",
         False),
        ("Images/s, model only", lambda m: m.speed["model"], _rate, True),
        ("Images/s, end to end", lambda m: m.speed["end_to_end"], _rate, True),
    ]
    rows = []
    for label, value, fmt, higher in rows_spec:
        values = [value(m) for m in ctx.models]
        best = _best(values, higher)
        rows.append([label] + [f"<b>{fmt(v)}</b>" if j == best else fmt(v) for j, v in enumerate(values)])
    header = ["", *(_model_label(ctx, i) for i in range(len(ctx.models)))]
    main = ctx.models[0]
    lines = []
    for other in ctx.models[1:]:
        errors = [m.scores["n"] - round(m.scores["accuracy"] * m.scores["n"]) for m in (main, other)]
        times = f" ({errors[1] / errors[0]:.1f}× as many)" if errors[0] else ""
        params = main.checkpoint.get("parameters", 0) / max(other.checkpoint.get("parameters", 1), 1)
        slower = other.speed["model"] / main.speed["model"]
        lines.append(f"<p><b>{_esc(main.name)}</b> makes {errors[0]:,} mistakes where <b>{_esc(other.name)}</b> "
                     f"makes {errors[1]:,}{times}; it has {params:.1f}× the parameters and needs {slower:.1f}× "
                     "the model time per image.</p>")
    load = main.speed.get("load_average")
    note = (f"<p class='note'>Best per row in bold. Images/s: the first {ctx.speed_images:,} test images on this "
            f"machine ({os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
            + (f", load average {load:.1f} while measuring" if load is not None else "") + "); "
            "“model only” times the network on preprocessed 28×28 batches (best of several runs), “end to end” "
            "adds the per-image preprocessing that every prediction pays. A load average above the CPU count means other "
            "work shared the machine and the speeds are low. Training time is the checkpoint's record.</p>")
    return Section("Model comparison", "".join(lines) + _table(header, rows, "compare") + note,
                   metrics={"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "torch": torch.__version__, "speed_images": ctx.speed_images})


def _confusion_axes(ax, confusion: np.ndarray, title: str) -> None:
    eye = np.eye(10, dtype=bool)
    off = np.ma.masked_array(confusion, mask=eye | (confusion == 0))
    vmax = max(int(off.max() or 1), 1)
    ax.imshow(np.ma.masked_array(confusion, mask=~eye), cmap=ListedColormap(["#f1f3f5"]))
    # start the colour scale below zero so that a single mistake is still clearly red
    ax.imshow(off, cmap="Reds", vmin=-0.3 * vmax, vmax=vmax)
    for t in range(10):
        for p in range(10):
            v = int(confusion[t, p])
            if t == p:
                ax.text(p, t, f"{v:,}", ha="center", va="center", fontsize=7, color="#adb5bd")
            elif v:
                ax.text(p, t, str(v), ha="center", va="center", fontsize=8, fontweight="bold",
                        color="white" if v > 0.6 * vmax else "#212529")
    ax.set(title=title, xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true")
    ax.grid(False)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _gallery(ctx: Context, m: ModelResult) -> Figure:
    cols = 8
    rows = max(1, -(-len(m.wrong) // cols))
    fig = Figure(figsize=(10, 1.7 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, m.wrong):
        p = m.predicted[i]
        ax.imshow(ctx.x_test[i], cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(f"{ctx.y_test[i]} → {p}\n{100 * m.probs[i, p]:.0f} %", fontsize=9, color="#c92a2a",
                     fontweight="bold", linespacing=1.2)
    return fig


def errors_section(ctx: Context) -> Section:
    k = len(ctx.models)
    fig = Figure(figsize=(min(5 * k, 10), 5 if k == 1 else 10 / k + 0.6))
    for ax, m in zip(np.atleast_1d(fig.subplots(1, k)), ctx.models):
        _confusion_axes(ax, np.array(m.scores["confusion"]), m.name)
    parts = [_figure(fig, "confusion", "Confusion matrices (counts). Correct answers on the diagonal are greyed "
                                       "out so that the mistakes stand out; the darker the red, the more frequent.")]
    for i, m in enumerate(ctx.models):
        support = [c["support"] for c in m.scores["per_class"]]
        rows = [[f"<b>{c['true']} → {c['predicted']}</b>", f"{c['count']:,}", _pct(c["count"] / support[c["true"]])]
                for c in m.confusions]
        parts.append(f"<h3>{_model_label(ctx, i)}</h3>")
        parts.append("<div class='pair'><div>"
                     + (_table(["True → predicted", "Count", "Share of true digit"], rows, "confusions")
                        if rows else "<p>No mistakes.</p>")
                     + "</div><div>")
        if len(m.wrong):
            parts.append(_figure(_gallery(ctx, m), f"confident-errors-{i}",
                                 f"The {len(m.wrong)} most confidently wrong test images of {m.name}: "
                                 "true → predicted (confidence)."))
        else:
            parts.append("<p>No wrong predictions to show.</p>")
        parts.append("</div></div>")
    return Section("Errors", "".join(parts))


def roc_section(ctx: Context) -> Section:
    k = len(ctx.models)
    fig = Figure(figsize=(10, 4.4 if k > 1 else 4.8))
    for ax, m in zip(np.atleast_1d(fig.subplots(1, k)), ctx.models):
        negatives = int(min((ctx.y_test != d).sum() for d in range(10)))
        floor = 0.5 / max(negatives, 1)  # log axes cannot show fpr = 0; pin it half a sample below the first step
        for r in m.roc:
            ax.plot(np.maximum(r["fpr"], floor), r["tpr"], color=_DIGIT_COLORS[r["digit"]], lw=1.3,
                    label=f"{r['digit']}: AUC {r['auc']:.5f}")
        # start the y axis where the curves leave the left edge: near-perfect curves would hug the top otherwise
        low = min(max(t for f, t in zip(r["fpr"], r["tpr"]) if f == 0) for r in m.roc)
        ax.set(xscale="log", xlim=(floor, 1), ylim=(max(0.0, low - 0.02), 1.005),
               xlabel="false-positive rate (log)", ylabel="true-positive rate", title=f"ROC one-vs-rest: {m.name}")
        ax.legend(fontsize=7.5, loc="lower right", ncol=2)
    parts = [_figure(fig, "roc", "ROC curve of each digit against the rest; the false-positive axis is logarithmic "
                                 "so that the near-perfect corner is readable.")]
    rows = [[f"<b>{d}</b>"] + [f"{m.roc[d]['auc']:.5f}" for m in ctx.models] for d in range(10)]
    rows.append(["<b>macro</b>"] + [f"<b>{m.scores['roc_auc_ovr']:.5f}</b>" for m in ctx.models])
    parts.append(_table(["Digit"] + [_model_label(ctx, i) for i in range(k)], rows, "auc"))

    fig = Figure(figsize=(10, 5.6))
    ax, ax_n = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    ax.plot([0, 1], [0, 1], color="#adb5bd", ls="--", lw=1, label="perfect calibration")
    for i, m in enumerate(ctx.models):
        r = m.reliability
        edges = np.array(r["edges"])
        full = [j for j, c in enumerate(r["count"]) if c]
        ax.plot([r["confidence"][j] for j in full], [r["accuracy"][j] for j in full], marker="o", ms=4,
                color=ctx.color(i), label=f"{m.name} (ECE {m.scores['ece']:.4f})")
        width = (edges[1] - edges[0]) / k
        ax_n.bar(edges[:-1] + i * width, np.maximum(r["count"], 0.1), width, align="edge", color=ctx.color(i))
    ax.set(ylabel="accuracy in bin", title="Reliability diagram (15 equal-width confidence bins)", ylim=(0, 1.02))
    ax.legend(loc="upper left")
    ax_n.set(yscale="log", xlabel="confidence (probability of the predicted digit)", ylabel="images", xlim=(0, 1),
             ylim=(0.8, None))
    parts.append(_figure(fig, "reliability", "Reliability diagram: each point is a bin of test images, at their mean "
                                             "confidence and their accuracy; below, how many images fall in each "
                                             "bin."))
    return Section("ROC and calibration", "".join(parts))


def _before_after(ctx: Context) -> tuple[Figure, dict]:
    """The preprocessing before/after grid (a column per condition) and how often it found no digit."""
    k = min(BEFORE_AFTER, len(ctx.x_test))
    pairs = evaluate.preprocessing_examples(ctx.x_test[:k])
    conditions = list(dict.fromkeys(p["condition"] for p in pairs))
    # a before row and an after row per digit, a thin empty row between digits
    ratios = [1, 1, 0.25] * k
    fig = Figure(figsize=(0.6 * len(conditions), 1.15 * k + 0.35))
    grid = fig.add_gridspec(len(ratios) - 1, len(conditions), height_ratios=ratios[:-1], hspace=0.06, wspace=0.06)
    blank = {}
    for c, name in enumerate(conditions):
        for j, p in enumerate(pairs[c * k:(c + 1) * k]):
            before, after = fig.add_subplot(grid[3 * j, c]), fig.add_subplot(grid[3 * j + 1, c])
            # raw pixel values for both: MNIST is light ink on black, the photos dark ink on paper
            before.imshow(p["before"], cmap="gray", vmin=0, vmax=255)
            if p["after"] is None:
                blank[name] = blank.get(name, 0) + 1
                after.set_facecolor("#ced4da")
                after.text(0.5, 0.5, "no\ndigit", ha="center", va="center", fontsize=6.5, color="#495057",
                           transform=after.transAxes)
            else:
                after.imshow(p["after"], cmap="gray", vmin=0, vmax=1)
            if j == 0:
                before.set_title(name.replace(": ", "\n").replace("_", "\n"), fontsize=6.5, fontweight="normal",
                                 pad=3)
            if c == 0:
                before.set_ylabel("before", fontsize=7)
                after.set_ylabel("after", fontsize=7)
            for ax in (before, after):
                ax.set(xticks=[], yticks=[], box_aspect=1)
                ax.grid(False)
                for spine in ax.spines.values():
                    spine.set_visible(False)
    return fig, blank


def _model_cells(ctx: Context, value, fmt) -> list[str]:
    """A table row's cell per model: ``fmt(value(model))``, the highest value in bold (none on a tie of all)."""
    values = [value(m) for m in ctx.models]
    best = _best(values, higher=True) if len(set(values)) > 1 else None
    return [f"<b>{fmt(v)}</b>" if j == best else fmt(v) for j, v in enumerate(values)]


def robustness_section(ctx: Context) -> Section:
    n, k = ctx.robustness_images, len(ctx.models)
    tables = [m.robustness for m in ctx.models]
    corruptions = len(tables[0]["corruptions"])
    fig, blank = _before_after(ctx)
    shown = min(BEFORE_AFTER, len(ctx.x_test))
    parts = [f"<p>How the models fare on input unlike the clean MNIST test set: the {corruptions} MNIST-C-style "
             f"corruptions (Mu &amp; Gilmer 2019, at their published severities) of the first {n:,} test images "
             f"(of the {len(ctx.x_test):,} scored above), and {n:,} images of each kind that is not a digit at all. "
             "<code>python benchmarks/robustness.py --n 10000</code> (<code>--model PATH</code> for another model) "
             "gives the full-size table, with the same corruptions and sets.</p>",
             _figure(fig, "preprocessing-before-after",
                     f"Preprocessing of the first {shown} test digits under each condition: clean, the {corruptions} "
                     "corruptions and four photos of the digit on paper (uneven light, ruled lines, a form's box, "
                     "dust). Per "
                     "digit, top: the image as given; below: the 28×28 input the model sees. Grey “no digit”: "
                     "preprocessing found nothing to read, so the image is rejected.")]

    rejects = any(t["clean"]["rejected"] or any(c["rejected"] for c in t["corruptions"].values()) for t in tables)
    sub = ["Accuracy", "Rejected"] if rejects else ["Accuracy"]
    head = ("<tr><th rowspan='2'>Condition</th>"
            + "".join(f"<th colspan='{len(sub)}' class='group'>{_model_label(ctx, i)}</th>" for i in range(k))
            + "</tr><tr>" + "".join(f"<th>{h}</th>" for h in sub) * k + "</tr>")

    def row(label, accuracy, rejected=None):
        acc = _model_cells(ctx, accuracy, _pct)
        if not rejects:
            return [label, *acc]
        rej = ["—" if rejected is None else _pct(rejected(m), 1) for m in ctx.models]
        return [label, *(c for pair in zip(acc, rej) for c in pair)]

    rows = [row("<b>clean</b>", lambda m: m.robustness["clean"]["accuracy"],
                lambda m: m.robustness["clean"]["rejected"])]
    for name in tables[0]["corruptions"]:
        rows.append(row(_esc(name), lambda m: m.robustness["corruptions"][name]["accuracy"],
                        lambda m: m.robustness["corruptions"][name]["rejected"]))
    rows.append(row("<b>mean of the corruptions</b>", lambda m: m.robustness["mean_corruption_accuracy"]))
    parts.append("<h3>Corrupted digits</h3>" + _table([], rows, "robustness", head_html=head))

    chart = Figure(figsize=(10, 3.6))
    ax = chart.subplots()
    names = list(tables[0]["corruptions"])
    width = 0.8 / k
    for i, (m, t) in enumerate(zip(ctx.models, tables)):
        ax.bar(np.arange(len(names)) + (i - (k - 1) / 2) * width, [t["corruptions"][c]["accuracy"] for c in names],
               width, color=ctx.color(i), label=f"{m.name} (mean {100 * t['mean_corruption_accuracy']:.1f} %)")
        ax.axhline(t["clean"]["accuracy"], color=ctx.color(i), lw=1, ls="--")
    # head room above 100 % for the legend, so that it covers no bar
    ax.set(ylim=(0, 1.2), yticks=np.linspace(0, 1, 6), xlim=(-0.6, len(names) - 0.4), ylabel="accuracy",
           title=f"Accuracy per corruption ({n:,} test images)")
    ax.set_xticks(range(len(names)), [c.replace("_", " ") for c in names], rotation=35, ha="right")
    ax.yaxis.set_major_formatter(FuncFormatter(_percent_label))
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper center", ncol=k)
    parts.append(_figure(chart, "robustness", "Accuracy of each model on each corruption; the dashed line is its "
                                              "accuracy on the same images uncorrupted. Rejected images count as "
                                              "wrong."))

    head = ("<tr><th rowspan='2'>Not a digit</th><th rowspan='2'>Images</th>"
            + "".join(f"<th colspan='2' class='group'>{_model_label(ctx, i)}</th>" for i in range(k))
            + "</tr><tr>" + "<th>AUROC</th><th>Rejected</th>" * k + "</tr>")
    rows = []
    for name, first in tables[0]["not_a_digit"].items():
        auroc = _model_cells(ctx, lambda m: m.robustness["not_a_digit"][name]["auroc"], lambda v: f"{v:.4f}")
        rejected = _model_cells(ctx, lambda m: m.robustness["not_a_digit"][name]["rejected"], lambda v: _pct(v, 1))
        rows.append([_esc(name), f"{first['n']:,}", *(c for pair in zip(auroc, rejected) for c in pair)])
    limits = [m.recognizer.reject_threshold for m in ctx.models]
    thresholds = ("; ".join(f"{_esc(m.name)}: " + (f"{t:.3f}" if np.isfinite(t) else "none, only blank images")
                            for m, t in zip(ctx.models, limits))
                  if np.isfinite(limits).any() else "none has one: only images that preprocessing finds blank")
    parts.append("<h3>Not a digit</h3>" + _table([], rows, "not-a-digit", head_html=head)
                 + "<p class='note'>AUROC: how well the model's digit score tells the clean test digits from "
                 "these images (1: perfectly, 0.5: not at all); it does not depend on a threshold. Rejected: the "
                 "share the model answers “no digit” for, at its reject threshold (" + thresholds + "). Synthetic "
                 "letters are drawn in other fonts than training uses. Best per row in bold.</p>")

    # -inf (no threshold) is not JSON: written as null
    metrics = {"robustness_images": n, "before_after_no_digit": blank,
               "models": [{"name": m.name, **t, "reject_threshold": t["reject_threshold"]
                           if np.isfinite(t["reject_threshold"]) else None} for m, t in zip(ctx.models, tables)]}
    return Section("Real-world input", "".join(parts), metrics=metrics)


SECTIONS = [data_section, training_section, scores_section, comparison_section, errors_section, roc_section,
            robustness_section]


# --- the page -----------------------------------------------------------------------------------

_CSS = """
:root{--ink:#212529;--muted:#6c757d;--line:#dee2e6;--soft:#f8f9fa;--accent:#3b5bdb}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:var(--ink);background:#f1f3f5}
main{max-width:1120px;margin:0 auto;padding:0 20px 48px}
header.top{background:linear-gradient(135deg,#1c2b6b,#3b5bdb);color:#fff;padding:28px 0 22px;margin-bottom:24px}
header.top .in{max-width:1120px;margin:0 auto;padding:0 20px}
header.top h1{margin:0 0 4px;font-size:28px;letter-spacing:-.01em}
header.top p{margin:0;opacity:.85}
header.top code{background:rgba(255,255,255,.18);color:#fff}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0 8px}
.card{background:rgba(255,255,255,.12);border:1px solid rgba(255,255,255,.25);border-radius:10px;padding:10px 16px;
 min-width:128px}
.card .v{font-size:24px;font-weight:700;font-variant-numeric:tabular-nums}
.card .k{font-size:12px;text-transform:uppercase;letter-spacing:.06em;opacity:.8}
.others{margin-top:8px;font-size:14px;opacity:.9}
nav{display:flex;flex-wrap:wrap;gap:6px;margin-top:16px}
nav a{color:#fff;text-decoration:none;background:rgba(255,255,255,.14);padding:4px 12px;border-radius:99px;font-size:13px}
nav a:hover{background:rgba(255,255,255,.3)}
section{background:#fff;border:1px solid var(--line);border-radius:12px;padding:8px 24px 20px;margin:0 0 20px;
 counter-increment:sec}
section>h2::before{content:counter(sec) ". ";color:var(--accent)}
h2{font-size:21px;margin:14px 0 10px}
h3{font-size:16px;margin:22px 0 8px}
figure{margin:16px 0}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
figcaption{color:var(--muted);font-size:13px;text-align:center;margin-top:4px}
.note{color:var(--muted);font-size:13px}
.table-wrap{overflow-x:auto;margin:12px 0}
table{border-collapse:collapse;font-size:13.5px;font-variant-numeric:tabular-nums;margin:0 auto}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:var(--soft);font-weight:600;color:#343a40;white-space:normal;vertical-align:bottom}
th.group{text-align:center;border-left:2px solid var(--line)}
td:first-child,th:first-child{text-align:left}
tbody tr:nth-child(even){background:#fcfcfd}
tbody tr:hover{background:#edf2ff}
table.kv td:last-child,table.kv th:last-child{text-align:left;white-space:normal}
table.compare{font-size:13px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:baseline}
.pair{display:grid;grid-template-columns:auto 1fr;gap:20px;align-items:start}
@media (max-width:800px){.pair{grid-template-columns:1fr}}
code{font-size:12px;background:var(--soft);padding:1px 4px;border-radius:4px}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:12px}
"""


def _header(ctx: Context, created: str) -> str:
    m = ctx.models[0]
    s, n = m.scores, m.scores["n"]
    cards = [("Accuracy", _pct(s["accuracy"])), ("Errors", f"{n - round(s['accuracy'] * n):,} / {n:,}"),
             ("Macro-F1", f"{s['macro_f1']:.4f}"), ("ROC-AUC", f"{s['roc_auc_ovr']:.5f}"),
             ("ECE", f"{s['ece']:.4f}"), ("Parameters", f"{m.checkpoint.get('parameters', 0):,}")]
    others = "".join(f"<div class='others'>vs {_esc(o.name)}: accuracy {_pct(o.scores['accuracy'])}, "
                     f"macro-F1 {o.scores['macro_f1']:.4f}, {o.checkpoint.get('parameters', 0):,} parameters</div>"
                     for o in ctx.models[1:])
    return (f"<h1>digitrec report: {_esc(m.name)}</h1>"
            f"<p>MNIST test set, {n:,} images · model file <code>{_esc(m.path.name)}</code> · {created}</p>"
            "<div class='cards'>" + "".join(f"<div class='card'><div class='v'>{v}</div><div class='k'>{k}</div></div>"
                                            for k, v in cards) + "</div>" + others)


def _page(ctx: Context, sections: list[Section], created: str) -> str:
    nav = "".join(f"<a href='#{s.key}'>{_esc(s.title)}</a>" for s in sections)
    body = "".join(f"<section id='{s.key}'><h2>{_esc(s.title)}</h2>{s.body}</section>" for s in sections)
    # the CSP makes "renders offline" checkable: the page may load nothing but its own inline data
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>digitrec report: {_esc(ctx.models[0].name)}</title><style>{_CSS}</style></head><body>"
            f"<header class='top'><div class='in'>{_header(ctx, created)}<nav>{nav}</nav></div></header>"
            f"<main>{body}<footer>Generated by <code>digitrec report</code> · {created}</footer></main></body></html>")


def build_report(models: list[str | os.PathLike] | None = None, out: str | os.PathLike = "runs/report", *,
                 limit: int | None = None, sample: int | None = None, speed_images: int = SPEED_IMAGES,
                 robustness_images: int | None = None, cache: str | os.PathLike | None = None,
                 progress: bool = True) -> dict:
    """Write ``out/report.html`` and ``out/metrics.json`` for ``models`` (default: the bundled model and baseline).

    Returns the metrics written. ``limit`` scores only the first N test images (a quick look); ``sample`` is
    the number of training images in the embeddings (default ``TSNE_SAMPLE``); ``robustness_images`` the
    test images (at most those scored) and images per not-a-digit set in the robustness table (default
    ``ROBUSTNESS_IMAGES``; each test image is preprocessed 17 times per model); ``cache`` holds the EDA
    (default ``data.cache_dir()``).
    Raises ``InputError`` for a missing or unreadable model file before any expensive work.
    """
    t0 = time.perf_counter()
    paths = [Path(p) for p in models] if models else default_models()
    recognizers = [load(p) for p in paths]  # fail fast on a bad file
    names = [_model_name(r.checkpoint) for r in recognizers]
    names = [f"{nm} · {p.parent.name}/{p.name}" if names.count(nm) > 1 else nm for nm, p in zip(names, paths)]

    x_train, y_train = data.load_mnist("train")
    x_all, y_all = data.load_mnist("test")
    e = eda(x_train, y_train, x_all, y_all, sample=sample or TSNE_SAMPLE, cache=cache, progress=progress)
    x_test, y_test = x_all[:limit], y_all[:limit]
    robustness_images = min(robustness_images or ROBUSTNESS_IMAGES, len(x_test))
    non_digits = evaluate.not_a_digit_sets(robustness_images)
    results = []
    for name, path, r in zip(names, paths, recognizers):
        if progress:
            tqdm.write(f"evaluating {name} on {len(x_test):,} test images ({robustness_images:,} for robustness)")
        results.append(_evaluate_model(name, path, r, x_test, y_test, speed_images, robustness_images, non_digits,
                                       progress))
    ctx = Context(models=results, x_test=x_test, y_test=y_test, eda=e, speed_images=min(speed_images, len(x_test)),
                  robustness_images=robustness_images)

    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with matplotlib.rc_context(_RC):
        sections = [make(ctx) for make in tqdm(SECTIONS, desc="drawing", unit="section", disable=not progress,
                                               leave=False)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    page = _page(ctx, sections, created)
    metrics = {"report": {"created": created, "test_images": int(len(x_test)), "html": str(out / "report.html"),
                          "sections": [s.title for s in sections]},
               "models": [m.summary() for m in results],
               **{s.key: s.metrics for s in sections if s.metrics is not None}}
    metrics["report"]["seconds"] = round(time.perf_counter() - t0, 1)
    for name, text in (("report.html", page), ("metrics.json", json.dumps(metrics, indent=2))):
        tmp = out / (name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out / name)
    return metrics

"""The report's sections about MNIST itself and the models on it: data, training, scores, comparison,
errors, ROC and calibration. Each is a function ``(Context) -> Section``."""
from __future__ import annotations

import os

import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from .results import (
    DIGIT_COLORS,
    SPLIT_COLORS,
    Context,
    ModelResult,
    Section,
    best_index,
    esc,
    figure,
    file_size,
    html_table,
    model_label,
    pct,
    percent_label,
    rate,
)

__all__ = ["data_section", "training_section", "scores_section", "comparison_section", "errors_section",
           "roc_section"]


def data_section(ctx: Context) -> Section:
    e, s = ctx.eda, ctx.eda["summary"]
    rows = [["Images", f"{s['train_images']:,} train · {s['test_images']:,} test"],
            ["Image", f"{s['image_shape'][0]} × {s['image_shape'][1]} pixels, {s['dtype']}"],
            ["Value range", f"{s['min']} – {s['max']} (mean {s['mean_pixel']:.1f}; "
                            f"{pct(s['zero_pixels'], 1)} of pixels are 0)"],
            ["Exact duplicates in train", f"{s['duplicates_train']:,}"],
            ["Exact duplicates in test", f"{s['duplicates_test']:,}"],
            ["Test images also in train", f"{s['test_in_train']:,}"],
            ["Duplicates with conflicting labels", f"{s['conflicting_labels']:,}"]]
    parts = [html_table(["Property", "Value"], rows, "kv")]

    fig = Figure(figsize=(10, 3.2))
    for ax, split in zip(fig.subplots(1, 2), ("train", "test")):
        counts = e[f"counts_{split}"]
        bars = ax.bar(range(10), counts, color=DIGIT_COLORS, width=0.75)
        ax.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=8, padding=2)
        ax.set(title=f"{split.capitalize()} set: images per digit", xticks=range(10), xlabel="digit",
               ylim=(0, counts.max() * 1.15))
        ax.axhline(counts.mean(), color="#495057", lw=1, ls="--")
        ax.grid(axis="x", visible=False)
    c = e["counts_train"]
    parts.append(figure(fig, "class-counts", f"Class counts; the dashed line is the mean per digit. In train, the "
                                              f"most frequent digit is {c.argmax()} ({c.max():,}), the rarest "
                                              f"{c.argmin()} ({c.min():,})."))

    fig = Figure(figsize=(10, 3.2))
    ax = fig.subplots()
    for split in ("train", "test"):
        h = e[f"hist_{split}"]
        ax.step(range(256), h / h.sum(), where="mid", color=SPLIT_COLORS[split], lw=1.4, label=split)
    ax.set(yscale="log", xlim=(0, 255), xlabel="pixel value (0 = background, 255 = ink)", ylabel="share of pixels",
           title="Pixel-intensity histogram (log scale)")
    ax.legend()
    parts.append(figure(fig, "pixel-histogram", "Share of pixels at each grey value, train and test overlaid."))

    fig = Figure(figsize=(10, 1.6))
    for d, ax in enumerate(fig.subplots(1, 10)):
        ax.imshow(e["mean_images"][d], cmap="magma", vmin=0, vmax=255)
        ax.set_title(str(d), fontsize=11)
        ax.axis("off")
    fig.suptitle("Mean training image per digit", fontweight="bold", fontsize=11, y=1.08)
    parts.append(figure(fig, "mean-images", "The average of all training images of each digit."))

    parts.append(_embedding_figure(e))
    return Section("Data (EDA)", "".join(parts), metrics={**s, "counts_train": e["counts_train"].tolist(),
                                                         "counts_test": e["counts_test"].tolist()})


def _embedding_figure(e: dict) -> str:
    """PCA and t-SNE of the EDA's sample of training images, side by side, coloured by digit."""
    fig = Figure(figsize=(10, 4.8))
    labels = e["sample_labels"]
    var = e["pca_variance"]
    for ax, key, title in zip(fig.subplots(1, 2), ("pca", "tsne"),
                              (f"PCA (PC1 {100 * var[0]:.1f} %, PC2 {100 * var[1]:.1f} % of variance)", "t-SNE")):
        xy = e[key]
        ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap=ListedColormap(DIGIT_COLORS), vmin=-0.5, vmax=9.5,
                   s=4, alpha=0.7, linewidths=0)
        for d in range(10):
            mx, my = np.median(xy[labels == d], axis=0)
            ax.text(mx, my, str(d), fontsize=13, fontweight="bold", ha="center", va="center", color=DIGIT_COLORS[d],
                    path_effects=[patheffects.withStroke(linewidth=3, foreground="white")])
        ax.set(title=title, xticks=[], yticks=[])
        ax.grid(False)
    return figure(fig, "embedding", f"2-D embeddings of {len(labels):,} training images "
                                     f"(stratified: {len(labels) // 10:,} per digit), coloured by digit; "
                                     "each number sits at its digit's median.")


def training_section(ctx: Context) -> Section:
    fig = Figure(figsize=(10, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    rows = []
    for i, m in enumerate(ctx.models):
        c, color = m.checkpoint, ctx.color(i)
        hist = c.history
        epochs = [h["epoch"] for h in hist]
        losses = [(h["epoch"], h["loss"]) for h in hist if h.get("loss") is not None]
        if losses:
            ax_loss.plot(*zip(*losses), color=color, marker="o", ms=3, label=m.name)
        for split, ls in (("train", "--"), ("test", "-")):
            acc = np.clip([h[f"{split}_acc"] for h in hist], 1e-4, 1 - 1e-4)
            ax_acc.plot(epochs, acc, color=color, ls=ls, marker="o", ms=3, label=f"{m.name}, {split}")
        hp, cnn = c.hyperparameters or {}, c.arch == "cnn"
        last = hist[-1] if hist else {}
        rows.append([model_label(ctx, i), esc(c.preset or ""), f"{c.epoch or len(hist)}",
                     f"{hp.get('batch_size', '')}" if cnn else "—", f"{hp.get('lr', '')}" if cnn else "L-BFGS",
                     ("yes" if hp.get("augment") else "no") if cnn else "—",
                     f"{c.train_seconds or float('nan'):,.1f}&nbsp;s",
                     pct(last["train_acc"]) if last else "—", pct(last["test_acc"]) if last else "—",
                     f"{'' if c.seed is None else c.seed}", f"<code>{esc(str(c.data_hash or '')[:12])}</code>"])
    ax_loss.set(title="Training loss per epoch", xlabel="epoch", ylabel="cross-entropy (train)")
    if not ax_loss.lines:
        ax_loss.text(0.5, 0.5, "no per-epoch loss recorded", ha="center", va="center", transform=ax_loss.transAxes)
    ax_acc.set(title="Accuracy per epoch (logit scale)", xlabel="epoch", ylabel="accuracy", yscale="logit")
    ax_acc.yaxis.set_major_formatter(FuncFormatter(percent_label))
    ax_acc.yaxis.set_minor_formatter(NullFormatter())
    for ax in (ax_loss, ax_acc):
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.legend(fontsize=8)
    if ax_loss.lines:
        ax_loss.legend(fontsize=8)
    table = html_table(["Model", "Preset", "Epochs", "Batch", "Peak LR", "Augment", "Training time",
                    "Final train acc.", "Final test acc.", "Seed", "Data hash"], rows)
    note = ("<p class='note'>From each checkpoint's record. Train accuracy is measured on the (augmented) batches "
            "during the epoch, test accuracy on the raw MNIST test tensors after it; the scores below go through "
            "the full recognizer path (preprocessing included), so they can differ slightly. The logistic "
            "regression is fitted in one L-BFGS run, so it has one point and no per-epoch loss.</p>")
    return Section("Training", figure(fig, "training-curves", "Loss and accuracy per epoch; dashed: train, "
                                                               "solid: test.") + table + note)


_SCORE_ROWS = [  # key, label, format, higher is better
    ("accuracy", "Accuracy", pct, True),
    ("macro_f1", "Macro-F1", lambda v: f"{v:.4f}", True),
    ("roc_auc_ovr", "ROC-AUC (one-vs-rest, macro)", lambda v: f"{v:.5f}", True),
    ("rmse", "RMSE of probabilities vs one-hot", lambda v: f"{v:.4f}", False),
    ("log_loss", "Log-loss", lambda v: f"{v:.4f}", False),
    ("ece", "Expected calibration error (15 bins)", lambda v: f"{v:.4f}", False),
]


def scores_section(ctx: Context) -> Section:
    n = ctx.models[0].scores["n"]
    header = ["Metric"] + [model_label(ctx, i) for i in range(len(ctx.models))]
    rows = []
    for key, label, fmt, higher in _SCORE_ROWS:
        values = [m.scores[key] for m in ctx.models]
        best = best_index(values, higher)
        rows.append([label] + [f"<b>{fmt(v)}</b>" if j == best else fmt(v) for j, v in enumerate(values)])
    errors = [n - round(m.scores["accuracy"] * n) for m in ctx.models]
    rows.insert(1, ["Errors"] + [f"{e:,} of {n:,}" for e in errors])
    rows.append(["Rejected as “no digit”"] + [f"{m.scores['rejected']:,}" for m in ctx.models])
    parts = [html_table(header, rows, "scores")]

    head = ("<tr><th rowspan='2'>Digit</th><th rowspan='2'>Support</th>"
            + "".join(f"<th colspan='3' class='group'>{model_label(ctx, i)}</th>" for i in range(len(ctx.models)))
            + "</tr><tr>" + "<th>Precision</th><th>Recall</th><th>F1</th>" * len(ctx.models) + "</tr>")
    rows = []
    for d in range(10):
        row = [f"<b>{d}</b>", f"{ctx.models[0].scores['per_class'][d]['support']:,}"]
        for m in ctx.models:
            c = m.scores["per_class"][d]
            row += [f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}"]
        rows.append(row)
    parts.append(html_table([], rows, "per-class", head_html=head))

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
    ax.yaxis.set_major_formatter(FuncFormatter(percent_label))
    ax.grid(axis="x", visible=False)
    ax.legend()
    parts.append(figure(fig, "per-class", "Share of each digit's test images that the model gets wrong "
                                           "(no bar: none wrong)."))
    intro = (f"<p class='note'>On the MNIST test set ({n:,} images) through the full recognizer path: "
             "preprocessing, model, calibrated probabilities. Best value per row in bold.</p>")
    return Section("Scores", intro + "".join(parts))


def comparison_section(ctx: Context) -> Section:
    rows_spec = [  # label, value of a model, format, higher is better
        ("Accuracy", lambda m: m.scores["accuracy"], pct, True),
        ("Macro-F1", lambda m: m.scores["macro_f1"], lambda v: f"{v:.4f}", True),
        ("ROC-AUC (OvR, macro)", lambda m: m.scores["roc_auc_ovr"], lambda v: f"{v:.5f}", True),
        ("RMSE of probabilities", lambda m: m.scores["rmse"], lambda v: f"{v:.4f}", False),
        ("Log-loss", lambda m: m.scores["log_loss"], lambda v: f"{v:.4f}", False),
        ("ECE", lambda m: m.scores["ece"], lambda v: f"{v:.4f}", False),
        ("Parameters", lambda m: m.checkpoint.parameters or 0, lambda v: f"{v:,}", False),
        ("Model file size", lambda m: m.file_bytes, file_size, False),
        ("Training time", lambda m: m.checkpoint.train_seconds or float("nan"), lambda v: f"{v:,.1f}&nbsp;s",
         False),
        ("Images/s, model only", lambda m: m.speed["model"], rate, True),
        ("Images/s, end to end", lambda m: m.speed["end_to_end"], rate, True),
    ]
    rows = []
    for label, value, fmt, higher in rows_spec:
        values = [value(m) for m in ctx.models]
        best = best_index(values, higher)
        rows.append([label] + [f"<b>{fmt(v)}</b>" if j == best else fmt(v) for j, v in enumerate(values)])
    header = ["", *(model_label(ctx, i) for i in range(len(ctx.models)))]
    main = ctx.models[0]
    lines = []
    for other in ctx.models[1:]:
        errors = [m.scores["n"] - round(m.scores["accuracy"] * m.scores["n"]) for m in (main, other)]
        times = f" ({errors[1] / errors[0]:.1f}× as many)" if errors[0] else ""
        params = (main.checkpoint.parameters or 0) / max(other.checkpoint.parameters or 1, 1)
        slower = other.speed["model"] / main.speed["model"]
        lines.append(f"<p><b>{esc(main.name)}</b> makes {errors[0]:,} mistakes where <b>{esc(other.name)}</b> "
                     f"makes {errors[1]:,}{times}; it has {params:.1f}× the parameters and needs {slower:.1f}× "
                     "the model time per image.</p>")
    load = main.speed.get("load_average")
    note = (f"<p class='note'>Best per row in bold. Images/s: the first {ctx.speed_images:,} test images on this "
            f"machine ({os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
            + (f", load average {load:.1f} while measuring" if load is not None else "") + "); "
            "“model only” times the network on preprocessed 28×28 batches (best of several runs), “end to end” "
            "adds the per-image preprocessing that every prediction pays. A load average above the CPU count means other "
            "work shared the machine and the speeds are low. Training time is the checkpoint's record.</p>")
    return Section("Model comparison", "".join(lines) + html_table(header, rows, "compare") + note,
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
    parts = [figure(fig, "confusion", "Confusion matrices (counts). Correct answers on the diagonal are greyed "
                                       "out so that the mistakes stand out; the darker the red, the more frequent.")]
    for i, m in enumerate(ctx.models):
        support = [c["support"] for c in m.scores["per_class"]]
        rows = [[f"<b>{c['true']} → {c['predicted']}</b>", f"{c['count']:,}", pct(c["count"] / support[c["true"]])]
                for c in m.confusions]
        parts.append(f"<h3>{model_label(ctx, i)}</h3>")
        parts.append("<div class='pair'><div>"
                     + (html_table(["True → predicted", "Count", "Share of true digit"], rows, "confusions")
                        if rows else "<p>No mistakes.</p>")
                     + "</div><div>")
        if len(m.wrong):
            parts.append(figure(_gallery(ctx, m), f"confident-errors-{i}",
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
            ax.plot(np.maximum(r["fpr"], floor), r["tpr"], color=DIGIT_COLORS[r["digit"]], lw=1.3,
                    label=f"{r['digit']}: AUC {r['auc']:.5f}")
        # start the y axis where the curves leave the left edge: near-perfect curves would hug the top otherwise
        low = min(max(t for f, t in zip(r["fpr"], r["tpr"]) if f == 0) for r in m.roc)
        ax.set(xscale="log", xlim=(floor, 1), ylim=(max(0.0, low - 0.02), 1.005),
               xlabel="false-positive rate (log)", ylabel="true-positive rate", title=f"ROC one-vs-rest: {m.name}")
        ax.legend(fontsize=7.5, loc="lower right", ncol=2)
    parts = [figure(fig, "roc", "ROC curve of each digit against the rest; the false-positive axis is logarithmic "
                                 "so that the near-perfect corner is readable.")]
    rows = [[f"<b>{d}</b>"] + [f"{m.roc[d]['auc']:.5f}" for m in ctx.models] for d in range(10)]
    rows.append(["<b>macro</b>"] + [f"<b>{m.scores['roc_auc_ovr']:.5f}</b>" for m in ctx.models])
    parts.append(html_table(["Digit"] + [model_label(ctx, i) for i in range(k)], rows, "auc"))

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
    parts.append(figure(fig, "reliability", "Reliability diagram: each point is a bin of test images, at their mean "
                                             "confidence and their accuracy; below, how many images fall in each "
                                             "bin."))
    return Section("ROC and calibration", "".join(parts))


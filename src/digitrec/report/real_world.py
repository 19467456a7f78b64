"""The report's "Real-world input" section: preprocessing before/after, accuracy per corruption,
not-a-digit AUROC and rejection per model."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..evaluation import robustness
from .results import (
    Context,
    Section,
    best_index,
    esc,
    figure,
    html_table,
    model_label,
    pct,
    percent_label,
)

__all__ = ["robustness_section"]

BEFORE_AFTER = 3        # test digits in the preprocessing before/after figure


def _before_after(ctx: Context) -> tuple[Figure, dict]:
    """The preprocessing before/after grid (a column per condition) and how often it found no digit."""
    k = min(BEFORE_AFTER, len(ctx.x_test))
    pairs = robustness.preprocessing_examples(ctx.models[0].recognizer, ctx.x_test[:k])
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
    best = best_index(values, higher=True) if len(set(values)) > 1 else None
    return [f"<b>{fmt(v)}</b>" if j == best else fmt(v) for j, v in enumerate(values)]


def robustness_section(ctx: Context) -> Section:
    n = ctx.robustness_images
    tables = [m.robustness for m in ctx.models]
    corruptions = len(tables[0]["corruptions"])
    fig, blank = _before_after(ctx)
    shown = min(BEFORE_AFTER, len(ctx.x_test))
    parts = [f"<p>How the models fare on input unlike the clean MNIST test set: the {corruptions} MNIST-C-style "
             f"corruptions (Mu &amp; Gilmer 2019, at their published severities) of the first {n:,} test images "
             f"(of the {len(ctx.x_test):,} scored above), and {n:,} images of each kind that is not a digit at all. "
             "<code>python benchmarks/robustness.py --n 10000</code> (<code>--model PATH</code> for another model) "
             "gives the full-size table, with the same corruptions and sets.</p>",
             figure(fig, "preprocessing-before-after",
                     f"Preprocessing of the first {shown} test digits under each condition: clean, the {corruptions} "
                     "corruptions and four photos of the digit on paper (uneven light, ruled lines, a form's box, "
                     "dust). Per "
                     "digit, top: the image as given; below: the 28×28 input the model sees. Grey “no digit”: "
                     "preprocessing found nothing to read, so the image is rejected.")]

    parts += [_corruption_table(ctx, tables), _corruption_chart(ctx, tables, n), _not_a_digit_table(ctx, tables)]

    # -inf (no threshold) is not JSON: written as null
    metrics = {"robustness_images": n, "before_after_no_digit": blank,
               "models": [{"name": m.name, **t, "reject_threshold": t["reject_threshold"]
                           if np.isfinite(t["reject_threshold"]) else None} for m, t in zip(ctx.models, tables)]}
    return Section("Real-world input", "".join(parts), metrics=metrics)


def _corruption_table(ctx: Context, tables: list) -> str:
    """The accuracy (and share rejected, where any model rejects) of each model under each corruption."""
    k = len(ctx.models)
    rejects = any(t["clean"]["rejected"] or any(c["rejected"] for c in t["corruptions"].values()) for t in tables)
    sub = ["Accuracy", "Rejected"] if rejects else ["Accuracy"]
    head = ("<tr><th rowspan='2'>Condition</th>"
            + "".join(f"<th colspan='{len(sub)}' class='group'>{model_label(ctx, i)}</th>" for i in range(k))
            + "</tr><tr>" + "".join(f"<th>{h}</th>" for h in sub) * k + "</tr>")

    def row(label, accuracy, rejected=None):
        acc = _model_cells(ctx, accuracy, pct)
        if not rejects:
            return [label, *acc]
        rej = ["—" if rejected is None else pct(rejected(m), 1) for m in ctx.models]
        return [label, *(c for pair in zip(acc, rej) for c in pair)]

    rows = [row("<b>clean</b>", lambda m: m.robustness["clean"]["accuracy"],
                lambda m: m.robustness["clean"]["rejected"])]
    for name in tables[0]["corruptions"]:
        rows.append(row(esc(name), lambda m: m.robustness["corruptions"][name]["accuracy"],
                        lambda m: m.robustness["corruptions"][name]["rejected"]))
    rows.append(row("<b>mean of the corruptions</b>", lambda m: m.robustness["mean_corruption_accuracy"]))
    return "<h3>Corrupted digits</h3>" + html_table([], rows, "robustness", head_html=head)


def _corruption_chart(ctx: Context, tables: list, n: int) -> str:
    """A bar per model and corruption, the clean accuracy dashed."""
    k = len(ctx.models)
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
    ax.yaxis.set_major_formatter(FuncFormatter(percent_label))
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper center", ncol=k)
    return figure(chart, "robustness", "Accuracy of each model on each corruption; the dashed line is its "
                  "accuracy on the same images uncorrupted. Rejected images count as wrong.")


def _not_a_digit_table(ctx: Context, tables: list) -> str:
    """Each non-digit set: AUROC against the clean digits and the share rejected, per model."""
    k = len(ctx.models)
    head = ("<tr><th rowspan='2'>Not a digit</th><th rowspan='2'>Images</th>"
            + "".join(f"<th colspan='2' class='group'>{model_label(ctx, i)}</th>" for i in range(k))
            + "</tr><tr>" + "<th>AUROC</th><th>Rejected</th>" * k + "</tr>")
    rows = []
    for name, first in tables[0]["not_a_digit"].items():
        auroc = _model_cells(ctx, lambda m: m.robustness["not_a_digit"][name]["auroc"], lambda v: f"{v:.4f}")
        rejected = _model_cells(ctx, lambda m: m.robustness["not_a_digit"][name]["rejected"], lambda v: pct(v, 1))
        rows.append([esc(name), f"{first['n']:,}", *(c for pair in zip(auroc, rejected) for c in pair)])
    limits = [m.recognizer.reject_threshold for m in ctx.models]
    thresholds = ("; ".join(f"{esc(m.name)}: " + (f"{t:.3f}" if np.isfinite(t) else "none, only blank images")
                            for m, t in zip(ctx.models, limits))
                  if np.isfinite(limits).any() else "none has one: only images that preprocessing finds blank")
    return ("<h3>Not a digit</h3>" + html_table([], rows, "not-a-digit", head_html=head)
            + "<p class='note'>AUROC: how well the model's digit score tells the clean test digits from "
            "these images (1: perfectly, 0.5: not at all); it does not depend on a threshold. Rejected: the "
            "share the model answers “no digit” for, at its reject threshold (" + thresholds + "). Synthetic "
            "letters are drawn in other fonts than training uses. Best per row in bold.</p>")

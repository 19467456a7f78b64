"""What the report's sections draw from: each model's evaluation (``ModelResult``), the whole ``Context``,
and a ``Section`` of the page; plus the HTML and figure helpers the sections share."""
from __future__ import annotations

import base64
import html
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..checkpoint import Checkpoint
from ..evaluation import metrics, robustness
from ..inference import Recognizer, bundled_model_path

__all__ = ["ModelResult", "Context", "Section", "default_models", "model_name", "evaluate_model"]

SPEED_IMAGES = 2000     # test images timed for the images/s figures
GALLERY = 24            # most confidently wrong test images shown per model
ROBUSTNESS_IMAGES = 1000  # test images in the robustness table, and images in each not-a-digit set
DIGIT_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
MODEL_COLORS = ["#3b5bdb", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#1098ad"]
SPLIT_COLORS = {"train": "#3b5bdb", "test": "#e8590c"}
RC = {
    "font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.titlepad": 8,
    "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#adb5bd",
    "axes.grid": True, "axes.axisbelow": True, "grid.color": "#e9ecef", "grid.linewidth": 0.8,
    "axes.labelcolor": "#343a40", "xtick.color": "#495057", "ytick.color": "#495057",
    "legend.frameon": False, "legend.fontsize": 9, "savefig.dpi": 110, "image.interpolation": "nearest",
}




@dataclass
class ModelResult:
    """One model's evaluation on the test images: everything the sections need about it."""
    name: str
    path: Path
    recognizer: Recognizer
    labels: np.ndarray         # [N] true digits of the test images scored
    probs: np.ndarray          # [N,10] calibrated probabilities on the test images
    predicted: np.ndarray      # [N] predicted digit, -1 for "no digit"
    scores: dict               # metrics.scores
    roc: list                  # metrics.roc_curves
    reliability: dict          # metrics.reliability
    confusions: list           # metrics.top_confusions
    wrong: np.ndarray          # metrics.confident_errors: test indices, most confident first
    speed: dict                # metrics.throughput
    robustness: dict           # metrics.robustness on the first Context.robustness_images test images

    @property
    def checkpoint(self) -> Checkpoint:
        return self.recognizer.checkpoint

    @property
    def file_bytes(self) -> int:
        return self.path.stat().st_size

    def summary(self) -> dict:
        """The JSON-ready record of this model in metrics.json."""
        c = self.checkpoint
        return {"name": self.name, "path": str(self.path), "arch": c.arch, "preset": c.preset,
                "parameters": c.parameters, "file_bytes": self.file_bytes,
                "train_seconds": c.train_seconds, "data_hash": c.data_hash, "speed": self.speed,
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
        return MODEL_COLORS[i % len(MODEL_COLORS)]


@dataclass
class Section:
    """A part of the page: its heading, its HTML body and, optionally, numbers for metrics.json under ``key``."""
    title: str
    body: str
    metrics: dict | None = None

    @property
    def key(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")



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


def model_name(ckpt: Checkpoint) -> str:
    if ckpt.arch == "logreg":
        return "Logistic regression (baseline)"
    return f"CNN ({ckpt.preset or 'custom'} preset)"


def evaluate_model(name: str, path: Path, r: Recognizer, x: np.ndarray, y: np.ndarray, speed_images: int,
                    robustness_images: int, non_digits: dict, progress: bool) -> ModelResult:
    probs, predicted = metrics.predictions(r, x, progress=progress)
    s = metrics.scores(y, probs, predicted)
    return ModelResult(name=name, path=path, recognizer=r, labels=y, probs=probs, predicted=predicted, scores=s,
                       roc=metrics.roc_curves(y, probs), reliability=metrics.reliability(y, probs),
                       confusions=metrics.top_confusions(s["confusion"]),
                       wrong=metrics.confident_errors(y, probs, predicted, GALLERY),
                       speed=metrics.throughput(r, x[:speed_images]),
                       robustness=robustness.robustness(r, x[:robustness_images], y[:robustness_images], non_digits,
                                                      progress=progress))



def esc(s) -> str:
    return html.escape(str(s), quote=True)


def figure(fig: Figure, name: str, caption: str) -> str:
    """Embed ``fig`` as a PNG data URI inside a <figure> named ``name`` (the page test looks for it)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure data-figure="{esc(name)}"><img src="{uri}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def html_table(header: list[str], rows: list[list], cls: str = "", head_html: str | None = None) -> str:
    """An HTML table; cells are already-safe HTML strings (numbers formatted by the caller)."""
    head = head_html or "<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="table-wrap"><table class="{cls}"><thead>{head}</thead><tbody>{body}</tbody></table></div>'


def pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}&nbsp;%"


def file_size(n: int) -> str:
    return f"{n / 1024:.0f}&nbsp;KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f}&nbsp;MiB"


def rate(x: float) -> str:
    return f"{x:,.0f}"


def percent_label(v: float, _pos=None) -> str:
    return f"{100 * v:.6g} %"


def best_index(values: list[float], higher: bool) -> int | None:
    """Index of the best value (None when there is nothing to compare)."""
    if len(values) < 2:
        return None
    return int(np.argmax(values) if higher else np.argmin(values))


def swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>'


def model_label(ctx: Context, i: int) -> str:
    return f"{swatch(ctx.color(i))}{esc(ctx.models[i].name)}"



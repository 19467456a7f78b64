"""The evaluation and EDA report: one self-contained HTML page (figures embedded as PNG data) plus metrics.json.

The page is the list ``SECTIONS``: each entry is a function ``(Context) -> Section`` that draws its own
figures and writes its own HTML; a new section is one more function in that list. Every model number
comes from ``digitrec.evaluation`` and every data number from ``eda``; the sections arrange and draw them.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import matplotlib
from tqdm import tqdm

from .. import data
from ..evaluation import robustness
from ..inference import load
from .eda import TSNE_SAMPLE, eda
from .real_world import robustness_section
from .results import (
    RC,
    ROBUSTNESS_IMAGES,
    SPEED_IMAGES,
    Context,
    Section,
    default_models,
    esc,
    evaluate_model,
    model_name,
    pct,
)
from .sections import (
    comparison_section,
    data_section,
    errors_section,
    roc_section,
    scores_section,
    training_section,
)

__all__ = ["build_report", "SECTIONS"]

SECTIONS = [data_section, training_section, scores_section, comparison_section, errors_section, roc_section,
            robustness_section]



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
    cards = [("Accuracy", pct(s["accuracy"])), ("Errors", f"{n - round(s['accuracy'] * n):,} / {n:,}"),
             ("Macro-F1", f"{s['macro_f1']:.4f}"), ("ROC-AUC", f"{s['roc_auc_ovr']:.5f}"),
             ("ECE", f"{s['ece']:.4f}"), ("Parameters", f"{m.checkpoint.parameters or 0:,}")]
    others = "".join(f"<div class='others'>vs {esc(o.name)}: accuracy {pct(o.scores['accuracy'])}, "
                     f"macro-F1 {o.scores['macro_f1']:.4f}, {o.checkpoint.parameters or 0:,} parameters</div>"
                     for o in ctx.models[1:])
    return (f"<h1>digitrec report: {esc(m.name)}</h1>"
            f"<p>MNIST test set, {n:,} images · model file <code>{esc(m.path.name)}</code> · {created}</p>"
            "<div class='cards'>" + "".join(f"<div class='card'><div class='v'>{v}</div><div class='k'>{k}</div></div>"
                                            for k, v in cards) + "</div>" + others)


def _page(ctx: Context, sections: list[Section], created: str) -> str:
    nav = "".join(f"<a href='#{s.key}'>{esc(s.title)}</a>" for s in sections)
    body = "".join(f"<section id='{s.key}'><h2>{esc(s.title)}</h2>{s.body}</section>" for s in sections)
    # the CSP makes "renders offline" checkable: the page may load nothing but its own inline data
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>digitrec report: {esc(ctx.models[0].name)}</title><style>{_CSS}</style></head><body>"
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
    names = [model_name(r.checkpoint) for r in recognizers]
    names = [f"{nm} · {p.parent.name}/{p.name}" if names.count(nm) > 1 else nm for nm, p in zip(names, paths)]

    x_train, y_train = data.load_mnist("train")
    x_all, y_all = data.load_mnist("test")
    e = eda(x_train, y_train, x_all, y_all, sample=sample or TSNE_SAMPLE, cache=cache, progress=progress)
    x_test, y_test = x_all[:limit], y_all[:limit]
    robustness_images = min(robustness_images or ROBUSTNESS_IMAGES, len(x_test))
    non_digits = robustness.not_a_digit_sets(robustness_images)
    results = []
    for name, path, r in zip(names, paths, recognizers):
        if progress:
            tqdm.write(f"evaluating {name} on {len(x_test):,} test images ({robustness_images:,} for robustness)")
        results.append(evaluate_model(name, path, r, x_test, y_test, speed_images, robustness_images, non_digits,
                                       progress))
    ctx = Context(models=results, x_test=x_test, y_test=y_test, eda=e, speed_images=min(speed_images, len(x_test)),
                  robustness_images=robustness_images)

    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with matplotlib.rc_context(RC):
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

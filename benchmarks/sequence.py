"""Multi-digit reading: whole-string and per-digit accuracy on synthetic number fields, and read time.

Each field is a string of MNIST digits (the *test* split unless ``--split train``, the digits the line
model was trained on) drawn by ``digitrec.fields``: pasted left to right on white paper, every digit
scaled to a random height, shifted off a common baseline, with a random horizontal gap between
neighbouring ink boxes; a negative gap makes neighbours touch or overlap. Fixed seeds: the same command
builds the same fields.

Conditions (H = the field's nominal digit height, 110 px on 200 px tall canvases):
  spaced-5    5 digits on 800x200, gaps +0.05..+0.40 H
  touching-5  5 digits on 800x200, gaps -0.12..0 H (every pair touches or overlaps, by at most a quarter
              of the narrower digit's width)
  mixed-3-10  3-10 digits, gaps -0.12..+0.40 H, the line sloping up to 3 degrees, canvas as wide as needed
  amounts     "12.50", "1,250.00", "250,000" ...: points and commas written among the digits, read with
              kind="amount" (the separators must be right too)
  dates       "07/31/2026", "2026-07-31", "31.07.26", "07-31" ...: slashes, hyphens, points; kind="date"
  boxed-4-10  a row of 4-10 printed boxes, a fifth of them empty, digits as large as the box allows (some
              run into its lines); kind="boxes", every box right (an empty one read as empty)
  styled-5, styled-touching-5   as spaced-5 and touching-5, every digit restyled: strokes thickened or
              thinned, slanted up to 20 degrees either way, 0.7-1.4 times as wide (other writers' hands)
  styled-wide-5   as spaced-5, every digit in a heavy, broad hand: strokes thickened by 0.06-0.09 H, upright,
              1.1-1.4 times as wide

The MNIST conditions are read with no kind, as the CLI and the API read them. ``--tesseract`` reads the
same fields with Tesseract (``tesseract-ocr``, ``--psm 7``, a whitelist of the digits and the separators the
condition writes) for a side-by-side; a boxed field's text is then compared without its empty boxes.

Run:  PYTHONPATH=src python benchmarks/sequence.py [--model PATH] [--line-model PATH] [--strings 200]
      [--split test] [--threads N] [--tesseract]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

import digitrec
from digitrec import data
from digitrec.data.render.fields import Condition, Field, make_field
from digitrec.inference import reader

HEIGHT = 110  # nominal digit ink height, px
CONDITIONS = (
    Condition("spaced-5", (5, 5), (0.05, 0.40), canvas=(800 / HEIGHT, 200 / HEIGHT)),
    Condition("touching-5", (5, 5), (-0.12, 0.0), canvas=(800 / HEIGHT, 200 / HEIGHT)),
    Condition("mixed-3-10", (3, 10), (-0.12, 0.40), slope_deg=3.0),
    Condition("amounts", (1, 1), (0.05, 0.40), patterns=("#.##", "##.##", "###.##", "#,###.##", "##,###.##",
                                                         "###,###", "#,###")),
    Condition("dates", (1, 1), (0.05, 0.40), patterns=("##/##/####", "##/##/##", "##-##-####", "####-##-##",
                                                       "##.##.####", "##/##", "##-##")),
    Condition("boxed-4-10", (4, 10), (0.0, 0.0), boxed=True, empty=0.2),
    Condition("styled-5", (5, 5), (0.05, 0.40), canvas=(800 / HEIGHT, 200 / HEIGHT), restyled=True),
    Condition("styled-touching-5", (5, 5), (-0.12, 0.0), canvas=(800 / HEIGHT, 200 / HEIGHT), restyled=True),
    Condition("styled-wide-5", (5, 5), (0.05, 0.40), canvas=(800 / HEIGHT, 200 / HEIGHT), restyled=True, heavy=True),
)
KINDS = {"amounts": "amount", "dates": "date", "boxed-4-10": "boxes"}  # the others: no kind, the default


def make_fields(split: str, cond: Condition, count: int, seed: int) -> list[Field]:
    """``count`` fields for one condition, the same ones for the same arguments."""
    x, y = data.load_mnist(split)
    rng = np.random.default_rng([seed, CONDITIONS.index(cond)])
    return [make_field(x, y, cond, rng, HEIGHT) for _ in range(count)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint (default: the bundled model)")
    ap.add_argument("--line-model", help="line model made by `python -m digitrec.sequence_train` "
                                         "(default: the bundled one)")
    ap.add_argument("--strings", type=int, default=200, help="fields per condition (default: 200)")
    ap.add_argument("--split", choices=["test", "train"], default="test", help="digits drawn from (default: test)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice); on a busy machine 1 "
                                                "is faster, the model calls being small")
    ap.add_argument("--conditions", help="comma-separated names (default: all)")
    ap.add_argument("--tesseract", action="store_true", help="read the same fields with Tesseract as well")
    args = ap.parse_args(argv)
    if args.tesseract and not shutil.which("tesseract"):
        ap.error("--tesseract: no tesseract on PATH (apt-get install tesseract-ocr)")

    if args.threads:
        torch.set_num_threads(args.threads)
    r = digitrec.load(args.model)
    line_model = reader.load_line_model(args.line_model)
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f}; "
          f"model {args.model or 'bundled default'}, line model {args.line_model or 'bundled'}")
    print(f"digits from MNIST {args.split}; box ok: a correctly read digit's box overlaps its ink box by IoU >= 0.5")
    if args.tesseract:
        version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        print(f"tesseract: {version}, --psm 7, whitelist of the digits and the condition's separators")
    print(f"{'condition':<18} {'strings':>7} {'whole-string':>12} {'per-digit':>9} {'length ok':>9} {'box ok':>7} "
          f"{'unsure|wrong':>12} {'unsure|right':>12} {'ms/field':>8}" + (f" {'tesseract':>9}" if args.tesseract else ""))
    five_digit_ms = []
    chosen = args.conditions.split(",") if args.conditions else [c.name for c in CONDITIONS]
    for cond in (c for c in CONDITIONS if c.name in chosen):
        fields = make_fields(args.split, cond, args.strings, args.seed)
        opts = {"kind": KINDS[cond.name]} if cond.name in KINDS else {}
        reader.read_number(r, fields[0].image, line_model, **opts)  # warm-up: the first call pays for lazy set-up
        right = digits_right = digits_total = length_ok = boxes_ok = boxes_total = flagged_wrong = flagged_right = 0
        times = []
        for f in fields:
            t = time.perf_counter()
            reading = reader.read_number(r, f.image, line_model, **opts)
            times.append(time.perf_counter() - t)
            flagged_wrong += reading.unsure and reading.text != f.text
            flagged_right += reading.unsure and reading.text == f.text
            right += reading.text == f.text
            length_ok += len(reading.text) == len(f.text)
            digits_right += _aligned_matches(reading.text, f.text)
            digits_total += len(f.text)
            if reading.text == f.text:
                read = [p for p in reading.digits if p.digit is not None]
                boxes_ok += sum(_iou(p.box, b) >= 0.5 for p, b in zip(read, f.boxes))
                boxes_total += len(f.boxes)
        if cond.name in ("spaced-5", "touching-5"):
            five_digit_ms += times
        n = len(fields)
        wrong = n - right
        print(f"{cond.name:<18} {n:>7} {right / n:>12.4f} {digits_right / digits_total:>9.4f} "
              f"{length_ok / n:>9.4f} {boxes_ok / max(boxes_total, 1):>7.4f} {flagged_wrong / max(wrong, 1):>12.2f} "
              f"{flagged_right / max(right, 1):>12.2f} {1000 * float(np.median(times)):>8.1f}"
              + (f" {_tesseract(fields, cond):>9.4f}" if args.tesseract else ""))
    ms = 1000 * np.array(five_digit_ms)
    print(f"read time, 5-digit 800x200 field (uint8 array in, NumberReading out; {len(ms)} fields): "
          f"median {np.median(ms):.1f} ms, p10 {np.percentile(ms, 10):.1f} ms, p90 {np.percentile(ms, 90):.1f} ms")
    print(f"load average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def _tesseract(fields: list[Field], cond: Condition) -> float:
    """Share of ``fields`` Tesseract reads exactly as one line (a boxed field: its digits, empty boxes left out)."""
    allowed = "0123456789" + "".join(sorted({c for p in cond.patterns for c in p} - {"#"}))
    right = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "field.png")
        for f in fields:
            Image.fromarray(f.image).save(path)
            out = subprocess.run(["tesseract", path, "stdout", "--psm", "7", "-c",
                                  f"tessedit_char_whitelist={allowed}"], capture_output=True, text=True, timeout=60)
            right += "".join(out.stdout.split()) == f.text.replace(" ", "")
    return right / len(fields)


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def _aligned_matches(text: str, truth: str) -> int:
    """Digits of ``truth`` read correctly: edit-distance alignment, so one missed digit costs one, not the rest."""
    # longest common subsequence: the matches of the best alignment when substitutions cost as much as a gap
    prev = [0] * (len(truth) + 1)
    for a in text:
        cur = [0]
        for j, b in enumerate(truth):
            cur.append(prev[j] + 1 if a == b else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


if __name__ == "__main__":
    main()

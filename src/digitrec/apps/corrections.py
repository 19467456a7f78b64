"""``digitrec corrections ...`` and ``digitrec finetune``: the stored corrections in and out
(the dataset itself is ``data.corrections``)."""
from __future__ import annotations

import argparse
import csv
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

# every ``digitrec`` command builds its parser from this module: numpy, PIL and the database driver are
# imported when a corrections command runs, not at each start
if TYPE_CHECKING:
    from .store import Store

__all__ = ["add_parsers", "import_csv"]

# --db, here and on digitrec serve
DB_HELP = ("sqlite:///PATH or postgresql://... (default: $DIGITREC_DB_URL, else SQLite at $DIGITREC_DB, else "
           "~/.local/share/digitrec/corrections.db)")


def import_csv(store: Store, path: str | Path, model_checksum: str | None = None) -> int:
    """Store the rows of a reviewed CSV: columns ``image`` (a path, relative to the CSV) and ``correct``;
    optional ``read``, ``kind`` (digit or number, default digit) and ``writer``. Returns how many were stored."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: cannot read the CSV ({getattr(e, 'strerror', None) or e})") from None
    if rows and not {"image", "correct"} <= set(rows[0]):
        raise InputError(f"{path}: needs the columns 'image' and 'correct' (has: {', '.join(rows[0])})")
    stored = 0
    for n, row in enumerate(rows, start=2):  # line numbers as an editor shows them, after the header
        image = path.parent / row["image"]
        try:
            store.add(image, row["correct"], read=row.get("read") or "", kind=row.get("kind") or "digit",
                      source=f"import:{path.name}", model_checksum=model_checksum, writer=row.get("writer") or None)
        except InputError as e:
            raise InputError(f"{path}, line {n}: {e} ({stored} rows before it were stored)") from None
        stored += 1
    return stored


def _date(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date like 2026-12-31 (or 2026-12-31T18:00), not {text}") from None


def _store(args) -> Store:
    from .store import open_store

    return open_store(args.db)


def _shown(text: str) -> str:
    """``text`` with its control characters escaped: a stored value must not drive the user's terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def cmd_stats(args) -> int:
    store = _store(args)
    s = store.stats()
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"{s['corrections']} corrections and {s['confirmations']} confirmations in {store.where}")
    print(f"  digits {s['per_kind']['digit']}, number fields {s['per_kind']['number']}")
    print("  per digit: " + ", ".join(f"{d}: {n}" for d, n in s["per_digit"].items()))
    for c in s["confusions"]:
        read = _shown(c["read"]) if c["read"] is not None else "nothing"
        print(f"  read {read} -> was {_shown(c['correct'])}: {c['count']}")
    return 0


def cmd_export(args) -> int:
    from ..data.corrections import dataset, export
    from ..inference import load

    x28, y, groups, skipped = dataset(load(args.model, trust_unverified=args.trust_unverified), _store(args).rows())
    files = export(x28, y, groups, args.format, args.out)
    print(f"{len(y)} digits written to {', '.join(map(str, files))}"
          + (f"; {skipped} corrections left out (no digit found, or number fields read with other lengths)"
             if skipped else ""))
    return 0


def cmd_import(args) -> int:
    from ..inference import load

    store = _store(args)
    n = import_csv(store, args.file, load(args.model, trust_unverified=args.trust_unverified).checkpoint.checksum)
    print(f"{n} corrections stored in {store.where}")
    return 0


def cmd_purge(args) -> int:
    if args.before is None and not args.all:
        raise InputError("say what to delete: --before DATE, or --all")
    store = _store(args)
    n = store.purge(args.before)
    print(f"{n} corrections deleted from {store.where}")
    return 0


def cmd_finetune(args) -> int:
    from ..data.corrections import dataset
    from ..inference import load
    from ..training.finetune import finetune_checked

    r = load(args.model, trust_unverified=args.trust_unverified)
    x28, y, groups, skipped = dataset(r, _store(args).rows())
    if skipped:
        print(f"digitrec: {skipped} corrections left out (no digit found, or number fields read with other lengths)")
    new, s = finetune_checked(r.checkpoint, x28, y, groups, **({"steps": args.steps} if args.steps else {}))
    print(f"fine-tuned on {s['trained_on']} digits in {s['seconds']:.0f} s; held out {s['held_out']} digits "
          f"of {s['held_out_groups']} writer(s)")
    print(f"  held-out corrections  {s['held_out_before']:.2%} -> {s['held_out_after']:.2%}")
    print(f"  MNIST test            {s['mnist_test_before']:.2%} -> {s['mnist_test_after']:.2%}")
    if not s["kept"]:
        print("digitrec: not written: MNIST test fell by more than 0.1 pt; the model in use stays as it is")
        return 1
    path = Path(args.out) / "model.pt"
    new.save(path)
    print(f"written {path}; serve it with: digitrec serve --model {path}")
    return 0


def add_parsers(sub, add_model) -> None:
    """The ``corrections`` and ``finetune`` commands; ``add_model`` adds the CLI's --model options."""
    db = {"metavar": "URL", "help": DB_HELP}
    p = sub.add_parser("corrections", help="the stored corrections: stats, export, import, purge",
                       description="Corrections people made on the page, through the API or in a reviewed CSV, "
                                   "with their pictures. They hold people's handwriting: purge what you need no more.")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    v = verbs.add_parser("stats", help="how many, per digit, the commonest confusions")
    v.add_argument("--json", action="store_true", help="print them as JSON")
    v.set_defaults(func=cmd_stats)
    v = verbs.add_parser("export", help="write the corrected digits as a dataset (28x28, as the model reads them)")
    v.add_argument("--format", default="npz", metavar="npz|idx|csv", help="npz, idx (MNIST's files) or csv (Kaggle's)")
    v.add_argument("--out", required=True, metavar="PATH", help="file (npz, csv) or folder (idx) to write")
    add_model(v)
    v.set_defaults(func=cmd_export)
    v = verbs.add_parser("import", help="store the rows of a reviewed CSV (columns image, correct; read, kind, writer)")
    v.add_argument("file", metavar="FILE.csv")
    add_model(v)
    v.set_defaults(func=cmd_import)
    v = verbs.add_parser("purge", help="delete corrections (and their pictures)")
    v.add_argument("--before", type=_date, metavar="DATE", help="only those made before DATE (UTC)")
    v.add_argument("--all", action="store_true", help="all of them")
    v.set_defaults(func=cmd_purge)
    for v in verbs.choices.values():
        v.add_argument("--db", **db)

    p = sub.add_parser("finetune", help="continue the model on MNIST plus the stored corrections",
                       description="Continue the model on MNIST and the corrections, holding a fifth of them out "
                                   "by writer for scoring; print held-out and MNIST test accuracy before and after. "
                                   "The new model is written only if MNIST test falls by at most 0.1 point.")
    p.add_argument("--from-corrections", action="store_true", default=True,
                   help="train on the corrections store (the default, and so far the only source)")
    p.add_argument("--out", default="runs/finetune", metavar="DIR", help="writes DIR/model.pt (default: runs/finetune)")
    p.add_argument("--steps", type=int, metavar="N", help="optimizer steps (default: 300, ~15 s on two cores)")
    p.add_argument("--db", **db)
    add_model(p)
    p.set_defaults(func=cmd_finetune)

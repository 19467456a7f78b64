"""``digitrec bulk``: folders, archives, PDFs and TIFFs of pages read into a CSV or JSONL file."""
from __future__ import annotations

__all__ = ["add_parser"]


def cmd_bulk(args) -> int:
    from ..inference.bulk import bulk
    from ..inference.forms import load_template

    template = load_template(args.template) if args.template else None
    s = bulk(args.paths, args.out, template=template, kind=args.kind, model=args.model, workers=args.workers,
             dpi=args.dpi, engine=args.engine, address=args.address, progress=not args.quiet)
    rate = f" ({s.pages / s.seconds:.1f} pages/s)" if s.pages and s.seconds > 0 else ""
    print(f"{s.pages} pages read into {s.out} in {s.seconds:.1f} s{rate}"
          + (f"; {s.skipped} already there were skipped" if s.skipped else "")
          + (f"; {s.errors} could not be read (see the error column)" if s.errors else ""))
    if s.unsure:
        print(f"{s.unsure} fields should be checked by a person: digitrec serve --review {s.out}")
    return 0


def add_parser(sub, add_model) -> None:
    """The ``bulk`` command; ``add_model`` adds the CLI's --model options."""
    p = sub.add_parser("bulk", help="read folders, zip archives, PDFs and TIFFs of pages into a CSV or JSONL file",
                       description="Read every page of PATH... (image files, folders recursively, zip archives, PDF "
                                   "pages, multi-page TIFFs) into one row per page: with --template, a value, "
                                   "confidence and unsure flag per field of the form; without, the page as one digit "
                                   "(or one number, --kind number). A page that cannot be read is a row with its "
                                   "error, and the run goes on. Pages already in --out are skipped, so an interrupted "
                                   "run resumes. Unsure fields go to OUT's review file, for digitrec serve --review.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--out", required=True, metavar="FILE", help="results, .csv or .jsonl (appended to: resumes)")
    p.add_argument("--template", metavar="FILE.json", help="the form: its fields, their boxes, kinds and checks "
                   "(see docs/forms.md); default: none, each page is one field")
    p.add_argument("--kind", choices=("digit", "number"), default="digit",
                   help="without a template, what a page holds (default: digit)")
    p.add_argument("--workers", type=int, metavar="N", help="processes reading pages (default: one per core)")
    p.add_argument("--dpi", type=float, default=200, help="resolution PDF pages are rendered at (default: 200)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local processes, or Ray Data (pip install 'digitrec[ray]') (default: local)")
    p.add_argument("--address", metavar="URL", help="with --engine ray: the cluster (ray://HOST:10001); default: a "
                   "local Ray of --workers CPUs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model(p)
    p.set_defaults(func=cmd_bulk)

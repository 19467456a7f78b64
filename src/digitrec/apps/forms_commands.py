"""The forms commands: ``digitrec bulk`` (folders, archives, PDFs and TIFFs of pages read into a CSV or JSONL
file) and ``digitrec template`` (a template made from a blank form)."""
from __future__ import annotations

__all__ = ["add_parsers"]


def cmd_bulk(args) -> int:
    from ..batch.bulk import bulk
    from ..forms import load_template

    template = load_template(args.template) if args.template else None
    s = bulk(args.paths, args.out, template=template, kind=args.kind, model=args.model, workers=args.workers,
             dpi=args.dpi, engine=args.engine, address=args.address, progress=not args.quiet, max_pages=args.max_pages)
    rate = f" ({s.pages / s.seconds:.1f} pages/s)" if s.pages and s.seconds > 0 else ""
    print(f"{s.pages} pages read into {s.out} in {s.seconds:.1f} s{rate}"
          + (f"; {s.skipped} already there were skipped" if s.skipped else "")
          + (f"; {s.errors} could not be read (see the error column)" if s.errors else ""))
    if s.unsure:
        print(f"{s.unsure} fields should be checked by a person: digitrec serve --review {s.out}")
    return 0


def cmd_template(args) -> int:
    import json

    from ..data.readers import read_pages
    from ..errors import InputError
    from ..forms import load_template, make_template

    page = next(iter(read_pages([args.blank], dpi=args.dpi)))
    if page.error:
        raise InputError(page.error)
    dpi = args.dpi if args.blank.lower().endswith(".pdf") else _file_dpi(args.blank)
    template = make_template(page.image, dpi, name=args.name or "")
    load_template(template)  # what is written must read back
    try:
        with open(args.out, "w", encoding="utf-8") as f:  # a field a line: easy to edit by hand
            head = {k: v for k, v in template.items() if k != "fields"}
            f.write("{" + ",\n ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in head.items())
                    + ',\n "fields": [\n  ' + ",\n  ".join(json.dumps(fd) for fd in template["fields"]) + "]}\n")
    except OSError as e:
        raise InputError(f"{args.out}: cannot write ({e.strerror or e})") from None
    kinds = ", ".join(f"{f['name']} ({f['kind']})" for f in template["fields"])
    print(f"{len(template['fields'])} fields written to {args.out}: {kinds}; "
          + (f"{len(template['marks']['centres'])} corner marks" if "marks" in template else "no corner marks found")
          + ". Rename the fields and add their checks (docs/forms.md).")
    return 0


def _file_dpi(path: str) -> float | None:
    """The resolution an image file says it was scanned at, if it says."""
    from ..imaging.decode import open_image

    with open_image(path, path) as img:
        dpi = img.info.get("dpi")
    return float(dpi[0]) if dpi and dpi[0] > 1 else None


def add_parsers(sub, add_model) -> None:
    """The ``bulk`` and ``template`` commands; ``add_model`` adds the CLI's --model options."""
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
    p.add_argument("--max-pages", type=int, default=1000, metavar="N",
                   help="most pages (or frames) read of one file; the rest of it is one error row (default: 1000)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model(p)
    p.set_defaults(func=cmd_bulk)

    p = sub.add_parser("template", help="make a form template from a blank form (its printed boxes and corner marks)",
                       description="Find the printed frames (a field's box, or a row of one-digit boxes) and the "
                                   "corner marks on a scan or PDF of a blank form, and write a template for digitrec "
                                   "bulk: fields named field1, field2... in reading order, kinds guessed (boxes:N, "
                                   "digit for a square box, number for a wider one). Rename them and add checks.")
    p.add_argument("blank", metavar="BLANK", help="the blank form: an image file or a PDF (its first page)")
    p.add_argument("--out", required=True, metavar="FILE.json", help="the template to write")
    p.add_argument("--name", help="the template's name")
    p.add_argument("--dpi", type=float, default=200, help="resolution a PDF is rendered at (default: 200)")
    p.set_defaults(func=cmd_template)

"""`indgang catalogue ...`: seed, validate, export and import the offer catalogue, and try the search.

The catalogue lives in SQL (indgang/catalogue/store.py); the YAML files seed an empty one.
Hook into the `indgang` command with `add_commands(subparsers)`:

    indgang catalogue seed [--dir DIR]
    indgang catalogue validate [--dir DIR]
    indgang catalogue export {csv,json} [--dir DIR] [-o FILE]
    indgang catalogue import FILE --municipality NAME --source-document TEXT --source-year YEAR
                                  [--example] [-o data/NAME.yaml] [--force]
    indgang catalogue search "what the citizen writes" [--municipality NAME] [--audience A] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from indgang.catalogue import hsds, store
from indgang.catalogue.loader import CatalogueError, load_catalogue, read_offers
from indgang.catalogue.models import Offer
from indgang.catalogue.municipalities import canonical
from indgang.settings import get_settings

IMPORT_STAFF = "import"  # who the history names for offers a file brought in


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    catalogue = subparsers.add_parser(
        "catalogue", help="validate, export, import and search the offer catalogue"
    )
    commands = catalogue.add_subparsers(dest="catalogue_command", required=True)

    seed = commands.add_parser("seed", help="fill an empty catalogue (in the database) from the YAML files")
    seed.add_argument("--dir", type=Path, help="catalogue folder (default: CATALOGUE_DIR)")
    seed.set_defaults(func=seed_command)

    validate = commands.add_parser("validate", help="check every offer file; exit 1 with the problems")
    validate.add_argument("--dir", type=Path, help="catalogue folder (default: CATALOGUE_DIR)")
    validate.set_defaults(func=validate_command)

    export = commands.add_parser("export", help="write the catalogue as HSDS-style CSV or JSON")
    export.add_argument("format", choices=["csv", "json"])
    export.add_argument("--dir", type=Path, help="export these YAML files instead of the database's offers")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    export.set_defaults(func=export_command)

    imports = commands.add_parser("import", help="HSDS-style CSV/JSON or a spreadsheet into the catalogue")
    imports.add_argument("file", type=Path, help=".csv or .json (HSDS or Danish columns: navn, kommune ...)")
    imports.add_argument("--municipality", required=True, help="municipality of rows that name none")
    imports.add_argument("--source-document", required=True, help="where the offers come from")
    imports.add_argument("--source-year", required=True, type=int, help="the year the source describes")
    imports.add_argument("--example", action="store_true", help="the offers are dated examples")
    imports.add_argument("-o", "--output", type=Path, help="write a YAML offer file instead of the database")
    imports.add_argument("--force", action="store_true", help="overwrite an existing file or offers")
    imports.set_defaults(func=import_command)

    search = commands.add_parser("search", help="show what the search finds for a message")
    search.add_argument("query")
    search.add_argument("--municipality")
    search.add_argument("--audience", choices=["adult", "child", "family", "relative"])
    search.add_argument("--limit", type=int, default=5)
    search.set_defaults(func=search_command)


def seed_command(args: argparse.Namespace) -> None:
    source = store.catalogue_source(get_settings())
    try:
        count = store.seed_from_files(source, args.dir or get_settings().catalogue_dir)
    except CatalogueError as exc:
        sys.exit(str(exc))
    print(f"seeded {count} offers" if count else "the catalogue has offers already: nothing seeded")


def validate_command(args: argparse.Namespace) -> None:
    try:
        catalogue = load_catalogue(args.dir)
    except CatalogueError as exc:
        sys.exit(str(exc))
    files = len({o.source.document for o in catalogue.offers})
    print(f"{len(catalogue.offers)} offers from {files} sources: valid (digest {catalogue.digest[:12]})")


def export_command(args: argparse.Namespace) -> None:
    """Every offer, retired ones too (their `status` says so)."""
    if args.dir:
        offers = load_catalogue(args.dir).offers
    else:
        with store.catalogue_source(get_settings()).sessions() as session:
            offers = [s.offer for s in store.all_offers(session)]
    text = hsds.export_csv(offers) if args.format == "csv" else hsds.export_json(offers)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {len(offers)} offers to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def import_command(args: argparse.Namespace) -> None:
    municipality = canonical(args.municipality)
    if municipality is None:
        sys.exit(f"unknown municipality {args.municipality!r}")
    text = args.file.read_text(encoding="utf-8-sig")
    reader = hsds.import_json if args.file.suffix.lower() == ".json" else hsds.import_csv
    defaults = {
        "municipality": municipality,
        "source_document": args.source_document,
        "source_year": args.source_year,
        "example": "yes" if args.example else "no",
    }
    try:
        offers = reader(text, **defaults)
    except CatalogueError as exc:
        sys.exit(str(exc))
    if args.output is None:
        with store.catalogue_source(get_settings()).sessions.begin() as session:
            try:
                created, replaced = store.put_many(session, offers, IMPORT_STAFF, "import", args.force)
            except store.DuplicateOffer as exc:
                sys.exit(f"offers already in the catalogue: {exc}; use --force to overwrite them")
        print(f"imported {created} new offers, {replaced} overwritten")
        return
    output = args.output
    if output.exists() and not args.force:
        sys.exit(f"{output} exists: use --force to overwrite it")
    output.parent.mkdir(parents=True, exist_ok=True)
    source = f"{args.source_document} ({args.source_year})"
    write_offers(output, offers, header=f"Imported from {args.file.name}: {source}.")
    read_offers(output)  # what was written loads back
    print(f"wrote {len(offers)} offers to {output}")


def search_command(args: argparse.Namespace) -> None:
    from indgang.search import get_offer_search

    hits = get_offer_search().search(
        args.query, limit=args.limit, audience=args.audience, municipality=args.municipality
    )
    for hit in hits:
        offer = hit.offer
        print(f"{hit.score:.3f}  {offer.type:<26} {offer.id}  ({offer.municipality}, {offer.access})")
    if not hits:
        print("no offers found")


def write_offers(path: Path, offers: list[Offer], header: str) -> None:
    body = yaml.safe_dump(
        {"offers": [o.model_dump(mode="json", exclude_none=True, exclude_defaults=True) for o in offers]},
        allow_unicode=True,
        sort_keys=False,
        width=100,
    )
    path.write_text(f"# {header}\n{body}", encoding="utf-8")

"""The offer catalogue: the shipped files validate, a broken file fails naming file and offer, and
a municipality's own catalogue comes in and goes out as HSDS-style CSV/JSON."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
import yaml

from indgang.catalogue import CatalogueError, hsds, load_catalogue, offer_types, read_offers
from indgang.catalogue import cli as catalogue_cli
from indgang.catalogue.municipalities import MUNICIPALITIES, canonical, fold
from indgang.settings import PROJECT_DIR

SHARED = PROJECT_DIR.parent / "shared"
SHIPPED = PROJECT_DIR / "indgang" / "catalogue" / "data"


def offer_entry(**changes: object) -> dict:
    entry = {
        "id": "test-vaerested",
        "type": "vaerested",
        "title": {"da": "Caféen", "en": "The café"},
        "summary": {"da": "Et sted at være.", "en": "A place to be."},
        "audience": ["adult"],
        "municipality": "Vejle",
        "access": "open",
        "next_step": {"da": "Mød op.", "en": "Come by."},
        "source": {"document": "Test", "year": 2024},
    }
    entry.update(changes)
    return {key: value for key, value in entry.items() if value is not None}


def write(folder: Path, name: str, *offers: dict) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({"offers": list(offers)}, allow_unicode=True), encoding="utf-8")
    return path


# ---- the shipped catalogue --------------------------------------------------------------------


def test_the_shipped_catalogue_validates_and_covers_every_type_with_a_generic_offer() -> None:
    catalogue = load_catalogue(SHIPPED)
    generic = {o.type for o in catalogue.offers if o.municipality == "national" and not o.example}
    assert generic == set(offer_types())
    assert len({o.id for o in catalogue.offers}) == len(catalogue.offers) > 100
    assert len(catalogue.digest) == 64
    assert catalogue.get("aarhus-jobstien").type == "job_med_stoette"
    assert catalogue.get("no-such-offer") is None


def test_the_taxonomy_copy_matches_the_shared_one() -> None:
    shared = yaml.safe_load((SHARED / "taxonomy.yaml").read_text(encoding="utf-8"))
    assert [t["id"] for t in shared["types"]] == list(offer_types())


def test_each_seed_source_has_dated_examples_with_a_municipality_and_a_note_to_ask() -> None:
    catalogue = load_catalogue(SHIPPED)
    examples = [o for o in catalogue.offers if o.example]
    years = {o.source.year for o in examples}
    assert {2009, 2012, 2015, 2017} <= years
    for offer in examples:
        assert offer.municipality != "national"
        assert str(offer.source.year) in offer.text("summary", "da")
        assert "Spørg din kommune" in offer.text("summary", "da")
        assert "Ask your municipality" in offer.text("summary", "en")
    generic = catalogue.get("kommune-alkoholbehandling")
    assert generic.text("summary", "da") == generic.summary.da


def test_no_contact_detail_of_a_person_from_the_seeds_is_in_the_catalogue() -> None:
    seeds = " ".join(p.read_text(encoding="utf-8") for p in (SHARED / "seeds").glob("*.txt"))
    personal_emails = set(re.findall(r"[\w.-]+@[\w-]+\.\w+", seeds))
    assert len(personal_emails) > 10  # the seeds do name people: the check has something to find
    shipped = " ".join(p.read_text(encoding="utf-8") for p in SHIPPED.glob("*.yaml"))
    assert not [e for e in personal_emails if e in shipped]
    assert not re.search(r"[\w.-]+@[\w-]+\.\w+", shipped), "contact e-mails must be organisation-level"


# ---- the loader's errors ------------------------------------------------------------------------


def test_an_unknown_type_a_missing_field_and_a_duplicate_id_each_name_file_and_offer(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", offer_entry(), offer_entry(id="bad-type", type="wellness"))
    write(tmp_path, "b.yaml", offer_entry(id="no-title", title=None), offer_entry())
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(tmp_path)
    problems = caught.value.problems
    assert any(p.startswith("a.yaml: offer 'bad-type': type:") and "wellness" in p for p in problems)
    assert any(p.startswith("b.yaml: offer 'no-title': title:") and "required" in p.lower() for p in problems)
    assert "b.yaml: offer 'test-vaerested': duplicate id (first in a.yaml)" in problems
    assert len(problems) == 3


def test_a_misspelt_field_an_unknown_municipality_and_a_national_example_fail(tmp_path: Path) -> None:
    write(
        tmp_path,
        "c.yaml",
        offer_entry(id="typo", acess="open"),
        offer_entry(id="nowhere", municipality="Narnia"),
        offer_entry(id="old", municipality="national", example=True),
    )
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(tmp_path)
    text = "\n".join(caught.value.problems)
    assert "c.yaml: offer 'typo': acess:" in text
    assert "c.yaml: offer 'nowhere': municipality:" in text and "Narnia" in text
    assert "c.yaml: offer 'old':" in text and "example" in text


def test_file_defaults_apply_and_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "vejle.yaml"
    entry = offer_entry()
    del entry["source"], entry["municipality"]
    defaults = {"municipality": "vejle kommune", "source": {"document": "Vejle", "year": 2024}}
    path.write_text(yaml.safe_dump({"defaults": defaults, "offers": [entry]}), encoding="utf-8")
    first = load_catalogue(tmp_path)
    assert first.offers[0].municipality == "Vejle" and first.offers[0].source.document == "Vejle"
    path.write_text(yaml.safe_dump({"defaults": defaults, "offers": [entry, {**entry, "id": "two"}]}))
    assert len(load_catalogue(tmp_path).offers) == 2
    assert load_catalogue(tmp_path).digest != first.digest


def test_municipality_names_are_matched_however_they_are_written() -> None:
    assert len({fold(name) for name in MUNICIPALITIES}) == len(MUNICIPALITIES) == 98
    assert canonical("Århus") == canonical("aarhus kommune") == "Aarhus"
    assert canonical("Kobenhavn") == canonical("Copenhagen") == "København"
    assert canonical("Hoeje-Taastrup") == "Høje-Taastrup"
    assert canonical("Silkebrog") == "Silkeborg"  # one typo
    assert canonical("Vejel") is None  # as near Vejle as Vejen: no guess
    assert canonical("national") == "national"
    assert canonical("Narnia") is None and canonical("") is None


# ---- HSDS import and export -------------------------------------------------------------------


def test_the_catalogue_goes_out_and_back_through_hsds_json_and_csv_unchanged() -> None:
    offers = load_catalogue(SHIPPED).offers
    services = json.loads(hsds.export_json(offers))
    assert services[0]["name"] == offers[0].title.da and "organization" in services[0]
    assert hsds.import_json(hsds.export_json(offers)) == offers
    csv_text = hsds.export_csv(offers)
    assert csv_text.splitlines()[0].split(",")[:3] == ["id", "name", "name_en"]
    assert hsds.import_csv(csv_text) == offers


def test_a_municipal_spreadsheet_with_danish_columns_imports_with_the_type_from_its_paragraph() -> None:
    sheet = (
        "Tilbudsnavn;Beskrivelse;Paragraf;Målgruppe;Telefon;Hjemmeside\n"
        "Bofællesskabet Lærkevej;Bolig med personale til unge med autisme;SEL § 107;Autisme, ADHD;"
        "70 10 20 30;https://example.org\n"
        "Værestedet Kilden;Kaffe og fællesskab;Serviceloven § 104;Psykisk sårbare;;\n"
    )
    offers = hsds.import_csv(sheet, municipality="Vejle", source_document="Vejle Kommune", source_year=2025)
    home, cafe = offers
    assert (home.type, home.access, home.municipality) == ("midlertidigt_botilbud", "visitation", "Vejle")
    assert home.id == "vejle-bofaellesskabet-laerkevej"
    assert home.search_terms.da == ["Autisme", "ADHD"]
    assert home.contact.phone == "70 10 20 30" and home.url == "https://example.org"
    assert home.title.en == home.title.da  # no English column: Danish shown
    assert (cafe.type, cafe.access) == ("vaerested", "open")
    assert cafe.next_step.da.startswith("Kontakt")


def test_an_import_row_without_a_recognisable_type_is_refused_with_its_row_named() -> None:
    sheet = "navn,beskrivelse,paragraf\nNoget,Noget andet,SEL §§ 85 og 107\n"
    with pytest.raises(CatalogueError) as caught:
        hsds.import_csv(sheet, municipality="Vejle", source_document="x", source_year=2025)
    assert caught.value.problems[0].startswith("CSV row 1 (Noget):")


# ---- the command line ---------------------------------------------------------------------------


def run_cli(*argv: str) -> None:
    parser = argparse.ArgumentParser(prog="indgang")
    catalogue_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.func(args)


def test_the_cli_validates_exports_and_imports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli("catalogue", "validate", "--dir", str(SHIPPED))
    assert "valid" in capsys.readouterr().out

    exported = tmp_path / "catalogue.csv"
    run_cli("catalogue", "export", "csv", "--dir", str(SHIPPED), "-o", str(exported))
    rows = exported.read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(load_catalogue(SHIPPED).offers) + 1

    sheet = tmp_path / "vejle.csv"
    sheet.write_text("navn,beskrivelse,paragraf\nKilden,Et værested,SEL § 104\n", encoding="utf-8")
    target = tmp_path / "data" / "vejle.yaml"
    args = ["catalogue", "import", str(sheet), "--municipality", "vejle", "--source-document", "Vejle"]
    run_cli(*args, "--source-year", "2025", "-o", str(target))
    (offer,) = read_offers(target)
    assert (offer.id, offer.type, offer.municipality) == ("vejle-kilden", "vaerested", "Vejle")
    with pytest.raises(SystemExit):
        run_cli(*args, "--source-year", "2025", "-o", str(target))  # exists: no silent overwrite

    write(tmp_path / "data", "broken.yaml", offer_entry(id="broken", type="wellness"))
    with pytest.raises(SystemExit) as failed:
        run_cli("catalogue", "validate", "--dir", str(tmp_path / "data"))
    assert "broken.yaml: offer 'broken'" in str(failed.value.code)

"""Denmark's 98 municipalities, and how a name a citizen or a spreadsheet writes is matched to one.

Offers name their municipality by the short name ("Aarhus", "Lyngby-Taarbæk"), or `national` for
an offer that holds in every municipality. People write "Århus", "aarhus kommune", "Kobenhavn" or
"Copenhagen"; `canonical()` turns each into the short name, or None when it names none of them.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

NATIONAL = "national"

MUNICIPALITIES: tuple[str, ...] = (
    # Region Hovedstaden
    "Albertslund", "Allerød", "Ballerup", "Bornholm", "Brøndby", "Dragør", "Egedal", "Fredensborg",
    "Frederiksberg", "Frederikssund", "Furesø", "Gentofte", "Gladsaxe", "Glostrup", "Gribskov",
    "Halsnæs", "Helsingør", "Herlev", "Hillerød", "Hvidovre", "Høje-Taastrup", "Hørsholm", "Ishøj",
    "København", "Lyngby-Taarbæk", "Rudersdal", "Rødovre", "Tårnby", "Vallensbæk",
    # Region Sjælland
    "Faxe", "Greve", "Guldborgsund", "Holbæk", "Kalundborg", "Køge", "Lejre", "Lolland", "Næstved",
    "Odsherred", "Ringsted", "Roskilde", "Slagelse", "Solrød", "Sorø", "Stevns", "Vordingborg",
    # Region Syddanmark
    "Assens", "Billund", "Esbjerg", "Fanø", "Fredericia", "Faaborg-Midtfyn", "Haderslev", "Kerteminde",
    "Kolding", "Langeland", "Middelfart", "Nordfyn", "Nyborg", "Odense", "Svendborg", "Sønderborg",
    "Tønder", "Varde", "Vejen", "Vejle", "Ærø", "Aabenraa",
    # Region Midtjylland
    "Favrskov", "Hedensted", "Herning", "Holstebro", "Horsens", "Ikast-Brande", "Lemvig", "Norddjurs",
    "Odder", "Randers", "Ringkøbing-Skjern", "Samsø", "Silkeborg", "Skanderborg", "Skive", "Struer",
    "Syddjurs", "Viborg", "Aarhus",
    # Region Nordjylland
    "Brønderslev", "Frederikshavn", "Hjørring", "Jammerbugt", "Læsø", "Mariagerfjord", "Morsø",
    "Rebild", "Thisted", "Vesthimmerland", "Aalborg",
)  # fmt: skip

# Other names in use for a municipality (English, old spellings, abbreviations).
ALIASES = {
    "copenhagen": "København",
    "kbh": "København",
    "bornholms regionskommune": "Bornholm",
    "elsinore": "Helsingør",
    "lyngby": "Lyngby-Taarbæk",
    "taastrup": "Høje-Taastrup",
    "ringkøbing": "Ringkøbing-Skjern",
    "ikast": "Ikast-Brande",
    "faaborg": "Faaborg-Midtfyn",
}

_SUFFIX = re.compile(r"\s+(regions)?kommunes?$")


def fold(name: str) -> str:
    """A spelling-blind key: lower case, no "kommune", æ/ø/å and ae/oe/aa written alike."""
    key = _SUFFIX.sub("", " ".join(name.lower().split()))
    for letter, plain in (("æ", "e"), ("ø", "o"), ("å", "a"), ("ae", "e"), ("oe", "o"), ("aa", "a")):
        key = key.replace(letter, plain)
    return key


@lru_cache
def _by_key() -> dict[str, str]:
    keys = {fold(name): name for name in MUNICIPALITIES}
    keys.update({fold(alias): name for alias, name in ALIASES.items()})
    return keys


def canonical(name: str | None) -> str | None:
    """The municipality a name means (`national` stays `national`), allowing one unambiguous typo;
    else None."""
    if not name or not name.strip():
        return None
    if name.strip().lower() == NATIONAL:
        return NATIONAL
    key = fold(name)
    keys = _by_key()
    if key in keys:
        return keys[key]
    if len(key) >= 5:
        # One typo (a swapped pair counts as one); "Vejel" is as near Vejle as Vejen: no guess.
        found = process.extract(key, keys.keys(), scorer=OSA.distance, score_cutoff=1, limit=None)
        names = {keys[match] for match, distance, _ in found if distance == min(d for _, d, _ in found)}
        if len(names) == 1:
            return names.pop()
    return None

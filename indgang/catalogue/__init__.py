"""The offer catalogue: offers as data (YAML, close to Open Referral HSDS), validated on load."""

from indgang.catalogue.loader import Catalogue, CatalogueError, load_catalogue, read_offers
from indgang.catalogue.models import Contact, LocalText, Offer, SearchTerms, Source
from indgang.catalogue.taxonomy import offer_types, type_terms

__all__ = [
    "Catalogue",
    "CatalogueError",
    "Contact",
    "LocalText",
    "Offer",
    "SearchTerms",
    "Source",
    "load_catalogue",
    "offer_types",
    "read_offers",
    "type_terms",
]

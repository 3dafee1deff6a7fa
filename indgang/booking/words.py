"""Does a message ask for a booking in so many words? Booking words start a booking and nothing
else does: "ja tak, book mig" after offers is read by the intent model as a yes, and "jeg har
ikke tid til at passe min mor" must not open the booking form. The words are the unmistakable
ones (book, bestil/reserver a time, a time with someone, an appointment); a message without
them may still be a booking by the intent model, but then it is never a need told instead.
"""

from __future__ import annotations

import re

from indgang.sms.keywords import fold

# Matched on folded text (lower case, no accents, æ as "ae", ø as "o", punctuation as spaces).
_BOOKING = re.compile(
    r"\b(?:"
    r"book\w*|bestil\w*\s+(?:en\s+|et\s+)?(?:tid|mode|samtale|telefontid|opkald)\w*|reserv\w*|"
    r"(?:en|ny|anden|fast|ledig\w*)\s+tid(?:er)?(?:\s+hos|\s+til|\s+med)?|tid\s+hos|telefontid|"
    r"(?:et|fysisk|personligt)\s+mode(?:\s+med|\s+hos)|videomode|"
    r"(?:vil|ville|onsker|kunne)\s+(?:gerne\s+)?(?:have|aftale|fa|faa)\s+(?:et\s+)?mode|aftale\s+(?:et\s+)?mode|"
    r"(?:kan|ma|vil)\s+(?:jeg|vi)\s+(?:gerne\s+)?mode\s+(?:en|et|med)\b|"
    r"appointment\w*|schedule\s+(?:a|an|me)|(?:like|want|get|arrange|set\s+up|request)\s+(?:a\s+)?meeting|(?:a|free)\s+(?:slot|time\s+(?:with|to\s+talk))"
    r")\b"
)


def asks_to_book(text: str) -> bool:
    return bool(_BOOKING.search(fold(text)))

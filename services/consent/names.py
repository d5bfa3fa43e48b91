"""Pupil names in photos (OCR text). Pure: no I/O, no frameworks.

A surname alone is enough to mask a text region; matching leans towards masking.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class Named(Protocol):
    @property
    def surname(self) -> str: ...


_OCR_LOOKALIKES = str.maketrans(
    {"0": "o", "1": "l", "|": "l", "5": "s", "3": "e", "8": "b", "$": "s", "@": "a"}
)


def normalise(text: str) -> str:
    """Lower case, no accents, OCR look-alike digits as letters, words split by one
    space."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = plain.translate(_OCR_LOOKALIKES)
    return " ".join(re.sub(r"[^a-z]+", " ", plain).split())


MAX_TEXT = 300  # OCR text beyond this is not searched for names (it is flagged)


@dataclass(frozen=True)
class NameIndex:
    """The pupil surnames of one school, normalised for matching OCR text.

    A surname alone is enough to mask, so "forename surname" is covered too.
    ``fuzzy`` holds each long surname and its one-letter deletions (symmetric delete):
    a word within one edit of a surname shares one of them.
    """

    surnames: frozenset[str]
    squashed: frozenset[str]  # surnames of 4+ letters, spaces removed
    fuzzy: frozenset[str]
    longest: int = 0

    @classmethod
    def of(cls, pupils: Iterable[Named]) -> NameIndex:
        surnames = {normalise(p.surname) for p in pupils} - {""}
        squashed = {s.replace(" ", "") for s in surnames if len(s) >= 4}
        fuzzy: set[str] = set()
        for name in squashed:
            if len(name) >= 5:
                fuzzy.add(name)
                fuzzy.update(_deletions(name))
        longest = max((len(s) for s in squashed), default=0)
        return cls(frozenset(surnames), frozenset(squashed), frozenset(fuzzy), longest)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def mentions_pupil(text: str, names: NameIndex) -> bool:
    """Whether OCR text shows a pupil's surname (with or without the forename).

    Case, accents, spacing and punctuation are ignored, OCR look-alikes (0/o, 1/l,
    5/s) are folded, a surname of 4+ letters is found inside run-together words, and
    words of 5+ letters may differ from a surname by one letter. Masking a word that
    is not a name costs nothing, so the matching leans towards masking.
    """
    words = normalise(text[:MAX_TEXT]).split()
    if not words:
        return False
    if any(w in names.surnames for w in words):
        return True
    if any(
        " ".join(pair) in names.surnames for pair in zip(words, words[1:], strict=False)
    ):
        return True  # two-word surnames ("de la cruz" is caught squashed below)
    squashed = "".join(words)
    for start in range(len(squashed)):
        for end in range(start + 4, min(len(squashed), start + names.longest) + 1):
            if squashed[start:end] in names.squashed:
                return True
    for word in words:
        if len(word) >= 4 and (
            word in names.fuzzy or not _deletions(word).isdisjoint(names.fuzzy)
        ):
            return True
    return False


def text_verdict(text: str, names: NameIndex) -> tuple[bool, str]:
    """(mask, reason) for one OCR text region."""
    if mentions_pupil(text, names):
        return True, "pupil_name"
    return False, "readable_text"

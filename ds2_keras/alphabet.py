"""The character set DS2 predicts, and the text normalization every recipe and metric shares.

Index 0 is the CTC blank (as in the neon seed), then apostrophe, a-z and space: 29 outputs.
Keeping normalization here means ingest, training labels and evaluation references can never
disagree about what a transcript "is".
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np

BLANK = "_"
CHARACTERS = "'abcdefghijklmnopqrstuvwxyz "
SYMBOLS = BLANK + CHARACTERS
BLANK_INDEX = 0
SPACE_INDEX = SYMBOLS.index(" ")  # separates words in transcripts and CTC paths
NUM_CLASSES = len(SYMBOLS)  # 29: 28 characters + blank
_INDEX = {ch: i for i, ch in enumerate(SYMBOLS)}


class UnmappableTextError(ValueError):
    """Raised when normalized text still holds characters outside the alphabet."""

    def __init__(self, text: str, characters: set[str]):
        self.text = text
        self.characters = characters
        shown = ", ".join(repr(c) for c in sorted(characters))
        super().__init__(f"characters outside the alphabet after normalization: {shown}")


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))


def number_to_words(number: int) -> str:
    """Spell out a non-negative integer in English ("1984" -> "one thousand nine hundred eighty four")."""
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, rest = divmod(number, 10)
        return _TENS[tens] + ("" if rest == 0 else " " + _ONES[rest])
    for scale, name in _SCALES:
        if number >= scale:
            head, rest = divmod(number, scale)
            words = f"{number_to_words(head)} {name}"
            return words if rest == 0 else f"{words} {number_to_words(rest)}"
    raise AssertionError("unreachable")


_SPOKEN_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "@": " at ", "=": " equals "}
_APOSTROPHES = dict.fromkeys(map(ord, "\u2018\u2019\u02bc\u0060\u00b4"), "'")
# Punctuation that separates words becomes a space; anything else we cannot say is reported.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015_/\\.,;:!?\"“”«»()\[\]{}<>…*~|#^]+")
_NUMBER = re.compile(r"\d+")
# What normalize_text returns: words of letters with inner apostrophes, single spaces between.
_NORMALIZED = re.compile(r"(?:[a-z]+(?:'+[a-z]+)*(?: [a-z]+(?:'+[a-z]+)*)*)?")


def normalize_text(text: str) -> str:
    """Lower-case, fold accents and curly quotes, spell out digits and symbols, squeeze spaces.

    Raises UnmappableTextError if anything outside the alphabet remains, so callers can count
    or report the utterance instead of silently training on mangled labels.
    """
    if _NORMALIZED.fullmatch(text):  # already normalized (every manifest row ingest wrote): 30x faster
        return text
    text = unicodedata.normalize("NFKD", text).translate(_APOSTROPHES)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    for symbol, spoken in _SPOKEN_SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"(\d)\.(\d)", r"\1 point \2", text)  # 3.5 -> 3 point 5
    text = _NUMBER.sub(lambda m: f" {number_to_words(int(m.group()))} ", text)
    text = _SEPARATORS.sub(" ", text)
    # Quotes used as quotation marks ('like this') are not part of a word.
    text = re.sub(r"(^|\s)'+|'+(\s|$)", r"\1\2", text)
    text = " ".join(text.split())
    outside = {ch for ch in text if ch not in _INDEX}
    if outside:
        raise UnmappableTextError(text, outside)
    return text


def encode(text: str) -> np.ndarray:
    """Map normalized text to label ids (1..28); the blank never appears in a label."""
    return np.array([_INDEX[ch] for ch in text], dtype=np.int32)


def decode(ids) -> str:
    """Map label ids back to text, ignoring blanks."""
    return "".join(SYMBOLS[i] for i in ids if i != BLANK_INDEX)

"""The characters a model predicts, and the text normalization every recipe and metric shares.

An `Alphabet` is part of a model's config (DS2Config.alphabet): index 0 is the CTC blank, then
the characters, the space between words last. `ds2 fit` chooses it at a run's first fit from
the training transcripts (or `--alphabet FILE`), so a model speaks its corpus's language.
English keeps the fixed 28 characters of the neon seed ('a-z and space, 29 outputs), which
every model file written before alphabets were configurable uses.

Normalization depends on the transcript's language. English folds accents and spells out
numbers and symbols, as it always has. Every other language gets Unicode-aware rules:
NFC, lower case that keeps letters such as ä ö ü ß é ñ ç, apostrophes unified, punctuation
turned into spaces; what cannot be said as letters (digits, currency signs) is reported
instead of guessed. Keeping normalization here means ingest, training labels and evaluation
references can never disagree about what a transcript "is".
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ds2_keras.core.errors import DS2Error

BLANK = "_"
BLANK_INDEX = 0
SPACE = " "
ENGLISH_CHARACTERS = "'abcdefghijklmnopqrstuvwxyz "
ENGLISH = "en"


class UnmappableTextError(ValueError):
    """Raised when normalized text still holds characters outside the alphabet."""

    def __init__(self, text: str, characters: set[str]):
        self.text = text
        self.characters = characters
        shown = ", ".join(repr(c) for c in sorted(characters))
        super().__init__(f"characters outside the alphabet after normalization: {shown}")


class AlphabetError(DS2Error, ValueError):
    """An alphabet (or an --alphabet file) that cannot label a CTC model; the message says why."""


@dataclass(frozen=True)
class Alphabet:
    """A model's output symbols: the blank, then `characters` (the word-separating space last)."""

    characters: str

    def __post_init__(self) -> None:
        if not self.characters.endswith(SPACE) or self.characters.count(SPACE) != 1:
            raise AlphabetError(f"an alphabet holds the space once, as its last character: {self.characters!r}")
        if len(set(self.characters)) != len(self.characters):
            raise AlphabetError(f"an alphabet lists each character once: {self.characters!r}")
        unusable = {ch for ch in self.characters if ch == BLANK or not ch.isprintable()}
        if unusable:
            raise AlphabetError(f"an alphabet cannot hold {', '.join(map(repr, sorted(unusable)))}")

    @classmethod
    def of(cls, characters: Iterable[str], language: str = ENGLISH) -> Alphabet:
        """The alphabet of a set of characters (a corpus's transcripts), in a stable order.

        English always gets the seed's whole alphabet, so every English model has the same 29
        outputs whatever letters a small corpus happens to lack.
        """
        found = set(characters) - {SPACE}
        if is_english(language):
            found |= set(ENGLISH_CHARACTERS) - {SPACE}
        return cls("".join(sorted(found)) + SPACE)

    @classmethod
    def read(cls, path: Path) -> Alphabet:
        """`--alphabet FILE`: UTF-8 text listing the characters (whitespace ignored; the space is added)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise AlphabetError(f"{path}: cannot read the alphabet ({error})") from None
        characters = [ch for ch in unicodedata.normalize("NFC", text) if not ch.isspace()]
        if not characters:
            raise AlphabetError(f"{path}: the alphabet file lists no characters")
        if len(set(characters)) != len(characters):
            repeated = sorted({ch for ch in characters if characters.count(ch) > 1})
            raise AlphabetError(f"{path}: {', '.join(map(repr, repeated))} listed more than once")
        try:
            return cls("".join(characters) + SPACE)
        except AlphabetError as error:
            raise AlphabetError(f"{path}: {error}") from None

    @property
    def symbols(self) -> str:
        """What each output index means: the blank, then the characters."""
        return BLANK + self.characters

    @property
    def num_classes(self) -> int:
        return len(self.characters) + 1

    @property
    def space_index(self) -> int:
        return len(self.characters)  # the space is the last symbol

    @property
    def letters(self) -> frozenset[str]:
        """The characters a word may hold: all but the space."""
        return frozenset(self.characters) - {SPACE}

    def outside(self, text: str) -> set[str]:
        """Characters of `text` the model cannot output."""
        return set(text) - set(self.characters)

    def encode(self, text: str) -> np.ndarray:
        """Map normalized text to label ids (1..len(characters)); the blank never appears in a label."""
        index = self._index
        try:
            return np.array([index[ch] for ch in text], dtype=np.int32)
        except KeyError:
            raise UnmappableTextError(text, self.outside(text)) from None

    def decode(self, ids) -> str:
        """Map label ids back to text, ignoring blanks."""
        symbols = self.symbols
        return "".join(symbols[i] for i in ids if i != BLANK_INDEX)

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {ch: i for i, ch in enumerate(self.symbols)}

    def describe(self) -> str:
        shown = self.characters[:-1]
        return f"{self.num_classes} outputs: blank, {shown!r} and space"


ENGLISH_ALPHABET = Alphabet(ENGLISH_CHARACTERS)


def is_english(language: str) -> bool:
    """`en`, `en-US`, `en_GB`: English rules (number spelling, accent folding) apply."""
    return re.split(r"[-_]", language.lower(), maxsplit=1)[0] == ENGLISH


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
# Typographic apostrophes (right single quote, modifier letter apostrophe, grave, acute, prime) become '.
_APOSTROPHES = dict.fromkeys(map(ord, "\u2018\u2019\u02bc\u0060\u00b4\u2032"), "'")
# Punctuation that separates words becomes a space; anything else we cannot say is reported.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015_/\\.,;:!?¡¿\"“”„«»‹›()\[\]{}<>…*~|#^]+")
_NUMBER = re.compile(r"\d+")
# Quotes used as quotation marks ('like this') are not part of a word.
_QUOTING_APOSTROPHES = re.compile(r"(^|\s)'+|'+(\s|$)")
# What English normalization returns: words of letters with inner apostrophes, single spaces between.
_NORMALIZED_ENGLISH = re.compile(r"(?:[a-z]+(?:'+[a-z]+)*(?: [a-z]+(?:'+[a-z]+)*)*)?")


def normalize_text(text: str, language: str = ENGLISH) -> str:
    """Transcript text as a model of `language` hears it (see the module docstring for the rules).

    Raises UnmappableTextError if anything but letters, apostrophes and spaces remains, so
    callers can count or report the utterance instead of silently training on mangled labels.
    """
    if is_english(language):
        return _normalize_english(text)
    text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES).lower()
    text = _squeeze(_SEPARATORS.sub(" ", text))
    outside = {ch for ch in text if not _is_letter(ch) and ch not in "' "}
    if outside:
        raise UnmappableTextError(text, outside)
    return text


def _is_letter(character: str) -> bool:
    """Letters and the combining marks some scripts write them with (Devanagari vowel signs)."""
    return unicodedata.category(character)[0] in "LM"


def _normalize_english(text: str) -> str:
    """Lower-case, fold accents and curly quotes, spell out digits and symbols, squeeze spaces."""
    if _NORMALIZED_ENGLISH.fullmatch(text):  # already normalized (every manifest row ingest wrote): 30x faster
        return text
    text = unicodedata.normalize("NFKD", text).translate(_APOSTROPHES)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    for symbol, spoken in _SPOKEN_SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"(\d)\.(\d)", r"\1 point \2", text)  # 3.5 -> 3 point 5
    text = _NUMBER.sub(lambda m: f" {number_to_words(int(m.group()))} ", text)
    text = _squeeze(_SEPARATORS.sub(" ", text))
    outside = ENGLISH_ALPHABET.outside(text)
    if outside:
        raise UnmappableTextError(text, outside)
    return text


def _squeeze(text: str) -> str:
    return " ".join(_QUOTING_APOSTROPHES.sub(r"\1\2", text).split())

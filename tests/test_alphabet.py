"""The alphabet and the one text normalization that ingest, labels and metrics share."""
from __future__ import annotations

import numpy as np
import pytest

from ds2_keras.alphabet import (
    BLANK_INDEX, CHARACTERS, NUM_CLASSES, SYMBOLS, UnmappableTextError, decode, encode, normalize_text, number_to_words,
)


def test_layout_blank_first_then_29_outputs():
    assert NUM_CLASSES == 29 == len(SYMBOLS)
    assert BLANK_INDEX == 0 and SYMBOLS[1:] == CHARACTERS
    assert CHARACTERS == "'abcdefghijklmnopqrstuvwxyz "


@pytest.mark.parametrize("raw, normalized", [
    ("Hello, World!", "hello world"),
    ("  several\tkinds\nof   space ", "several kinds of space"),
    ("x-ray/gamma", "x ray gamma"),
    ("NORTHANGER ABBEY", "northanger abbey"),
    ("", ""),
])
def test_case_punctuation_and_spaces(raw, normalized):
    assert normalize_text(raw) == normalized


@pytest.mark.parametrize("raw, normalized", [
    ("In 1984 there were 3 cats", "in one thousand nine hundred eighty four there were three cats"),
    ("room 42", "room forty two"),
    ("0", "zero"),
    ("2000000", "two million"),
    ("Tom & Jerry: 100% fun", "tom and jerry one hundred percent fun"),
    ("²", "two"),
])
def test_digits_and_symbols_are_spelled_out(raw, normalized):
    assert normalize_text(raw) == normalized


@pytest.mark.parametrize("number, words", [
    (0, "zero"), (13, "thirteen"), (40, "forty"), (99, "ninety nine"), (101, "one hundred one"),
    (1001, "one thousand one"), (7_000_000_000, "seven billion"),
])
def test_number_to_words(number, words):
    assert number_to_words(number) == words


@pytest.mark.parametrize("raw, normalized", [
    ("it’s", "it's"),
    ("O’Neill", "o'neill"),
    ("‘quoted’ words", "quoted words"),
    ("“Hello,” she said", "hello she said"),
    ("rock 'n' roll", "rock n roll"),
])
def test_curly_quotes_and_apostrophes(raw, normalized):
    assert normalize_text(raw) == normalized


@pytest.mark.parametrize("raw, normalized", [
    ("Café naïve Zoë", "cafe naive zoe"),
    ("Ångström", "angstrom"),
    ("ﬁne", "fine"),
])
def test_accents_and_ligatures_fold(raw, normalized):
    assert normalize_text(raw) == normalized


@pytest.mark.parametrize("raw, outside", [("Straße", {"ß"}), ("日本", {"日", "本"}), ("$5", {"$"})])
def test_unmappable_characters_are_reported(raw, outside):
    with pytest.raises(UnmappableTextError) as caught:
        normalize_text(raw)
    assert caught.value.characters == outside
    assert all(repr(ch) in str(caught.value) for ch in outside)


def test_encode_decode_round_trip():
    text = normalize_text("It's a test of all twenty-six letters: the quick brown fox jumps over the lazy dog")
    ids = encode(text)
    assert ids.dtype == np.int32
    assert ids.min() >= 1 and ids.max() <= NUM_CLASSES - 1
    assert decode(ids) == text
    assert set(text) == set(CHARACTERS)


def test_decode_ignores_blanks():
    ids = encode("ab")
    assert decode([BLANK_INDEX, ids[0], BLANK_INDEX, BLANK_INDEX, ids[1], BLANK_INDEX]) == "ab"
    assert decode([]) == ""

"""The alphabet and the one text normalization that ingest, labels and metrics share."""
from __future__ import annotations

import numpy as np
import pytest

from ds2_keras.core.alphabet import (
    BLANK_INDEX, ENGLISH_ALPHABET, Alphabet, AlphabetError, UnmappableTextError, normalize_text, number_to_words,
)

CHARACTERS = ENGLISH_ALPHABET.characters
encode, decode = ENGLISH_ALPHABET.encode, ENGLISH_ALPHABET.decode


def test_english_layout_blank_first_then_29_outputs():
    assert ENGLISH_ALPHABET.num_classes == 29 == len(ENGLISH_ALPHABET.symbols)
    assert BLANK_INDEX == 0 and ENGLISH_ALPHABET.symbols[1:] == CHARACTERS
    assert CHARACTERS == "'abcdefghijklmnopqrstuvwxyz "
    assert ENGLISH_ALPHABET.space_index == 28


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
    assert ids.min() >= 1 and ids.max() <= ENGLISH_ALPHABET.num_classes - 1
    assert decode(ids) == text
    assert set(text) == set(CHARACTERS)


def test_decode_ignores_blanks():
    ids = encode("ab")
    assert decode([BLANK_INDEX, ids[0], BLANK_INDEX, BLANK_INDEX, ids[1], BLANK_INDEX]) == "ab"
    assert decode([]) == ""


@pytest.mark.parametrize("language, raw, normalized", [
    ("es", "¿Qué tal, Señor Muñoz?", "qué tal señor muñoz"),
    ("de", "Die Straße ÜBER den Fluß", "die straße über den fluß"),
    ("fr", "L’été, c’est «magnifique» !", "l'été c'est magnifique"),
    ("ca", "Ça va — très bien", "ça va très bien"),
    ("tr", "Işık ve Ağaç", "işık ve ağaç"),
    ("es", "cafe\u0301", "café"),  # decomposed é is composed (NFC), so it is one character
])
def test_other_languages_keep_their_letters(language, raw, normalized):
    assert normalize_text(raw, language) == normalized


def test_english_variants_get_english_rules():
    assert normalize_text("Café 3", "en-US") == normalize_text("Café 3", "en_GB") == "cafe three"


@pytest.mark.parametrize("raw, outside", [("tengo 3 gatos", {"3"}), ("cuesta 5 €", {"5", "€"})])
def test_other_languages_report_what_they_cannot_spell(raw, outside):
    with pytest.raises(UnmappableTextError) as caught:
        normalize_text(raw, "es")
    assert caught.value.characters == outside


def test_alphabet_of_a_corpus_is_sorted_with_the_space_last():
    spanish = Alphabet.of("el niño pequeño vio una cigüeña", "es")
    assert spanish.characters == "acegilnopquvñü "
    assert spanish.symbols[0] == "_" and spanish.space_index == spanish.num_classes - 1
    assert spanish.decode(spanish.encode("niño cigüeña")) == "niño cigüeña"
    # English always has the whole seed alphabet, whatever a small corpus lacks.
    assert Alphabet.of("a cab", "en") == ENGLISH_ALPHABET


def test_encoding_text_outside_an_alphabet_names_the_characters():
    with pytest.raises(UnmappableTextError, match="'ñ'"):
        ENGLISH_ALPHABET.encode("niño")


def test_alphabet_file(tmp_path):
    path = tmp_path / "alphabet.txt"
    path.write_text("a b c\nñ\n'\n", encoding="utf-8")
    assert Alphabet.read(path).characters == "abcñ' "
    path.write_text("a b a", encoding="utf-8")
    with pytest.raises(AlphabetError, match="'a' listed more than once"):
        Alphabet.read(path)
    path.write_text("a _ b", encoding="utf-8")
    with pytest.raises(AlphabetError, match="cannot hold '_'"):
        Alphabet.read(path)
    with pytest.raises(AlphabetError, match="missing.txt: cannot read"):
        Alphabet.read(tmp_path / "missing.txt")

"""The decoder a user chose, as one typed object every command builds its decoder from.

`ds2 evaluate`, `ds2 transcribe` (files and --stream) and `ds2 lm tune` take the same options
(cli_options.decoder_options) and turn them into DecoderSettings; `build` checks everything
(LM file, hotword phrases against the model's alphabet) before any slow work. Weights left
unset come from the LM's tuned-weights file (`<lm>.tuned.json`, written by `ds2 lm tune`) when
there is one, else from the defaults.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ds2_keras.core.alphabet import Alphabet
from ds2_keras.decode.beam_search import SearchSettings
from ds2_keras.decode.decoders import BeamSearchDecoder, Decoder, GreedyDecoder, Hotword
from ds2_keras.core.errors import DS2Error, FileError
from ds2_keras.core.fileio import atomic_write_text

DEFAULT_WEIGHTS = {"alpha": SearchSettings.alpha, "beta": SearchSettings.beta, "unk_score": SearchSettings.unk_score}
DEFAULT_BOOST = 2.0  # per letter of a hotword, natural log units


def tuned_weights_path(lm_path: Path) -> Path:
    """Where `ds2 lm tune` keeps an LM's best weights: beside it, `<lm file name>.tuned.json`."""
    return lm_path.with_name(lm_path.name + ".tuned.json")


def save_tuned_weights(lm_path: Path, weights: dict[str, float], details: dict) -> Path:
    """Write the tuned weights (and how they were found) beside the LM; returns the file."""
    path = tuned_weights_path(lm_path)
    atomic_write_text(path, json.dumps({**weights, **details}, indent=2) + "\n")
    return path


def read_tuned_weights(lm_path: Path) -> dict[str, float]:
    """The tuned weights saved beside an LM, or {} when it has none."""
    path = tuned_weights_path(lm_path)
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return {name: float(saved[name]) for name in DEFAULT_WEIGHTS if name in saved}
    except (OSError, ValueError, TypeError) as error:
        raise FileError(path, f"unreadable tuned LM weights ({error}); delete it or run `ds2 lm tune` again") from None


def parse_hotword(spec: str, source: str = "--hotword") -> Hotword:
    """`PHRASE[:BOOST]` as a Hotword: lower case, single spaces; the boost defaults to DEFAULT_BOOST."""
    phrase, boost = spec, DEFAULT_BOOST
    head, colon, tail = spec.rpartition(":")
    if colon:
        try:
            phrase, boost = head, float(tail)
        except ValueError:
            pass  # a colon inside the phrase
    phrase = " ".join(phrase.lower().split())
    if not phrase:
        raise DS2Error(f"{source}: empty hotword phrase in {spec!r}")
    return Hotword(phrase, boost)


def read_hotwords(path: Path) -> list[Hotword]:
    """A hotwords file: one `PHRASE[:BOOST]` per line; blank lines and lines starting with # are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise FileError(path, f"cannot read hotwords ({error})") from None
    return [parse_hotword(line, f"{path} line {number}") for number, line in enumerate(lines, start=1)
            if line.strip() and not line.lstrip().startswith("#")]


def check_hotwords(hotwords: list[Hotword], alphabet: Alphabet) -> None:
    """Refuse a phrase the model cannot spell, naming it and the characters at fault."""
    for hotword in hotwords:
        outside = sorted(alphabet.outside(hotword.phrase.replace(" ", "")))
        if outside:
            raise DS2Error(f"hotword {hotword.phrase!r}: {''.join(outside)!r} not in the model's alphabet "
                           f"{alphabet.characters!r}")


@dataclass(frozen=True)
class DecoderSettings:
    """Greedy, or beam search with an optional LM, hotwords and N-best. Weights left None are
    the LM's tuned ones, else DEFAULT_WEIGHTS."""

    kind: str = "greedy"
    lm_path: Path | None = None
    alpha: float | None = None
    beta: float | None = None
    unk_score: float | None = None
    beam_width: int = 64
    vocabulary_path: Path | None = None
    hotwords: tuple[str, ...] = ()  # PHRASE[:BOOST] specs
    hotword_files: tuple[Path, ...] = ()
    nbest: int = 1

    def weights(self) -> tuple[dict[str, float], str]:
        """(alpha, beta, unk_score) to use and a note saying where the ones not given came from."""
        given = {"alpha": self.alpha, "beta": self.beta, "unk_score": self.unk_score}
        missing = [name for name, value in given.items() if value is None]
        tuned = read_tuned_weights(self.lm_path) if self.lm_path is not None and missing else {}
        chosen = {name: value if value is not None else tuned.get(name, DEFAULT_WEIGHTS[name])
                  for name, value in given.items()}
        used = [name for name in missing if name in tuned]
        note = f"{', '.join(used)} tuned in {tuned_weights_path(self.lm_path).name}" if used else ""
        return chosen, note

    def build(self, alphabet: Alphabet) -> Decoder:
        """The decoder, reading scores over `alphabet` (the model's); bad options fail here, before any work."""
        hotwords = [parse_hotword(spec) for spec in self.hotwords]
        for path in self.hotword_files:
            hotwords += read_hotwords(path)
        if self.kind == "greedy":
            for option, used in (("--lm", self.lm_path), ("--hotword/--hotwords", hotwords),
                                 ("--nbest", self.nbest > 1)):
                if used:
                    raise DS2Error(f"{option} needs --decoder beam")
            return GreedyDecoder(alphabet)
        check_hotwords(hotwords, alphabet)
        weights, note = self.weights()
        return BeamSearchDecoder(self.lm_path, weights["alpha"], weights["beta"], self.beam_width,
                                 vocabulary_path=self.vocabulary_path, unk_score=weights["unk_score"],
                                 hotwords=hotwords, nbest=self.nbest, alphabet=alphabet, weights_note=note)

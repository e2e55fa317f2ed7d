"""`ds2 ingest <corpus> SRC_DIR TRANSCRIPTS_DIR MANIFEST`: the seed's three arguments per corpus.

Progress goes to stderr, the summary to stdout; an IngestError is shown as one line by click.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

from ds2_keras.cli.options import OneLineErrors, progress_bar

from .an4 import SPLITS as AN4_SPLITS, ingest_an4
from .common import IngestSummary, Progress
from .commonvoice import ingest_commonvoice
from .folder import ingest_folder
from .librispeech import ingest_librispeech
from .ljspeech import ingest_ljspeech
from .synth import SPLITS as SYNTH_SPLITS, SynthesizedCorpus, synthesize_corpus

_PATH = click.Path(path_type=Path)


def corpus_arguments(command: Callable) -> Callable:
    """The seed's three arguments, which every corpus subcommand takes, --progress and --verify-audio."""
    for decorator in reversed((
        click.argument("src_dir", type=_PATH),
        click.argument("transcripts_dir", type=_PATH),
        click.argument("manifest", type=_PATH),
        click.option("--progress/--no-progress", default=True, help="Show a progress bar on stderr.",
                     callback=lambda context, parameter, shown: progress_bar if shown else None),
        click.option("--verify-audio", "verify", is_flag=True,
                     help="Decode every audio file in full (in parallel) and skip any that is truncated, corrupt "
                          "or holds NaN/Inf samples. Slower: by default only headers are read."),
    )):
        command = decorator(command)
    return command


def language_option(default: str | None, help: str) -> Callable:
    return click.option("--language", default=default, show_default=default is not None, metavar="CODE", help=help)


def echo_summary(summary: IngestSummary | SynthesizedCorpus) -> None:
    click.echo(summary.format())


@click.group("ingest", cls=OneLineErrors)
def ingest() -> None:
    """Turn a corpus into one transcript file per utterance and a manifest CSV."""


@ingest.command()
@corpus_arguments
def librispeech(src_dir: Path, transcripts_dir: Path, manifest: Path, progress: Progress | None, verify: bool) -> None:
    """LibriSpeech: one split directory, the LibriSpeech/ directory of splits, or its parent."""
    echo_summary(ingest_librispeech(src_dir, transcripts_dir, manifest, progress, verify))


@ingest.command()
@corpus_arguments
def ljspeech(src_dir: Path, transcripts_dir: Path, manifest: Path, progress: Progress | None, verify: bool) -> None:
    """LJSpeech: the LJSpeech-1.1 directory (metadata.csv and wavs/)."""
    echo_summary(ingest_ljspeech(src_dir, transcripts_dir, manifest, progress, verify))


@ingest.command()
@corpus_arguments
@click.option("--split", default="train", show_default=True, help="Which <split>.tsv to ingest.")
@language_option(None, "The sentences' language, which picks the text normalization [default: the directory's "
                       "name, Common Voice's locale: es, de, ...].")
def commonvoice(src_dir: Path, transcripts_dir: Path, manifest: Path, progress: Progress | None, verify: bool,
                split: str, language: str | None) -> None:
    """Common Voice: a language directory holding <split>.tsv and clips/."""
    echo_summary(ingest_commonvoice(src_dir, transcripts_dir, manifest, split, progress, verify, language))


@ingest.command()
@corpus_arguments
@language_option("en", "The transcripts' language (a code such as en, es, de), which picks the text normalization.")
def folder(src_dir: Path, transcripts_dir: Path, manifest: Path, progress: Progress | None, verify: bool,
           language: str) -> None:
    """Any tree of .wav/.flac/.mp3/.ogg/.sph files, each with a same-named .txt transcript."""
    echo_summary(ingest_folder(src_dir, transcripts_dir, manifest, progress, verify, language))


@ingest.command()
@corpus_arguments
@click.option("--split", type=click.Choice(AN4_SPLITS), default="train", show_default=True)
def an4(src_dir: Path, transcripts_dir: Path, manifest: Path, progress: Progress | None, verify: bool,
        split: str) -> None:
    """AN4 (CMU census): the an4 directory (etc/, wav/ of .sph files) or its parent."""
    echo_summary(ingest_an4(src_dir, transcripts_dir, manifest, split, progress, verify))


@ingest.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-n", "--num-utterances", type=click.IntRange(min=len(SYNTH_SPLITS)), default=1200, show_default=True,
              help="Utterances in all splits together (about 80/10/10 train/val/test).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Same seed and size give byte-identical audio and transcripts.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Parallel synthesis threads [default: CPU count, at most 8].")
def synth(out_dir: Path, num_utterances: int, seed: int, workers: int | None) -> None:
    """Synthesize an English speech corpus with espeak-ng into OUT_DIR (LibriSpeech layout).

    Writes OUT_DIR/train.csv, val.csv and test.csv; the test split uses voices heard in no
    other split. Needs only the espeak-ng program: no download, no GPU.
    """
    echo_summary(synthesize_corpus(out_dir, num_utterances, seed=seed, workers=workers, progress=progress_bar))

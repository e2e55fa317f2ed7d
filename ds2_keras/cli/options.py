"""What several `ds2` commands share, declared once so names and help never drift: options, and
the command group that shows a DS2Error as one `Error:` line."""
from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import Callable, Iterator

import click

from ds2_keras.core.config import DS2Config, preset as load_preset
from ds2_keras.core.errors import DS2Error
from ds2_keras.core.interruption import FitInterrupted


class OneLineErrors(click.Group):
    """A command group whose commands' DS2Errors print as `Error: ...` instead of a traceback;
    a stop on request (FitInterrupted) prints its line alone, with its own exit status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FitInterrupted as stop:
            click.echo(str(stop), err=True)
            raise click.exceptions.Exit(stop.exit_code) from None
        except DS2Error as error:
            raise click.ClickException(str(error)) from None


@contextlib.contextmanager
def progress_bar(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """click's bar on stderr, so that stdout carries the command's result alone; yields its advance
    function."""
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def quiet_progress(length: int, label: str) -> contextlib.AbstractContextManager[Callable[[int], None]]:
    """progress_bar's stand-in that shows nothing."""
    return contextlib.nullcontext(lambda count: None)


manifest_option = click.option(
    "--manifest", "manifests", multiple=True, required=True, metavar="NAME:PATH",
    help="Manifest CSV (ds2 or neon format) named train/val/...; repeat for more.",
)
preset_option = click.option("--preset", default="small", show_default=True, help="tiny, small or ds2.")
overrides_option = click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE",
                                help="Override a config field (repeatable).")


def batch_size_option(default: int, help: str | None = None):
    return click.option("-z", "--batch-size", "--batch_size", "batch_size", type=click.IntRange(min=1),
                        default=default, show_default=True, help=help)


def model_file_option(required: bool = True, help: str = "A ds2 model file (.keras) written by `ds2 fit`."):
    return click.option("--model-file", "--model_file", "model_file", type=click.Path(path_type=Path),
                        required=required, help=help)


def parse_manifests(values: tuple[str, ...]) -> dict[str, list[Path]]:
    """`name:path` pairs (the neon seed's `--manifest train:A.csv`) grouped by name."""
    groups: dict[str, list[Path]] = {}
    for value in values:
        name, sep, path = value.partition(":")
        if not sep or not path:
            raise click.BadParameter(f"expected NAME:PATH such as train:train.csv, got {value!r}", param_hint="--manifest")
        groups.setdefault(name, []).append(Path(path))
    return groups


def manifest_paths(values: tuple[str, ...]) -> list[Path]:
    """Every manifest path given, whatever its name, in order."""
    return [path for group in parse_manifests(values).values() for path in group]


def config_from(preset: str, overrides: tuple[str, ...]) -> DS2Config:
    try:
        return load_preset(preset).with_overrides(list(overrides))
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


lm_option = click.option("--lm", "lm_path", type=click.Path(path_type=Path),
                         help="Word n-gram LM: ARPA (.arpa, .arpa.gz) or KenLM binary; needs --decoder beam.")
vocabulary_option = click.option("--vocabulary", "vocabulary_path", type=click.Path(path_type=Path),
                                 help="Word list for a binary KenLM (an ARPA lists its own words).")
beam_width_option = click.option("--beam-width", type=click.IntRange(min=1), default=64, show_default=True,
                                 help="Hypotheses kept per frame by the beam search.")
DECODER_OPTIONS = [
    click.option("--decoder", "decoder_kind", type=click.Choice(["greedy", "beam"]), default="greedy",
                 show_default=True, help="greedy: the exported model's argmax; beam: prefix beam search."),
    lm_option,
    vocabulary_option,
    click.option("--alpha", type=float, default=None,
                 help="LM weight [default: the LM's tuned weight (ds2 lm tune), else 0.5]."),
    click.option("--beta", type=float, default=None, help="Bonus per word [default: tuned, else 1.0]."),
    click.option("--unk-score", type=float, default=None,
                 help="Score of a word the LM does not know, instead of its LM score [default: tuned, else -6]."),
    beam_width_option,
    click.option("--hotword", "hotwords", multiple=True, metavar="PHRASE[:BOOST]",
                 help="Favour a word or phrase; BOOST per letter [default: 2] (repeatable; needs --decoder beam)."),
    click.option("--hotwords", "hotword_files", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
                 help="Hotwords from a file, one PHRASE[:BOOST] per line."),
    click.option("--nbest", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Keep the N best distinct hypotheses with their scores (beam; JSON output)."),
]


def decoder_options(function):
    """Declare the decoder options on a command, which receives them as one `decoder` (DecoderSettings)."""
    @functools.wraps(function)
    def command(*args, decoder_kind, lm_path, vocabulary_path, alpha, beta, unk_score, beam_width, hotwords,
                hotword_files, nbest, **kwargs):
        from ds2_keras.decode.settings import DecoderSettings

        settings = DecoderSettings(decoder_kind, lm_path, alpha, beta, unk_score, beam_width, vocabulary_path,
                                   tuple(hotwords), tuple(hotword_files), nbest)
        return function(*args, decoder=settings, **kwargs)

    for option in reversed(DECODER_OPTIONS):
        command = option(command)
    return command

"""What several `ds2` commands share, declared once so names and help never drift: options, and
the command group that shows a DS2Error as one `Error:` line."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Callable, Iterator

import click

from .config import DS2Config, preset as load_preset
from .errors import DS2Error
from .interruption import FitInterrupted


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

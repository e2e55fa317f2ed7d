"""The `ds2` command line: ingest, fit, evaluate, transcribe, export, lm, bench.

Each command parses its options and hands a plain request to the module that does the work;
TensorFlow is imported lazily so `ds2 --help` and `ds2 ingest` start fast.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import click

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter out of the output

from ingest.commands import ingest  # noqa: E402


def parse_manifests(values: tuple[str, ...]) -> dict[str, list[Path]]:
    """`name:path` pairs (the neon seed's `--manifest train:A.csv`) grouped by name."""
    groups: dict[str, list[Path]] = {}
    for value in values:
        name, sep, path = value.partition(":")
        if not sep or not path:
            raise click.BadParameter(f"expected NAME:PATH such as train:train.csv, got {value!r}", param_hint="--manifest")
        groups.setdefault(name, []).append(Path(path))
    return groups


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ds2-keras")
def main() -> None:
    """Deep Speech 2 on TensorFlow/Keras."""


main.add_command(ingest)

manifest_option = click.option(
    "--manifest", "manifests", multiple=True, required=True, metavar="NAME:PATH",
    help="Manifest CSV (ds2 or neon format) named train/val/...; repeat for more.",
)
model_file_option = click.option(
    "--model-file", "--model_file", "model_file", type=click.Path(path_type=Path),
    help="A ds2 model file (.keras) written by `ds2 fit`.",
)


@main.command()
@manifest_option
@click.option("-e", "--epochs", type=int, required=True, help="Total epochs to reach (a resumed run continues to this).")
@click.option("-z", "--batch-size", "--batch_size", "batch_size", type=int, default=32, show_default=True)
@click.option("-s", "--save-path", "--save_path", "save_path", type=click.Path(path_type=Path), required=True,
              help="Output directory: model.keras, config.json, history.json, TensorBoard logs.")
@model_file_option
@click.option("--preset", default="small", show_default=True, help="tiny, small or ds2.")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE", help="Override a config field (repeatable).")
@click.option("--fresh", is_flag=True, help="Start over even if SAVE_PATH holds a checkpoint.")
@click.option("--cache", is_flag=True, help="Keep decoded audio in memory after the first epoch.")
@click.option("--save-every", type=int, default=200, show_default=True, help="Checkpoint every N batches (0: epoch ends only).")
@click.option("--cpu-replicas", type=int, default=0, help="Split the CPU into N logical devices for MirroredStrategy.")
def fit(manifests, epochs, batch_size, save_path, model_file, preset, overrides, fresh, cache, save_every, cpu_replicas):
    """Train (or resume training) a DS2 model with CTC loss."""
    from .config import preset as load_preset
    from .distribute import split_cpu
    from .training import FitRequest, fit as run_fit

    groups = parse_manifests(manifests)
    if "train" not in groups:
        raise click.UsageError("fit needs at least one --manifest train:PATH")
    try:
        config = load_preset(preset).with_overrides(list(overrides))
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if cpu_replicas:
        split_cpu(cpu_replicas)
    request = FitRequest(
        train_manifests=groups["train"], val_manifests=groups.get("val", []), epochs=epochs, batch_size=batch_size,
        output_dir=save_path, config=config, model_file=model_file, fresh=fresh, cache=cache,
        save_every_steps=save_every,
    )
    with clear_errors():
        run_fit(request)


@contextlib.contextmanager
def clear_errors() -> Iterator[None]:
    """Turn our own well-worded errors into one-line CLI errors instead of tracebacks."""
    from .audio import AudioError
    from .checkpoints import ModelFileError
    from .manifest import ManifestError

    try:
        yield
    except (ManifestError, ModelFileError, AudioError, ValueError) as error:
        raise click.ClickException(str(error)) from None

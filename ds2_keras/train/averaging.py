"""Checkpoint averaging, as icefall does: the mean of the last epochs' weights.

A short run's last epochs wander around a minimum rather than settle in it, so their mean
often scores better than any one of them. `ds2 fit --average N` keeps the weights of the last
N finished epochs under epochs/ and writes their mean to averaged.keras at the end of the run;
`ds2 average` writes it again from the kept epochs, for another N.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import keras
import numpy as np

from ds2_keras.model.checkpoints import MODEL_FILENAME, ModelFileError, load_model_file, save_model_file
from ds2_keras.core.distribute import is_chief
from ds2_keras.core.errors import DS2Error
from ds2_keras.core.fileio import atomic_path, remove_stale_temporaries, reporting_os_errors
from ds2_keras.model.network import DS2Model

EPOCHS_DIRNAME = "epochs"  # epoch-NNN.weights.h5: the weights (no optimizer state) after epoch NNN
AVERAGED_FILENAME = "averaged.keras"
_SNAPSHOT = re.compile(r"^epoch-(\d+)\.weights\.h5$")


def snapshot_path(output_dir: Path, epoch: int) -> Path:
    return Path(output_dir) / EPOCHS_DIRNAME / f"epoch-{epoch:03d}.weights.h5"


def kept_epochs(output_dir: Path) -> list[int]:
    """The finished epochs whose weights are kept in output_dir/epochs/, oldest first."""
    directory = Path(output_dir) / EPOCHS_DIRNAME
    if not directory.is_dir():
        return []
    found = (_SNAPSHOT.match(path.name) for path in directory.iterdir())
    return sorted(int(match.group(1)) for match in found if match)


def keep_epoch(model: DS2Model, output_dir: Path, epoch: int, keep: int) -> None:
    """Save the weights after `epoch` (counted from 1) and delete all but the newest `keep`."""
    with atomic_path(snapshot_path(output_dir, epoch)) as temporary:
        model.save_weights(temporary)
    for old in kept_epochs(output_dir)[:-keep]:
        with reporting_os_errors(snapshot_path(output_dir, old)):
            snapshot_path(output_dir, old).unlink(missing_ok=True)


def forget_epochs(output_dir: Path) -> None:
    """A new run in output_dir (--fresh) must not average in an earlier run's epochs."""
    directory = Path(output_dir) / EPOCHS_DIRNAME
    if directory.exists():
        with reporting_os_errors(directory):
            shutil.rmtree(directory)


def remove_stale_epoch_temporaries(output_dir: Path) -> None:
    """Delete the temporaries of epoch weights a killed fit was writing (see fileio.atomic_path)."""
    remove_stale_temporaries(Path(output_dir) / EPOCHS_DIRNAME / "epoch-*.weights.h5", name_is_pattern=True)


class EpochWeights(keras.callbacks.Callback):
    """Keeps the weights of the last `keep` finished epochs (keep_epoch).

    It runs after the Checkpointer, whose saved progress tells a finished epoch from one that
    --max-minutes stopped part-way, and which has already refused weights that are not finite.
    """

    def __init__(self, output_dir: Path, keep: int):
        super().__init__()
        self.output_dir = Path(output_dir)
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        progress = self.model.progress
        if progress["epoch"] == epoch + 1 and progress["step"] == 0 and is_chief():
            keep_epoch(self.model, self.output_dir, epoch + 1, self.keep)


def average_epochs(output_dir: Path, last: int) -> DS2Model:
    """The run's model with the mean weights of its newest `last` kept epochs (fewer if fewer are kept).

    Every weight is averaged, batch-norm statistics included; the result's progress lists the
    epochs in `averaged_epochs`. The model is not compiled: it is for evaluation and export.
    """
    epochs = kept_epochs(output_dir)[-last:]
    if not epochs:
        raise DS2Error(f"{Path(output_dir) / EPOCHS_DIRNAME}: no epoch weights kept "
                       "(ds2 fit --average N keeps those of the last N epochs)")
    model = load_model_file(Path(output_dir) / MODEL_FILENAME, compile=False)
    total: list[np.ndarray] | None = None
    for epoch in epochs:
        path = snapshot_path(output_dir, epoch)
        try:
            model.load_weights(path)
        except Exception as error:  # noqa: BLE001 - a truncated file or another network's weights
            raise ModelFileError(f"{path}: cannot be loaded into {Path(output_dir) / MODEL_FILENAME} "
                                 f"({type(error).__name__}: {error})") from None
        values = [np.asarray(weight, dtype=np.float64) for weight in model.get_weights()]
        total = values if total is None else [sum_ + value for sum_, value in zip(total, values)]
    model.set_weights([(sum_ / len(epochs)).astype(weight.dtype) if np.issubdtype(weight.dtype, np.floating)
                       else weight for sum_, weight in zip(total, model.get_weights())])
    model.progress = {**model.progress, "averaged_epochs": epochs}
    return model


def write_average(output_dir: Path, last: int, output: Path | None = None) -> tuple[DS2Model, Path]:
    """average_epochs, saved to `output` (default output_dir/averaged.keras)."""
    model = average_epochs(output_dir, last)
    output = Path(output) if output is not None else Path(output_dir) / AVERAGED_FILENAME
    save_model_file(model, output)
    return model, output

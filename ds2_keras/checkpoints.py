"""Model files: one atomic .keras archive holds config, weights, optimizer state and progress.

Writes go to a temporary file that is renamed into place, so a fit killed at any instant
leaves the previous checkpoint intact, and the same `ds2 fit` command resumes from it.
"""
from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import keras

from .distribute import is_chief
from .errors import DS2Error
from .fileio import atomic_path, atomic_write_text
from .model import DS2Model
from .optim import EpochDecay  # noqa: F401 - registers the schedule compiled model files name

MODEL_FILENAME = "model.keras"
BEST_FILENAME = "best.keras"  # the epoch with the lowest validation CER so far


class ModelFileError(DS2Error):
    """A model file is missing, truncated or not a ds2 model; the message names the file."""


def save_model_file(model: DS2Model, path: str | Path) -> None:
    with atomic_path(path) as temporary:
        model.save(temporary)


def load_model_file(path: str | Path, compile: bool = True) -> DS2Model:
    """Load a ds2 .keras file with a clear error instead of a deep Keras/TF traceback."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILENAME
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a .keras model archive (truncated or another format)")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: damaged model archive ({error})") from None
    if config.get("class_name") != "DS2Model":
        raise ModelFileError(f"{path}: holds a {config.get('class_name')!r}, not a ds2 DS2Model")
    try:
        model = keras.saving.load_model(path, compile=compile)
    except Exception as error:  # noqa: BLE001 - any load failure means an incompatible file
        raise ModelFileError(f"{path}: cannot be loaded as a ds2 model ({type(error).__name__}: {error})") from None
    return model


class Checkpointer(keras.callbacks.Callback):
    """Saves the model file every `every_steps` batches and at each epoch end, with progress,
    and best.keras whenever the epoch's validation CER is the lowest so far.

    `step_offset` is the number of batches of the current epoch already done before this fit
    call (a resumed partial epoch), so the saved step always counts from the epoch's start.
    """

    def __init__(self, output_dir: Path, every_steps: int, step_offset: int = 0):
        super().__init__()
        self.path = Path(output_dir) / MODEL_FILENAME
        self.every_steps = every_steps
        self.step_offset = step_offset
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.step = self.step_offset

    def on_train_batch_end(self, batch, logs=None):
        step = self.step = self.step_offset + batch + 1
        last_of_epoch = batch + 1 == self.params["steps"]  # the epoch-end save, after validation, covers it
        if self.every_steps and step % self.every_steps == 0 and not last_of_epoch and _finite(logs):
            self.model.progress = {**self.model.progress, "epoch": self.epoch, "step": step}
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        stopped_early = self.step < self.step_offset + self.params["steps"]  # --max-minutes ran out mid-epoch
        self.step_offset = 0
        if stopped_early and _finite(logs):  # saved as mid-epoch progress: the same command resumes there
            self.model.progress = {**self.model.progress, "epoch": epoch, "step": self.step}
            self._save()
            return
        if not _finite(logs):
            print(f"\nepoch {epoch + 1}: loss is not finite; keeping the previous checkpoint {self.path}")
            self.model.stop_training = True
            return
        history = dict(self.model.progress.get("history", {}))
        for name, value in (logs or {}).items():
            history.setdefault(name, []).append(float(value))
        self.model.progress = {**self.model.progress, "epoch": epoch + 1, "step": 0, "history": history}
        self._save()
        cer = history.get("val_cer", [])
        if cer and cer[-1] <= min(cer) and is_chief():
            save_model_file(self.model, self.path.with_name(BEST_FILENAME))

    def _save(self) -> None:
        if is_chief():
            save_model_file(self.model, self.path)
            atomic_write_text(self.path.with_name("history.json"), json.dumps(self.model.progress, indent=1))


def _finite(logs: dict | None) -> bool:
    return logs is None or math.isfinite(float(logs.get("loss", 0.0)))

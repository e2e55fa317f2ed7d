"""Model files: one atomic .keras archive holds config, weights, optimizer state and progress.

Writes go to a temporary file that is renamed into place, so a fit killed at any instant
leaves the previous checkpoint intact, and the same `ds2 fit` command resumes from it.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Mapping

import keras

from ds2_keras.core import faults
from ds2_keras.core.distribute import is_chief
from ds2_keras.core.errors import DS2Error
from ds2_keras.core.fileio import atomic_path, atomic_write_text
from ds2_keras.core.interruption import StopRequests
from ds2_keras.core.litert_file import is_litert_file
from ds2_keras.model.network import DS2Model
from ds2_keras.model.optim import EpochDecay  # noqa: F401 - registers the schedule compiled model files name

MODEL_FILENAME = "model.keras"
BEST_FILENAME = "best.keras"  # the epoch with the lowest validation CER so far
HISTORY_FILENAME = "history.json"  # the progress saved in model.keras, readable
PARTIAL_EPOCH = "partial_epoch"  # progress key: the scores where --max-minutes stopped mid-epoch
EPOCH_METRICS = "epoch_metrics"  # progress key, mid-epoch: the epoch's metric totals so far (a resume goes on from them)


class ModelFileError(DS2Error):
    """A model file is missing, truncated or not a ds2 model; the message names the file."""


def save_model_file(model: DS2Model, path: str | Path) -> None:
    with atomic_path(path) as temporary:
        model.save(temporary)
        faults.reached("checkpoint_write")


def load_model_file(path: str | Path, compile: bool = True) -> DS2Model:
    """Load a ds2 .keras file with a clear error instead of a deep Keras/TF traceback."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILENAME
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if is_litert_file(path):
        raise ModelFileError(f"{path}: a LiteRT export, which only `ds2 transcribe` and litert_runtime run; "
                             "this command needs the .keras model file it was exported from")
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


def timed_cer(progress: Mapping) -> tuple[list[float], list[float]]:
    """(minutes, validation CER) after each epoch of a fit's progress, then where --max-minutes
    stopped it mid-epoch if it did (the score that run ends on); none without both logged."""
    history = progress.get("history", {})
    minutes, cer = list(history.get("wall_minutes", ())), list(history.get("val_cer", ()))
    if len(minutes) != len(cer):  # a history from before fit logged wall_minutes
        return [], []
    last = progress.get(PARTIAL_EPOCH, {})
    if "wall_minutes" in last and "val_cer" in last:
        minutes.append(last["wall_minutes"])
        cer.append(last["val_cer"])
    return minutes, cer


class Checkpointer(keras.callbacks.Callback):
    """Saves the model file every `every_steps` batches and at each epoch end, with progress,
    and best.keras whenever the epoch's validation CER is the lowest so far.

    `step_offset` is the number of batches of the current epoch already done before this fit
    call (a resumed partial epoch), so the saved step always counts from the epoch's start.
    A model whose weights or optimizer state are no longer finite is never saved: fit stops
    with an error naming the last good checkpoint, which stays as it was.

    On a stop request (Ctrl-C, SIGTERM: interruption.py) it saves at the end of the current
    step, or after the epoch's validation if that is under way, and stops training. Mid-epoch
    saves carry the epoch's metric totals (EPOCH_METRICS), so that a resumed epoch logs the
    same mean loss as an uninterrupted one.
    """

    def __init__(self, output_dir: Path, every_steps: int, step_offset: int = 0, stops: StopRequests | None = None):
        super().__init__()
        self.path = Path(output_dir) / MODEL_FILENAME
        self.every_steps = every_steps
        self.step_offset = step_offset
        self.stops = stops or StopRequests()
        self.epoch = 0
        self.saved_on_request = False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.step = self.step_offset
        self.saved_on_request = False
        saved = self.model.progress.get(EPOCH_METRICS, {})
        if self.step_offset and self.model.progress["epoch"] == epoch:  # Keras has just reset the metrics
            for metric in self.model.metrics:
                for variable, value in zip(metric.variables, saved.get(metric.name, ())):
                    variable.assign(value)

    def on_train_batch_end(self, batch, logs=None):
        faults.reached("step")
        step = self.step = self.step_offset + batch + 1
        last_of_epoch = batch + 1 == self.params["steps"]  # the epoch-end save, after validation, covers it
        if last_of_epoch:
            return
        if self.stops.requested or (self.every_steps and step % self.every_steps == 0):
            self._save({"epoch": self.epoch, "step": step})
            if self.stops.requested:  # asked during the step or during this save: this step is saved
                self.model.stop_training = self.saved_on_request = True

    def on_epoch_end(self, epoch, logs=None):
        stopped_early = self.step < self.step_offset + self.params["steps"]  # --max-minutes or a signal, mid-epoch
        self.step_offset = 0
        if not self.saved_on_request:
            self._save_epoch(epoch, stopped_early, logs)
        if self.stops.requested:  # also when asked during validation or the save: the epoch is saved
            self.model.stop_training = True

    def _save_epoch(self, epoch: int, stopped_early: bool, logs: dict | None) -> None:
        earlier = self.model.progress.get("history", {}).get("val_cer", [])
        if stopped_early:  # saved as mid-epoch progress: the same command resumes there
            # Not an epoch of history (resuming finishes the epoch and logs it then), but the
            # budget's last scores are what its run ends on, so they are kept beside it.
            scores = {name: float(value) for name, value in (logs or {}).items()}
            self._save({"epoch": epoch, "step": self.step, PARTIAL_EPOCH: scores})
            self._keep_if_best((logs or {}).get("val_cer"), earlier)
            return
        history = dict(self.model.progress.get("history", {}))
        for name, value in (logs or {}).items():
            history.setdefault(name, []).append(float(value))
        self.model.progress = {key: value for key, value in self.model.progress.items() if key != PARTIAL_EPOCH}
        self._save({"epoch": epoch + 1, "step": 0, "history": history})
        self._keep_if_best((logs or {}).get("val_cer"), earlier)

    def _keep_if_best(self, val_cer: float | None, earlier: list[float]) -> None:
        """best.keras: the lowest validation CER so far (a budget's last, partial epoch counts too)."""
        if val_cer is not None and all(val_cer <= cer for cer in earlier) and is_chief():
            save_model_file(self.model, self.path.with_name(BEST_FILENAME))

    def _save(self, progress: dict) -> None:
        """Record `progress` in the model and save it, unless its state is no longer finite."""
        broken = nonfinite_variables(self.model)
        if broken:
            raise NonFiniteModelError(self._refusal(progress, broken))
        progress = {**self.model.progress, **progress}
        progress.pop(EPOCH_METRICS, None)
        if progress["step"]:  # every worker reads them: a metric's value is reduced across all of them
            progress[EPOCH_METRICS] = {metric.name: [float(variable.numpy()) for variable in metric.variables]
                                       for metric in self.model.metrics}
        self.model.progress = progress
        if is_chief():
            save_model_file(self.model, self.path)
            atomic_write_text(self.path.with_name(HISTORY_FILENAME), json.dumps(self.model.progress, indent=1))

    def _refusal(self, progress: dict, broken: list[str]) -> str:
        """Where training stopped, what is not finite, and which checkpoint is left to resume from."""
        where = (f"epoch {progress['epoch'] + 1}, step {progress['step']}" if progress["step"]
                 else f"the end of epoch {progress['epoch']}")
        names = ", ".join(broken[:3]) + (f" and {len(broken) - 3} more" if len(broken) > 3 else "")
        kept = (f"the last good checkpoint {self.path} is kept" if self.path.exists()
                else f"no checkpoint was written to {self.path.parent}")
        return f"training stopped at {where}: NaN or Inf in {names}; {kept}"


class NonFiniteModelError(DS2Error):
    """Training produced NaN or Inf weights; nothing was saved over the last good checkpoint."""


def nonfinite_variables(model: DS2Model) -> list[str]:
    """Paths of the model's weights and optimizer variables that hold NaN or Inf values."""
    variables = list(model.weights) + (list(model.optimizer.variables) if model.optimizer else [])
    return [variable.path for variable in variables
            if variable.dtype.startswith("float") and not bool(keras.ops.all(keras.ops.isfinite(variable)))]

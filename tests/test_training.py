"""Training: the tiny model learns, a fit resumes exactly, a killed fit restarts, bad losses are contained.

Overfitting a handful of utterances is the cheapest end-to-end proof that features, labels,
CTC loss, gradients and greedy decoding all line up; the resume tests pin down what a model
file must carry (epoch, step, optimizer state, schedule) for `ds2 fit` to pick up where it stopped.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import soundfile
import tensorflow as tf
from click.testing import CliRunner

from conftest import TRAINED_BATCH_SIZE
from corpus_fixtures import write_garbage
from faults import DS2, as_unprivileged, file_size_limit, one_line_error, run_ds2, shared_dir  # noqa: F401 - a fixture
from ds2_keras.core.alphabet import ENGLISH_ALPHABET
from ds2_keras.data.audio import load_audio
from ds2_keras.model.checkpoints import (BEST_FILENAME, MODEL_FILENAME, PARTIAL_EPOCH, load_model_file, save_model_file,
                                   timed_cer)
from ds2_keras.train.benchmark import _batch_seconds, _bench_data, _epochs_to_time
from ds2_keras.cli.main import main
from ds2_keras.core.config import preset
from ds2_keras.data.dataset import Utterances, batches_per_epoch, select_utterances, training_dataset
from ds2_keras.decode.decoders import greedy_decode_utterances
from ds2_keras.core.frames import output_frames
from ds2_keras.model.batch_inference import forward_pass, run_inference
from ds2_keras.data.manifest import read_manifest, write_manifest
from ds2_keras.core.metrics import cer
from ds2_keras.model.network import DS2Model
from ds2_keras.model.optim import make_optimizer, make_schedule, rate_after
from ds2_keras.train.fit import FIT_LOCK, FitRequest, WallClockBudget, fit

TINY = preset("tiny")


def test_tiny_model_overfits_a_handful_of_utterances(corpus, tmp_path):
    keras.utils.set_random_seed(0)
    rows = read_manifest(corpus["train"]).nsmallest(6, "duration")
    manifest = write_manifest(rows, tmp_path / "few.csv")
    config = TINY.replace(learning_rate=4e-3)
    model = fit(FitRequest([manifest], [], epochs=60, batch_size=2, output_dir=tmp_path / "out", config=config,
                           save_every_steps=0, verbose=0))
    losses = model.progress["history"]["loss"]
    assert losses[-1] < losses[0] / 20, losses

    utterances = select_utterances(rows, config)
    result = run_inference(model, utterances, 6, progress=False)
    predictions = greedy_decode_utterances(result.logits)
    references = utterances.rows["text"].to_numpy()[result.indices].tolist()
    assert cer(references, predictions).rate < 0.05, list(zip(references, predictions))


def test_resumed_fit_continues_epochs_optimizer_steps_and_learning_rate(trained_model, corpus, tmp_path, capsys):
    before = load_model_file(trained_model)
    epochs, steps = before.progress["epoch"], int(before.optimizer.iterations.numpy())
    assert before.progress["step"] == 0 and epochs > 0
    model = fit(FitRequest([corpus["train"]], [], epochs + 1, TRAINED_BATCH_SIZE, tmp_path, before.ds2_config,
                           model_file=trained_model, save_every_steps=0, verbose=0))

    assert f"resuming from {trained_model}: epoch {epochs}, step 0" in capsys.readouterr().out
    losses = model.progress["history"]["loss"]
    assert len(losses) == epochs + 1 and losses[:epochs] == before.progress["history"]["loss"]
    assert int(model.optimizer.iterations.numpy()) == steps + steps // epochs
    config = model.ds2_config
    assert config.lr_decay != 1.0  # otherwise a restarted schedule would look the same
    assert float(model.optimizer.learning_rate) == pytest.approx(config.learning_rate * config.lr_decay ** (epochs + 1))
    saved = load_model_file(tmp_path / MODEL_FILENAME)
    assert saved.progress == model.progress
    assert int(saved.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())


def test_cosine_schedule_warms_up_then_decays_to_its_floor_at_the_planned_end():
    config = TINY.replace(lr_schedule="cosine", learning_rate=2e-3, warmup_steps=10, lr_floor=0.05)
    schedule = make_schedule(config, steps_per_epoch=30, epochs=3)
    rates = np.array([float(schedule(step)) for step in range(0, 120)])
    assert 0 < rates[0] < rates[5] < rates[9] < rates[10] == pytest.approx(2e-3)  # warm-up, no step at zero
    assert np.all(np.diff(rates[10:90]) < 0)  # then only down...
    assert rates[90] == pytest.approx(2e-3 * 0.05) and np.allclose(rates[90:], rates[90])  # ...to the floor, and there


def test_fit_with_the_cosine_schedule_ends_at_its_floor_and_logs_wall_minutes(corpus, tmp_path):
    config = TINY.replace(lr_schedule="cosine", warmup_steps=2, lr_floor=0.1)
    model = fit(FitRequest([corpus["train"]], [], 2, TRAINED_BATCH_SIZE, tmp_path, config, save_every_steps=0,
                           verbose=0))
    assert float(model.optimizer.learning_rate) == pytest.approx(config.learning_rate * 0.1)
    minutes = model.progress["history"]["wall_minutes"]
    assert len(minutes) == 2 and 0 < minutes[0] < minutes[1] < 10
    saved = load_model_file(tmp_path / MODEL_FILENAME)  # the schedule travels in the model file
    assert float(saved.optimizer.learning_rate) == pytest.approx(float(model.optimizer.learning_rate))


def test_killed_fit_resumes_from_its_last_checkpoint_when_rerun(corpus, tmp_path):
    output_dir = tmp_path / "run"
    command = [str(DS2), "fit", "--manifest", f"train:{corpus['train']}", "-e", "2", "-z", "2", "-s", str(output_dir),
               "--preset", "tiny", "--save-every", "1"]
    killed_run = subprocess.run(command, capture_output=True, text=True, timeout=240,
                                env={**os.environ, "DS2_FAULT": "step:3"})  # kill -9 at step 3, step 2 saved
    assert killed_run.returncode == -signal.SIGKILL, killed_run.stdout[-3000:] + killed_run.stderr[-3000:]
    killed = load_model_file(output_dir)  # the model file is whole, whenever the kill came
    epoch, step = killed.progress["epoch"], killed.progress["step"]
    steps_per_epoch = batches_per_epoch(select_utterances(read_manifest(corpus["train"]), TINY), 2)
    assert (epoch, step) == (0, 2) and step < steps_per_epoch
    assert int(killed.optimizer.iterations.numpy()) == step

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert f"resuming from {output_dir / MODEL_FILENAME}: epoch {epoch}, step {step}" in rerun.stdout
    final = load_model_file(output_dir)
    assert (final.progress["epoch"], final.progress["step"]) == (2, 0)
    assert len(final.progress["history"]["loss"]) == 2
    assert int(final.optimizer.iterations.numpy()) == 2 * steps_per_epoch  # no batch lost or repeated
    assert json.loads((output_dir / "history.json").read_text()) == final.progress


def compiled_tiny_model() -> DS2Model:
    keras.utils.set_random_seed(0)
    model = DS2Model(TINY)
    model.compile(optimizer=make_optimizer(TINY, 1))
    return model


def fit_one_batch(rows: pd.DataFrame) -> tuple[dict, DS2Model]:
    """One training step on a batch of these rows, bypassing select_utterances (which drops bad rows)."""
    model = compiled_tiny_model()
    utterances = Utterances(rows.reset_index(drop=True), [ENGLISH_ALPHABET.encode(text) for text in rows["text"]])
    dataset = training_dataset(utterances, TINY, len(rows), range(1))
    return model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False).history, model


def assert_counted_and_skipped(history: dict, model: DS2Model) -> None:
    assert history["nonfinite_losses"] == [1.0]
    assert np.isfinite(history["loss"]).all() and history["loss"][0] > 0  # the other utterance still trains
    assert all(np.isfinite(weight).all() for weight in model.get_weights())


def test_label_that_cannot_fit_its_frames_is_dropped_or_counted_as_nonfinite(corpus):
    """Repeated letters need a blank between them: a label may be shorter than its frames and still not fit."""
    rows = read_manifest(corpus["val"])
    frames = int(output_frames(int(rows["duration"].iloc[0] * TINY.sample_rate), TINY))
    rows.loc[0, "text"] = "e" * (2 * frames // 3)  # fewer letters than frames, but 4/3 as many CTC steps
    assert select_utterances(rows, TINY).dropped == {"too short for their transcripts": 1}
    assert_counted_and_skipped(*fit_one_batch(rows))


def test_unreadable_audio_in_a_batch_is_counted_as_nonfinite(corpus, tmp_path):
    rows = read_manifest(corpus["val"])
    write_garbage(tmp_path / "broken.flac")
    rows.loc[0, "audio_path"] = str(tmp_path / "broken.flac")
    assert_counted_and_skipped(*fit_one_batch(rows))


def test_fit_with_a_val_manifest_records_val_loss_and_cer(trained_model, corpus, tmp_path):
    before = load_model_file(trained_model)
    model = fit(FitRequest([corpus["train"]], [corpus["val"]], before.progress["epoch"] + 1, TRAINED_BATCH_SIZE,
                           tmp_path, before.ds2_config, model_file=trained_model, save_every_steps=0, verbose=0))
    history = model.progress["history"]
    assert np.isfinite(history["val_loss"][-1]) and 0.0 <= history["val_cer"][-1]
    # The first validated epoch is the best so far, so best.keras holds it.
    best = load_model_file(tmp_path / BEST_FILENAME, compile=False)
    assert best.progress["epoch"] == model.progress["epoch"]
    assert best.progress["history"]["val_cer"] == history["val_cer"]


def test_inference_traces_its_forward_pass_once_per_model_and_shapes(trained_model, corpus):
    model = load_model_file(trained_model, compile=False)
    utterances = select_utterances(read_manifest(corpus["val"]), model.ds2_config)
    first = run_inference(model, utterances, 4, progress=False)
    traces = forward_pass(model).experimental_get_tracing_count()
    again = run_inference(model, utterances, 4, progress=False)  # as validation does after every epoch
    assert forward_pass(model).experimental_get_tracing_count() == traces > 0
    np.testing.assert_array_equal(first.losses, again.losses)
    other = load_model_file(trained_model, compile=False)  # another model gets its own trace, not this one's
    assert forward_pass(other) is not forward_pass(model)


def test_bench_prints_every_figure(corpus):
    result = CliRunner().invoke(main, ["bench", "--manifest", f"train:{corpus['train']}", "--preset", "tiny",
                                                "--steps", "2", "--warmup", "1", "-z", "4", "--epoch", "2"])
    assert result.exit_code == 0, result.output
    assert "1 warm-up + 2 timed steps from epoch 2" in result.output
    patterns = {
        "parameters": r"parameters: ([\d,]+)\n",
        "training": r"training: ([\d.]+) s of audio per second",
        "pipeline": r"input pipeline alone: ([\d.]+) s of audio per second",
        "inference": r"inference: real-time factor ([\d.]+)",
        "memory": r"peak memory: (\d+) MiB",
    }
    figures = {}
    for name, pattern in patterns.items():
        match = re.search(pattern, result.output)
        assert match, f"no {name} figure in:\n{result.output}"
        figures[name] = float(match.group(1).replace(",", ""))
    assert all(value > 0 for value in figures.values()), figures
    assert figures["parameters"] == DS2Model(TINY).count_params()


def test_bench_profile_writes_a_trace_of_the_timed_steps(corpus, tmp_path):
    profile = tmp_path / "profile"
    result = CliRunner().invoke(main, ["bench", "--manifest", f"train:{corpus['train']}", "--preset", "tiny",
                                       "--steps", "2", "--warmup", "1", "-z", "4", "--profile", str(profile)])
    assert result.exit_code == 0, result.output
    traces = list((profile / "plugins" / "profile").glob("*/*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 0, list(profile.rglob("*"))
    assert f"profile of the timed steps: {traces[0].parent} " in result.output
    assert not list(profile.glob(".ds2-bench-check*"))  # the writability check leaves nothing behind


def test_bench_profile_into_a_file_is_refused_before_any_work(corpus, tmp_path):
    in_the_way = tmp_path / "profile"
    in_the_way.write_text("not a directory")
    result = CliRunner().invoke(main, ["bench", "--manifest", f"train:{corpus['train']}", "--preset", "tiny",
                                       "--profile", str(in_the_way)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == f"Error: {in_the_way}: cannot write (not a directory)"


def test_bench_times_the_batches_fit_trains_on_from_the_epoch_asked(corpus):
    config, utterances = _bench_data(TINY, [corpus["train"]], fresh=True)
    per_epoch = batches_per_epoch(utterances, 4)
    assert _epochs_to_time(per_epoch, per_epoch, first_epoch=0) == range(0, 1)
    assert _epochs_to_time(per_epoch, per_epoch + 1, first_epoch=1) == range(1, 3)
    shortest_first = _batch_seconds(utterances, config, 4, range(0, 1))
    shuffled = _batch_seconds(utterances, config, 4, range(1, 2))
    full = shortest_first[:-1]  # the last batch may be topped up with earlier rows
    assert list(full) == sorted(full) and len(full) > 2
    assert not np.array_equal(shortest_first, shuffled)


def test_mid_epoch_resume_with_another_batch_size_is_refused(trained_model, corpus, tmp_path):
    model = load_model_file(trained_model)
    model.progress = {**model.progress, "step": 2}  # as if killed two batches into the next epoch
    output = tmp_path / "run"
    save_model_file(model, output / MODEL_FILENAME)
    args = ["fit", "--manifest", f"train:{corpus['train']}", "-e", "5", "-s", str(output)]
    result = CliRunner().invoke(main, args + ["-z", str(TRAINED_BATCH_SIZE * 2)])
    assert result.exit_code == 1, result.output
    assert "cannot resume mid-epoch" in result.output and "use the same -z" in result.output
    assert "Traceback" not in result.output


def test_max_minutes_stops_validates_saves_mid_epoch_and_the_same_command_finishes(corpus, tmp_path, capsys):
    request = FitRequest([corpus["train"]], [corpus["val"]], 2, 4, tmp_path, TINY, save_every_steps=0, verbose=0,
                         max_minutes=1e-6)  # runs out during the first batch
    stopped = fit(request)
    out = capsys.readouterr().out
    assert "--max-minutes 1e-06 reached at epoch 1, step 1: saved" in out and "epoch 1: val_loss" in out
    saved = load_model_file(tmp_path / MODEL_FILENAME)
    assert (saved.progress["epoch"], saved.progress["step"]) == (0, 1) == (stopped.progress["epoch"], 1)
    assert "loss" not in saved.progress["history"]  # a partial epoch is not an epoch of history
    scores = saved.progress[PARTIAL_EPOCH]  # but the scores the run ends on are kept beside it
    assert f"val CER {100 * scores['val_cer']:.2f}%" in out and scores["wall_minutes"] > 0
    assert timed_cer(saved.progress) == ([scores["wall_minutes"]], [scores["val_cer"]])
    assert (tmp_path / BEST_FILENAME).is_file()  # its validation still counts for best.keras
    finished = fit(FitRequest(**{**request.__dict__, "max_minutes": None}))
    assert (finished.progress["epoch"], finished.progress["step"]) == (2, 0)
    assert PARTIAL_EPOCH not in finished.progress  # the finished epoch's history entry replaces it
    assert len(timed_cer(finished.progress)[0]) == 2
    assert len(finished.progress["history"]["loss"]) == 2
    assert int(finished.optimizer.iterations.numpy()) == 2 * batches_per_epoch(
        select_utterances(read_manifest(corpus["train"]), TINY), 4)


class Clock:
    """A wall clock the test moves by hand, in minutes."""

    def __init__(self):
        self.minutes = 0.0

    def __call__(self) -> float:
        return 60 * self.minutes


def epochs_under_budget(minutes: list[float], planned_epochs: int, cosine_floor: float | None,
                        progress: dict) -> None:
    """Half a minute of start-up, then epochs (the first may be the rest of one) taking `minutes`
    each, of a fit under a 59-minute budget."""
    clock = Clock()
    new_cosine = cosine_floor is not None and progress["epoch"] == progress["step"] == 0  # as fit decides
    config = TINY.replace(lr_schedule="cosine", lr_floor=cosine_floor or 0.0, warmup_steps=0)
    planned_rate = rate_after(config, 10, planned_epochs) if new_cosine else None
    budget = WallClockBudget(59, planned_epochs, planned_rate, clock=clock)
    model = type("Model", (), {"progress": dict(progress), "stop_training": False})()
    budget.set_model(model)
    clock.minutes = 0.5
    for epoch, length in enumerate(minutes, start=progress["epoch"]):
        budget.on_epoch_begin(epoch)
        clock.minutes += length
        budget.on_train_batch_end(0)
        budget.on_epoch_end(epoch)
        model.progress = {"epoch": epoch + 1, "step": 0}
    assert not model.stop_training


def test_max_minutes_says_after_the_second_epoch_where_the_budget_ends_and_what_e_fits(capsys):
    # The small recipe of docs/benchmarks.md on the slower machine; the first epoch also traces and fills the cache.
    epochs_under_budget([6.3, 5.9], 20, 0.02, {"epoch": 0, "step": 0})
    out = capsys.readouterr().out.strip()
    assert out.startswith("--max-minutes 59: an epoch takes about 5.9 minutes here, so the budget ends near "
                          "epoch 9 of the 20 planned")  # 12.7 minutes gone, 46.3 left: 7 more epochs
    # 0.02 + 0.98 * (1 + cos(pi * 9 / 20)) / 2 = 0.587
    assert "will be at about 59 % of its peak there, not at its floor (2 %)" in out
    assert out.endswith("on this machine, a new run with -e 9 fits this budget") and "\n" not in out

    epochs_under_budget([2.9, 2.7, 2.7], 21, 0.02, {"epoch": 0, "step": 0})  # 21 fit: nothing to say
    epochs_under_budget([5.9], 20, 0.02, {"epoch": 0, "step": 0})  # one epoch alone: not yet
    epochs_under_budget([1.0, 5.9], 20, 0.02, {"epoch": 3, "step": 5})  # the rest of a resumed epoch counts not
    assert capsys.readouterr().out == ""
    epochs_under_budget([6.3, 5.9], 20, None, {"epoch": 0, "step": 0})  # decay per epoch: no schedule to size
    epochs_under_budget([6.3, 5.9], 20, 0.02, {"epoch": 3, "step": 0})  # a resume keeps its first fit's schedule
    per_epoch_decay, resumed = capsys.readouterr().out.strip().split("\n")
    assert per_epoch_decay.endswith("so the budget ends near epoch 9 of the 20 planned")
    assert resumed.endswith("so the budget ends near epoch 12 of the 20 planned")


def feature_batch(seed: int, poison: float | None = None) -> tf.data.Dataset:
    """One batch of two random waveforms (120 and 90 frames) with labels; `poison` replaces a sample of the second."""
    waveforms = 0.1 * np.random.default_rng(seed).normal(size=(2, 19360)).astype(np.float32)
    if poison is not None:
        waveforms[1, 1000] = poison
    inputs = {"waveforms": waveforms, "lengths": np.array([19360, 14560], np.int32),
              "augment_seed": np.zeros(2, np.int64)}
    targets = {"labels": np.array([[1, 2, 3], [4, 5, 0]], np.int32), "label_lengths": np.array([3, 2], np.int32)}
    return tf.data.Dataset.from_tensors((inputs, targets))


def model_state(model: DS2Model) -> list[np.ndarray]:
    """Every weight (BatchNorm statistics too) and every optimizer variable (Adam's slots, iterations)."""
    return [np.array(variable.numpy()) for variable in [*model.weights, *model.optimizer.variables]]


@pytest.mark.parametrize("poison", [np.nan, np.inf], ids=["nan", "inf"])
def test_a_step_with_nonfinite_gradients_changes_no_weight_slot_or_iteration(poison):
    model = compiled_tiny_model()
    model.fit(feature_batch(0), verbose=0, shuffle=False)  # a normal step first, so that Adam's slots are not zero
    before = model_state(model)
    history = model.fit(feature_batch(1, poison), verbose=0, shuffle=False).history
    assert history["nonfinite_steps"] == [1.0] and history["nonfinite_losses"] == [2.0]
    for old, new in zip(before, model_state(model), strict=True):
        np.testing.assert_array_equal(new, old)
    # What the guard undid: that step's forward pass alone puts NaN into the BatchNorm statistics...
    inputs, _ = next(iter(feature_batch(1, poison)))
    model(inputs, training=True)
    assert not all(np.isfinite(weight.numpy()).all() for weight in model.non_trainable_weights)
    # ...and a finite step does move every weight.
    model = compiled_tiny_model()
    model.fit(feature_batch(0), verbose=0, shuffle=False)
    before = model_state(model)
    assert model.fit(feature_batch(2), verbose=0, shuffle=False).history["nonfinite_steps"] == [0.0]
    assert all(not np.array_equal(old, new) for old, new in zip(before, model_state(model)))


def write_nan_copy(audio_path: str, path: Path) -> str:
    """The utterance's audio as a float WAV with one NaN sample in the middle."""
    samples = load_audio(audio_path)
    samples[len(samples) // 2] = np.nan
    soundfile.write(path, samples, TINY.sample_rate, subtype="FLOAT")
    return str(path)


def test_nan_audio_rows_leave_the_model_as_if_they_were_not_there(corpus, tmp_path):
    """Batch size 1, shortest first: each NaN row (a copy of a clean one) is its own step, mid-epoch, so
    the steps after it show that it changed no weight, moment, BatchNorm statistic or step count."""
    rows = read_manifest(corpus["train"]).nsmallest(4, "duration").reset_index(drop=True)
    poisoned = rows.iloc[[1, 2]].copy()
    poisoned["audio_path"] = [write_nan_copy(path, tmp_path / f"nan{i}.wav") for i, path in enumerate(poisoned["audio_path"])]
    manifests = {"clean": write_manifest(rows, tmp_path / "clean.csv"),
                 "poisoned": write_manifest(pd.concat([rows, poisoned], ignore_index=True), tmp_path / "poisoned.csv")}
    histories = {name: fit(FitRequest([manifest], [], epochs=1, batch_size=1, output_dir=tmp_path / name, config=TINY,
                                      save_every_steps=0, verbose=0)).progress["history"]
                 for name, manifest in manifests.items()}
    assert histories["poisoned"]["nonfinite_steps"] == [2.0] and histories["clean"]["nonfinite_steps"] == [0.0]
    assert histories["poisoned"]["loss"] == pytest.approx(histories["clean"]["loss"], rel=1e-5)
    clean, poisoned = (load_model_file(tmp_path / name) for name in manifests)
    assert int(poisoned.optimizer.iterations.numpy()) == int(clean.optimizer.iterations.numpy()) == len(rows)
    for expected, actual in zip(model_state(clean), model_state(poisoned), strict=True):
        assert np.isfinite(actual).all()
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("save_every", [1, 0], ids=["step-save", "epoch-end"])
def test_nonfinite_weights_never_overwrite_the_last_good_checkpoint(trained_model, corpus, tmp_path, save_every):
    output = tmp_path / "run"
    output.mkdir()
    for name in (MODEL_FILENAME, BEST_FILENAME):
        shutil.copy(trained_model, output / name)
    good = {path: path.read_bytes() for path in output.iterdir()}
    broken = load_model_file(trained_model)
    kernel = broken.get_layer("logits").kernel
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))  # as if a step had blown up
    save_model_file(broken, tmp_path / "broken.keras")
    result = CliRunner().invoke(main, [
        "fit", "--manifest", f"train:{corpus['train']}", "--manifest", f"val:{corpus['val']}", "-e", "3",
        "-z", str(TRAINED_BATCH_SIZE), "-s", str(output), "--model-file", str(tmp_path / "broken.keras"), "--fresh",
        "--save-every", str(save_every)])
    assert result.exit_code == 1, result.output
    where = "epoch 3, step 1" if save_every else "the end of epoch 3"
    assert result.stderr.strip() == (f"Error: training stopped at {where}: NaN or Inf in logits/kernel; "
                                     f"the last good checkpoint {output / MODEL_FILENAME} is kept")
    assert {path: path.read_bytes() for path in output.iterdir() if path.suffix == ".keras"} == good
    assert not (output / "history.json").exists()


def fit_args(corpus: dict[str, Path], output: Path, *extra: str, epochs: int = 1) -> list[str]:
    return ["fit", "--manifest", f"train:{corpus['train']}", "-e", str(epochs), "-z", "4", "-s", str(output),
            "--preset", "tiny", *extra]


def test_a_second_fit_on_a_directory_in_use_is_refused_until_the_first_is_killed(corpus, tmp_path):
    output = tmp_path / "run"
    args = fit_args(corpus, output, "--save-every", "1")
    lock = output / FIT_LOCK
    with open(tmp_path / "first.log", "w") as log:  # it stops itself after its first step, holding the lock
        first = subprocess.Popen([str(DS2), *args], stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, "DS2_FAULT": "step:1:STOP"})
    try:
        _, status = os.waitpid(first.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), (tmp_path / "first.log").read_text()[-3000:]
        assert lock.read_text().startswith(f"pid {first.pid} ")
        second = CliRunner().invoke(main, args)
    finally:
        first.kill()  # SIGKILL: nothing of ds2 runs, the kernel drops the lock
        first.wait()
    assert second.exit_code == 1
    assert second.stderr.strip() == (f"Error: {output}: in use by another ds2 fit (pid {first.pid} on host "
                                     f"{socket.gethostname()}); wait for it to finish or choose another directory")
    third = CliRunner().invoke(main, args)  # the same command takes the dead run's lock over
    assert third.exit_code == 0, third.output
    assert lock.read_text().startswith(f"pid {os.getpid()} ")
    assert load_model_file(output).progress["epoch"] == 1


def test_fit_output_that_is_a_file_or_under_one_is_one_line(tmp_path):
    (tmp_path / "file").write_text("kept")
    for output in (tmp_path / "file", tmp_path / "file" / "run"):
        result = CliRunner().invoke(main, ["fit", "--manifest", "train:unused.csv", "-e", "1", "-s", str(output)])
        assert result.exit_code == 1
        assert result.stderr.strip() == f"Error: {output}: cannot write (not a directory)"
    assert (tmp_path / "file").read_text() == "kept"


def test_tensorboard_logs_that_cannot_be_written_are_one_line(corpus, tmp_path):
    """TensorBoard writes with TensorFlow's file system, which raises OpErrors, not OSErrors."""
    output = tmp_path / "run"
    output.mkdir()
    (output / "logs").write_text("a file where the log directory goes")
    result = CliRunner().invoke(main, fit_args(corpus, output))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {output / 'logs'}: cannot write (not a directory)"


def test_fit_output_nobody_may_create_is_one_line():
    output = Path("/sys/ds2-test-output")  # sysfs refuses new entries to root too (read-only in containers)
    result = CliRunner().invoke(main, ["fit", "--manifest", "train:unused.csv", "-e", "1", "-s", str(output)])
    assert result.exit_code == 1
    assert result.stderr.strip() in {f"Error: {output}: cannot write ({cause})"
                                     for cause in ("permission denied", "read-only file system")}


def test_fit_into_a_directory_it_may_not_write_is_one_line(shared_dir):
    user = as_unprivileged(shared_dir)
    output = shared_dir / "run"
    output.mkdir(mode=0o755)
    if not user:
        output.chmod(0o555)
    result = run_ds2(["fit", "--manifest", "train:unused.csv", "-e", "1", "-s", str(output)], **user)
    assert one_line_error(result) == f"Error: {output / FIT_LOCK}: cannot write (permission denied)"
    assert list(output.iterdir()) == []


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(trained_model, corpus, tmp_path):
    output = tmp_path / "run"
    output.mkdir()
    shutil.copy(trained_model, output / MODEL_FILENAME)
    good = (output / MODEL_FILENAME).read_bytes()
    result = run_ds2(["fit", "--manifest", f"train:{corpus['train']}", "-e", "3", "-z", str(TRAINED_BATCH_SIZE),
                      "-s", str(output), "--save-every", "1"], preexec_fn=file_size_limit(len(good) // 2))
    assert one_line_error(result) == f"Error: {output / MODEL_FILENAME}: cannot write (file too large: the file size limit was reached)"
    assert (output / MODEL_FILENAME).read_bytes() == good
    assert load_model_file(output).progress == load_model_file(trained_model).progress
    assert sorted(path.name for path in output.iterdir()) == [FIT_LOCK, "config.json", "logs", MODEL_FILENAME]

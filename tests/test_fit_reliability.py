"""`ds2 fit` never loses work: kill -9, Ctrl-C and SIGTERM at named moments, and bad input found before training.

The faults are injected at named points (ds2_keras/core/faults.py: the process signals itself the
Nth time it reaches a point), so every test hits the same moment on a slow or a fast machine.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from corpus_fixtures import write_garbage
from faults import DS2, one_line_error, run_ds2
from test_training import fit_args, model_state
from ds2_keras.model.checkpoints import EPOCH_METRICS, HISTORY_FILENAME, MODEL_FILENAME, load_model_file
from ds2_keras.cli.main import main
from ds2_keras.data.manifest import read_manifest, write_manifest
from ds2_keras.core.config import preset
from ds2_keras.train.fit import FIT_LOCK, FitRequest, fit

EPOCHS = 3  # of 5 steps each (20 training utterances, -z 4)


def command(corpus: dict[str, Path], output: Path, *extra: str) -> list[str]:
    return [str(DS2), *fit_args(corpus, output, "--manifest", f"val:{corpus['val']}", *extra, epochs=EPOCHS)]


def run_with_fault(args: list[str], fault: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ, "DS2_FAULT": fault})


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory) -> Path:
    """The model file of the fit every interrupted run must end as."""
    output = tmp_path_factory.mktemp("uninterrupted")
    result = subprocess.run(command(corpus, output), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output / MODEL_FILENAME


def assert_ends_as(uninterrupted: Path, output: Path) -> None:
    """Same weights, optimizer state and per-epoch history as the uninterrupted run; no temporaries left."""
    expected, actual = load_model_file(uninterrupted), load_model_file(output)
    assert (actual.progress["epoch"], actual.progress["step"]) == (EPOCHS, 0)
    for want, got in zip(model_state(expected), model_state(actual), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for name in ("loss", "val_loss", "val_cer", "nonfinite_losses", "nonfinite_steps"):
        np.testing.assert_allclose(actual.progress["history"][name], expected.progress["history"][name],
                                   rtol=1e-5, err_msg=name)
    assert EPOCH_METRICS not in actual.progress
    assert [path.name for path in output.iterdir() if path.name.startswith(".")] == [FIT_LOCK]


@pytest.mark.faults
def test_fit_killed_at_named_moments_ends_exactly_as_an_uninterrupted_run(corpus, uninterrupted, tmp_path):
    output, rng = tmp_path / "killed", np.random.default_rng(13)
    args = command(corpus, output, "--save-every", "1")
    # 15 steps in all; these kills use at most 4 + 3 + 3 of them, so each is reached before the run ends.
    kills = [f"step:{rng.integers(1, 5)}", f"checkpoint_write:{rng.integers(2, 4)}", f"step:{rng.integers(1, 4)}",
             "validation:1"]
    for fault in kills:
        result = run_with_fault(args, fault)
        assert result.returncode == -signal.SIGKILL, f"{fault}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
        assert load_model_file(output).progress["epoch"] < EPOCHS  # whole, whenever the kill came
    resumed = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert_ends_as(uninterrupted, output)


@pytest.mark.faults
def test_ctrl_c_and_sigterm_save_stop_and_the_same_command_ends_as_an_uninterrupted_run(corpus, uninterrupted,
                                                                                        tmp_path):
    output = tmp_path / "interrupted"
    args = command(corpus, output)  # the default --save-every: no checkpoint but the ones the signals ask for
    saved = f"saved {output / MODEL_FILENAME}; run the same command to continue"
    stops = [  # (fault, exit status, the line fit ends with, (epoch, step) saved)
        ("step:2:INT", 130, f"interrupted (SIGINT) at epoch 1 step 2: {saved}", (0, 2)),
        ("validation:1:TERM", 143, f"interrupted (SIGTERM) at the end of epoch 1: {saved}", (1, 0)),
        ("checkpoint_write:1:INT", 130, f"interrupted (SIGINT) at the end of epoch 2: {saved}", (2, 0)),
    ]
    for fault, status, line, progress in stops:
        result = run_with_fault(args, fault)
        assert result.returncode == status, f"{fault}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
        assert result.stderr.strip().splitlines()[-1] == line
        assert "Traceback" not in result.stderr
        model = load_model_file(output)
        assert (model.progress["epoch"], model.progress["step"]) == progress
        assert json.loads((output / HISTORY_FILENAME).read_text()) == model.progress
    resumed = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert_ends_as(uninterrupted, output)  # epoch 1's loss too, though it was trained in two runs


@pytest.mark.faults
def test_a_second_ctrl_c_aborts_at_once_and_leaves_the_last_checkpoint_whole(corpus, tmp_path):
    output = tmp_path / "run"
    args = command(corpus, output, "--save-every", "2")
    first = run_with_fault(args, "step:3:INT")  # saves step 3, then stops
    assert first.returncode == 130, first.stdout[-3000:] + first.stderr[-3000:]
    kept = (output / MODEL_FILENAME).read_bytes()
    # The first Ctrl-C asks for a save at step 4 (epoch 1); the second comes while it is written.
    second = run_with_fault(args, "step:1:INT,checkpoint_write:1:INT")
    assert second.returncode == -signal.SIGINT, second.stdout[-3000:] + second.stderr[-3000:]
    assert (output / MODEL_FILENAME).read_bytes() == kept
    resumed = run_ds2(args[1:])
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resuming from {output / MODEL_FILENAME}: epoch 0, step 3" in resumed.stdout
    assert [path.name for path in output.iterdir() if path.name.startswith(".")] == [FIT_LOCK]


def test_an_epoch_stopped_and_resumed_logs_the_mean_loss_of_an_uninterrupted_one(corpus, tmp_path):
    request = FitRequest([corpus["train"]], [], 1, 4, tmp_path / "stopped", preset("tiny"), save_every_steps=0,
                         verbose=0, max_minutes=1e-6)  # stops after the first of 5 steps
    fit(request)
    carried = load_model_file(tmp_path / "stopped").progress[EPOCH_METRICS]
    assert carried["loss"][1] == 4  # Keras' mean: a total over the 4 utterances of the one step, and their count
    resumed = fit(FitRequest(**{**request.__dict__, "max_minutes": None}))
    whole = fit(FitRequest(**{**request.__dict__, "max_minutes": None, "output_dir": tmp_path / "whole"}))
    np.testing.assert_allclose(resumed.progress["history"]["loss"], whole.progress["history"]["loss"], rtol=1e-5)
    assert EPOCH_METRICS not in resumed.progress


# Validate before the long part: every case fails in seconds, before a step, as one line.

def bad_copy(manifest: Path, path: Path, texts: dict[int, str] = {}, garbage: tuple[int, ...] = (),
             rows: slice = slice(None)) -> Path:
    """A copy of `manifest` (its `rows`) with some texts replaced and some rows' audio made unreadable."""
    table = read_manifest(manifest).iloc[rows].reset_index(drop=True)
    for index, text in texts.items():
        table.loc[index, "text"] = text
    for index in garbage:
        audio = path.parent / f"garbage{index}.wav"
        write_garbage(audio)
        table.loc[index, "audio_path"] = str(audio)
    return write_manifest(table, path)


def invoke_fit(corpus: dict[str, Path], output: Path, *extra: str):
    return CliRunner().invoke(main, fit_args(corpus, output, *extra))


def test_unscorable_val_rows_are_skipped_and_counted_and_training_goes_on(corpus, tmp_path):
    table, garbage = read_manifest(corpus["val"]), tmp_path / "garbage.wav"
    write_garbage(garbage)
    val = write_manifest(pd.concat([table, table.iloc[[0]].assign(text=""),
                                    table.iloc[[1]].assign(audio_path=str(garbage))], ignore_index=True),
                         tmp_path / "val.csv")
    result = invoke_fit(corpus, tmp_path / "run", "--manifest", f"val:{val}")
    assert result.exit_code == 0, result.output
    report = next(line for line in result.output.splitlines() if line.startswith("val: "))
    assert report.startswith(f"val: {len(table)} utterances, ")
    assert report.endswith("; dropped 1 with no reference text to score (empty or punctuation only), 1 with unreadable audio")
    assert len(load_model_file(tmp_path / "run").progress["history"]["val_cer"]) == 1


@pytest.mark.parametrize("case", ["empty text", "punctuation only", "unreadable audio", "header only"])
def test_a_val_manifest_with_nothing_to_score_fails_before_training_and_a_fixed_one_resumes(corpus, tmp_path, case):
    bad = tmp_path / "val.csv"
    if case == "header only":
        bad_copy(corpus["val"], bad, rows=slice(0, 0))
    else:
        count = len(read_manifest(corpus["val"]))
        texts = {index: {"empty text": "", "punctuation only": "?!"}.get(case) for index in range(count)}
        bad_copy(corpus["val"], bad, texts={} if case == "unreadable audio" else texts,
                 garbage=tuple(range(count)) if case == "unreadable audio" else ())
    output = tmp_path / "run"
    result = run_ds2(fit_args(corpus, output, "--manifest", f"val:{bad}"))
    assert one_line_error(result) == f"Error: no usable utterances in val manifests {[str(bad)]}"
    assert "Epoch 1" not in result.stdout and not (output / MODEL_FILENAME).exists()
    fixed = invoke_fit(corpus, output, "--manifest", f"val:{corpus['val']}")
    assert fixed.exit_code == 0, fixed.output
    assert load_model_file(output).progress["epoch"] == 1


def test_a_header_only_training_manifest_is_one_line(corpus, tmp_path):
    empty = bad_copy(corpus["train"], tmp_path / "train.csv", rows=slice(0, 0))
    result = run_ds2(["fit", "--manifest", f"train:{empty}", "-e", "1", "-s", str(tmp_path / "run")])
    assert one_line_error(result) == f"Error: no usable utterances in train manifests {[str(empty)]}"


def test_a_batch_larger_than_the_corpus_is_one_line(corpus, tmp_path):
    result = run_ds2([*fit_args(corpus, tmp_path / "run")[:-2], "-z", "100000", "--preset", "tiny"])
    assert one_line_error(result) == ("Error: -z 100000 is larger than the 20 usable training utterances; "
                                      "give -z 20 or less")


@pytest.mark.parametrize("setting, message", [
    ("dropout=1.5", "dropout must be in [0, 1), not 1.5"),
    ("mel_bins=100000", "mel_bins must be in [1, 1024], not 100000"),
    ("mel_bins=500", "mel_bins must be at most the 161 frequency bins of a 20 ms window, not 500"),
    ("learning_rate=-1", "learning_rate must be in (0, 100], not -1.0"),
])
def test_config_values_out_of_range_are_one_line_naming_the_field_and_range(corpus, tmp_path, setting, message):
    """A usage error, as every bad option is: exit status 2, the usage hint, then one `Error:` line."""
    result = run_ds2([*fit_args(corpus, tmp_path / "run"), "--set", setting])
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == f"Error: Invalid value: {message}"
    assert not (tmp_path / "run").exists()


def test_a_model_path_that_is_a_directory_is_one_line_before_training(corpus, tmp_path):
    output = tmp_path / "run"
    (output / MODEL_FILENAME).mkdir(parents=True)
    result = invoke_fit(corpus, output)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {output / MODEL_FILENAME}: cannot write (is a directory)"

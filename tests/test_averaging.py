"""Checkpoint averaging: fit keeps the last N epochs' weights, and averaged.keras holds their mean."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from ds2_keras.train.averaging import AVERAGED_FILENAME, kept_epochs, remove_stale_epoch_temporaries, snapshot_path
from ds2_keras.model.checkpoints import MODEL_FILENAME, load_model_file
from ds2_keras.cli.main import main
from ds2_keras.core.fileio import atomic_path


def fit_tiny(corpus: dict[str, Path], output: Path, epochs: int, *extra: str) -> str:
    args = ["fit", "--manifest", f"train:{corpus['train']}", "--manifest", f"val:{corpus['val']}", "-e", str(epochs),
            "-z", "4", "-s", str(output), "--preset", "tiny", "--save-every", "0", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


def epoch_weights(output: Path, epoch: int) -> list[np.ndarray]:
    model = load_model_file(output / MODEL_FILENAME, compile=False)
    model.load_weights(snapshot_path(output, epoch))
    return model.get_weights()


def test_fit_keeps_the_last_epochs_and_writes_and_scores_their_mean(corpus, tmp_path):
    output = tmp_path / "run"
    fit_tiny(corpus, output, 2, "--average", "2")
    out = fit_tiny(corpus, output, 3, "--average", "2")  # resumed: the kept epochs carry over
    assert kept_epochs(output) == [2, 3]
    assert f"weights of epochs 2-3 averaged into {output / AVERAGED_FILENAME}" in out
    assert "averaged epochs 2-3: val_loss" in out and "val CER" in out

    second, third = epoch_weights(output, 2), epoch_weights(output, 3)
    assert any(not np.allclose(a, b) for a, b in zip(second, third))  # the epochs differ, so the mean is a test
    np.testing.assert_allclose(third[0], load_model_file(output / MODEL_FILENAME).get_weights()[0])
    averaged = load_model_file(output / AVERAGED_FILENAME, compile=False)
    assert averaged.progress["averaged_epochs"] == [2, 3]
    for mean, a, b in zip(averaged.get_weights(), second, third):
        np.testing.assert_allclose(mean, (a.astype(np.float64) + b) / 2, rtol=1e-6, atol=1e-7)


def test_average_command_uses_the_kept_epochs_and_a_fresh_run_forgets_them(corpus, tmp_path):
    output = tmp_path / "run"
    fit_tiny(corpus, output, 2, "--average", "3")
    result = CliRunner().invoke(main, ["average", str(output), "--last", "5", "-o", str(tmp_path / "mean.keras")])
    assert result.exit_code == 0, result.output
    assert f"weights of epochs 1-2 of {output} averaged into {tmp_path / 'mean.keras'}" in result.output
    assert load_model_file(tmp_path / "mean.keras", compile=False).progress["averaged_epochs"] == [1, 2]

    fit_tiny(corpus, output, 1, "--fresh")  # a new run without --average keeps nothing of the old one's
    assert kept_epochs(output) == []
    result = CliRunner().invoke(main, ["average", str(output), "--last", "2"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == (f"Error: {output / 'epochs'}: no epoch weights kept "
                                     "(ds2 fit --average N keeps those of the last N epochs)")


def test_a_damaged_epoch_file_is_a_one_line_error_naming_it(corpus, tmp_path):
    output = tmp_path / "run"
    fit_tiny(corpus, output, 1, "--average", "1")
    damaged = snapshot_path(output, 1)
    damaged.write_bytes(damaged.read_bytes()[:200])
    result = CliRunner().invoke(main, ["average", str(output), "--last", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(f"Error: {damaged}: cannot be loaded into {output / MODEL_FILENAME}")


class Killed(Exception):
    pass


def test_the_next_fit_removes_what_a_killed_epoch_write_left_and_nothing_else(tmp_path):
    kept = snapshot_path(tmp_path, 3)
    kept.parent.mkdir()
    kept.write_bytes(b"weights")
    try:
        with atomic_path(snapshot_path(tmp_path, 4)) as temporary:
            raise Killed
    except Killed:
        temporary.write_bytes(b"half")  # what kill -9 mid-write leaves: atomic_path's clean-up never ran
    stray = kept.parent / ".epoch-004.weights.h5.notes"  # not a name atomic_path makes
    stray.write_text("mine")
    remove_stale_epoch_temporaries(tmp_path)
    assert sorted(path.name for path in kept.parent.iterdir()) == sorted([kept.name, stray.name])
    assert not temporary.exists()

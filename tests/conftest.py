"""Session-wide fixtures: one small espeak-ng corpus and one briefly trained tiny model.

Both are made once per test session and shared, because synthesizing speech and training
(even a tiny model for two epochs) are the slow parts of the suite. Tests must treat them as
read-only: write anything they produce under their own tmp_path.
"""
from __future__ import annotations

from pathlib import Path

import pytest

CORPUS_UTTERANCES = 24  # 20 train, 2 val, 2 test: enough for batches of 2 over 10 steps per epoch
TRAINED_EPOCHS = 2
TRAINED_BATCH_SIZE = 4


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Split name ("train", "val", "test") -> manifest of a seeded espeak-ng corpus (~3 s utterances)."""
    from ds2_keras.ingest.synth import synthesize_corpus

    return synthesize_corpus(tmp_path_factory.mktemp("corpus"), CORPUS_UTTERANCES, seed=0).manifests


@pytest.fixture(scope="session")
def trained_model(corpus, tmp_path_factory) -> Path:
    """A tiny model file fitted for TRAINED_EPOCHS epochs on the train split, with its optimizer state.

    The learning rate decays per epoch (lr_decay 0.5) so that a resumed fit can show the
    schedule continuing. Seeded, so every session trains the same model.
    """
    import keras

    from ds2_keras.model.checkpoints import MODEL_FILENAME
    from ds2_keras.core.config import preset
    from ds2_keras.train.fit import FitRequest, fit

    keras.utils.set_random_seed(0)
    output_dir = tmp_path_factory.mktemp("trained")
    fit(FitRequest(
        train_manifests=[corpus["train"]], val_manifests=[], epochs=TRAINED_EPOCHS, batch_size=TRAINED_BATCH_SIZE,
        output_dir=output_dir, config=preset("tiny").replace(lr_decay=0.5), save_every_steps=0, verbose=0,
    ))
    return output_dir / MODEL_FILENAME

"""Every utterance's prediction beside its reference, saved for later inspection.

The default is the neon seed's pickle, `(list(zip(predictions, references)), error_rate)`, so
its analysis scripts keep working. A name ending in .json or .csv gives a table instead, with
columns audio_path, duration, reference, prediction, cer, wer (per-utterance rates); the JSON
also keeps the error rate and each prediction's decoder score and timed words (the `ds2
transcribe --format json` word objects). Only read pickles you wrote: unpickling runs code.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ds2_keras.core.errors import DS2Error
from ds2_keras.core.fileio import atomic_path
from ds2_keras.core.metrics import cer, wer
from ds2_keras.decode.words import Hypothesis

COLUMNS = ["audio_path", "duration", "reference", "prediction", "cer", "wer"]
TIMING_COLUMNS = ["score", "words"]  # JSON only: the decoder's score and the words' text, times, confidence


class InferenceFileError(DS2Error):
    """An inference file could not be read; the message names the file and the cause."""


def inference_table(references: Sequence[str], predictions: Sequence[str],
                    audio_paths: Sequence[str] | None = None,
                    durations: Sequence[float] | None = None,
                    hypotheses: Sequence[Hypothesis] | None = None) -> pd.DataFrame:
    """One row per utterance with its per-utterance CER and WER; unknown paths or durations stay empty.

    With the predictions' hypotheses, TIMING_COLUMNS follow: score, and words as a list of
    {text, start, end, confidence} per utterance.
    """
    count = len(references)
    timings = {} if hypotheses is None else {
        "score": [h.score for h in hypotheses],
        "words": [h.as_dict()["words"] for h in hypotheses],
    }
    return pd.DataFrame({
        "audio_path": list(audio_paths) if audio_paths is not None else [None] * count,
        "duration": list(durations) if durations is not None else [np.nan] * count,
        "reference": list(references),
        "prediction": list(predictions),
        "cer": cer(references, predictions).utterance_rates,
        "wer": wer(references, predictions).utterance_rates,
        **timings,
    }, columns=COLUMNS + list(timings))


def write_inference(path: str | Path, table: pd.DataFrame, error_rate: float) -> Path:
    """Write `table` (see inference_table) atomically, in the format the file name asks for."""
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as temporary:
        if suffix == ".csv":
            table[COLUMNS].to_csv(temporary, index=False)
        elif suffix == ".json":
            records = json.loads(table[_present(table)].to_json(orient="records", double_precision=15))
            temporary.write_text(json.dumps({"error_rate": error_rate, "utterances": records}, indent=1, ensure_ascii=False),
                                 encoding="utf-8")
        else:
            pairs = list(zip(table["prediction"].tolist(), table["reference"].tolist()))
            with open(temporary, "wb") as handle:
                pickle.dump((pairs, error_rate), handle)
    return path


def read_inference(path: str | Path) -> tuple[pd.DataFrame, float | None]:
    """The table and error rate of any of the three formats (a CSV carries no error rate).

    A seed pickle holds only the text pairs: its table has the per-utterance rates recomputed
    and no audio paths or durations. A JSON written with hypotheses keeps TIMING_COLUMNS too.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            table = pd.read_csv(path, dtype={"audio_path": object, "reference": str, "prediction": str},
                                keep_default_na=False, na_values={"duration": [""], "audio_path": [""]})
            error_rate = None
        elif suffix == ".json":
            content = json.loads(path.read_text(encoding="utf-8"))
            table = pd.DataFrame(content["utterances"])
            error_rate = content["error_rate"]
        else:
            with open(path, "rb") as handle:
                pairs, error_rate = pickle.load(handle)
            table = inference_table([r for _, r in pairs], [p for p, _ in pairs])
    except (OSError, ValueError, KeyError, TypeError, pickle.UnpicklingError, EOFError) as error:
        raise InferenceFileError(f"{path}: not a readable inference file ({error})") from None
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise InferenceFileError(f"{path}: missing columns {sorted(missing)}")
    return table[_present(table)], error_rate


def _present(table: pd.DataFrame) -> list[str]:
    """COLUMNS, then those TIMING_COLUMNS the table has."""
    return COLUMNS + [column for column in TIMING_COLUMNS if column in table.columns]

"""`ds2 evaluate`: decode a manifest with a trained model and measure CER/WER honestly.

Rates are pooled over the corpus (total edits / total reference length) unless the neon
seed's per-utterance mean is asked for; unreadable audio is skipped, counted and named.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from ds2_keras.model.checkpoints import load_model_file
from ds2_keras.data.dataset import Utterances, evaluation_utterances
from ds2_keras.core.alphabet import Alphabet
from ds2_keras.decode.settings import DecoderSettings
from ds2_keras.decode.decoders import Decoder, Hypothesis
from ds2_keras.core.errors import DS2Error
from ds2_keras.core.frames import output_frame_seconds
from ds2_keras.model.batch_inference import Inference, run_inference
from ds2_keras.model.network import DS2Model
from ds2_keras.evaluate.inference_file import inference_table, write_inference
from ds2_keras.data.manifest import read_manifests
from ds2_keras.core.metrics import ErrorRate, cer, wer
from ds2_keras.evaluate.report import format_report


def decode_all(inference: Inference, decoder: Decoder, frame_seconds: float) -> list[Hypothesis]:
    """Every utterance's hypothesis, with a Keras progress bar as inference's (beam search takes minutes)."""
    bar = keras.utils.Progbar(len(inference.logits), unit_name="utterance")
    hypotheses = []
    for done, log_probs in enumerate(inference.logits, start=1):
        hypotheses.append(decoder.decode_utterance(log_probs, frame_seconds=frame_seconds))
        bar.update(done)
    return hypotheses


@dataclass
class Evaluation:
    references: list[str]
    hypotheses: list[Hypothesis]
    audio_paths: list[str]
    durations: np.ndarray
    character_errors: ErrorRate
    word_errors: ErrorRate
    decoder: str
    alphabet: Alphabet
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def predictions(self) -> list[str]:
        return [hypothesis.text for hypothesis in self.hypotheses]

    @property
    def hours(self) -> float:
        return float(self.durations.sum()) / 3600

    def report(self, worst: int = 5) -> str:
        text = format_report(self.character_errors, self.word_errors, self.references, self.predictions,
                             decoder=self.decoder, hours=self.hours, worst=worst)
        if self.failures:
            text += f"\nskipped {len(self.failures)} utterances:" + "".join(
                f"\n  {path}: {cause}" for path, cause in self.failures.items())
        return text


@dataclass
class ManifestInference:
    """A model's scores over manifests: the utterances, their inference, and how to read it."""

    utterances: Utterances
    inference: Inference
    frame_seconds: float  # per logit frame
    alphabet: Alphabet  # of the model: what each score means


def infer_manifests(model: DS2Model, manifests: list[Path], batch_size: int) -> ManifestInference:
    """Run the model over the manifests (every row with a reference; references it cannot spell
    and rows with none are counted). DS2Error before any inference if no row can be scored."""
    utterances = evaluation_utterances(read_manifests(manifests), model.alphabet)
    if not len(utterances):
        causes = ", ".join(f"{count} {cause}" for cause, count in utterances.dropped.items()) or "no rows"
        raise DS2Error(f"{', '.join(map(str, manifests))}: no row has a reference text to score ({causes})")
    if utterances.notes or utterances.dropped:
        print(utterances.report("evaluated"))
    return ManifestInference(utterances, run_inference(model, utterances, batch_size),
                             output_frame_seconds(model.ds2_config), model.alphabet)


def evaluate(model_file: Path, manifests: list[Path], batch_size: int, decoder: DecoderSettings,
             pooling: str = "pooled") -> Evaluation:
    model = load_model_file(model_file, compile=False)
    chosen = decoder.build(model.alphabet)  # fail on a bad LM before the slow part
    result = infer_manifests(model, manifests, batch_size)
    utterances, inference, frame_seconds = result.utterances, result.inference, result.frame_seconds
    if not len(inference.indices):
        raise DS2Error(f"no utterance of {[str(m) for m in manifests]} could be decoded")
    rows = utterances.rows.iloc[inference.indices]
    references = rows["text"].tolist()
    hypotheses = decode_all(inference, chosen, frame_seconds)
    predictions = [hypothesis.text for hypothesis in hypotheses]
    return Evaluation(
        references=references, hypotheses=hypotheses, audio_paths=rows["audio_path"].tolist(),
        durations=rows["duration"].to_numpy(dtype=np.float64),
        character_errors=cer(references, predictions, pooling), word_errors=wer(references, predictions, pooling),
        decoder=chosen.description,
        alphabet=model.alphabet,
        failures=inference.failures,
    )


def save_inference_file(evaluation: Evaluation, path: Path, use_wer: bool) -> Path:
    table = inference_table(evaluation.references, evaluation.predictions, evaluation.audio_paths,
                            evaluation.durations, evaluation.hypotheses)
    headline = evaluation.word_errors if use_wer else evaluation.character_errors
    return write_inference(path, table, headline.rate)

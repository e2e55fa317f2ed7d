"""How well `ds2 transcribe` times words, and how well its word confidences flag errors.

The reference must be trustworthy, so utterances are built word by word: each word of a test
sentence is synthesized alone by espeak-ng (ds2_keras.ingest.synth.speak), its leading and trailing
silence trimmed by energy, and the words are joined with silences of known, random length,
then levelled and noised as `ds2 ingest synth` does. Every word's true start and end is thus
known to a sample. Sentences and voices are those of the test split `ds2 ingest synth -n
CORPUS_SIZE --seed SEED` makes (voices never heard in training).

The model transcribes them exactly as `ds2 transcribe` does (greedy, the SavedModel's graph),
or, with --lm, by beam search with that word LM over the same network outputs.
Hypothesis words are aligned to reference words by word-level edit distance; over correctly
recognized words it reports the median absolute error of starts and ends (and the median
signed error: positive = late), and over all hypothesis words how well the confidence
separates correct from incorrect ones (ROC AUC: the chance that a random correct word has a
higher confidence than a random incorrect one). It prints figures and asserts nothing.

    .venv/bin/python scripts/bench_word_timings.py --model-file runs/synth/best.keras
    .venv/bin/python scripts/bench_word_timings.py --model-file runs/synth/best.keras --lm lm.arpa
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

from ds2_keras.core.alphabet import normalize_text
from ds2_keras.data.audio import SAMPLE_RATE
from ds2_keras.model.checkpoints import load_model_file
from ds2_keras.decode.decoders import BeamSearchDecoder, Hypothesis
from ds2_keras.core.frames import output_frame_seconds
from ds2_keras.core.metrics import wer
from ds2_keras.deploy.recognizer import recognizer
from ds2_keras.deploy.transcribe import transcribe
from ds2_keras.ingest.synth import Recording, available_speakers, pink_noise, plan_corpus, speak, speech_rms

TRIM_DB = 40.0  # a word's audio starts and ends where its 5 ms frames come within this of its loudest
_TRIM_FRAME = SAMPLE_RATE // 200


@dataclass(frozen=True)
class ReferenceWord:
    text: str
    start: float
    end: float


def trim_silence(samples: np.ndarray) -> np.ndarray:
    """The samples from the first to the last 5 ms frame within TRIM_DB of the loudest frame."""
    usable = len(samples) // _TRIM_FRAME * _TRIM_FRAME
    energy = np.square(samples[:usable]).reshape(-1, _TRIM_FRAME).sum(axis=1)
    loud = np.flatnonzero(energy >= energy.max() * 10 ** (-TRIM_DB / 10))
    return samples[loud[0] * _TRIM_FRAME: (loud[-1] + 1) * _TRIM_FRAME]


def build_utterance(recording: Recording, seed: int,
                    gaps: tuple[float, float]) -> tuple[np.ndarray, list[ReferenceWord]]:
    """The recording's sentence spoken word by word with known silences: (samples, reference words)."""
    rng = np.random.default_rng([seed, recording.number, 0x3D])
    words_per_minute, pitch = int(rng.integers(130, 211)), int(rng.integers(25, 76))
    lead = np.zeros(int(rng.uniform(0.05, 0.3) * SAMPLE_RATE))
    parts, spoken, words = [lead], [], []
    for index, text in enumerate(normalize_text(recording.text).split()):
        if index:
            parts.append(np.zeros(int(rng.uniform(*gaps) * SAMPLE_RATE)))
        start = sum(len(part) for part in parts) / SAMPLE_RATE
        spoken.append(trim_silence(speak(text, recording.speaker.voice, words_per_minute, pitch)))
        parts.append(spoken[-1])
        words.append(ReferenceWord(text, start, start + len(spoken[-1]) / SAMPLE_RATE))
    parts.append(np.zeros(int(rng.uniform(0.1, 0.3) * SAMPLE_RATE)))
    audio = np.concatenate(parts)
    gain = 10 ** (rng.uniform(-12.0, -3.0) / 20) / np.abs(audio).max()  # peak level in dBFS, as ds2 ingest synth
    audio *= gain
    noise = pink_noise(rng, len(audio)) if rng.random() < 0.5 else rng.standard_normal(len(audio))
    snr_db = rng.uniform(25.0, 35.0)
    audio += noise * (speech_rms(np.concatenate(spoken) * gain) / np.sqrt(np.mean(noise ** 2)) / 10 ** (snr_db / 20))
    return audio.astype(np.float32), words


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties counted half."""
    values, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2)[inverse]  # average 1-based rank of each value's ties
    positives, negatives = int(positive.sum()), int((~positive).sum())
    if not positives or not negatives:
        return float("nan")
    return float((ranks[positive].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def matched_words(reference: list[str], hypothesis: list[str]) -> list[tuple[int, int]]:
    """(reference index, hypothesis index) of the words an edit-distance alignment keeps unchanged."""
    return [(i, j) for tag, i1, i2, j1, j2 in Levenshtein.opcodes(reference, hypothesis) if tag == "equal"
            for i, j in zip(range(i1, i2), range(j1, j2))]


def recognize(model_file: Path, waveforms: list[np.ndarray], lm: Path | None, alpha: float,
              beta: float) -> list[Hypothesis]:
    """`ds2 transcribe`'s hypotheses, or beam search with `lm` over the same network outputs."""
    module = recognizer(load_model_file(model_file, compile=False))
    if lm is None:
        return transcribe(module, waveforms)
    decoder = BeamSearchDecoder(lm, alpha, beta)
    frame_seconds = output_frame_seconds(module.model.ds2_config)
    found = []
    for waveform in waveforms:  # each shorter than transcribe.MAX_SECONDS: no cutting needed
        outputs = module.recognize(waveform[None], np.array([len(waveform)], np.int32))
        found += decoder.decode(outputs["logits"].numpy(), outputs["logit_lengths"].numpy(),
                                frame_seconds=frame_seconds)
    return found


def summary(name: str, errors: np.ndarray) -> str:
    absolute = np.abs(errors)
    return (f"{name}: median |error| {np.median(absolute) * 1000:.0f} ms, "
            f"median signed {np.median(errors) * 1000:+.0f} ms (+ = late), 90th percentile |error| {np.percentile(absolute, 90) * 1000:.0f} ms, "
            f"within 50 ms {np.mean(absolute <= 0.05):.0%}, within 100 ms {np.mean(absolute <= 0.1):.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-file", type=Path, required=True)
    parser.add_argument("--corpus-size", type=int, default=800,
                        help="the -n of the synth corpus whose test split to use")
    parser.add_argument("--seed", type=int, default=0, help="the --seed of that corpus")
    parser.add_argument("--utterances", type=int, default=80, help="at most this many test sentences")
    parser.add_argument("--gaps", type=float, nargs=2, default=(0.1, 0.5), metavar=("MIN", "MAX"),
                        help="seconds of silence between words, drawn uniformly")
    parser.add_argument("--workers", type=int, default=2, help="espeak-ng threads")
    parser.add_argument("--lm", type=Path, help="decode with beam search (width 64) and this word LM instead of greedy")
    parser.add_argument("--alpha", type=float, default=0.5, help="LM weight (with --lm)")
    parser.add_argument("--beta", type=float, default=1.0, help="word bonus (with --lm)")
    args = parser.parse_args()

    tests = [r for r in plan_corpus(args.corpus_size, args.seed, available_speakers()) if r.split == "test"]
    tests = tests[: args.utterances]
    started = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        built = list(pool.map(lambda r: build_utterance(r, args.seed, tuple(args.gaps)), tests))
    seconds = sum(len(audio) for audio, _ in built) / SAMPLE_RATE
    print(f"built {len(built)} utterances ({seconds / 60:.1f} min, {sum(len(w) for _, w in built)} words, "
          f"{len({r.speaker for r in tests})} unseen voices) in {time.perf_counter() - started:.0f} s")

    started = time.perf_counter()
    found = recognize(args.model_file, [audio for audio, _ in built], args.lm, args.alpha, args.beta)
    decoder = "greedy" if args.lm is None else f"beam 64, LM {args.lm.name}, alpha {args.alpha:g}, beta {args.beta:g}"
    print(f"transcribed in {time.perf_counter() - started:.0f} s with {args.model_file} ({decoder})")

    starts, ends, confidences, correct = [], [], [], []
    for (_, reference), hypothesis in zip(built, found):
        matches = matched_words([w.text for w in reference], [w.text for w in hypothesis.words])
        starts += [hypothesis.words[j].start - reference[i].start for i, j in matches]
        ends += [hypothesis.words[j].end - reference[i].end for i, j in matches]
        kept = {j for _, j in matches}
        confidences += [w.confidence for w in hypothesis.words]
        correct += [j in kept for j in range(len(hypothesis.words))]
    confidences, correct = np.array(confidences), np.array(correct, dtype=bool)
    references = [" ".join(w.text for w in reference) for _, reference in built]
    print(wer(references, [" ".join(w.text for w in h.words) for h in found]))
    print(f"{correct.sum()} of {len(correct)} hypothesis words correct (aligned to the same reference word)")
    if correct.any():
        print(summary("word starts", np.array(starts)))
        print(summary("word ends  ", np.array(ends)))
    if correct.any() and not correct.all():
        print(f"confidence: ROC AUC {roc_auc(confidences, correct):.3f} (correct vs incorrect words); "
              f"mean {confidences[correct].mean():.3f} correct, {confidences[~correct].mean():.3f} incorrect")


if __name__ == "__main__":
    main()

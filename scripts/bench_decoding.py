"""What the decoders give on held-out speakers: WER/CER, contextual biasing, OOV recall, confidence, speed.

The network runs once over the test manifest, as `ds2 evaluate` runs it (evaluate.infer_manifests),
and every decoder reads the same logits through DecoderSettings, as `ds2 evaluate` and `ds2
transcribe --decoder ...` build theirs (tests/test_evaluate.py checks that transcribe and evaluate
give the same hypotheses). The LM is built from the training manifest's text only.

- WER/CER: greedy, beam without LM, beam + LM.
- Contextual biasing as Le et al. 2021 measure it: each utterance gets a biasing list of its rare
  words (words not among the LM text's --common most frequent) plus --distractors rare words of
  other utterances; beam + LM is run with and without that list as hotwords. Errors are split by
  the word-level alignment: on biased words (substitutions and deletions of listed reference
  words, insertions of listed words) and on the others, each over its reference word count.
- OOV recall: the share of reference words missing from the LM's vocabulary that are recognized
  (kept by the alignment), per decoder.
- Confidence: ROC AUC of word confidences for correct vs incorrect hypothesis words, and a
  reliability diagram (PNG).
- Speed: real-time factor of beam + LM + hotwords (decoding time / audio time), in this process;
  run it under `taskset -c 1` for one core.

    taskset -c 1 .venv/bin/python scripts/bench_decoding.py --model-file /work/models/bi/best.keras \\
        --train /work/models/data/train.csv --test /work/models/data/test.csv --out bench-decoding
"""
from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

from bench_word_timings import matched_words, roc_auc
from ds2_keras.model.checkpoints import load_model_file
from ds2_keras.decode.settings import DecoderSettings
from ds2_keras.decode.decoders import BeamSearchDecoder, Hotword
from ds2_keras.evaluate.evaluation import infer_manifests
from ds2_keras.decode.lm import build_arpa, manifest_corpus
from ds2_keras.core.metrics import cer, wer
from ds2_keras.decode.words import Hypothesis


def biasing_lists(references: list[str], common: set[str], distractors: int, seed: int) -> list[set[str]]:
    """Each utterance's rare words plus `distractors` rare words drawn from the other utterances."""
    rare = [{w for w in text.split() if w not in common} for text in references]
    pool = sorted(set().union(*rare))
    rng = np.random.default_rng(seed)
    lists = []
    for own in rare:
        others = [w for w in pool if w not in own]
        drawn = rng.choice(others, size=min(distractors, len(others)), replace=False) if others else []
        lists.append(own | set(drawn))
    return lists


def attributed_errors(reference: list[str], hypothesis: list[str], biased: set[str]) -> tuple[int, int]:
    """(errors on biased words, errors on the others) of one utterance's word alignment."""
    counts = [0, 0]
    for tag, i1, i2, j1, j2 in Levenshtein.opcodes(reference, hypothesis):
        if tag == "equal":
            continue
        pairs = list(zip(range(i1, i2), range(j1, j2)))
        for i, _ in pairs:  # substitutions count for the reference word
            counts[reference[i] not in biased] += 1
        for i in range(i1 + len(pairs), i2):  # deletions
            counts[reference[i] not in biased] += 1
        for j in range(j1 + len(pairs), j2):  # insertions count for the inserted word
            counts[hypothesis[j] not in biased] += 1
    return counts[0], counts[1]


def biasing_wer(references: list[str], texts: list[str], lists: list[set[str]]) -> tuple[float, float]:
    """(WER on biased words, WER on the other words), pooled."""
    errors, words = np.zeros(2), np.zeros(2)
    for reference, text, biased in zip(references, texts, lists):
        ref = reference.split()
        errors += attributed_errors(ref, text.split(), biased)
        words += (sum(w in biased for w in ref), sum(w not in biased for w in ref))
    return float(errors[0] / max(words[0], 1)), float(errors[1] / max(words[1], 1))


def oov_recall(references: list[str], texts: list[str], vocabulary: set[str]) -> tuple[float, int]:
    """Share of reference words outside the LM vocabulary that the alignment keeps, and their count."""
    found = total = 0
    for reference, text in zip(references, texts):
        ref = reference.split()
        kept = {i for i, _ in matched_words(ref, text.split())}
        oov = [i for i, w in enumerate(ref) if w not in vocabulary]
        total += len(oov)
        found += sum(i in kept for i in oov)
    return found / max(total, 1), total


def confidence_labels(references: list[str], found: list[Hypothesis]) -> tuple[np.ndarray, np.ndarray]:
    """Every hypothesis word's confidence and whether the alignment kept it (correct)."""
    scores, correct = [], []
    for reference, hypothesis in zip(references, found):
        words = [w.text for w in hypothesis.words]
        kept = {j for _, j in matched_words(reference.split(), words)}
        scores += [w.confidence for w in hypothesis.words]
        correct += [j in kept for j in range(len(words))]
    return np.array(scores), np.array(correct, dtype=bool)


def reliability_diagram(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, bins: int = 10) -> Path:
    """Fraction of correct words per confidence bin, against the bin's mean confidence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    edges = np.linspace(0, 1, bins + 1)
    for name, (scores, correct) in curves.items():
        which = np.clip(np.digitize(scores, edges) - 1, 0, bins - 1)
        used = [b for b in range(bins) if (which == b).any()]
        axes.plot([scores[which == b].mean() for b in used], [correct[which == b].mean() for b in used], "o-",
                  label=f"{name} (AUC {roc_auc(scores, correct):.3f})")
    axes.set(xlabel="word confidence", ylabel="fraction of words correct", xlim=(0, 1), ylim=(0, 1),
             title="Reliability of word confidences (held-out speakers)")
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-file", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True, help="manifest whose text makes the LM")
    parser.add_argument("--test", type=Path, required=True, help="held-out speakers' manifest")
    parser.add_argument("--out", type=Path, required=True, help="directory for the LM, figures and results.json")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--beam-width", type=int, default=64)
    parser.add_argument("--alpha", type=float)
    parser.add_argument("--beta", type=float)
    parser.add_argument("--unk-score", type=float)
    parser.add_argument("--boost", type=float, default=2.0, help="hotword boost per letter")
    parser.add_argument("--common", type=int, default=1000, help="this many most frequent LM words are not rare")
    parser.add_argument("--distractors", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    sentences = manifest_corpus([args.train])
    lm = build_arpa(sentences, args.out / "train.arpa", args.order)
    counts = collections.Counter(w for s in sentences for w in s.split())
    vocabulary, common = set(counts), {w for w, _ in counts.most_common(args.common)}

    model = load_model_file(args.model_file, compile=False)
    inferred = infer_manifests(model, [args.test], 16)
    logits, frame_seconds = inferred.inference.logits, inferred.frame_seconds
    rows = inferred.utterances.rows.iloc[inferred.inference.indices]
    references, seconds = rows["text"].tolist(), float(rows["duration"].sum())

    def run(settings: DecoderSettings) -> tuple[list[Hypothesis], float]:
        decoder = settings.build(model.alphabet)
        started = time.process_time()
        found = [decoder.decode_utterance(scores, frame_seconds=frame_seconds) for scores in logits]
        return found, time.process_time() - started

    weights = dict(alpha=args.alpha, beta=args.beta, unk_score=args.unk_score)
    results: dict = {"utterances": len(references), "audio_seconds": seconds, "beam_width": args.beam_width}
    decoded = {
        "greedy": run(DecoderSettings("greedy")),
        "beam": run(DecoderSettings("beam", beam_width=args.beam_width)),
        "beam + LM": run(DecoderSettings("beam", lm, beam_width=args.beam_width, **weights)),
    }
    for name, (found, spent) in decoded.items():
        texts = [h.text for h in found]
        recall, oov_words = oov_recall(references, texts, vocabulary)
        results[name] = {"wer": wer(references, texts).rate, "cer": cer(references, texts).rate,
                         "oov_recall": recall, "oov_words": oov_words, "rtf": spent / seconds,
                         "confidence_auc": roc_auc(*confidence_labels(references, found))}

    lists = biasing_lists(references, common, args.distractors, args.seed)
    base = DecoderSettings("beam", lm, beam_width=args.beam_width, **weights).build(model.alphabet)
    assert isinstance(base, BeamSearchDecoder)
    started, biased = time.process_time(), []
    for scores, words in zip(logits, lists):
        decoder = base.with_hotwords([Hotword(w, args.boost) for w in sorted(words)])
        biased.append(decoder.decode_utterance(scores, frame_seconds=frame_seconds))
    spent = time.process_time() - started
    plain = [h.text for h in decoded["beam + LM"][0]]
    with_hotwords = [h.text for h in biased]
    results["biasing"] = {
        "list_words_mean": float(np.mean([len(w) for w in lists])),
        "without_hotwords": dict(zip(("biased_wer", "other_wer"), biasing_wer(references, plain, lists))),
        "with_hotwords": dict(zip(("biased_wer", "other_wer"), biasing_wer(references, with_hotwords, lists))),
        "wer_with_hotwords": wer(references, with_hotwords).rate, "rtf": spent / seconds,
        "oov_recall_with_hotwords": oov_recall(references, with_hotwords, vocabulary)[0]}
    curves = {name: confidence_labels(references, decoded[name][0]) for name in ("greedy", "beam + LM")}
    results["reliability_png"] = str(reliability_diagram(curves, args.out / "reliability.png"))
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Streaming benchmark: compute per chunk and real-time factor on one core, and emission latency.

    .venv/bin/python scripts/bench_streaming.py --model-file runs/live/model.keras --manifest test.csv

Streams each utterance of the manifest through ds2_keras.streaming.Streamer in `--chunk-ms`
chunks (160 ms by default) with TensorFlow limited to one thread, and times every `feed`.
Real-time factor = compute time / audio time. Emission latency needs word end times you can
trust: with `--word-times` (a JSON list of {"audio_path", "words": [{"word", "end"}]}, such as
scripts/bench_word_timings.py writes for utterances concatenated from separately synthesized
words), a word counts as emitted by the first partial whose words up to it equal the final
transcript's; its latency is the audio time at the end of that chunk plus that chunk's compute,
minus the word's true end, over the words an edit-distance alignment finds recognized. It
prints figures and judges nothing.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def emission_times(partials: list[str], final: str, chunk_seconds: float, compute: list[float]) -> list[float]:
    """When each word of the final transcript was first shown in full: audio end of the chunk plus its compute."""
    words, times = final.split(), []
    for index in range(len(words)):
        for chunk, partial in enumerate(partials):
            shown = partial.split()
            # Complete once a later word (or the end of the audio) follows it unchanged.
            if shown[: index + 1] == words[: index + 1] and (len(shown) > index + 1 or partial.endswith(" ")):
                times.append((chunk + 1) * chunk_seconds + compute[chunk])
                break
        else:
            times.append(len(partials) * chunk_seconds + compute[-1])
    return times


def matched_words(final: str, reference: list[dict]) -> list[tuple[int, int]]:
    """(hypothesis index, reference index) of the words an edit-distance alignment finds equal."""
    from rapidfuzz.distance import Levenshtein

    pairs = []
    for tag, first, last, ref_first, _ in Levenshtein.opcodes(final.split(), [w["word"] for w in reference]):
        if tag == "equal":
            pairs += [(i, ref_first + i - first) for i in range(first, last)]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-file", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--chunk-ms", type=int, default=160)
    parser.add_argument("--utterances", type=int, default=30)
    parser.add_argument("--word-times", type=Path, help="JSON reference word end times (see above)")
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from ds2_keras.audio import load_audio
    from ds2_keras.checkpoints import load_model_file
    from ds2_keras.manifest import read_manifest
    from ds2_keras.streaming import Streamer, array_chunks

    model = load_model_file(args.model_file, compile=False)
    config = model.ds2_config
    chunk = config.sample_rate * args.chunk_ms // 1000
    references = {item["audio_path"]: item["words"] for item in json.loads(args.word_times.read_text())} \
        if args.word_times else {}
    paths = list(references) if references else read_manifest(args.manifest)["audio_path"].tolist()
    per_chunk, audio_seconds, latencies = [], 0.0, []
    Streamer(model).feed(np.zeros(chunk, np.float32))  # trace once, outside the timing
    for path in paths[: args.utterances]:
        samples = load_audio(path, config.sample_rate)
        streamer, partials, compute = Streamer(model), [], []
        for piece in array_chunks(samples, chunk):
            started = time.perf_counter()
            partials.append(streamer.feed(piece))
            compute.append(time.perf_counter() - started)
        final = streamer.finish()
        per_chunk += compute
        audio_seconds += len(samples) / config.sample_rate
        if path in references:
            shown = emission_times(partials, final, chunk / config.sample_rate, compute)
            latencies += [shown[i] - references[path][j]["end"] for i, j in matched_words(final, references[path])]
    per_chunk_ms = 1000 * np.array(per_chunk)
    print(f"model: {args.model_file} (preset {config.preset}, lookahead {config.lookahead}, "
          f"{model.count_params():,} parameters), {args.chunk_ms} ms chunks, 1 thread")
    print(f"per chunk: median {np.median(per_chunk_ms):.1f} ms, 90th percentile {np.percentile(per_chunk_ms, 90):.1f} ms")
    print(f"real-time factor: {per_chunk_ms.sum() / 1000 / audio_seconds:.3f} over {audio_seconds:.0f} s of audio")
    if latencies:
        print(f"emission latency: median {np.median(latencies):.2f} s, 90th percentile "
              f"{np.percentile(latencies, 90):.2f} s over {len(latencies)} words")


if __name__ == "__main__":
    main()

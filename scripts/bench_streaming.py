"""Streaming benchmark: compute per chunk and real-time factor on one core, and emission latency.

    .venv/bin/python scripts/bench_streaming.py --model-file runs/live/model.keras

Streams test utterances through ds2_keras.deploy.streaming.Streamer in `--chunk-ms` chunks (160 ms by
default) with TensorFlow limited to one thread, and times every `feed`. Real-time factor =
compute time / audio time. Emission latency needs word end times you can trust, so the
utterances are those of scripts/bench_word_timings.py: test sentences of a `ds2 ingest synth`
corpus spoken word by word with known silences. A word counts as emitted by the first partial
whose words up to and including it equal the final transcript's; its latency is the
audio time at the end of that chunk plus that chunk's compute, minus the word's true end, over
the words an edit-distance alignment finds recognized. It prints figures and judges nothing.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ds2_keras.core.frames import output_frame_seconds


def emission_times(partials: list[str], final: str, chunk_seconds: float, compute: list[float]) -> list[float]:
    """When each word of the final transcript was first shown in full: audio end of the chunk plus its compute."""
    words, times = final.split(), []
    for index in range(len(words)):
        for chunk, partial in enumerate(partials):
            shown = partial.split()
            if shown[: index + 1] == words[: index + 1]:  # the word and all before it, as in the end
                times.append((chunk + 1) * chunk_seconds + compute[chunk])
                break
        else:
            times.append(len(partials) * chunk_seconds + compute[-1])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-file", type=Path, required=True)
    parser.add_argument("--chunk-ms", type=int, default=160)
    parser.add_argument("--corpus-size", type=int, default=800, help="the -n of the synth corpus whose test split to use")
    parser.add_argument("--seed", type=int, default=0, help="the --seed of that corpus")
    parser.add_argument("--utterances", type=int, default=40, help="at most this many test sentences")
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from bench_word_timings import build_utterance, matched_words
    from ds2_keras.model.checkpoints import load_model_file
    from ds2_keras.deploy.streaming import Streamer, StreamingRecognizer, array_chunks
    from ds2_keras.ingest.synth import available_speakers, plan_corpus

    model = load_model_file(args.model_file, compile=False)
    config = model.ds2_config
    chunk = config.sample_rate * args.chunk_ms // 1000
    tests = [r for r in plan_corpus(args.corpus_size, args.seed, available_speakers()) if r.split == "test"]
    built = [build_utterance(recording, args.seed, (0.1, 0.5)) for recording in tests[: args.utterances]]
    per_chunk, audio_seconds, latencies, words = [], 0.0, [], 0
    recognizer = StreamingRecognizer(model)
    Streamer(recognizer).feed(np.zeros(chunk, np.float32))  # traced once, outside the timing
    for samples, reference in built:
        streamer, partials, compute = Streamer(recognizer), [], []
        for piece in array_chunks(samples, chunk):
            started = time.perf_counter()
            partials.append(streamer.feed(piece).text)
            compute.append(time.perf_counter() - started)
        final = streamer.finish().text
        per_chunk += compute
        audio_seconds += len(samples) / config.sample_rate
        shown = emission_times(partials, final, chunk / config.sample_rate, compute)
        pairs = matched_words([word.text for word in reference], final.split())
        latencies += [shown[j] - reference[i].end for i, j in pairs]
        words += len(reference)
    per_chunk_ms = 1000 * np.array(per_chunk)
    print(f"model: {args.model_file} (preset {config.preset}, lookahead {config.lookahead} frames = "
          f"{config.lookahead * output_frame_seconds(config) * 1000:.0f} ms, {model.count_params():,} parameters), "
          f"{args.chunk_ms} ms chunks, 1 thread, {len(built)} utterances, {audio_seconds:.0f} s of audio")
    print(f"per chunk: median {np.median(per_chunk_ms):.1f} ms, 90th percentile {np.percentile(per_chunk_ms, 90):.1f} ms")
    print(f"real-time factor: {per_chunk_ms.sum() / 1000 / audio_seconds:.3f}")
    if latencies:
        print(f"emission latency: median {np.median(latencies):.2f} s, 90th percentile "
              f"{np.percentile(latencies, 90):.2f} s over {len(latencies)} recognized of {words} words")


if __name__ == "__main__":
    main()

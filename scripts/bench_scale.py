"""Scale simulation: how `ds2 fit` starts on LibriSpeech-100h- and 960h-sized manifests.

For each size it writes a manifest whose rows repeat a handful of real audio files (written
here, or taken from --audio-dir) with LibriSpeech-like durations and transcript lengths, then,
in a fresh process per size, times reading the manifest, and `ds2 fit` (training.fit) from its
start to the end of the first training step, and records the peak RSS before that step. A
100-row manifest gives the baseline: the model's and TensorFlow's own memory. It prints
figures and judges nothing.

    .venv/bin/python scripts/bench_scale.py                     # 100, 28,000 and 281,241 rows
    .venv/bin/python scripts/bench_scale.py --rows 1000 --preset tiny
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SENTENCE = ("he hoped there would be stew for dinner turnips and carrots and bruised potatoes and fat mutton "
            "pieces to be ladled out in thick peppered flour fattened sauce ")


def write_audio_files(directory: Path, count: int = 8) -> list[Path]:
    """`count` short noise-and-tone WAVs at 16 kHz: real files for the loader to decode."""
    import soundfile

    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        seconds = 2.0 + 2.0 * index
        time_axis = np.arange(int(16000 * seconds)) / 16000
        samples = 0.2 * np.sin(2 * np.pi * (150 + 40 * index) * time_axis) + 0.02 * rng.standard_normal(time_axis.size)
        path = directory / f"audio{index}.wav"
        soundfile.write(path, samples.astype(np.float32), 16000, subtype="PCM_16")
        paths.append(path)
    return paths


def write_manifest(path: Path, rows: int, audio: list[Path]) -> None:
    """LibriSpeech-like rows: durations around 12.3 s (1-35 s), about 15 characters a second."""
    rng = np.random.default_rng(rows)
    durations = np.clip(rng.normal(12.3, 3.6, rows), 1.0, 35.0).round(3)
    characters = np.maximum((durations * 15).astype(int), 1)
    text = SENTENCE * 6
    starts = rng.integers(0, len(SENTENCE), rows)
    pd.DataFrame({
        "audio_path": [str(audio[i % len(audio)]) for i in range(rows)],
        "transcript_path": [str(audio[i % len(audio)].with_suffix(".txt")) for i in range(rows)],
        "text": [text[s: s + n].strip() or "a" for s, n in zip(starts, characters)],
        "duration": durations,
    }).to_csv(path, index=False)


def measure(manifest: Path, preset: str, batch_size: int, output_dir: Path) -> dict:
    """In this (fresh) process: manifest read time, fit start -> first step end, peak RSS before it."""
    started = time.perf_counter()
    import keras

    from ds2_keras.core.config import preset as load_preset
    from ds2_keras.data.manifest import read_manifests
    from ds2_keras.train.fit import FitRequest, fit

    read_started = time.perf_counter()
    rows = len(read_manifests([manifest]))
    read_seconds = time.perf_counter() - read_started

    class FirstStep(keras.callbacks.Callback):
        figures: dict = {}

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                self.figures["rss_before_first_step_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        def on_train_batch_end(self, batch, logs=None):
            self.figures["first_step_seconds"] = time.perf_counter() - fit_started
            self.model.stop_training = True

    fit_started = time.perf_counter()
    fit(FitRequest([manifest], [], 1, batch_size, output_dir, load_preset(preset), save_every_steps=0, verbose=0,
                   callbacks=[FirstStep()]))
    return {"rows": rows, "manifest_read_seconds": read_seconds, "import_seconds": fit_started - started,
            **FirstStep.figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100, 28000, 281241])
    parser.add_argument("--preset", default="small")
    parser.add_argument("-z", "--batch-size", type=int, default=16)
    parser.add_argument("--audio-dir", type=Path, help="Repeat these .wav/.flac files instead of writing some.")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # internal: measure this manifest here
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as output_dir:
            print(json.dumps(measure(args.one, args.preset, args.batch_size, Path(output_dir))))
        return
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        audio = (sorted(p for p in args.audio_dir.rglob("*") if p.suffix in (".wav", ".flac"))[:8]
                 if args.audio_dir else write_audio_files(directory))
        print(f"{'rows':>8}  {'manifest read':>13}  {'fit start -> first step':>23}  {'peak RSS before it':>18}")
        for rows in args.rows:
            manifest = directory / f"manifest-{rows}.csv"
            write_manifest(manifest, rows, audio)
            command = [sys.executable, __file__, "--one", str(manifest), "--preset", args.preset,
                       "-z", str(args.batch_size)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode:
                sys.exit(f"{rows} rows failed:\n{result.stderr[-3000:]}")
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"{figures['rows']:>8,}  {figures['manifest_read_seconds']:>12.2f}s  "
                  f"{figures['first_step_seconds']:>22.1f}s  {figures['rss_before_first_step_mib']:>15,.0f} MiB",
                  flush=True)


if __name__ == "__main__":
    main()

"""Benchmark LiteRT exports against their Keras model: size, memory, speed, accuracy (issue 30).

    python scripts/bench_litert.py --model-file run/best.keras --test test.csv --train train.csv --out-dir bench/

For the model (bidirectional or streaming) and each format (Keras; LiteRT float32, float16,
dynamic, int8, exported here, int8 calibrated on --train) it reports: file size; peak RSS of
the process that loads the model and transcribes (each format in its own fresh process: the
LiteRT ones with TensorFlow made unimportable, as on a device); offline real-time factor on one
thread (compute seconds / audio seconds; LiteRT with its default XNNPACK delegate, Keras with
TF's thread pools at 1); for streaming models the compute per 160 ms chunk (median, p95, max)
and whether the streamed final transcript equals the same format's offline one; CER and WER
(greedy, pooled) on the first --limit utterances of --test. Run it pinned to one core
(`taskset -c 1 ...`); the table goes to stdout as Markdown, the raw figures to OUT_DIR/results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("keras", "none", "float16", "dynamic", "int8")
CHUNK_MS = 160


def utterances(manifest: Path, limit: int) -> tuple[list[str], list[str]]:
    from ds2_keras.data.manifest import read_manifest

    rows = read_manifest(manifest).head(limit)
    return [str(p) for p in rows["audio_path"]], [str(t) for t in rows["text"]]


def worker(args: argparse.Namespace) -> None:
    """One format in this process: load, transcribe offline (and streaming), print JSON figures."""
    from ds2_keras.data.audio import load_audio

    paths, _ = utterances(args.test, args.limit)
    started = time.perf_counter()
    if args.format == "keras":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from ds2_keras.model.checkpoints import load_model_file
        from ds2_keras.deploy.recognizer import recognizer
        from ds2_keras.decode.words import hypotheses

        module = recognizer(load_model_file(args.model, compile=False))
        sample_rate = module.model.ds2_config.sample_rate

        def offline(waveform):
            return hypotheses(module.recognize(waveform[None], np.array([len(waveform)], np.int32)))[0]
        streamer_factory = None
    else:
        from ds2_keras.deploy.litert_runtime import LiteRTModel

        model = LiteRTModel(args.model, threads=1)
        sample_rate, offline = model.sample_rate, model.transcribe
        streamer_factory = model.streamer if "stream_step" in model.facts["signatures"] else None
    load_seconds = time.perf_counter() - started
    audio_seconds = compute = 0.0
    texts, streamed, chunk_ms = [], [], []
    chunk = sample_rate * CHUNK_MS // 1000
    for path in paths:
        waveform = load_audio(path, sample_rate)
        audio_seconds += len(waveform) / sample_rate
        started = time.perf_counter()
        texts.append(offline(waveform).text)
        compute += time.perf_counter() - started
        if streamer_factory is not None:
            streamer = streamer_factory()
            for start in range(0, len(waveform), chunk):
                started = time.perf_counter()
                streamer.feed(waveform[start:start + chunk])
                chunk_ms.append(1000 * (time.perf_counter() - started))
            streamed.append(streamer.finish().text)
    print(json.dumps({"texts": texts, "streamed": streamed, "chunk_ms": chunk_ms, "rtf": compute / audio_seconds,
                      "audio_seconds": audio_seconds, "load_seconds": load_seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_format(args: argparse.Namespace, model: Path, name: str) -> dict:
    """The worker for one format in a fresh process; LiteRT ones cannot import TensorFlow."""
    block = "sys.modules['tensorflow'] = None; sys.modules['keras'] = None; " if name != "keras" else ""
    script = str(Path(__file__).resolve())
    code = f"import runpy, sys; {block}sys.argv[0] = {script!r}; runpy.run_path({script!r}, run_name='__main__')"
    command = [sys.executable, "-c", code, "--worker", "--format", name, "--model-file", str(model),
               "--test", str(args.test), "--limit", str(args.limit)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if result.returncode != 0:
        raise SystemExit(f"{name} worker failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def export_all(args: argparse.Namespace) -> dict[str, Path]:
    """The Keras file and its four LiteRT exports (made once; reused when present in OUT_DIR)."""
    files = {"keras": args.model_file}
    for quantize in FORMATS[1:]:
        target = args.out_dir / ("model.tflite" if quantize == "none" else f"model-{quantize}.tflite")
        if not target.exists():
            command = [str(Path(sys.executable).parent / "ds2"), "export", "--model-file", str(args.model_file),
                       str(args.out_dir), "--format", "litert", "--quantize", quantize]
            if quantize == "int8":
                command += ["--calibration", str(args.calibration_manifest)]
            subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        files[quantize] = target
    return files


def calibration_subset(args: argparse.Namespace) -> Path:
    """The first --calibration-utterances rows of --train, as a manifest of their own."""
    from ds2_keras.data.manifest import read_manifest

    target = args.out_dir / "calibration.csv"
    read_manifest(args.train).sample(frac=1.0, random_state=0).head(args.calibration_utterances).to_csv(target, index=False)
    return target


def table(results: dict[str, dict], sizes: dict[str, int], references: list[str]) -> str:
    from ds2_keras.core.metrics import cer, wer

    streaming = any(r["streamed"] for r in results.values())
    header = "| format | file | peak RSS | offline RTF (1 thread) | CER | WER |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if streaming:
        header += " 160 ms chunk: median / p95 / max | streamed final == offline |"
        rule += "---:|---:|"
    lines = [header, rule]
    for name, r in results.items():
        row = (f"| {'Keras' if name == 'keras' else 'LiteRT ' + ('float32' if name == 'none' else name)} "
               f"| {sizes[name] / 1e6:.2f} MB | {r['peak_rss_mb']:.0f} MB | {r['rtf']:.4f} "
               f"| {100 * cer(references, [t.strip() for t in r['texts']]).rate:.2f} % | {100 * wer(references, r['texts']).rate:.2f} % |")
        if streaming:
            if r["chunk_ms"]:
                ms = np.array(r["chunk_ms"])
                same = sum(a == b for a, b in zip(r["streamed"], r["texts"]))
                row += (f" {np.median(ms):.2f} / {np.percentile(ms, 95):.2f} / {ms.max():.2f} ms"
                        f" | {same}/{len(r['texts'])} |")
            else:
                row += " (Keras: see ds2 transcribe --stream) | - |"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-file", type=Path)
    parser.add_argument("--test", type=Path, required=True, help="held-out manifest (CER/WER, timing)")
    parser.add_argument("--train", type=Path, help="training manifest: int8 calibration utterances come from it")
    parser.add_argument("--out-dir", type=Path)
    parser.add_argument("--limit", type=int, default=40, help="test utterances to use")
    parser.add_argument("--calibration-utterances", type=int, default=100)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=FORMATS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.model = args.model_file
        return worker(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    args.calibration_manifest = calibration_subset(args)
    files = export_all(args)
    results = {name: run_format(args, path, name) for name, path in files.items()}
    _, references = utterances(args.test, args.limit)
    sizes = {name: path.stat().st_size for name, path in files.items()}
    (args.out_dir / "results.json").write_text(json.dumps({"sizes": sizes, "results": results}, indent=1))
    audio = results["keras"]["audio_seconds"]
    print(f"{args.model_file}: {args.limit} utterances of {args.test} ({audio / 60:.1f} min of audio)\n")
    print(table(results, sizes, references))


if __name__ == "__main__":
    main()

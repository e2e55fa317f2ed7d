"""Transcribe WAV files with a ds2 model served by TF Serving's REST API.

Needs only numpy and soundfile (no TensorFlow, no ds2). Export and serve first:

    ds2 export --model-file run/model.keras models/ds2
    docker run -p 8501:8501 -v "$PWD/models/ds2:/models/ds2" -e MODEL_NAME=ds2 tensorflow/serving

then `python examples/serving_client.py a.wav b.wav` prints one `FILE<TAB>transcript` line per
file. --format picks the request body: `rows` ({"instances": [...]}, one object per file),
`columns` ({"inputs": {...}}, one list per input) or `wav` (the transcribe_wav signature, the
files' bytes base64-encoded). --dry-run prints the JSON instead of sending it.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000  # the served graph cannot resample; every ds2 preset uses 16 kHz


def read_waveform(path: Path) -> np.ndarray:
    """Mono float32 samples in [-1, 1]; stereo is averaged, other rates are refused."""
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise SystemExit(f"{path}: sampled at {rate} Hz; the model needs {SAMPLE_RATE} Hz (resample it first)")
    return samples.mean(axis=1)


def build_request(paths: list[Path], request_format: str) -> dict:
    """The JSON body of a predict call for these files, in the chosen format."""
    if request_format == "wav":
        return {"signature_name": "transcribe_wav",
                "instances": [{"wav_bytes": {"b64": base64.b64encode(p.read_bytes()).decode("ascii")}} for p in paths]}
    waveforms = [read_waveform(p) for p in paths]
    lengths = [len(w) for w in waveforms]
    # A request holds rectangular tensors: pad with zeros and say how much of each row is real.
    padded = [np.pad(w, (0, max(lengths) - len(w))).tolist() for w in waveforms]
    if request_format == "columns":
        return {"signature_name": "serving_default", "inputs": {"waveforms": padded, "lengths": lengths}}
    return {"signature_name": "serving_default",
            "instances": [{"waveforms": w, "lengths": n} for w, n in zip(padded, lengths)]}


def transcripts(response: dict) -> list[str]:
    """The transcripts of a predict response in either format ("predictions" or "outputs")."""
    if "predictions" in response:
        return [row["transcripts"] for row in response["predictions"]]
    return response["outputs"]["transcripts"]


def post(url: str, body: dict) -> dict:
    """POST a JSON body to TF Serving and return its JSON reply; HTTP and connection failures exit in one line."""
    request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as reply:
            return json.load(reply)
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{url}: HTTP {error.code}: {error.read().decode('utf-8', 'replace')}") from None
    except urllib.error.URLError as error:
        raise SystemExit(f"{url}: cannot connect ({error.reason})") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wavs", nargs="+", type=Path, help="WAV files (16 kHz; 16-bit PCM for --format wav)")
    parser.add_argument("--url", default="http://localhost:8501/v1/models/ds2:predict")
    parser.add_argument("--format", dest="request_format", choices=("rows", "columns", "wav"), default="rows")
    parser.add_argument("--dry-run", action="store_true", help="print the request JSON and send nothing")
    args = parser.parse_args()
    body = build_request(args.wavs, args.request_format)
    if args.dry_run:
        json.dump(body, sys.stdout)
        print()
        return
    for path, text in zip(args.wavs, transcripts(post(args.url, body))):
        print(f"{path}\t{text}")


if __name__ == "__main__":
    main()

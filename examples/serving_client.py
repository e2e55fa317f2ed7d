"""Transcribe WAV files with a ds2 model served by TF Serving's REST API.

Needs only numpy and soundfile (no TensorFlow, no ds2). Export and serve first:

    ds2 export --model-file run/model.keras models/ds2
    docker run -p 8501:8501 -v "$PWD/models/ds2:/models/ds2" -e MODEL_NAME=ds2 tensorflow/serving

then `python examples/serving_client.py a.wav b.wav` prints one `FILE<TAB>transcript` line per
file. --format picks the request body: `rows` ({"instances": [...]}, one object per file),
`columns` ({"inputs": {...}}, one list per input) or `wav` (the transcribe_wav signature, the
files' bytes base64-encoded). --dry-run prints the JSON instead of sending it.

The served graph decodes greedily. `--decoder beam` rescores the logits the server returns with
ds2's beam search (and --lm, --hotword, --hotwords, --alpha, --beta, --unk-score, --beam-width
as `ds2 transcribe` takes them), so a served model gives `ds2 transcribe --decoder beam`'s
transcripts; it needs ds2-keras installed, and the export's `assets.extra/ds2.json` (--model-facts)
to know what each logit means. Without it this client imports nothing of ds2.
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
    return column(response, "transcripts")


def column(response: dict, name: str) -> list:
    """One output of a predict response, a value per file, in either format."""
    if "predictions" in response:
        return [row[name] for row in response["predictions"]]
    return response["outputs"][name]


def rescored(response: dict, model_facts: Path, args: argparse.Namespace) -> list[str]:
    """Transcripts of the response's logits by ds2's beam search, as `ds2 transcribe --decoder beam` gives them."""
    from ds2_keras.core.alphabet import Alphabet
    from ds2_keras.decode.settings import DecoderSettings
    from ds2_keras.core.errors import DS2Error

    try:
        facts = json.loads(model_facts.read_text(encoding="utf-8"))
        settings = DecoderSettings("beam", args.lm, args.alpha, args.beta, args.unk_score, args.beam_width,
                                   hotwords=tuple(args.hotword), hotword_files=tuple(args.hotwords))
        decoder = settings.build(Alphabet("".join(facts["symbols"][1:])))
    except (OSError, ValueError, KeyError) as error:
        raise SystemExit(f"{model_facts}: not an export's ds2.json ({error})") from None
    except DS2Error as error:
        raise SystemExit(f"Error: {error}") from None
    return [decoder.decode_utterance(np.asarray(logits, np.float32)[:length], frame_seconds=facts["frame_seconds"]).text
            for logits, length in zip(column(response, "logits"), column(response, "logit_lengths"))]


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
    rescoring = parser.add_argument_group("rescoring the returned logits with ds2's beam search (needs ds2-keras)")
    rescoring.add_argument("--decoder", choices=("greedy", "beam"), default="greedy")
    rescoring.add_argument("--model-facts", type=Path, help="the export's assets.extra/ds2.json")
    rescoring.add_argument("--lm", type=Path)
    rescoring.add_argument("--alpha", type=float)
    rescoring.add_argument("--beta", type=float)
    rescoring.add_argument("--unk-score", type=float)
    rescoring.add_argument("--beam-width", type=int, default=64)
    rescoring.add_argument("--hotword", action="append", default=[], metavar="PHRASE[:BOOST]")
    rescoring.add_argument("--hotwords", action="append", default=[], type=Path, metavar="FILE")
    args = parser.parse_args()
    if args.decoder == "beam" and args.model_facts is None:
        parser.error("--decoder beam needs --model-facts (the export's assets.extra/ds2.json)")
    body = build_request(args.wavs, args.request_format)
    if args.dry_run:
        json.dump(body, sys.stdout)
        print()
        return
    response = post(args.url, body)
    texts = rescored(response, args.model_facts, args) if args.decoder == "beam" else transcripts(response)
    for path, text in zip(args.wavs, texts):
        print(f"{path}\t{text}")


if __name__ == "__main__":
    main()

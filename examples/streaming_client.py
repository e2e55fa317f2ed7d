"""Stream a WAV file through a streaming ds2 model served by TF Serving's REST API.

TF Serving is stateless, so the client carries the recognizer's state: `stream_start` gives the
first state, and each `stream_step` call sends a chunk of audio with the state and gets back the
next state, the new frames' logits and the transcript so far. Needs only numpy and soundfile.

    ds2 fit ... --set bidirectional=false --set streaming=true --set lookahead=5 -s run
    ds2 export --model-file run/model.keras models/ds2
    docker run -p 8501:8501 -v "$PWD/models/ds2:/models/ds2" -e MODEL_NAME=ds2 tensorflow/serving
    python examples/streaming_client.py talk.wav            # partial transcripts, then the final one

Requests use the columnar format ({"inputs": {...}}): `final` is a scalar, not one value per row.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from serving_client import SAMPLE_RATE, post, read_waveform  # noqa: E402


def stream(samples: np.ndarray, chunk_samples: int, send: Callable[[dict], dict]) -> Iterator[tuple[str, bool]]:
    """(transcript so far, final?) after each chunk; `send` posts a JSON body and returns the reply."""
    state = send({"signature_name": "stream_start", "inputs": {"batch_size": 1}})["outputs"]
    starts = list(range(0, len(samples), chunk_samples)) or [0]
    for index, start in enumerate(starts):
        final = index == len(starts) - 1
        chunk = samples[start: start + chunk_samples]
        outputs = send({"signature_name": "stream_step",
                        "inputs": {"audio": [chunk.tolist()], "final": final, **state}})["outputs"]
        state = {name: value for name, value in outputs.items() if name.startswith("state_")}
        yield outputs["transcripts"][0], final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wav", type=Path, help="a 16 kHz WAV file")
    parser.add_argument("--url", default="http://localhost:8501/v1/models/ds2:predict")
    parser.add_argument("--chunk-ms", type=int, default=160, help="audio per request")
    args = parser.parse_args()
    shown = None
    for text, final in stream(read_waveform(args.wav), SAMPLE_RATE * args.chunk_ms // 1000,
                              lambda body: post(args.url, body)):
        if final:
            print(f"{args.wav}\t{text}")
        elif text != shown:
            print(f"partial\t{text}", file=sys.stderr)
            shown = text


if __name__ == "__main__":
    main()

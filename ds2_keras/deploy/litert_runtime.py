"""Run a ds2 LiteRT export without TensorFlow: `python -m ds2_keras.deploy.litert_runtime MODEL.tflite AUDIO...`.

Needs only ai-edge-litert, numpy and soundfile (scipy too for audio not at the model's rate):
nothing here or in the ds2_keras modules it uses imports TensorFlow, so it runs where TF cannot
be installed (a Raspberry Pi, a small container). It reads the sidecar JSON written beside the
.tflite file by `ds2 export --format litert` (litert.py), checks that the two belong together,
runs the `offline` signature (whole utterances) or streams through `stream_step` (the state is
carried here, in numpy), and decodes greedily with word times and confidences
(words.greedy_hypothesis, the same results as `ds2 transcribe`'s TF decoding).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ds2_keras.core.config import DS2Config
from ds2_keras.core.errors import DS2Error, FileError
from ds2_keras.core.frames import output_frames
from ds2_keras.core.litert_file import TFLITE_MAGIC
from ds2_keras.decode.words import Hypothesis, greedy_hypothesis

if TYPE_CHECKING:
    from ds2_keras.decode.decoders import Decoder

SIDECAR_FORMAT = "ds2-litert/1"


class LiteRTModelError(FileError):
    """A .tflite file or its sidecar that cannot be used; the message names the file."""


def sidecar_path(model_path: str | Path) -> Path:
    """model.tflite -> model.json, beside it."""
    return Path(model_path).with_suffix(".json")


def read_sidecar(model_path: Path, flatbuffer: bytes) -> dict:
    """The sidecar of `model_path`, checked to describe exactly this flatbuffer."""
    path = sidecar_path(model_path)
    if not path.is_file():
        raise LiteRTModelError(path, f"sidecar JSON of {model_path.name} not found (export writes both files)")
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LiteRTModelError(path, f"unreadable sidecar JSON ({error})") from None
    if not isinstance(facts, dict) or facts.get("format") != SIDECAR_FORMAT:
        raise LiteRTModelError(path, f"not a ds2 LiteRT sidecar (format {SIDECAR_FORMAT!r} expected)")
    if facts.get("tflite_sha256") != hashlib.sha256(flatbuffer).hexdigest():
        raise LiteRTModelError(path, f"does not match {model_path.name} (written for another export of it)")
    return facts


class LiteRTModel:
    """A loaded export: `logits(waveform)` offline, `streamer()` for streaming, and its facts."""

    def __init__(self, path: str | Path, threads: int = 1):
        path = Path(path)
        if not path.is_file():
            raise LiteRTModelError(path, "LiteRT model file not found")
        flatbuffer = path.read_bytes()
        if flatbuffer[4:8] != TFLITE_MAGIC:
            raise LiteRTModelError(path, "not a LiteRT (.tflite) model")
        self.facts = read_sidecar(path, flatbuffer)
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
            self._offline = self.interpreter.get_signature_runner("offline")
        except (ValueError, RuntimeError) as error:
            raise LiteRTModelError(path, f"LiteRT cannot load it (truncated or damaged: {error})") from None
        self.path = path
        self.config = DS2Config.from_dict(self.facts["config"])
        self.alphabet = self.config.output_alphabet
        self.frame_seconds = float(self.facts["frame_seconds"])
        self.sample_rate = int(self.facts["sample_rate"])

    def logits(self, waveform: np.ndarray) -> np.ndarray:
        """[frames, classes] logits of one whole mono waveform at the model's rate."""
        waveform = np.asarray(waveform, np.float32)
        outputs = self._offline(waveforms=waveform[None], lengths=np.array([len(waveform)], np.int32))
        return outputs["logits"][0, : int(outputs["logit_lengths"][0])]

    def transcribe(self, waveform: np.ndarray, decoder: Decoder | None = None) -> Hypothesis:
        """Greedy, or by `decoder` (a decoding.Decoder: beam search, LM, hotwords) on the same logits."""
        return decode_logits(self.logits(waveform), self, decoder)

    def streamer(self, decoder: Decoder | None = None) -> LiteRTStreamer:
        if "stream_step" not in self.facts["signatures"]:
            raise LiteRTModelError(self.path, "this export has no stream_step: it was made from a model "
                                              "not trained with streaming=true")
        return LiteRTStreamer(self, decoder)


class LiteRTStreamer:
    """One stream through `stream_step`: `feed(chunk)` any number of samples, `finish()`.

    The step takes a fixed amount of audio (the sidecar's step_samples: the previous step's last
    overlap_samples, then new audio), so samples wait here until a step is full. Each step's
    logits are the row convolution's outputs for frames made - lookahead onwards; those before
    the stream's start are dropped, and on the final step the last `lookahead` (computed with
    zeros as the future, as offline after the end) are kept too. The final logits equal the
    offline signature's on the whole audio.
    """

    def __init__(self, model: LiteRTModel, decoder: Decoder | None = None):
        """Partial results are greedy; the final one is `decoder`'s, when given, over every released frame
        (which, for float exports, equals its offline result)."""
        self._decoder = decoder
        contract = model.facts["signatures"]["stream_step"]
        self.model = model
        self._step = model.interpreter.get_signature_runner("stream_step")
        self._frames, self._size = int(contract["step_frames"]), int(contract["step_samples"])
        self._overlap = int(contract["overlap_samples"])
        self._lookahead = int(model.facts["lookahead"])
        state_names = [name for name in contract["inputs"] if name not in ("audio", "valid")]
        self.state = {name: np.zeros(self._step.get_input_details()[name]["shape"], np.float32)
                      for name in state_names}
        self._pending = np.zeros(0, np.float32)
        self._samples = 0  # samples fed so far
        self._made = 0  # frames the last recurrent layer has made
        self.logits = np.zeros((0, model.alphabet.num_classes), np.float32)

    def feed(self, chunk: np.ndarray) -> Hypothesis:
        """Add samples; run every step that is full; return the partial result (as streaming.Streamer)."""
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self._samples += len(chunk)
        self._pending = np.concatenate([self._pending, chunk])
        released = []
        while len(self._pending) >= self._size:
            released.append(self._run(self._pending[: self._size], self._frames, final=False))
            self._pending = self._pending[self._size - self._overlap:]
        return self._release(released)

    def finish(self) -> Hypothesis:
        """Run the last, zero-padded step, release the remaining frames (with the lookahead's): the final result."""
        total = int(output_frames(self._samples, self.model.config))
        audio = np.zeros(self._size, np.float32)
        audio[: len(self._pending)] = self._pending
        greedy = self._release([self._run(audio, max(total - self._made, 0), final=True)])
        return greedy if self._decoder is None else decode_logits(self.logits, self.model, self._decoder)

    def _run(self, audio: np.ndarray, valid: int, final: bool) -> np.ndarray:
        outputs = self._step(audio=audio[None], valid=np.array(valid, np.int32), **self.state)
        self.state = {name: outputs[f"new_{name}"] for name in self.state}
        first = self._made - self._lookahead  # the frame of the step's first output
        count = valid + self._lookahead if final else self._frames
        self._made += self._frames
        logits = outputs["logits"][0, :count]
        return logits[max(-first, 0):]

    def _release(self, pieces: list[np.ndarray]) -> Hypothesis:
        """Keep the released logits; the greedy result of every frame released so far."""
        self.logits = np.concatenate([self.logits, *pieces])
        return greedy_hypothesis(self.logits, self.model.frame_seconds, self.model.alphabet)


def decode_logits(logits: np.ndarray, model: LiteRTModel, decoder: Decoder | None) -> Hypothesis:
    """One utterance's [frames, classes] logits decoded greedily, or by `decoder` when given."""
    if decoder is None:
        return greedy_hypothesis(logits, model.frame_seconds, model.alphabet)
    return decoder.decode_utterance(logits, frame_seconds=model.frame_seconds)


def load_waveform(path: str | Path, sample_rate: int) -> np.ndarray:
    from ds2_keras.data.audio import load_audio

    return load_audio(path, sample_rate)


def transcribe_file(model: LiteRTModel, path: str | Path, stream: bool = False, chunk_ms: int = 160) -> Hypothesis:
    """The greedy Hypothesis of an audio file, offline or streamed in chunk_ms chunks."""
    waveform = load_waveform(path, model.sample_rate)
    if not stream:
        return model.transcribe(waveform)
    streamer = model.streamer()
    chunk = model.sample_rate * chunk_ms // 1000
    for start in range(0, len(waveform), chunk):
        streamer.feed(waveform[start:start + chunk])
    return streamer.finish()


def main(argv: Sequence[str] | None = None) -> int:
    """Print one `AUDIO<TAB>text` line (txt) or JSON object (json) per file; errors as `Error: ...`."""
    from ds2_keras.decode.transcript_writers import printed_text

    parser = argparse.ArgumentParser(prog="python -m ds2_keras.deploy.litert_runtime",
                                     description="Transcribe audio with a ds2 LiteRT export, without TensorFlow.")
    parser.add_argument("model", type=Path, help="model.tflite written by `ds2 export --format litert`")
    parser.add_argument("audio", type=Path, nargs="+")
    parser.add_argument("--format", choices=("txt", "json"), default="txt")
    parser.add_argument("--stream", action="store_true", help="stream through stream_step (streaming models)")
    parser.add_argument("--chunk-ms", type=int, default=160)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    failures = 0
    try:
        model = LiteRTModel(args.model, args.threads)
        if args.stream:
            model.streamer()  # refused before any audio is read
    except DS2Error as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    for path in args.audio:
        try:
            hypothesis = transcribe_file(model, path, args.stream, args.chunk_ms)
        except DS2Error as error:
            print(f"Error: {error}", file=sys.stderr)
            failures += 1
            continue
        print(printed_text(args.format, path, hypothesis))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Streaming recognition with a trained tiny unidirectional model (streaming=true, lookahead).

What must hold: chunks of any size give, at the end, the offline model's logits and transcript;
the SavedModel's stateless `stream_step`, driven by the example client in a process without
ds2, does too; models that cannot stream say so in one line.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import tensorflow as tf
from click.testing import CliRunner

from ds2_keras.audio import load_audio
from ds2_keras.checkpoints import load_model_file
from ds2_keras.cli import main
from ds2_keras.config import preset
from ds2_keras.decoding import BeamSearchDecoder, Hotword, greedy_decode
from ds2_keras.export import export_saved_model
from ds2_keras.frames import output_frame_seconds
from ds2_keras.manifest import read_manifest
from ds2_keras.streaming import Streamer, StreamingError, StreamingRecognizer
from ds2_keras.training import FitRequest, fit

ROOT = Path(__file__).resolve().parents[1]
STREAMING_TINY = preset("tiny").replace(bidirectional=False, streaming=True, lookahead=2, learning_rate=3e-3)


@pytest.fixture(scope="module")
def streaming_model(corpus, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("streaming")
    fit(FitRequest([corpus["train"]], [], 3, 4, output_dir, STREAMING_TINY, save_every_steps=0, verbose=0))
    return output_dir / "model.keras"


@pytest.fixture(scope="module")
def utterance(corpus) -> np.ndarray:
    rows = read_manifest(corpus["train"])
    return load_audio(rows["audio_path"].iloc[int(rows["duration"].argmax())])


def offline(model, samples: np.ndarray) -> tuple[np.ndarray, str]:
    logits, lengths = model.logits(samples[None], np.array([len(samples)], np.int32))
    return logits.numpy()[0], greedy_decode(logits.numpy(), lengths.numpy())[0]


def test_streamed_chunks_of_any_size_end_with_the_offline_logits_and_transcript(streaming_model, utterance):
    model = load_model_file(streaming_model, compile=False)
    expected_logits, expected_text = offline(model, utterance)
    recognizer = StreamingRecognizer(model)
    step = tf.function(recognizer.step, input_signature=[
        tf.TensorSpec([1, None], tf.float32), recognizer.state_specs(), tf.TensorSpec([], tf.bool)])
    for seed in range(3):
        state, pieces, position = recognizer.initial_state(1), [], 0
        rng = np.random.default_rng(seed)
        while position < len(utterance):
            size = int(rng.choice([0, 1, 159, 160, 2560, int(rng.integers(1, 8000))]))
            state, logits = step(utterance[None, position: position + size], state, tf.constant(False))
            pieces.append(logits.numpy()[0])
            position += size
        state, logits = step(utterance[None, :0], state, tf.constant(True))
        streamed = np.concatenate(pieces + [logits.numpy()[0]])
        assert streamed.shape == expected_logits.shape
        np.testing.assert_allclose(streamed, expected_logits, atol=1e-4)
        assert state["transcript"].numpy()[0].decode() == expected_text
        assert int(state["frames"][0]) == len(expected_logits)


def test_partials_grow_as_audio_arrives_and_the_final_equals_offline(streaming_model, utterance):
    model = load_model_file(streaming_model, compile=False)
    streamer = Streamer(model)
    partials = [streamer.feed(utterance[start: start + 2560]) for start in range(0, len(utterance), 2560)]
    final = streamer.finish()
    assert final.text == offline(model, utterance)[1] and final.text.strip()
    assert all(final.text.startswith(partial.text) for partial in partials)  # greedy partials only grow
    assert partials[len(partials) // 2].text != final.text  # the end was not known half way through
    # Partial words carry times from the stream's start, and keep them as more audio arrives.
    # (The first partial with a word: a 3-epoch tiny model may have none half way through.)
    first = next((partial for partial in partials if partial.words), None)
    assert first is not None and first.words[0].start == final.words[0].start
    assert all(0 <= word.start < word.end <= len(utterance) / 16000 + 0.1 for word in final.words)
    with pytest.raises(StreamingError, match="finished"):
        streamer.feed(utterance[:160])


def test_streaming_with_beam_search_ends_with_the_offline_beam_result(streaming_model, utterance):
    model = load_model_file(streaming_model, compile=False)
    decoder = BeamSearchDecoder(beam_width=8, hotwords=[Hotword("the", 1.0)], nbest=2, alphabet=model.alphabet)
    streamer = Streamer(model, decoder)
    partials = [streamer.feed(utterance[start: start + 1760]) for start in range(0, len(utterance), 1760)]
    final = streamer.finish()
    logits = model.logits(utterance[None], np.array([len(utterance)], np.int32))[0].numpy()[0]
    expected = decoder.decode_utterance(logits, frame_seconds=output_frame_seconds(model.ds2_config))
    assert final.text == expected.text and final.text.strip()
    assert [w.text for w in final.words] == [w.text for w in expected.words]
    assert [h.text for h in final.nbest] == [h.text for h in expected.nbest]
    assert final.score == pytest.approx(expected.score, abs=1e-3)
    assert partials[-1].text == offline(model, utterance)[1]  # partials stay greedy


def test_transcribe_stream_prints_partials_and_the_offline_transcript(streaming_model, utterance, tmp_path):
    path = tmp_path / "talk.wav"
    soundfile.write(path, utterance, 16000, subtype="PCM_16")
    expected = offline(load_model_file(streaming_model, compile=False), load_audio(path))[1]
    result = CliRunner().invoke(main, ["transcribe", "--stream", "--model-file", str(streaming_model), str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"{path}\t{expected}"
    assert f"{path}\tpartial\t" in result.stderr
    pcm = (np.clip(load_audio(path), -1, 32767 / 32768) * 32768).astype("<i2").tobytes()
    piped = CliRunner().invoke(main, ["transcribe", "--stream", "--chunk-ms", "100", "--model-file",
                                      str(streaming_model), "-"], input=pcm)
    assert piped.exit_code == 0, piped.output
    assert piped.stdout.splitlines()[-1] == f"-\t{expected}"
    beam = CliRunner().invoke(main, ["transcribe", "--stream", "--decoder", "beam", "--model-file",
                                     str(streaming_model), str(path)])
    assert beam.exit_code == 0, beam.output
    offline_beam = CliRunner().invoke(main, ["transcribe", "--decoder", "beam", "--model-file", str(streaming_model),
                                             str(path)])
    assert beam.stdout.splitlines()[-1] == offline_beam.stdout.splitlines()[-1]


def test_streaming_a_model_that_cannot_is_one_line(trained_model, tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, np.zeros(16000, np.float32), 16000)
    result = CliRunner().invoke(main, ["transcribe", "--stream", "--model-file", str(trained_model), str(path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: this model is bidirectional: streaming needs a model trained with --set bidirectional=false "
        "--set streaming=true --set lookahead=N"]
    with pytest.raises(StreamingError):
        Streamer(load_model_file(trained_model, compile=False))
    with pytest.raises(ValueError, match="streaming=true needs bidirectional=false"):
        preset("tiny").replace(streaming=True)


# A TF Serving stand-in for columnar JSON bodies, in a process that never imports ds2_keras, driving
# examples/streaming_client.py chunk by chunk; prints the partials and the offline transcript.
STREAM_SERVER = r'''
import json, sys
import numpy as np
import tensorflow as tf

sys.path.insert(0, sys.argv[3])
from streaming_client import read_waveform, stream

model = tf.saved_model.load(sys.argv[1])

def tensor(value, spec):
    if spec.dtype == tf.string:
        return tf.constant(value)
    return tf.constant(np.array(value, dtype=spec.dtype.as_numpy_dtype))

def send(body):
    body = json.loads(json.dumps(body))  # exactly what goes over the wire
    signature = model.signatures[body["signature_name"]]
    specs = signature.structured_input_signature[1]
    outputs = signature(**{name: tensor(body["inputs"][name], spec) for name, spec in specs.items()})
    listed = {name: [v.decode() for v in t.numpy()] if t.dtype == tf.string else t.numpy().tolist()
              for name, t in outputs.items()}
    return json.loads(json.dumps({"outputs": listed}))

samples = read_waveform(sys.argv[2])
texts = [text for text, _ in stream(samples, 2560, send)]
offline = model.signatures["serving_default"](waveforms=tf.constant(samples[None]),
                                              lengths=tf.constant([len(samples)]))["transcripts"]
print(json.dumps({"streamed": texts, "offline": offline.numpy()[0].decode(), "ds2": "ds2_keras" in sys.modules}))
'''


def test_stream_step_signature_in_a_fresh_process_gives_the_offline_transcript(streaming_model, utterance, tmp_path):
    path = tmp_path / "talk.wav"
    soundfile.write(path, utterance, 16000, subtype="PCM_16")
    export = export_saved_model(load_model_file(streaming_model, compile=False), tmp_path / "serving")
    result = subprocess.run([sys.executable, "-c", STREAM_SERVER, str(export), str(path), str(ROOT / "examples")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert not reply["ds2"]
    assert reply["streamed"][-1] == reply["offline"] == offline(load_model_file(streaming_model, compile=False),
                                                                load_audio(path))[1]
    assert len(reply["streamed"]) > 2 and reply["streamed"][0] != reply["streamed"][-1]

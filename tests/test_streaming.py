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

from ds2_keras.data.audio import load_audio
from ds2_keras.model.checkpoints import load_model_file
from ds2_keras.cli.main import main
from ds2_keras.core.config import preset
from ds2_keras.decode.decoders import BeamSearchDecoder, Hotword, greedy_decode
from ds2_keras.deploy.export import export_saved_model
from ds2_keras.core.frames import output_frame_seconds
from ds2_keras.data.manifest import read_manifest
from ds2_keras.deploy.streaming import Streamer, StreamingError, StreamingRecognizer, container_name
from ds2_keras.train.fit import FitRequest, fit

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


@pytest.fixture(scope="module")
def streaming_export(streaming_model, tmp_path_factory) -> Path:
    return export_saved_model(load_model_file(streaming_model, compile=False), tmp_path_factory.mktemp("serving"))


def test_stream_step_signature_in_a_fresh_process_gives_the_offline_transcript(streaming_model, streaming_export,
                                                                                utterance, tmp_path):
    path = tmp_path / "talk.wav"
    soundfile.write(path, utterance, 16000, subtype="PCM_16")
    export = streaming_export
    result = subprocess.run([sys.executable, "-c", STREAM_SERVER, str(export), str(path), str(ROOT / "examples")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert not reply["ds2"]
    assert reply["streamed"][-1] == reply["offline"] == offline(load_model_file(streaming_model, compile=False),
                                                                load_audio(path))[1]
    assert len(reply["streamed"]) > 2 and reply["streamed"][0] != reply["streamed"][-1]


def test_stream_step_refuses_bad_audio_bad_state_and_a_step_after_the_final_one(streaming_export, utterance):
    """Each fault is an InvalidArgument naming the input, as serving_default's checks are."""
    signatures = tf.saved_model.load(str(streaming_export)).signatures
    step = signatures["stream_step"]
    start = signatures["stream_start"](batch_size=tf.constant(1))
    chunk = tf.constant(utterance[None, :2560])
    good = step(audio=chunk, final=tf.constant(False), **start)
    state = {name: value for name, value in good.items() if name.startswith("state_")}

    def refused(audio=chunk, final=False, **changed) -> str:
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            step(audio=audio, final=tf.constant(final), **{**state, **changed})
        return error.value.message

    nan = utterance[None, :2560].copy()
    nan[0, 100] = np.nan
    assert "audio must hold finite samples" in refused(audio=tf.constant(nan))
    assert "state_rnn0_0 must hold finite values" in refused(state_rnn0_0=state["state_rnn0_0"] + np.inf)
    assert "state_conv0 must have the batch size of audio" in refused(
        state_conv0=tf.concat([state["state_conv0"]] * 2, axis=0))
    window = STREAMING_TINY.window_samples
    assert f"state_samples must have at most {window - 1} in dimension 1" in refused(
        state_samples=tf.zeros([1, window]))
    assert "state_frames must be >= 0" in refused(state_frames=tf.constant([-3]))
    final = step(audio=chunk, final=tf.constant(True), **state)
    finished = {name: value for name, value in final.items() if name.startswith("state_")}
    state.update(finished)
    assert "this stream has finished" in refused(audio=chunk[:, :0], final=True)
    assert "this stream has finished" in refused(final=False)
    # Sending the state before the final step again (a retry) gives the same answer: nothing appended.
    again = step(audio=chunk, final=tf.constant(True), **{name: value for name, value in good.items()
                                                         if name.startswith("state_")})
    assert again["transcripts"].numpy()[0] == final["transcripts"].numpy()[0]


def test_transcribe_stream_refuses_a_container_on_stdin_and_goes_on_past_a_bad_file(streaming_model, utterance,
                                                                                   tmp_path):
    path = tmp_path / "talk.wav"
    soundfile.write(path, utterance, 16000, subtype="PCM_16")
    piped = CliRunner().invoke(main, ["transcribe", "--stream", "--model-file", str(streaming_model), "-"],
                               input=path.read_bytes())
    assert piped.exit_code == 1
    assert piped.output.strip().splitlines() == [
        "Error: -: this is a WAV file, not raw 16-bit PCM; pass the file's path instead of -, or convert to raw PCM "
        "first (ffmpeg -i IN -f s16le -ac 1 -ar 16000 -)"]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00")
    result = CliRunner().invoke(main, ["transcribe", "--stream", "--model-file", str(streaming_model),
                                       str(broken), str(path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1].startswith(f"{path}\t")  # the good file after the bad one
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors[0].startswith(f"Error: {broken}: ") and errors[-1] == "Error: 1 of 2 audio files could not be transcribed"


@pytest.mark.parametrize("head, kind", [(b"RIFF\x24\x00\x00\x00WAVE", "a WAV file"), (b"fLaC\x00", "a FLAC file"),
                                        (b"OggS\x00", "an Ogg file"), (b"ID3\x04", "an MP3 file"),
                                        (b"\xff\xfb\x90\x44", "an MP3 file"), (b"\xff\xff\xff\xff", None),
                                        (b"\x00\x00\x01\x00", None)])
def test_container_names_tell_containers_from_raw_pcm(head, kind):
    assert container_name(head) == kind

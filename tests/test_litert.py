"""LiteRT export (`ds2 export --format litert`) and the TF-free runtime (ds2_keras.deploy.litert_runtime).

Float exports must give the Keras model's logits (the STFT is a matmul there, the rest the same
ops): within 1e-4 absolute, logits being O(1..10). Streaming through `stream_step` in chunks of
any size must give the offline signature's logits. Every quantization must export and run.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from ds2_keras.model.checkpoints import load_model_file
from ds2_keras.cli.main import main
from ds2_keras.core.config import preset
from ds2_keras.decode.decoders import greedy_hypotheses
from ds2_keras.deploy.litert_export import QUANTIZATIONS, export_litert
from ds2_keras.deploy.litert_runtime import LiteRTModel, sidecar_path
from ds2_keras.model.network import DS2Model
from ds2_keras.decode.words import greedy_hypothesis
from faults import one_line_error, run_ds2
from test_transcribe import speechlike
from test_waveform_model import DATA, legacy_inputs

FLOAT_TOLERANCE = 1e-4
STREAMING_TINY = preset("tiny").replace(bidirectional=False, streaming=True, lookahead=2)
RATE = 16000


@pytest.fixture(scope="module")
def streaming_model() -> DS2Model:
    """An untrained streaming tiny model (seeded): exports and streams need no training."""
    import keras

    keras.utils.set_random_seed(3)
    return DS2Model(STREAMING_TINY)


@pytest.fixture(scope="module")
def bi_export(trained_model, tmp_path_factory) -> Path:
    return export_litert(load_model_file(trained_model, compile=False), tmp_path_factory.mktemp("bi"))


@pytest.fixture(scope="module")
def streaming_export(streaming_model, tmp_path_factory) -> Path:
    return export_litert(streaming_model, tmp_path_factory.mktemp("uni") / "uni.tflite")


def keras_logits(model: DS2Model, waveform: np.ndarray) -> np.ndarray:
    logits, lengths = model.logits(waveform[None], np.array([len(waveform)], np.int32))
    return logits.numpy()[0, : int(lengths[0])]


def test_float_export_gives_the_keras_logits_with_builtin_ops_only(trained_model, bi_export):
    model = load_model_file(trained_model, compile=False)
    assert b"Flex" not in bi_export.read_bytes()  # Flex (SELECT_TF_OPS) ops carry a "Flex" name
    litert = LiteRTModel(bi_export)
    for seconds, seed in ((2.5, 0), (0.7, 1), (0.015, 2)):  # the last is shorter than one window
        waveform = speechlike(seconds, seed)
        expected = keras_logits(model, waveform)
        found = litert.logits(waveform)
        assert found.shape == expected.shape
        np.testing.assert_allclose(found, expected, atol=FLOAT_TOLERANCE)
    # Zero padding past the length changes nothing, as in a padded Keras batch.
    waveform = speechlike(1.2, 3)
    outputs = litert._offline(waveforms=np.pad(waveform, (0, 8000))[None], lengths=np.array([len(waveform)], np.int32))
    np.testing.assert_allclose(outputs["logits"][0, : int(outputs["logit_lengths"][0])],
                               keras_logits(model, waveform), atol=FLOAT_TOLERANCE)


def test_a_model_file_from_version_0_1_exports_and_gives_its_recorded_logits(tmp_path):
    model = load_model_file(DATA / "ds2-keras-0.1-tiny.keras", compile=False)
    expected = np.load(DATA / "ds2-keras-0.1-tiny-logits.npz")
    litert = LiteRTModel(export_litert(model, tmp_path))
    waveforms, lengths = legacy_inputs()
    for row, length in enumerate(lengths):
        found = litert.logits(waveforms[row, :length])
        frames = int(expected["logit_lengths"][row])
        assert len(found) == frames
        np.testing.assert_allclose(found, expected["logits"][row, :frames], atol=FLOAT_TOLERANCE)


def test_streaming_steps_over_random_chunks_give_the_offline_logits(streaming_model, streaming_export):
    litert = LiteRTModel(streaming_export)
    contract = json.loads(sidecar_path(streaming_export).read_text())["signatures"]["stream_step"]
    assert set(contract["inputs"]) == {"audio", "valid", "conv0", "rnn0_0", "lookahead"}
    rng = np.random.default_rng(0)
    for seconds in (2.3, 0.33, 0.01):
        waveform = speechlike(seconds, int(seconds * 100))
        offline = litert.logits(waveform)
        np.testing.assert_allclose(offline, keras_logits(streaming_model, waveform), atol=FLOAT_TOLERANCE)
        streamer, start = litert.streamer(), 0
        while start < len(waveform):
            size = int(rng.integers(1, 6000))
            streamer.feed(waveform[start:start + size])
            start += size
        final = streamer.finish()
        assert streamer.logits.shape == offline.shape
        np.testing.assert_allclose(streamer.logits, offline, atol=1e-5)
        assert final == litert.transcribe(waveform)


@pytest.mark.parametrize("quantize", QUANTIZATIONS[1:])
def test_every_quantization_exports_and_runs(quantize, trained_model, corpus, streaming_model, bi_export,
                                             streaming_export, tmp_path):
    calibration = [speechlike(1.0, seed) for seed in range(3)] if quantize == "int8" else None
    waveform = speechlike(1.5, 9)
    for model, float_export in ((load_model_file(trained_model, compile=False), bi_export),
                                (streaming_model, streaming_export)):
        path = export_litert(model, tmp_path / model.name, quantize, calibration)
        assert path.name == f"model-{quantize}.tflite"
        assert path.stat().st_size < float_export.stat().st_size
        assert json.loads(sidecar_path(path).read_text())["quantization"] == quantize
        litert = LiteRTModel(path)
        logits = litert.logits(waveform)
        reference = LiteRTModel(float_export).logits(waveform)
        assert logits.shape == reference.shape and np.isfinite(logits).all()
        if quantize == "float16":
            np.testing.assert_allclose(logits, reference, atol=0.02 * np.abs(reference).max())
        if quantize == "int8":  # int8 everywhere but the spectrogram, whose power spans 10 orders of magnitude
            types = tensor_types(path)
            front = {types[name] for name in types if "log_spectrogram" in name}
            assert "INT8" not in front and "FLOAT32" in front
            assert "INT8" in {types[name] for name in types if "conv0" in name or "logits" in name}
        if model.ds2_config.streaming:
            streamer = litert.streamer()
            streamer.feed(waveform)
            streamer.finish()
            assert streamer.logits.shape == logits.shape and np.isfinite(streamer.logits).all()


def tensor_types(path: Path) -> dict[str, str]:
    """Tensor name -> element type name, over every subgraph of a .tflite file."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    names = {value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
    flat = flatbuffer_utils.read_model(str(path))
    return {tensor.name.decode(): names[tensor.type] for graph in flat.subgraphs for tensor in graph.tensors}


def test_numpy_greedy_words_equal_the_tf_decoding():
    rng = np.random.default_rng(1)
    alphabet = STREAMING_TINY.output_alphabet
    logits = rng.normal(size=(3, 80, alphabet.num_classes)).astype(np.float32)
    logits[:, :, alphabet.space_index] += rng.choice([0.0, 4.0], size=(3, 80), p=[0.8, 0.2])  # words
    logits[:, :, 0] += 1.5  # blanks between emissions
    logits[1, 20:24] = logits[1, 20]  # a repeated symbol collapses
    expected = greedy_hypotheses(logits, frame_seconds=0.02, alphabet=alphabet)
    for row in range(3):
        found = greedy_hypothesis(logits[row], 0.02, alphabet)
        assert found.text == expected[row].text and len(found.words) > 1
        assert [(w.text, w.start, w.end) for w in found.words] == [(w.text, w.start, w.end) for w in expected[row].words]
        np.testing.assert_allclose([w.confidence for w in found.words], [w.confidence for w in expected[row].words],
                                   atol=2e-4)
        assert found.score == pytest.approx(expected[row].score, abs=1e-3)


NO_TENSORFLOW = ("import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
                 "from ds2_keras.deploy.litert_runtime import main\nsys.exit(main(sys.argv[1:]))")


def run_without_tensorflow(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TENSORFLOW, *args], capture_output=True, text=True, timeout=120)


def test_runtime_transcribes_where_tensorflow_cannot_be_imported(trained_model, bi_export, streaming_export,
                                                                  tmp_path):
    waveform = speechlike(2.0, 5)
    audio = tmp_path / "speech.wav"
    soundfile.write(audio, waveform, RATE, subtype="FLOAT")
    model = load_model_file(trained_model, compile=False)
    config = model.ds2_config
    from ds2_keras.core.frames import output_frame_seconds

    (expected,) = greedy_hypotheses(keras_logits(model, waveform)[None], frame_seconds=output_frame_seconds(config),
                                    alphabet=model.alphabet)
    result = run_without_tensorflow(str(bi_export), str(audio), "--format", "json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["audio"] == str(audio) and record["text"] == expected.text
    assert [w["text"] for w in record["words"]] == [w.text for w in expected.words]
    streamed = run_without_tensorflow(str(streaming_export), str(audio), "--stream", "--chunk-ms", "70")
    offline = run_without_tensorflow(str(streaming_export), str(audio))
    assert streamed.returncode == 0 and offline.returncode == 0, streamed.stderr + offline.stderr
    assert streamed.stdout == offline.stdout and streamed.stdout.startswith(f"{audio}\t")
    refused = run_without_tensorflow(str(bi_export), str(audio), "--stream")
    assert refused.returncode == 1 and "no stream_step" in refused.stderr and "Traceback" not in refused.stderr


def test_ds2_transcribe_streams_a_litert_file_to_its_offline_result(streaming_export, tmp_path):
    waveform = speechlike(1.3, 8)
    audio = tmp_path / "speech.wav"
    soundfile.write(audio, waveform, RATE, subtype="FLOAT")
    result = CliRunner().invoke(main, ["transcribe", "--model-file", str(streaming_export), "--stream",
                                       "--chunk-ms", "50", str(audio), "--format", "json"])
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final["text"] == LiteRTModel(streaming_export).transcribe(waveform).text


def test_ds2_transcribe_runs_a_litert_file_like_the_keras_model(trained_model, bi_export, tmp_path):
    audio = tmp_path / "speech.wav"
    soundfile.write(audio, speechlike(1.8, 6), RATE, subtype="FLOAT")
    runner = CliRunner()
    from_keras = runner.invoke(main, ["transcribe", "--model-file", str(trained_model), str(audio), "--format", "json"])
    from_litert = runner.invoke(main, ["transcribe", "--model-file", str(bi_export), str(audio), "--format", "json"])
    assert from_keras.exit_code == 0 and from_litert.exit_code == 0, from_litert.output
    keras_record, litert_record = json.loads(from_keras.output), json.loads(from_litert.output)
    assert litert_record["text"] == keras_record["text"]
    assert [(w["text"], w["start"], w["end"]) for w in litert_record["words"]] == \
        [(w["text"], w["start"], w["end"]) for w in keras_record["words"]]


def test_beam_search_decodes_litert_logits_as_it_decodes_the_keras_models(trained_model, bi_export,
                                                                          streaming_export, tmp_path):
    """--decoder beam reads a LiteRT file's logits as it reads the Keras model's, offline and streamed."""
    audio = tmp_path / "speech.wav"
    soundfile.write(audio, speechlike(1.8, 6), RATE, subtype="FLOAT")
    beam = ["--decoder", "beam", "--beam-width", "8", "--nbest", "3", "--format", "json", str(audio)]

    def records(model: Path, *options: str) -> list[dict]:
        result = CliRunner().invoke(main, ["transcribe", "--model-file", str(model), *options, *beam])
        assert result.exit_code == 0, result.output
        assert "decoder: beam search" in result.stderr
        return [json.loads(line) for line in result.stdout.strip().splitlines()[-1:]]

    def nbest(record: dict) -> list[str]:
        return [entry["text"] for entry in record["nbest"]]

    assert [nbest(r) for r in records(bi_export)] == [nbest(r) for r in records(trained_model)]
    streamed, offline = records(streaming_export, "--stream", "--chunk-ms", "50"), records(streaming_export)
    assert [nbest(r) for r in streamed] == [nbest(r) for r in offline] and len(nbest(offline[0])) == 3


def test_a_litert_file_where_a_keras_file_is_needed_is_one_line(bi_export, corpus, tmp_path):
    for command in (["export", "--model-file", str(bi_export), str(tmp_path / "out")],
                    ["evaluate", "--manifest", f"test:{corpus['test']}", "--model-file", str(bi_export)],
                    ["fit", "--manifest", f"train:{corpus['train']}", "-e", "1", "-s", str(tmp_path / "run"),
                     "--model-file", str(bi_export)]):
        error = one_line_error(run_ds2(command))
        assert str(bi_export) in error and "LiteRT export" in error and ".keras" in error, error


def test_broken_litert_files_and_sidecars_are_one_line(trained_model, bi_export, tmp_path):
    audio = tmp_path / "speech.wav"
    soundfile.write(audio, speechlike(0.5, 7), RATE)
    copy = tmp_path / "copy.tflite"
    copy.write_bytes(bi_export.read_bytes())
    sidecar_path(copy).write_text(sidecar_path(bi_export).read_text())
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(bi_export.read_bytes()[:5000])
    sidecar_path(truncated).write_text(sidecar_path(bi_export).read_text())
    foreign = tmp_path / "foreign.tflite"
    foreign.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(200))
    lonely = tmp_path / "lonely.tflite"
    lonely.write_bytes(bi_export.read_bytes())
    cases = {truncated: "does not match", foreign: "sidecar JSON of foreign.tflite not found",
             lonely: "sidecar JSON of lonely.tflite not found", trained_model: "not a LiteRT"}
    for path, cause in cases.items():
        result = run_without_tensorflow(str(path), str(audio))
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("Error: ") and cause in result.stderr, result.stderr
    sidecar_path(copy).write_text("{not json")
    assert "unreadable sidecar JSON" in one_line_error(run_ds2(["transcribe", "--model-file", str(copy), str(audio)]))
    facts = json.loads(sidecar_path(bi_export).read_text())
    sidecar_path(copy).write_text(json.dumps({**facts, "format": "other"}))
    assert "not a ds2 LiteRT sidecar" in one_line_error(run_ds2(["transcribe", "--model-file", str(copy), str(audio)]))


def test_int8_without_calibration_is_refused_before_any_work(trained_model, tmp_path):
    result = CliRunner().invoke(main, ["export", "--model-file", str(trained_model), str(tmp_path / "out"),
                                       "--format", "litert", "--quantize", "int8"])
    assert result.exit_code == 2 and "--calibration" in result.output
    assert not (tmp_path / "out").exists()

"""`ds2 export`, checked the way TF Serving uses the result.

The SavedModel is loaded in a separate Python process that never imports ds2_keras (as on a
server), and requests are the REST JSON bodies of examples/serving_client.py, turned into
tensors as TF Serving does; the served transcripts, words and word times must equal `ds2
transcribe`'s.
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures
import importlib.util
import io
import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from ds2_keras.model.checkpoints import load_model_file
from ds2_keras.cli.main import main
from ds2_keras.deploy.export import export_saved_model
from ds2_keras.deploy.serving_versions import ExportError, partial_directory
from ds2_keras.core.locks import holding_directory
from ds2_keras.deploy.recognizer import recognizer
from ds2_keras.deploy.transcribe import transcribe_files
from faults import DS2, as_unprivileged, file_size_limit, one_line_error, run_ds2, shared_dir  # noqa: F401 - a fixture
from test_transcribe import RATE, speechlike, write_tiny_model

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# TF Serving's REST predict, emulated: row ("instances") or columnar ("inputs") JSON becomes
# one tensor per signature input ({"b64": ...} values are bytes), and the reply has the
# same shape as Serving's ("predictions" / "outputs", or "error").
SERVER = r'''
import base64, json, sys
import numpy as np
import tensorflow as tf

def tensor(values, spec):
    if spec.dtype == tf.string:
        return tf.constant([base64.b64decode(v["b64"]) for v in values])
    return tf.constant(np.array(values, dtype=spec.dtype.as_numpy_dtype))

def listed(values):
    values = values.numpy()
    if values.dtype == object:  # strings of any rank, as UTF-8 text
        values = np.vectorize(lambda v: v.decode("utf-8"), otypes=[object])(values)
    return values.tolist()

model = tf.saved_model.load(sys.argv[1])
replies = []
for body in json.load(open(sys.argv[2])):
    signature = model.signatures[body.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]
    rows = "instances" in body
    columns = {n: [r[n] for r in body["instances"]] for n in specs} if rows else body["inputs"]
    try:
        outputs = {n: listed(t) for n, t in signature(**{n: tensor(columns[n], s) for n, s in specs.items()}).items()}
    except tf.errors.InvalidArgumentError as error:
        replies.append({"error": error.message})
        continue
    replies.append({"predictions": [dict(zip(outputs, r)) for r in zip(*outputs.values())]} if rows
                   else {"outputs": outputs})
json.dump({"replies": replies, "ds2_imported": "ds2_keras" in sys.modules}, open(sys.argv[3], "w"))
'''


def bad_requests(wav: bytes) -> dict[str, tuple[dict, str]]:
    """Requests that break the serving contract, by name: (REST body, the cause the error must name).

    `wav` is a good WAV file; its broken variants are what a client sends by mistake.
    """
    def columns(waveforms: list[list[float]], lengths: list[int]) -> dict:
        return {"inputs": {"waveforms": waveforms, "lengths": lengths}}

    def wav_request(contents: bytes) -> dict:
        return {"signature_name": "transcribe_wav",
                "instances": [{"wav_bytes": {"b64": base64.b64encode(contents).decode("ascii")}}]}

    flac = io.BytesIO()
    soundfile.write(flac, speechlike(0.5, 11), RATE, format="FLAC")
    # An unknown chunk after the format chunk whose id is not text and whose size is past 2**31.
    huge_chunk = wav[:36] + b"\xff\xfe\xfd\xfc" + struct.pack("<I", 0xFFFFFFF0) + wav[36:]
    header_not_found = "wav_bytes must hold whole WAV files (RIFF/WAVE header not found)"
    extensible_float = io.BytesIO()
    soundfile.write(extensible_float, speechlike(0.5, 12), RATE, subtype="FLOAT", format="WAVEX")
    return {
        "fewer lengths than rows": (columns([[0.0] * 400] * 2, [400]), "waveforms and lengths must have the same batch size"),
        "more lengths than rows": (columns([[0.0] * 400], [400, 400]), "waveforms and lengths must have the same batch size"),
        "negative length": (columns([[0.0] * 400], [-1]), "lengths must be >= 0"),
        "length past the width": (columns([[0.0] * 400], [401]), "lengths must not exceed the padded width of the waveforms"),
        "NaN sample": (columns([[0.0] * 399 + [float("nan")]], [400]), "waveforms must hold finite samples"),
        "infinite sample": (columns([[float("inf")] + [0.0] * 399], [400]), "waveforms must hold finite samples"),
        "text instead of a WAV": (wav_request(b"NOT A WAV FILE, just some text" * 4), header_not_found),
        "binary garbage": (wav_request(bytes(range(256)) * 4), header_not_found),
        "FLAC instead of a WAV": (wav_request(flac.getvalue()), header_not_found),
        "empty bytes": (wav_request(b""), header_not_found),
        "chunk size past 2**31": (wav_request(huge_chunk), "wav_bytes must hold whole WAV files (a chunk size is out of range)"),
        "truncated WAV": (wav_request(wav[:30]), "Data too short"),
        "float WAVE_FORMAT_EXTENSIBLE": (wav_request(extensible_float.getvalue()), "Expected 1 (PCM)"),
    }


def load_client():
    spec = importlib.util.spec_from_file_location("serving_client", ROOT / "examples" / "serving_client.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    return client


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Export a tiny model with the CLI, write test audio, and run every request in one server process."""
    directory = tmp_path_factory.mktemp("export")
    model_file = write_tiny_model(directory / "model.keras")
    result = CliRunner().invoke(main, ["export", "--model-file", str(model_file), str(directory / "ds2")])
    assert result.exit_code == 0, result.output
    mono = []
    for seed, seconds in enumerate((0.6, 2.3, 1.4)):  # different lengths in one batch
        mono.append(directory / f"utterance{seed}.wav")
        soundfile.write(mono[-1], speechlike(seconds, seed), RATE, subtype="PCM_16")
    stereo = directory / "stereo.wav"
    soundfile.write(stereo, np.stack([speechlike(1.8, 8), speechlike(1.8, 9)], axis=1), RATE, subtype="PCM_16")
    wrong_rate = directory / "22k.wav"
    soundfile.write(wrong_rate, speechlike(1.0, 10, 22050), 22050, subtype="PCM_16")
    extensible = directory / "extensible.wav"  # WAVE_FORMAT_EXTENSIBLE, as Windows tools write PCM
    soundfile.write(extensible, soundfile.read(mono[0])[0], RATE, subtype="PCM_16", format="WAVEX")
    wavs = [*mono, stereo]
    client = load_client()
    bad = bad_requests(mono[0].read_bytes())
    requests = [client.build_request(wavs, "rows"), client.build_request(wavs, "columns"),
                client.build_request(wavs, "wav"), client.build_request([wrong_rate], "wav"),
                client.build_request([extensible], "wav"), *(request for request, _ in bad.values())]
    (directory / "requests.json").write_text(json.dumps(requests))
    subprocess.run([sys.executable, "-c", SERVER, str(directory / "ds2" / "1"), str(directory / "requests.json"),
                    str(directory / "replies.json")], check=True, cwd=directory, capture_output=True)
    module = recognizer(load_model_file(model_file, compile=False))
    result = CliRunner().invoke(main, ["transcribe", "--model-file", str(model_file), "--format", "json",
                                                     "--output-dir", str(directory / "json"), *map(str, wavs)])
    assert result.exit_code == 0, result.output
    served = json.loads((directory / "replies.json").read_text())
    return {
        "model_file": model_file, "root": directory / "ds2", "client": client, "wavs": wavs,
        "local": [hypothesis.text for _, hypothesis in transcribe_files(module, wavs)],
        "json": [json.loads((directory / "json" / f"{wav.stem}.json").read_text()) for wav in wavs],
        "refused": {name: (reply, cause) for (name, (_, cause)), reply in zip(bad.items(), served["replies"][5:])},
        **served,
    }


def test_server_process_needs_no_ds2_code(served):
    assert served["ds2_imported"] is False


def test_row_format_matches_transcribe(served):
    rows = served["replies"][0]["predictions"]
    assert [row["transcripts"] for row in rows] == served["local"]
    assert all(served["local"]) and len(set(served["local"])) == len(served["local"])
    for row in rows:  # padding frames past each utterance's length are zero
        logits = np.array(row["logits"])
        assert logits.shape[1] == 29 and 0 < row["logit_lengths"] <= logits.shape[0]


@pytest.mark.parametrize("reply", [0, 2], ids=["serving_default", "transcribe_wav"])
def test_served_words_and_times_match_transcribe_json(served, reply):
    rows = served["replies"][reply]["predictions"]
    assert sum(row["word_counts"] for row in rows) > len(rows)
    for row, record in zip(rows, served["json"], strict=True):
        count = row["word_counts"]
        assert row["transcripts"] == record["text"]
        assert row["words"][:count] == [word["text"] for word in record["words"]]
        for name in ("start", "end"):  # whole frames: exact, once float32 noise is rounded off as ds2 does
            assert [round(t, 3) for t in row[f"word_{name}s"][:count]] == [word[name] for word in record["words"]]
        assert row["word_confidences"][:count] == pytest.approx([word["confidence"] for word in record["words"]],
                                                                abs=2e-4)
        assert row["scores"] == pytest.approx(record["score"], abs=1e-3)
        # rectangular: every row padded to the most words in the batch
        widest = max(r["word_counts"] for r in rows)
        assert len(row["words"]) == len(row["word_starts"]) == len(row["word_confidences"]) == widest
        assert set(row["words"][count:]) <= {""} and set(row["word_ends"][count:]) <= {0.0}


def test_columnar_format_matches_row_format(served):
    outputs = served["replies"][1]["outputs"]
    assert outputs["transcripts"] == served["local"]
    assert outputs["logit_lengths"] == [row["logit_lengths"] for row in served["replies"][0]["predictions"]]


def test_wav_signature_matches_transcribe(served):
    assert served["client"].transcripts(served["replies"][2]) == served["local"]


def test_client_rescores_served_logits_as_transcribe_decodes_with_beam(served):
    hotword = ["--hotword", "a:1"]
    options = argparse.Namespace(lm=None, alpha=None, beta=None, unk_score=None, beam_width=16, hotword=["a:1"],
                                 hotwords=[])
    facts = served["root"] / "1" / "assets.extra" / "ds2.json"
    local = CliRunner().invoke(main, ["transcribe", "--model-file", str(served["model_file"]), "--decoder", "beam",
                                      "--beam-width", "16", *hotword, *map(str, served["wavs"])])
    assert local.exit_code == 0, local.output
    expected = [line.split("\t", 1)[1] for line in local.stdout.splitlines()]
    assert expected != served["local"]  # the beam with a hotword differs from the served greedy transcripts
    for reply in (0, 1, 2):  # rows, columns, wav
        assert served["client"].rescored(served["replies"][reply], facts, options) == expected


def test_wav_signature_refuses_other_sample_rates(served):
    assert "16000 Hz" in served["replies"][3]["error"]


def test_wav_signature_reads_wave_format_extensible_pcm(served):
    assert served["replies"][4]["predictions"][0]["transcripts"] == served["local"][0]


@pytest.mark.parametrize("name", list(bad_requests(b"")))
def test_a_request_breaking_the_contract_is_refused_in_words(served, name):
    """Each error reaches the client as readable text naming the cause, never echoing the request."""
    reply, cause = served["refused"][name]
    error = reply.get("error", "")
    assert cause in error, reply
    assert all(character.isprintable() or character in "\n\t" for character in error), error
    for echo in ("NOT A WAV", "fLaC", "\ufffd"):
        assert echo not in error


def test_saved_model_cli_shows_both_signatures(served):
    shown = subprocess.run([str(BIN / "saved_model_cli"), "show", "--dir", str(served["root"] / "1"), "--all"],
                           check=True, capture_output=True, text=True).stdout
    serving = shown.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    wav = shown.split("signature_def['transcribe_wav']")[1].split("signature_def[")[0]
    for name, dtype, shape in (("waveforms", "DT_FLOAT", "(-1, -1)"), ("lengths", "DT_INT32", "(-1)"),
                               ("transcripts", "DT_STRING", "(-1)"), ("logits", "DT_FLOAT", "(-1, -1, 29)"),
                               ("logit_lengths", "DT_INT32", "(-1)"), ("scores", "DT_FLOAT", "(-1)"),
                               ("words", "DT_STRING", "(-1, -1)"), ("word_starts", "DT_FLOAT", "(-1, -1)"),
                               ("word_ends", "DT_FLOAT", "(-1, -1)"), ("word_confidences", "DT_FLOAT", "(-1, -1)"),
                               ("word_counts", "DT_INT32", "(-1)")):
        assert f"['{name}'] tensor_info:\n        dtype: {dtype}\n        shape: {shape}" in serving
    assert "inputs['wav_bytes'] tensor_info:\n        dtype: DT_STRING" in wav
    assert "outputs['transcripts'] tensor_info:\n        dtype: DT_STRING" in wav
    assert "outputs['word_starts'] tensor_info:\n        dtype: DT_FLOAT" in wav


def test_client_dry_run_prints_the_request(served):
    printed = subprocess.run([sys.executable, str(ROOT / "examples" / "serving_client.py"), "--dry-run",
                              *map(str, served["wavs"][:2])], check=True, capture_output=True, text=True).stdout
    body = json.loads(printed)
    assert [row["lengths"] for row in body["instances"]] == [int(0.6 * RATE), int(2.3 * RATE)]
    assert len(body["instances"][0]["waveforms"]) == int(2.3 * RATE)


def test_versions_are_numbered_and_never_overwritten(served):
    model = load_model_file(served["model_file"], compile=False)
    second = export_saved_model(model, served["root"])
    assert second == served["root"] / "2" and (second / "saved_model.pb").is_file()
    assert (second / "variables").is_dir()
    result = CliRunner().invoke(main, ["export", "--model-file", str(served["model_file"]), str(served["root"]),
                                                 "--version", "2"])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {served['root'] / '2'}: version 2 already exists; pass another --version"
    assert sorted(p.name for p in served["root"].iterdir()) == ["1", "2"]  # no staging directory left


def test_export_on_a_gpu_machine_still_serves_on_cpu(served, monkeypatch, tmp_path):
    """Keras traces cuDNN kernels when it sees a GPU; they have no CPU kernel, so export avoids them."""
    keras_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")
    monkeypatch.setattr(keras_rnn, "_is_gpu_available", lambda: True)
    model = load_model_file(served["model_file"], compile=False)
    target = export_saved_model(model, tmp_path)
    assert b"CudnnRNN" not in (target / "saved_model.pb").read_bytes()
    assert model.get_layer("bigru0").forward_layer.use_cudnn == "auto"  # restored for local use


def test_missing_model_file_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["export", "--model-file", str(tmp_path / "none.keras"), str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'none.keras'}: model file not found"
    assert not (tmp_path / "out").exists()


def test_export_onto_a_file_or_under_one_is_one_line(served, tmp_path):
    (tmp_path / "file").write_text("kept")
    for out_dir in (tmp_path / "file", tmp_path / "file" / "serving"):
        result = CliRunner().invoke(main, ["export", "--model-file", str(served["model_file"]), str(out_dir)])
        assert result.exit_code == 1
        assert result.stderr.strip() == f"Error: {out_dir}: cannot write (not a directory)"
    assert (tmp_path / "file").read_text() == "kept"


def test_export_into_a_directory_it_may_not_write_is_one_line(served, shared_dir):
    user = as_unprivileged(shared_dir)
    model_file, out_dir = shared_dir / "model.keras", shared_dir / "serving"
    model_file.write_bytes(served["model_file"].read_bytes())
    out_dir.mkdir(mode=0o755)
    if not user:
        out_dir.chmod(0o555)
    result = run_ds2(["export", "--model-file", str(model_file), str(out_dir)], **user)
    assert one_line_error(result) == f"Error: {out_dir}: cannot write (permission denied)"
    assert list(out_dir.iterdir()) == []


def test_export_onto_a_full_disk_leaves_nothing_behind(served, tmp_path):
    """TensorFlow reports the full disk as a 50-line OpError; the user sees its cause in one line."""
    out_dir = tmp_path / "serving"
    result = run_ds2(["export", "--model-file", str(served["model_file"]), str(out_dir)],
                     preexec_fn=file_size_limit(64 * 1024))
    assert one_line_error(result) == f"Error: {out_dir / '1'}: cannot write (file too large: the file size limit was reached)"
    assert list(out_dir.iterdir()) == []


# Holds a staging directory the way a running export does, until killed.
LIVE_EXPORT = r'''
import sys, time
from pathlib import Path
from ds2_keras.deploy.serving_versions import partial_directory

with partial_directory(Path(sys.argv[1]), 7) as staging:
    print(staging, flush=True)
    time.sleep(600)
'''


def test_export_removes_what_killed_exports_left_and_spares_live_ones(served, tmp_path):
    out_dir = tmp_path / "serving"
    killed = subprocess.run([str(DS2), "export", "--model-file", str(served["model_file"]), str(out_dir)],
                            env={**os.environ, "DS2_FAULT": "export_staging:1"}, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]  # killed with its staging directory made
    dead = sorted(out_dir.glob(".1.partial-*"))
    assert [path.name.endswith(".lock") for path in dead] == [False, True], dead  # the staging directory, its lock
    live = subprocess.Popen([sys.executable, "-c", LIVE_EXPORT, str(out_dir)], stdout=subprocess.PIPE, text=True)
    try:
        live_staging = Path(live.stdout.readline().strip())
        result = CliRunner().invoke(main, ["export", "--model-file", str(served["model_file"]), str(out_dir)])
        assert result.exit_code == 0, result.output
        assert f"removed {dead[0]}, left by an export that did not finish" in result.output
        assert not any(path.exists() for path in dead)
        assert live_staging.is_dir() and Path(f"{live_staging}.lock").is_file()
    finally:
        live.kill()
        live.wait()
    export_saved_model(load_model_file(served["model_file"], compile=False), out_dir)
    assert sorted(path.name for path in out_dir.iterdir()) == ["1", "2"]


def test_exports_at_once_into_one_directory_get_distinct_versions(served, tmp_path):
    """No race on speed: the test holds what a running export holds, and the second export must
    see it whenever it runs."""
    model = load_model_file(served["model_file"], compile=False)
    out_dir = tmp_path / "serving"
    out_dir.mkdir()
    with partial_directory(out_dir, 1):  # an export writing version 1 right now
        assert export_saved_model(model, out_dir) == out_dir / "2"
        with pytest.raises(ExportError, match="version 1 is being exported by another process"):
            export_saved_model(model, out_dir, version=1)
    # An export that is choosing its version holds the directory: another one waits for it, then
    # sees the version it chose. Here the holder "chooses" 3 only after the second export started.
    with concurrent.futures.ThreadPoolExecutor(1) as second:
        with holding_directory(out_dir):
            exported = second.submit(export_saved_model, model, out_dir)
            (out_dir / "3").mkdir()
        assert exported.result(timeout=300) == out_dir / "4"
    assert sorted(path.name for path in out_dir.iterdir()) == ["2", "3", "4"]


def test_export_into_a_version_directory_does_not_nest(served):
    version = served["root"] / "1"
    result = CliRunner().invoke(main, ["export", "--model-file", str(served["model_file"]), str(version)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"Error: {version}: holds a SavedModel already (a version directory); pass the "
                                     "directory above it, which holds the numbered versions")
    assert not (version / "1").exists()

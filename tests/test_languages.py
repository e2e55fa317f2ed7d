"""Any language: a Spanish Common Voice corpus (espeak-ng speech, mp3 clips) through ingest, fit,
evaluate, LM, transcribe and export, and an English model fine-tuned on it with --init-from."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from corpus_fixtures import make_spoken_commonvoice
from ds2_keras.core.alphabet import ENGLISH_ALPHABET, Alphabet
from ds2_keras.model.checkpoints import load_model_file
from ds2_keras.cli.main import main
from ds2_keras.core.config import preset
from ds2_keras.data.dataset import evaluation_utterances, select_utterances
from ds2_keras.train.finetune import transfer_weights
from ds2_keras.data.manifest import read_manifest
from ds2_keras.model.network import DS2Model
from ds2_keras.train.fit import FitRequest, fit
from faults import one_line_error, run_ds2
from ds2_keras.ingest.commands import ingest

# Short sentences that hold ñ, ü and accented vowels; the first three are also the test split.
SENTENCES = {
    "common_voice_es_1.mp3": "El niño come pan.",
    "common_voice_es_2.mp3": "¡La cigüeña vuela mañana!",
    "common_voice_es_3.mp3": "Qué año más bonito.",
    "common_voice_es_4.mp3": "El señor canta.",
    "common_voice_es_5.mp3": "Mi pequeña araña.",
    "common_voice_es_6.mp3": "Sí, él está aquí.",
}
SPANISH_ONLY = set("ñüáéí")  # letters of these sentences that English lacks


@pytest.fixture(scope="module")
def spanish(tmp_path_factory) -> dict[str, Path]:
    """Manifests of a Common Voice `es` directory, ingested by `ds2 ingest commonvoice` as a user would."""
    work = tmp_path_factory.mktemp("spanish")
    root = work / "cv-corpus-17.0" / "es"
    make_spoken_commonvoice(root, "train", SENTENCES, voice="es")
    make_spoken_commonvoice(root, "test", dict(list(SENTENCES.items())[:3]), voice="es")
    manifests = {}
    for split in ("train", "test"):
        manifests[split] = work / f"{split}.csv"
        result = CliRunner().invoke(ingest, ["commonvoice", str(root), str(work / "transcripts"),
                                             str(manifests[split]), "--split", split, "--no-progress"])
        assert result.exit_code == 0 and "normalized as language es" in result.output, result.output
    return {**manifests, "clips": root / "clips"}


@pytest.fixture(scope="module")
def spanish_model(spanish, tmp_path_factory) -> Path:
    """A tiny model overfit on the six Spanish utterances (as test_training's English one is)."""
    keras.utils.set_random_seed(0)
    output = tmp_path_factory.mktemp("spanish-model")
    fit(FitRequest([spanish["train"]], [], epochs=60, batch_size=2, output_dir=output,
                   config=preset("tiny").replace(learning_rate=4e-3), save_every_steps=0, verbose=0))
    return output / "model.keras"


def test_commonvoice_in_another_language_keeps_its_letters(spanish, tmp_path):
    rows = read_manifest(spanish["train"])
    assert rows["language"].unique().tolist() == ["es"]
    assert "la cigüeña vuela mañana" in rows["text"].tolist() and "sí él está aquí" in rows["text"].tolist()
    renamed = tmp_path / "spanish"
    renamed.symlink_to(spanish["clips"].parent, target_is_directory=True)
    unnamed = CliRunner().invoke(ingest, ["commonvoice", str(renamed), str(tmp_path / "tx"), str(tmp_path / "m.csv")])
    assert unnamed.exit_code == 1
    assert unnamed.output.strip().endswith("cannot tell the language from the directory name 'spanish' "
                                           "(Common Voice names it by locale, such as es or de): pass --language CODE")
    named = CliRunner().invoke(ingest, ["commonvoice", str(renamed), str(tmp_path / "tx"), str(tmp_path / "m.csv"),
                                        "--language", "es", "--no-progress"])
    assert named.exit_code == 0 and read_manifest(tmp_path / "m.csv")["text"].tolist() == rows["text"].tolist()


def test_a_spanish_model_predicts_spanish_letters_everywhere(spanish, spanish_model, tmp_path):
    config = json.loads((spanish_model.parent / "config.json").read_text(encoding="utf-8"))
    assert config["language"] == "es" and SPANISH_ONLY <= set(config["alphabet"])
    assert set(config["alphabet"]) == set("".join(read_manifest(spanish["train"])["text"])) | {" "}

    predictions = tmp_path / "predictions.json"
    runner = CliRunner()
    evaluated = runner.invoke(main, ["evaluate", "--manifest", f"test:{spanish['test']}", "--model-file",
                                     str(spanish_model), "--inference-file", str(predictions)])
    assert evaluated.exit_code == 0, evaluated.output
    utterances = json.loads(predictions.read_text(encoding="utf-8"))["utterances"]
    said = " ".join(u["prediction"] for u in utterances)
    assert {"ñ", "ü"} <= set(said), said
    assert float(evaluated.output.strip().rsplit("CER: ", 1)[1].rstrip("%")) < 10

    lm = tmp_path / "es.arpa"
    assert runner.invoke(main, ["lm", "build", str(lm), "--manifest", str(spanish["train"]), "--order", "2"]).exit_code == 0
    beam = runner.invoke(main, ["evaluate", "--manifest", f"test:{spanish['test']}", "--model-file", str(spanish_model),
                                "--decoder", "beam", "--lm", str(lm)])
    assert beam.exit_code == 0 and "cigüeña" in beam.output, beam.output

    clip = spanish["clips"] / "common_voice_es_2.mp3"
    transcribed = runner.invoke(main, ["transcribe", "--model-file", str(spanish_model), str(clip), "--format", "json"])
    assert transcribed.exit_code == 0, transcribed.output
    record = json.loads(transcribed.output)
    assert "cigüeña" in record["text"] and any("ñ" in word["text"] for word in record["words"])

    exported = runner.invoke(main, ["export", "--model-file", str(spanish_model), str(tmp_path / "serving")])
    assert exported.exit_code == 0 and "metadata" in exported.output, exported.output
    facts = json.loads((tmp_path / "serving" / "1" / "assets.extra" / "ds2.json").read_text(encoding="utf-8"))
    assert facts["symbols"] == ["_", *config["alphabet"]] and facts["language"] == "es"
    served = json.loads(subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(tmp_path / "serving" / "1"), str(clip)],
                                       capture_output=True, text=True, check=True).stdout)
    assert served["symbols"] == facts["symbols"]
    assert served["transcript"] == record["text"]


# A process that knows only TensorFlow and soundfile, as a server or a client in another team would.
FRESH_PROCESS = r"""
import json, sys
import numpy as np, soundfile, tensorflow as tf
from scipy.signal import resample_poly
loaded = tf.saved_model.load(sys.argv[1])
samples, rate = soundfile.read(sys.argv[2], dtype="float32")
waveform = resample_poly(samples, 1, rate // 16000).astype(np.float32)[None]
out = loaded.signatures["serving_default"](waveforms=tf.constant(waveform), lengths=tf.constant([waveform.shape[1]]))
symbols = loaded.signatures["metadata"]()["symbols"].numpy()
print(json.dumps({"transcript": out["transcripts"].numpy()[0].decode("utf-8"),
                  "symbols": [s.decode("utf-8") for s in symbols]}))
"""


def test_an_english_model_fine_tuned_on_spanish(spanish, trained_model, tmp_path):
    source = load_model_file(trained_model, compile=False)
    output = tmp_path / "fine-tuned"
    command = ["fit", "--init-from", str(trained_model), "--manifest", f"train:{spanish['train']}", "-e", "1",
               "-z", "2", "-s", str(output), "--freeze", "conv", "--set", "learning_rate=3e-3"]
    first = run_ds2(command)
    assert first.returncode == 0, first.stderr[-3000:]
    spanish_alphabet = Alphabet.of("".join(read_manifest(spanish["train"])["text"]), "es")
    shared = len(set(spanish_alphabet.symbols) & set(ENGLISH_ALPHABET.symbols))
    assert (f"starting a new run from the weights of {trained_model} (trained {source.progress['epoch']} epochs): "
            f"epoch 0, a new optimizer and schedule; output layer rebuilt for {spanish_alphabet.num_classes} "
            f"symbols: {shared} shared with the model kept") in first.stdout
    assert "frozen (--freeze conv): conv0, conv0_bn" in first.stdout

    tuned = load_model_file(output / "model.keras")
    assert tuned.alphabet == spanish_alphabet and tuned.ds2_config.learning_rate == 3e-3
    assert tuned.progress["epoch"] == 1 and len(tuned.progress["history"]["loss"]) == 1
    assert int(tuned.optimizer.iterations.numpy()) == 3  # 6 utterances, batches of 2: one new epoch
    for name in ("conv0", "conv0_bn"):  # frozen: bit for bit the English model's, statistics included
        for before, after in zip(source.get_layer(name).get_weights(), tuned.get_layer(name).get_weights()):
            np.testing.assert_array_equal(after, before)
    assert not np.array_equal(source.get_layer("bigru0").get_weights()[0], tuned.get_layer("bigru0").get_weights()[0])

    again = run_ds2(command)  # the same command again resumes the new run, it does not start it over
    assert again.returncode == 0 and f"resuming from {output / 'model.keras'}: epoch 1, step 0" in again.stdout


def test_init_from_keeps_the_rows_of_shared_symbols_and_every_other_layer():
    keras.utils.set_random_seed(1)
    english = DS2Model(preset("tiny"))
    spanish_alphabet = Alphabet.of("el niño y la cigüeña", "es")
    spanish = DS2Model(preset("tiny").replace(language="es", alphabet=spanish_alphabet.characters))
    fresh_kernel, fresh_bias = spanish.get_layer("logits").get_weights()
    assert "output layer rebuilt for 13 symbols: 11 shared with the model kept, 2 new ('ñü')" == transfer_weights(
        english, spanish)
    kernel, bias = spanish.get_layer("logits").get_weights()
    old_kernel, old_bias = english.get_layer("logits").get_weights()
    for index, symbol in enumerate(spanish_alphabet.symbols):
        if symbol in ENGLISH_ALPHABET.symbols:
            old = ENGLISH_ALPHABET.symbols.index(symbol)
            np.testing.assert_array_equal(kernel[:, index], old_kernel[:, old])
            assert bias[index] == old_bias[old]
        else:
            np.testing.assert_array_equal(kernel[:, index], fresh_kernel[:, index])
    for layer in spanish.layers:
        if layer.weights and layer.name != "logits":
            for ours, theirs in zip(layer.get_weights(), english.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("extra, message", [
    (["--set", "rnn_units=32"], "keeps its network, but this run asks for rnn_units=32 (the model has 64): drop "
                                "those settings, or train a new model without --init-from"),
    (["--preset", "small"], "keeps its network, but this run asks for mel_bins=64 (the model has 40), conv_filters="),
    (["--freeze", "encoder"], "--freeze encoder: no layer with weights is named so; the model's are conv0, conv0_bn, "
                              "bigru0, rnn0_bn, logits"),
])
def test_init_from_refuses_what_it_cannot_keep_in_one_line(spanish, trained_model, tmp_path, extra, message):
    result = run_ds2(["fit", "--init-from", str(trained_model), "--manifest", f"train:{spanish['train']}", "-e", "1",
                      "-z", "2", "-s", str(tmp_path / "out"), *extra])  # -z within the 6 utterances: fit checks it first
    assert message in one_line_error(result)


@pytest.mark.parametrize("extra, message", [
    (["--model-file", "m.keras"], "--init-from starts a new run and --model-file resumes one: give one of them"),
    (["--set", "alphabet=abc "], "alphabet is chosen from the training data at a run's first fit (ingest --language, "
                                 "fit --alphabet FILE), not with --set"),
])
def test_fit_usage_errors_of_init_from_and_alphabets(spanish, trained_model, tmp_path, extra, message):
    result = CliRunner().invoke(main, ["fit", "--init-from", str(trained_model), "--manifest", f"train:{spanish['train']}",
                                       "-e", "1", "-s", str(tmp_path), *extra])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


def test_alphabet_file_limits_the_outputs_and_counts_what_it_cannot_spell(spanish, tmp_path):
    rows = read_manifest(spanish["train"])
    without_u_umlaut = Alphabet("".join(sorted(set("".join(rows["text"])) - {"ü", " "})) + " ")
    config = preset("tiny").replace(language="es", alphabet=without_u_umlaut.characters)
    utterances = select_utterances(rows, config)
    assert utterances.dropped == {"with characters outside the alphabet": 1} and len(utterances) == 5
    evaluated = evaluation_utterances(rows, without_u_umlaut)
    assert len(evaluated) == 6 and evaluated.notes == {
        "holding characters the model cannot output ('ü'), scored as errors": 1}

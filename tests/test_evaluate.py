"""`ds2 evaluate` and `ds2 lm` end to end through the CLI, on the session's tiny trained model."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from ds2_keras.cli.main import main
from ds2_keras.evaluate.inference_file import read_inference
from ds2_keras.data.manifest import read_manifest, write_manifest


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def evaluate(model: Path, manifest: Path, *extra):
    return run("evaluate", "--manifest", f"val:{manifest}", "--model-file", model, *extra)


def test_evaluate_prints_cer_by_default_and_wer_on_request(trained_model, corpus):
    rows = read_manifest(corpus["val"])
    result = evaluate(trained_model, corpus["val"])
    assert result.exit_code == 0, result.output
    assert f"evaluated {len(rows)} utterances" in result.output
    assert "pooled over the corpus" in result.output
    assert result.output.strip().splitlines()[-1].startswith("CER: ")
    seed_alias = evaluate(trained_model, corpus["val"], "--use_wer", "--pooling", "mean")
    assert seed_alias.output.strip().splitlines()[-1].startswith("WER: ")
    assert "mean of" in seed_alias.output


@pytest.mark.parametrize("name", ["predictions.pkl", "predictions.json", "predictions.csv"])
def test_inference_file_holds_every_prediction_beside_its_truth(trained_model, corpus, tmp_path, name):
    rows = read_manifest(corpus["val"])
    result = evaluate(trained_model, corpus["val"], "--inference-file", tmp_path / name)
    assert result.exit_code == 0, result.output
    table, error_rate = read_inference(tmp_path / name)
    assert sorted(table["reference"]) == sorted(rows["text"])
    assert table["prediction"].map(lambda p: isinstance(p, str)).all()
    headline = float(result.output.strip().splitlines()[-1].split()[-1].rstrip("%")) / 100
    if name.endswith(".json"):  # with each prediction's timed words
        assert [" ".join(w["text"] for w in words) for words in table["words"]] == \
            [" ".join(p.split()) for p in table["prediction"]]
        assert all(0 <= w["start"] < w["end"] <= d and 0 <= w["confidence"] <= 1
                   for words, d in zip(table["words"], table["duration"] + 0.05) for w in words)
    if name.endswith(".csv"):  # rows only; the seed's pickle and JSON carry the error rate
        assert error_rate is None
    else:
        assert error_rate == pytest.approx(headline, abs=5e-5)


def test_unreadable_audio_is_skipped_counted_and_named(trained_model, corpus, tmp_path):
    rows = read_manifest(corpus["val"])
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio at all")
    bad_row = pd.DataFrame([{**rows.iloc[0].to_dict(), "audio_path": str(broken)}])
    manifest = write_manifest(pd.concat([rows, bad_row], ignore_index=True), tmp_path / "with_broken.csv")
    result = evaluate(trained_model, manifest)
    assert result.exit_code == 0, result.output
    assert f"evaluated {len(rows)} utterances" in result.output
    assert "skipped 1 utterances" in result.output and str(broken) in result.output


def test_truncated_or_foreign_model_file_is_one_clear_line(trained_model, corpus, tmp_path):
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(trained_model.read_bytes()[:1000])
    result = CliRunner().invoke(main, ["evaluate", "--manifest", f"val:{corpus['val']}", "--model-file", str(truncated)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {truncated}: not a .keras model archive (truncated or another format)"

    foreign = tmp_path / "foreign.keras"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("config.json", '{"class_name": "Sequential"}')
    result = CliRunner().invoke(main, ["evaluate", "--manifest", f"val:{corpus['val']}", "--model-file", str(foreign)])
    assert result.exit_code == 1 and "not a ds2 DS2Model" in result.output
    assert "Traceback" not in result.output


def test_beam_search_with_a_built_lm_and_tuning(trained_model, corpus, tmp_path):
    lm = tmp_path / "lm.arpa"
    built = run("lm", "build", lm, "--manifest", corpus["train"], "--order", "2")
    assert built.exit_code == 0, built.output
    assert "\\data\\" in lm.read_text() and "\\2-grams:" in lm.read_text()
    result = evaluate(trained_model, corpus["val"], "--decoder", "beam", "--lm", lm, "--wer")
    assert result.exit_code == 0, result.output
    assert f"LM {lm.name}" in result.output
    tuned = run("lm", "tune", "--manifest", f"val:{corpus['val']}", "--model-file", trained_model, "--lm", lm,
                "--alphas", "0.5,1", "--betas", "0,1", "--unk-scores", "-4,-8")
    assert tuned.exit_code == 0, tuned.output
    assert "[8/8]" in tuned.output and "best: alpha" in tuned.output
    saved = json.loads((tmp_path / "lm.arpa.tuned.json").read_text())
    assert saved["alpha"] in (0.5, 1) and saved["beta"] in (0, 1) and saved["unk_score"] in (-4, -8)
    assert f"saved to {tmp_path / 'lm.arpa.tuned.json'}" in tuned.output
    # The tuned weights are used from now on, and the report says so; an explicit --alpha wins.
    again = evaluate(trained_model, corpus["val"], "--decoder", "beam", "--lm", lm, "--wer", "--alpha", "2")
    assert again.exit_code == 0, again.output
    assert (f"alpha 2, beta {saved['beta']:g}, unk {saved['unk_score']:g}, beta, unk_score tuned in "
            "lm.arpa.tuned.json") in again.output


def test_lm_without_beam_decoder_is_refused(trained_model, corpus, tmp_path):
    lm = tmp_path / "lm.arpa"
    shutil.copy(__file__, lm)  # never read: the option combination is refused first
    result = CliRunner().invoke(main, ["evaluate", "--manifest", f"val:{corpus['val']}", "--model-file",
                                       str(trained_model), "--lm", str(lm)])
    assert result.exit_code == 1 and "--lm needs --decoder beam" in result.output


def test_references_with_nothing_to_score_are_skipped_and_counted(trained_model, corpus, tmp_path):
    """Empty or punctuation-only text has no CTC label ("Labels length is zero" before)."""
    rows = read_manifest(corpus["val"])
    blank = pd.DataFrame([{**rows.iloc[0].to_dict(), "text": ""}, {**rows.iloc[-1].to_dict(), "text": ""}])
    manifest = tmp_path / "with_blanks.csv"
    write_manifest(pd.concat([rows, blank], ignore_index=True), manifest)
    with manifest.open("a") as handle:  # punctuation only: normalized to "" by the reader
        handle.write(f'{rows["audio_path"].iloc[0]},{rows["transcript_path"].iloc[0]},"?! ...",1.0,en\n')
    result = evaluate(trained_model, manifest)
    assert result.exit_code == 0, result.output
    assert (f"evaluated: {len(rows)} utterances" in result.output
            and "dropped 3 with no reference text to score (empty or punctuation only)" in result.output)
    lm = tmp_path / "lm.arpa"
    assert run("lm", "build", lm, "--manifest", corpus["train"], "--order", "2").exit_code == 0
    tuned = run("lm", "tune", "--manifest", f"val:{manifest}", "--model-file", trained_model, "--lm", lm,
                "--alphas", "0.5", "--betas", "1")
    assert tuned.exit_code == 0, tuned.output
    assert "dropped 3 with no reference text" in tuned.output and "best: alpha" in tuned.output


def test_no_scorable_reference_is_one_line_before_any_decoding(trained_model, corpus, tmp_path):
    rows = read_manifest(corpus["val"]).assign(text="")
    manifest = write_manifest(rows, tmp_path / "blank.csv")
    header_only = tmp_path / "header.csv"
    header_only.write_text(manifest.read_text().splitlines()[0] + "\n")
    for path, cause in ((manifest, f"{len(rows)} with no reference text to score"), (header_only, "no rows")):
        result = CliRunner().invoke(main, ["evaluate", "--manifest", f"val:{path}", "--model-file", str(trained_model)])
        assert result.exit_code == 1
        assert result.output.strip().splitlines() == [f"Error: {path}: no row has a reference text to score ({cause}"
                                                      + (" (empty or punctuation only))" if path == manifest else ")")]


@pytest.mark.parametrize("option", ["--inference-file", "--plots"])
def test_unwritable_outputs_are_refused_before_the_decoding(trained_model, corpus, tmp_path, option):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory is needed")
    target = tmp_path if option == "--inference-file" else blocker / "plots"  # a directory; under a file
    result = CliRunner().invoke(main, ["evaluate", "--manifest", f"val:{corpus['val']}", "--model-file",
                                       str(trained_model), option, str(target)])
    assert result.exit_code == 1
    cause = "is a directory" if option == "--inference-file" else "not a directory"
    # The one line is all: no "evaluated ..." report, so nothing was decoded first.
    assert result.output.strip().splitlines()[-1].startswith("Error: ") and cause in result.output
    assert "evaluated" not in result.output and "CER" not in result.output


def test_transcribe_with_beam_and_lm_gives_evaluates_hypotheses(trained_model, corpus, tmp_path):
    lm = tmp_path / "lm.arpa"
    assert run("lm", "build", lm, "--manifest", corpus["train"], "--order", "2").exit_code == 0
    beam = ["--decoder", "beam", "--lm", str(lm), "--beam-width", "16", "--hotword", "the:0.5"]
    inference = tmp_path / "predictions.json"
    result = evaluate(trained_model, corpus["val"], *beam, "--inference-file", inference)
    assert result.exit_code == 0, result.output
    table, _ = read_inference(inference)
    transcribed = run("transcribe", "--model-file", trained_model, "--format", "json", "--nbest", "3", *beam,
                      *table["audio_path"])
    assert transcribed.exit_code == 0, transcribed.output
    records = [json.loads(line) for line in transcribed.stdout.splitlines()]
    assert [r["text"] for r in records] == table["prediction"].tolist()
    assert any(r["text"] != g for r, g in zip(records, greedy_texts(trained_model, table["audio_path"])))
    for record in records:
        assert record["nbest"][0]["text"] == record["text"] and len({n["text"] for n in record["nbest"]}) == 3
    assert f"decoder: beam search (width 16, LM {lm.name}" in transcribed.stderr


def greedy_texts(model: Path, paths) -> list[str]:
    result = run("transcribe", "--model-file", model, *paths)
    assert result.exit_code == 0, result.output
    return [line.split("\t", 1)[1] for line in result.stdout.splitlines()]

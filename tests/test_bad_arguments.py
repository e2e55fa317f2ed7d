"""Every `ds2` command with a table of bad arguments: one `Error: ...` line, never a traceback.

A data error (a missing or unusable file, an output that cannot be written, nothing to work
on) exits with 1; an option click itself rejects (a bad number, a missing option) exits with
click's usage status 2 and its `Usage:` hint. Most cases run in-process (CliRunner), a few
through the real `ds2` binary.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from ds2_keras.cli.main import main
from ds2_keras.data.manifest import COLUMNS
from faults import one_line_error, run_ds2


@pytest.fixture(scope="module")
def bad(trained_model, corpus, tmp_path_factory) -> dict[str, Path]:
    """Paths that are wrong in one way each, plus a good model and manifest to pair them with."""
    root = tmp_path_factory.mktemp("bad")
    paths = {"model": trained_model, "manifest": corpus["val"], "dir": root / "a_directory",
             "missing": root / "absent", "file": root / "file.txt", "not_model": root / "notes.keras",
             "truncated": root / "truncated.keras", "empty": root / "empty.csv", "header": root / "header.csv",
             "run": root / "run_without_epochs", "not_lm": root / "lm.arpa"}
    paths["dir"].mkdir()
    paths["run"].mkdir()
    paths["file"].write_text("a file where a directory is needed\n")
    paths["not_model"].write_text("not a model\n")
    paths["truncated"].write_bytes(trained_model.read_bytes()[:2000])
    paths["empty"].write_text("")
    paths["header"].write_text(",".join(COLUMNS) + "\n")
    paths["not_lm"].write_text("these are not n-grams\n")
    paths["blocked"] = paths["file"] / "below"  # an output path under a file
    return paths


P = dict[str, Path]
# (case id, arguments from the paths, exit status, what the Error line must say)
CASES: list[tuple[str, Callable[[P], list], int, str]] = [
    *[(f"ingest {recipe}: source missing", lambda p, r=recipe: ["ingest", r, p["missing"], p["dir"], p["dir"] / "m.csv"],
       1, "absent") for recipe in ("an4", "commonvoice", "folder", "librispeech", "ljspeech")],
    ("ingest folder: source is a file", lambda p: ["ingest", "folder", p["file"], p["dir"] / "t", p["dir"] / "m.csv"],
     1, "file.txt"),
    ("ingest folder: manifest is a directory", lambda p: ["ingest", "folder", p["dir"], p["dir"] / "t", p["dir"]],
     1, "a_directory"),
    ("ingest folder: no audio in the source", lambda p: ["ingest", "folder", p["dir"], p["dir"] / "t", p["dir"] / "m.csv"],
     1, "no audio files"),
    ("ingest synth: output under a file", lambda p: ["ingest", "synth", p["blocked"], "-n", "3"], 1, "not a directory"),
    ("ingest synth: too few utterances", lambda p: ["ingest", "synth", p["dir"], "-n", "0"], 2, "--num-utterances"),
    ("fit: manifest missing", lambda p: ["fit", "--manifest", f"train:{p['missing']}", "-e", "1", "-s", p["dir"] / "r"],
     1, "manifest not found"),
    ("fit: manifest is a directory", lambda p: ["fit", "--manifest", f"train:{p['dir']}", "-e", "1", "-s", p["dir"] / "r"],
     1, "manifest not found"),
    ("fit: empty manifest", lambda p: ["fit", "--manifest", f"train:{p['empty']}", "-e", "1", "-s", p["dir"] / "r"],
     1, "manifest is empty"),
    ("fit: not a model file", lambda p: ["fit", "--manifest", f"train:{p['manifest']}", "-e", "1", "-s", p["dir"] / "r",
                                         "--model-file", p["not_model"]], 1, "notes.keras"),
    ("fit: bad batch size", lambda p: ["fit", "--manifest", f"train:{p['manifest']}", "-e", "1", "-s", p["dir"] / "r",
                                       "-z", "0"], 2, "--batch-size"),
    ("fit: save path under a file", lambda p: ["fit", "--manifest", f"train:{p['manifest']}", "-e", "1", "-s", p["blocked"],
                                               "--preset", "tiny"], 1, "not a directory"),
    ("evaluate: manifest missing", lambda p: ["evaluate", "--manifest", f"val:{p['missing']}", "--model-file", p["model"]],
     1, "manifest not found"),
    ("evaluate: model missing", lambda p: ["evaluate", "--manifest", f"val:{p['manifest']}", "--model-file", p["missing"]],
     1, "model file not found"),
    ("evaluate: model is a directory", lambda p: ["evaluate", "--manifest", f"val:{p['manifest']}", "--model-file", p["dir"]],
     1, "a_directory"),
    ("evaluate: not a model file", lambda p: ["evaluate", "--manifest", f"val:{p['manifest']}", "--model-file",
                                              p["not_model"]], 1, "not a .keras model archive"),
    ("evaluate: truncated model", lambda p: ["evaluate", "--manifest", f"val:{p['manifest']}", "--model-file",
                                             p["truncated"]], 1, "not a .keras model archive"),
    ("evaluate: empty manifest", lambda p: ["evaluate", "--manifest", f"val:{p['empty']}", "--model-file", p["model"]],
     1, "manifest is empty"),
    ("evaluate: header-only manifest", lambda p: ["evaluate", "--manifest", f"val:{p['header']}", "--model-file",
                                                  p["model"]], 1, "no row has a reference text to score"),
    ("evaluate: inference file under a file", lambda p: ["evaluate", "--manifest", f"val:{p['manifest']}", "--model-file",
                                                         p["model"], "--inference-file", p["blocked"]], 1, "cannot write"),
    ("evaluate: bad manifest option", lambda p: ["evaluate", "--manifest", str(p["manifest"]), "--model-file", p["model"]],
     2, "NAME:PATH"),
    ("evaluate: lm that is not one", lambda p: ["evaluate", "--manifest", f"val:{p['manifest']}", "--model-file",
                                                p["model"], "--decoder", "beam", "--lm", p["not_lm"]], 1, "lm.arpa"),
    ("transcribe: model missing", lambda p: ["transcribe", "--model-file", p["missing"], p["file"]], 1,
     "model file not found"),
    ("transcribe: audio missing", lambda p: ["transcribe", "--model-file", p["model"], p["missing"]], 1, "absent"),
    ("transcribe: audio is a directory", lambda p: ["transcribe", "--model-file", p["model"], p["dir"]], 1, "a_directory"),
    ("transcribe: audio is text", lambda p: ["transcribe", "--model-file", p["model"], p["file"]], 1, "file.txt"),
    ("transcribe: bad chunk", lambda p: ["transcribe", "--model-file", p["model"], "--stream", "--chunk-ms", "x",
                                         p["file"]], 2, "--chunk-ms"),
    ("export: not a model file", lambda p: ["export", "--model-file", p["not_model"], p["dir"] / "serving"], 1,
     "not a .keras model archive"),
    ("export: output under a file", lambda p: ["export", "--model-file", p["model"], p["blocked"]], 1, "not a directory"),
    ("export: version 0", lambda p: ["export", "--model-file", p["model"], p["dir"] / "serving", "--version", "0"], 2,
     "--version"),
    ("lm build: output is a directory", lambda p: ["lm", "build", p["dir"], "--manifest", p["manifest"]], 1, "a_directory"),
    ("lm build: nothing to build from", lambda p: ["lm", "build", p["dir"] / "lm.arpa"], 2, "--text"),
    ("lm build: empty manifest", lambda p: ["lm", "build", p["dir"] / "lm.arpa", "--manifest", p["empty"]], 1,
     "manifest is empty"),
    ("lm tune: lm that is not one", lambda p: ["lm", "tune", "--manifest", f"val:{p['manifest']}", "--model-file",
                                               p["model"], "--lm", p["not_lm"]], 1, "lm.arpa"),
    ("lm tune: bad alphas", lambda p: ["lm", "tune", "--manifest", f"val:{p['manifest']}", "--model-file", p["model"],
                                       "--lm", p["not_lm"], "--alphas", "x"], 2, "--alphas"),
    ("lm tune: header-only manifest", lambda p: ["lm", "tune", "--manifest", f"val:{p['header']}", "--model-file",
                                                 p["model"], "--lm", p["not_lm"]], 1, "no row has a reference text"),
    ("bench: manifest missing", lambda p: ["bench", "--manifest", f"train:{p['missing']}", "--preset", "tiny"], 1,
     "manifest not found"),
    ("bench: not a model file", lambda p: ["bench", "--manifest", f"train:{p['manifest']}", "--model-file",
                                           p["not_model"]], 1, "not a .keras model archive"),
    ("bench: unknown config field", lambda p: ["bench", "--manifest", f"train:{p['manifest']}", "--set", "bogus=1"], 2,
     "bogus"),
    ("bench: header-only manifest", lambda p: ["bench", "--manifest", f"train:{p['header']}", "--preset", "tiny"], 1,
     "header.csv"),
    ("bench: binary manifest", lambda p: ["bench", "--manifest", f"train:{p['truncated']}", "--preset", "tiny"], 1,
     "not a UTF-8 text manifest"),
    ("transcribe: truncated model", lambda p: ["transcribe", "--model-file", p["truncated"], p["file"]], 1,
     "not a .keras model archive"),
    ("transcribe: empty stdin stream", lambda p: ["transcribe", "--model-file", p["model"], "--stream", "-"], 1,
     "streaming"),
    ("lm build: binary text", lambda p: ["lm", "build", p["dir"] / "lm.arpa", "--text", p["truncated"]], 1,
     "truncated.keras"),
    ("lm build: header-only manifest", lambda p: ["lm", "build", p["dir"] / "lm.arpa", "--manifest", p["header"]], 1,
     "header.csv"),
    ("export: model is a directory", lambda p: ["export", "--model-file", p["dir"], p["dir"] / "serving"], 1,
     "a_directory"),
    ("average: run missing", lambda p: ["average", p["missing"], "--last", "2"], 2, "does not exist"),
    ("average: run without epochs", lambda p: ["average", p["run"], "--last", "2"], 1, "run_without_epochs"),
    ("average: bad count", lambda p: ["average", p["run"], "--last", "0"], 2, "--last"),
]


def assert_one_error_line(output: str, exit_code: int, expected_code: int, expected: str) -> None:
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert exit_code == expected_code and len(errors) == 1, output[-3000:]
    assert expected in " ".join(output.split()), output[-3000:]


@pytest.mark.parametrize("name, arguments, code, expected", CASES, ids=[case[0] for case in CASES])
def test_bad_arguments_are_one_line_errors(bad, name, arguments, code, expected):
    result = CliRunner().invoke(main, [str(argument) for argument in arguments(bad)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback: the bug this test is here to find
    assert_one_error_line(result.output, result.exit_code, code, expected)


THROUGH_THE_BINARY = [case for case in CASES
                      if case[0] in ("ingest folder: source missing", "evaluate: truncated model", "export: output under a file")]


@pytest.mark.parametrize("name, arguments, code, expected", THROUGH_THE_BINARY, ids=[case[0] for case in THROUGH_THE_BINARY])
def test_bad_arguments_through_the_ds2_binary(bad, name, arguments, code, expected):
    """The installed entry point prints the same one line (the in-process runner could differ)."""
    assert expected in one_line_error(run_ds2([str(argument) for argument in arguments(bad)]))

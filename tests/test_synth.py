"""The embedded espeak-ng corpus: layout, audio, determinism, split hygiene and manifests."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from ds2_keras.core.alphabet import normalize_text
from ds2_keras.data.manifest import read_manifest
from ds2_keras.ingest import synth as synth_module
from ds2_keras.ingest.sentences import MAX_WORDS, MIN_WORDS, WRITTEN, compose_sentences, sentence_pool, word_count
from ds2_keras.ingest.commands import ingest
from ds2_keras.ingest.synth import SPLITS, SynthError, SynthesizedCorpus, split_sizes, synthesize_corpus

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
N = 16


def synthesize(out_dir: Path, seed: int = 0, num_utterances: int = N) -> SynthesizedCorpus:
    return synthesize_corpus(out_dir, num_utterances, seed=seed, workers=2)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("synth") / "corpus"
    synthesize(out_dir)
    return out_dir


def tree_files(out_dir: Path) -> dict[str, bytes]:
    root = out_dir / "LibriSpeech"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def flacs(out_dir: Path) -> list[Path]:
    return sorted((out_dir / "LibriSpeech").rglob("*.flac"))


def speakers_by_split(out_dir: Path) -> dict[str, set[str]]:
    return {split: {p.name for p in (out_dir / "LibriSpeech" / split).iterdir()} for split in SPLITS}


def speaker_voices(out_dir: Path) -> dict[str, str]:
    """SPEAKERS.TXT as speaker id -> espeak-ng voice (its NAME column)."""
    rows = [line.split("|") for line in (out_dir / "LibriSpeech" / "SPEAKERS.TXT").read_text().splitlines()]
    return {row[0].strip(): row[-1].strip() for row in rows if not row[0].startswith(";")}


def transcript_lines(out_dir: Path) -> dict[str, str]:
    lines = {}
    for path in (out_dir / "LibriSpeech").rglob("*.trans.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            uid, _, text = line.partition(" ")
            lines[uid] = text
    return lines


@needs_espeak
def test_tree_has_librispeech_layout(synth_dir):
    root = synth_dir / "LibriSpeech"
    audio = flacs(synth_dir)
    assert len(audio) == N
    for path in audio:
        split, speaker, chapter, name = path.relative_to(root).parts
        assert split in SPLITS
        assert re.fullmatch(rf"{speaker}-{chapter}-\d{{4}}\.flac", name)
        transcript = path.parent / f"{speaker}-{chapter}.trans.txt"
        assert path.stem in transcript.read_text(encoding="utf-8").split()
    assert set(speaker_voices(synth_dir)) == set().union(*speakers_by_split(synth_dir).values())


@needs_espeak
def test_audio_is_16k_mono_flac_with_speech(synth_dir):
    for path in flacs(synth_dir):
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.format, info.subtype) == (16000, 1, "FLAC", "PCM_16")
        samples, _ = soundfile.read(str(path), dtype="float32")
        assert info.duration > 1.0
        frames = samples[: len(samples) // 320 * 320].reshape(-1, 320)
        power_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
        loud, quiet = np.percentile(power_db, [90, 10])
        assert loud > -40, f"{path}: no speech energy"
        assert loud - quiet > 20, f"{path}: speech does not stand out of the noise"


@needs_espeak
def test_transcripts_are_upper_case_and_normalize_cleanly(synth_dir):
    lines = transcript_lines(synth_dir)
    assert len(lines) == N
    for text in lines.values():
        assert text == text.upper()
        assert normalize_text(text) == text.lower()
        assert MIN_WORDS <= len(text.split()) <= MAX_WORDS


@needs_espeak
def test_test_voices_are_unseen_and_splits_share_no_sentence(synth_dir):
    speakers = speakers_by_split(synth_dir)
    assert all(speakers.values())
    assert speakers["test"].isdisjoint(speakers["train"] | speakers["val"])
    variant = {speaker: voice.split("+")[1] for speaker, voice in speaker_voices(synth_dir).items()}
    seen_variants = {variant[s] for s in speakers["train"] | speakers["val"]}
    assert seen_variants.isdisjoint(variant[s] for s in speakers["test"])
    texts = {split: set(read_manifest(synth_dir / f"{split}.csv")["text"]) for split in SPLITS}
    assert texts["train"].isdisjoint(texts["val"] | texts["test"]) and texts["val"].isdisjoint(texts["test"])


@needs_espeak
def test_manifests_hold_every_utterance(synth_dir):
    for split, size in split_sizes(N).items():
        manifest = read_manifest(synth_dir / f"{split}.csv")
        assert len(manifest) == size
        assert (manifest["duration"] > 1.0).all()
        assert all(Path(p).is_file() for p in manifest["transcript_path"])
        assert {Path(p).parent.name for p in manifest["transcript_path"]} == {split}


@needs_espeak
def test_same_seed_gives_identical_bytes_and_another_seed_differs(synth_dir, tmp_path):
    synthesize(tmp_path / "again")
    assert tree_files(tmp_path / "again") == tree_files(synth_dir)
    for split in SPLITS:
        again = read_manifest(tmp_path / "again" / f"{split}.csv")
        first = read_manifest(synth_dir / f"{split}.csv")
        assert again[["text", "duration"]].equals(first[["text", "duration"]])
    synthesize(tmp_path / "other", seed=1)
    assert transcript_lines(tmp_path / "other") != transcript_lines(synth_dir)
    audio = [{path.read_bytes() for path in flacs(out_dir)} for out_dir in (synth_dir, tmp_path / "other")]
    assert audio[0].isdisjoint(audio[1])


@needs_espeak
def test_rerun_replaces_own_corpus_but_not_a_foreign_one(tmp_path, capsys):
    synthesize(tmp_path / "out", num_utterances=12)
    made = synthesize(tmp_path / "out", num_utterances=6)
    assert capsys.readouterr().out == ""  # a library call reports through its result, not print
    assert made.manifests == {split: tmp_path / "out" / f"{split}.csv" for split in SPLITS}
    report = made.format().splitlines()
    assert report[0].startswith("synthesized 6 utterances, ") and report[0].endswith(f"-> {made.root}")
    assert [line.split(":")[0] for line in report if line.startswith(SPLITS)] == list(SPLITS)
    assert len(flacs(tmp_path / "out")) == 6
    assert sum(len(read_manifest(tmp_path / "out" / f"{s}.csv")) for s in SPLITS) == 6
    assert sum(1 for _ in (tmp_path / "out" / "transcripts").rglob("*.txt")) == 6
    (tmp_path / "foreign" / "LibriSpeech" / "train-clean-100").mkdir(parents=True)
    with pytest.raises(SynthError, match="was not made by"):
        synthesize(tmp_path / "foreign")


@needs_espeak
def test_cli_writes_manifests(tmp_path):
    result = CliRunner().invoke(ingest, ["synth", str(tmp_path / "cli"), "-n", "5", "--seed", "3", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "synthesized 5 utterances" in result.stdout
    assert all(f"{split}: wrote " in result.stdout for split in SPLITS)  # each split's ingest summary
    assert "synthesizing" in result.stderr and "ingesting" in result.stderr  # the bars, on stderr
    assert all((tmp_path / "cli" / f"{split}.csv").is_file() for split in SPLITS)


def test_missing_espeak_is_one_line_with_install_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(synth_module, "ESPEAK", "espeak-ng-not-installed")
    result = CliRunner().invoke(ingest, ["synth", str(tmp_path / "out"), "-n", "5"])  # as `ds2 ingest synth`
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "apt-get install espeak-ng" in result.output and "brew install espeak-ng" in result.output
    assert not (tmp_path / "out").exists()


def test_split_sizes_are_about_80_10_10():
    assert split_sizes(1200) == {"train": 960, "val": 120, "test": 120}
    assert split_sizes(3) == {"train": 1, "val": 1, "test": 1}
    with pytest.raises(SynthError, match="at least 3"):
        split_sizes(2)


def test_written_sentences_are_many_distinct_and_clean():
    normalized = [normalize_text(s) for s in WRITTEN]
    assert len(set(normalized)) == len(WRITTEN) >= 300
    assert all(MIN_WORDS <= word_count(s) <= MAX_WORDS for s in WRITTEN)
    assert not any(ch.isdigit() for s in WRITTEN for ch in s)


def test_composed_sentences_are_seeded_distinct_and_clean():
    first = compose_sentences(2000, np.random.default_rng(7))
    assert first == compose_sentences(2000, np.random.default_rng(7))
    assert first != compose_sentences(2000, np.random.default_rng(8))
    assert len({normalize_text(s) for s in first}) == 2000
    assert all(MIN_WORDS <= word_count(s) <= MAX_WORDS for s in first)
    vocabulary = {word for s in first for word in normalize_text(s).split()}
    assert len(vocabulary) > 800


def test_sentence_pool_mixes_written_and_composed():
    pool = sentence_pool(1000, seed=0)
    assert len(set(pool)) == 1000
    written = sum(s in set(WRITTEN) for s in pool)
    assert 0 < written < 1000
    assert pool == sentence_pool(1000, seed=0) != sentence_pool(1000, seed=1)

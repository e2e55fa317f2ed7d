"""OS failures of `ds2 ingest` and `ds2 lm build` are one line naming the path and the cause.

Each case makes the OS refuse for real: a directory where a file goes (or the reverse), a
directory the process may not write (tests run as root, so the command runs with every
capability dropped), a read-only or full file system (a tmpfs mounted in a private mount
namespace), a file size limit (RLIMIT_FSIZE: Python ignores SIGXFSZ, so writes fail with
EFBIG). Every case also checks that nothing half-written is left behind.
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest
from click.testing import CliRunner

from corpus_fixtures import make_an4, make_commonvoice, make_librispeech, make_ljspeech, write_tone
from ds2_keras.cli.main import main
from test_ingest_other import CV_ROWS, LJ_ROWS

REPO = Path(__file__).resolve().parents[1]
TOO_LARGE = "file too large: the file size limit was reached"


def make_folder(root: Path, count: int = 2, seconds: float = 0.3) -> Path:
    for number in range(count):
        write_tone(root / f"clip{number}.wav", seconds)
        (root / f"clip{number}.txt").write_text(f"clip number {number}", encoding="utf-8")
    return root


def make_split(root: Path) -> Path:
    make_librispeech(root / "dev-clean")
    return root / "dev-clean"


def make_lj(root: Path) -> Path:
    make_ljspeech(root, LJ_ROWS)
    return root


def make_cv(root: Path) -> Path:
    make_commonvoice(root / "en", "train", CV_ROWS)  # a release's language directory, named by locale
    return root / "en"


def make_an4_dir(root: Path) -> Path:
    make_an4(root / "an4")
    return root


# Every recipe but synth (tested on its own): how to make a small corpus of it in a directory.
CORPORA = {"librispeech": make_split, "ljspeech": make_lj, "commonvoice": make_cv, "folder": make_folder,
           "an4": make_an4_dir}


def ingest_args(recipe: str, base: Path, transcripts: Path, manifest: Path) -> list[str]:
    """`ds2 ingest RECIPE SRC TRANSCRIPTS MANIFEST` on a small corpus made in base/corpus."""
    source = CORPORA[recipe](base / "corpus")
    return ["ingest", recipe, str(source), str(transcripts), str(manifest), "--no-progress"]


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def listing(directory: Path) -> list[str]:
    """Every file and directory under `directory`, relative: stray temporaries show up here."""
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*")) if directory.exists() else []


# ---------------------------------------------------------------- a file or directory in the way


@pytest.mark.parametrize("recipe", CORPORA)
def test_manifest_that_is_a_directory(tmp_path, recipe):
    manifest = tmp_path / "out" / "manifest.csv"
    manifest.mkdir(parents=True)
    result = invoke(*ingest_args(recipe, tmp_path, tmp_path / "tx", manifest))
    assert (result.exit_code, result.output) == (1, f"Error: {manifest}: cannot write (is a directory)\n")
    assert listing(tmp_path / "out") == ["manifest.csv"] and listing(tmp_path / "tx") == []


def test_transcripts_dir_that_is_a_file(tmp_path):
    transcripts = tmp_path / "tx"
    transcripts.write_text("a file, not a directory")
    result = invoke(*ingest_args("folder", tmp_path, transcripts, tmp_path / "out" / "manifest.csv"))
    assert (result.exit_code, result.output) == (1, f"Error: {transcripts}: cannot write (not a directory)\n")
    assert not (tmp_path / "out" / "manifest.csv").exists()


@pytest.mark.parametrize("output", ["transcripts", "manifest"])
def test_output_below_a_file(tmp_path, output):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    transcripts, manifest = tmp_path / "tx", tmp_path / "manifest.csv"
    if output == "transcripts":
        transcripts = blocker / "tx"
    else:
        manifest = blocker / "manifest.csv"
    result = invoke(*ingest_args("librispeech", tmp_path, transcripts, manifest))
    named = transcripts if output == "transcripts" else blocker
    assert (result.exit_code, result.output) == (1, f"Error: {named}: cannot write (not a directory)\n")
    assert blocker.read_text() == "a file, not a directory"
    assert not (tmp_path / "manifest.csv").exists()


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="no /sys (not Linux)")
def test_manifest_where_the_kernel_refuses_everyone(tmp_path):
    manifest = Path("/sys/ds2-test-output/manifest.csv")
    result = invoke(*ingest_args("folder", tmp_path, tmp_path / "tx", manifest))
    assert result.exit_code == 1
    assert result.output in {f"Error: {manifest.parent}: cannot write ({cause})\n"
                             for cause in ("permission denied", "read-only file system")}
    assert listing(tmp_path / "tx") == []


@pytest.mark.parametrize("blocked", ["directory", "below a file"])
def test_lm_build_target_in_the_way(tmp_path, blocked):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat\nthe dog ran\n")
    if blocked == "directory":
        target = named = tmp_path / "lm.arpa"
        target.mkdir()
        cause = "is a directory"
    else:
        named = tmp_path / "file"
        named.write_text("not a directory")
        target, cause = named / "lm.arpa", "not a directory"
    result = invoke("lm", "build", target, "--text", corpus)
    assert (result.exit_code, result.output) == (1, f"Error: {named}: cannot write ({cause})\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["corpus.txt", named.name]


# ---------------------------------------------------------------- the OS refuses: a separate ds2 process


def ds2(*args, limit_bytes: int | None = None, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run `ds2 ARGS` in a fresh Python, optionally under a file size limit or a wrapper command."""
    command = [*prefix, sys.executable, "-c", "from ds2_keras.cli.main import main; main()", *map(str, args)]
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300,
                          preexec_fn=limit if limit_bytes else None)


def assert_one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == f"Error: {message}"
    assert "Traceback" not in result.stderr


@pytest.fixture
def unprivileged() -> list[str]:
    """A command prefix under which file permissions apply (root keeps its uid, loses its capabilities)."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
    if not shutil.which("setpriv") or subprocess.run([*prefix, "true"]).returncode != 0:
        pytest.skip("running as root and setpriv (util-linux) cannot drop capabilities here")
    return prefix


def unwritable(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o555)
    return directory


def test_manifest_in_a_directory_without_write_permission(tmp_path, unprivileged):
    manifest = unwritable(tmp_path / "out") / "manifest.csv"
    result = ds2(*ingest_args("librispeech", tmp_path, tmp_path / "tx", manifest), prefix=unprivileged)
    assert_one_line_error(result, f"{manifest}: cannot write (permission denied)")
    assert listing(tmp_path / "out") == [] and listing(tmp_path / "tx") == []


def test_transcripts_dir_without_write_permission(tmp_path, unprivileged):
    transcripts = unwritable(tmp_path / "tx")
    result = ds2(*ingest_args("folder", tmp_path, transcripts, tmp_path / "manifest.csv"), prefix=unprivileged)
    assert_one_line_error(result, f"{transcripts / 'clip0.txt'}: cannot write (permission denied)")
    assert listing(transcripts) == [] and not (tmp_path / "manifest.csv").exists()


def test_unreadable_source_subdirectory_is_named_not_skipped(tmp_path, unprivileged):
    args = ingest_args("folder", tmp_path, tmp_path / "tx", tmp_path / "manifest.csv")
    hidden = make_folder(tmp_path / "corpus" / "hidden", 1)
    hidden.chmod(0)
    result = ds2(*args, prefix=unprivileged)
    assert_one_line_error(result, f"{hidden}: cannot read (permission denied)")
    assert not (tmp_path / "manifest.csv").exists()


def test_lm_build_in_a_directory_without_write_permission(tmp_path, unprivileged):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat\nthe dog ran\n")
    target = unwritable(tmp_path / "lm") / "lm.arpa"
    result = ds2("lm", "build", target, "--text", corpus, prefix=unprivileged)
    assert_one_line_error(result, f"{target}: cannot write (permission denied)")
    assert listing(tmp_path / "lm") == []


def test_manifest_larger_than_the_file_size_limit(tmp_path):
    manifest = tmp_path / "out" / "manifest.csv"
    result = ds2(*ingest_args("librispeech", tmp_path, tmp_path / "tx", manifest), limit_bytes=512)
    assert_one_line_error(result, f"{manifest}: cannot write ({TOO_LARGE})")
    assert listing(tmp_path / "out") == []
    assert len(listing(tmp_path / "tx")) == 5  # whole transcripts: the limit stopped only the manifest


def test_transcript_larger_than_the_file_size_limit(tmp_path):
    result = ds2(*ingest_args("folder", tmp_path, tmp_path / "tx", tmp_path / "manifest.csv"), limit_bytes=8)
    assert_one_line_error(result, f"{tmp_path / 'tx' / 'clip0.txt'}: cannot write ({TOO_LARGE})")
    assert listing(tmp_path / "tx") == [] and not (tmp_path / "manifest.csv").exists()


def test_lm_larger_than_the_file_size_limit(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog ran far away\n")
    target = tmp_path / "lm" / "lm.arpa"
    result = ds2("lm", "build", target, "--text", corpus, limit_bytes=256)
    assert_one_line_error(result, f"{target}: cannot write ({TOO_LARGE})")
    assert listing(tmp_path / "lm") == []


def tmpfs(directory: Path, options: str) -> list[str]:
    """A command prefix that runs the command with a tmpfs (`options`) mounted on `directory` in a
    private mount namespace, then prints what the command left there (the mount ends with it).
    Skips the test where this system allows no such namespace."""
    directory.mkdir(parents=True, exist_ok=True)
    unshare = ["unshare", "--mount"] + (["--map-root-user"] if os.geteuid() != 0 else [])
    script = ('mount -t tmpfs -o "$0" tmpfs "$1" || exit 99; dir=$1; shift; '
              '"$@"; status=$?; find "$dir" -mindepth 1; exit $status')
    prefix = [*unshare, "sh", "-c", script, options, str(directory)]
    if not shutil.which("unshare") or subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("no private mount namespace for a tmpfs here (unshare --mount refused)")
    return prefix


@pytest.mark.parametrize("output", ["transcripts", "manifest"])
def test_output_on_a_read_only_file_system(tmp_path, output):
    read_only_fs = tmp_path / "ro"
    transcripts, manifest = tmp_path / "tx", tmp_path / "manifest.csv"
    if output == "transcripts":
        transcripts = named = read_only_fs / "tx"
    else:
        manifest = named = read_only_fs / "manifest.csv"
    result = ds2(*ingest_args("folder", tmp_path, transcripts, manifest), prefix=tmpfs(read_only_fs, "ro"))
    assert_one_line_error(result, f"{named}: cannot write (read-only file system)")
    assert listing(tmp_path / "tx") == [] and not (tmp_path / "manifest.csv").exists()


def test_manifest_on_a_full_disk(tmp_path):
    manifest = tmp_path / "small" / "manifest.csv"
    args = ingest_args("folder", tmp_path, tmp_path / "tx", manifest)
    make_folder(tmp_path / "corpus", 100, seconds=0.05)  # rows of 50 bytes at least: over the one 4 KiB page
    result = ds2(*args, prefix=tmpfs(tmp_path / "small", "size=4k"))
    assert_one_line_error(result, f"{manifest}: cannot write (no space left on device)")
    assert result.stdout == ""  # nothing left on the full disk: no temporary, no partial manifest
    assert len(listing(tmp_path / "tx")) == 100


def test_synth_on_a_full_disk_leaves_no_corpus(tmp_path):
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    out = tmp_path / "synth"
    result = ds2("ingest", "synth", out, "-n", "3", prefix=tmpfs(out, "size=16k"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]  # names OUT_DIR, or the file in it the OS names
    assert last.startswith(f"Error: {out}") and last.endswith(": cannot write (no space left on device)")
    assert result.stdout == ""  # the half-synthesized tree was removed


def test_audio_in_an_unsearchable_directory_is_unreadable_audio(tmp_path, unprivileged):
    args = ingest_args("ljspeech", tmp_path, tmp_path / "tx", tmp_path / "manifest.csv")
    (tmp_path / "corpus" / "wavs").chmod(0o600)  # listable, but no file in it can be opened
    result = ds2(*args, prefix=unprivileged)
    assert_one_line_error(result, f"{tmp_path / 'corpus'}: no usable utterances (skipped: 2 unreadable audio)")

"""Writing outputs safely: atomic files, and OS failures reported as one line naming the path.

Readers see the old file or the whole new one, never half of either. When the OS refuses a
write (permission, read-only file system, full disk, a file where a directory should be),
`OutputError` says so in words, and the temporary file is removed, so nothing is left half written.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import os
import tempfile
from pathlib import Path
from typing import Iterator

from ds2_keras.core.errors import FileError

_CAUSES = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large: the file size limit was reached",
    errno.EISDIR: "is a directory",
    errno.ENOTDIR: "not a directory",
    errno.EEXIST: "already exists",
    errno.ENOENT: "no such file or directory",
    errno.ENAMETOOLONG: "file name too long",
}


class OutputError(FileError):
    """An output could not be written; `path: cause` in the OS's own terms, made readable."""


def os_cause(error: OSError) -> str:
    """A short lower-case cause for an OSError ("read-only file system"), never a traceback."""
    return _CAUSES.get(error.errno, (error.strerror or str(error)).lower())


def os_error_path(error: OSError, default: str | Path) -> str | Path:
    """The path an OSError names, else `default` (the output the caller was writing)."""
    return error.filename if error.filename else default


@contextlib.contextmanager
def reporting_os_errors(path: str | Path, name_path: bool = False) -> Iterator[None]:
    """Turn an OSError raised in the block into an OutputError naming the path at fault, or
    `path` whatever the OS names with `name_path` (a temporary's name means nothing to the user)."""
    try:
        yield
    except OutputError:
        raise
    except OSError as error:
        raise OutputError(path if name_path else os_error_path(error, path), f"cannot write ({os_cause(error)})") from None


def make_directory(path: str | Path) -> Path:
    """mkdir -p, with an OutputError (not a traceback) when the OS refuses."""
    path = Path(path)
    with reporting_os_errors(path):
        try:
            path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # mkdir -p met a file where a directory is needed
            raise OutputError(path, f"cannot write ({_CAUSES[errno.ENOTDIR]})") from None
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    OSErrors from the block (a full disk while writing, say) become OutputErrors naming `path`.
    """
    path = Path(path)
    temporary = _temporary_beside(path)
    try:
        with reporting_os_errors(path, name_path=True):
            os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
            yield Path(temporary)
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def check_writable(path: str | Path) -> Path:
    """Raise the OutputError that writing `path` later would raise, now.

    A long job (an ingest) calls this before its work, so that a manifest path that is a
    directory, or sits in a read-only place, fails in a second rather than after an hour.
    """
    path = Path(path)
    os.remove(_temporary_beside(path))
    return path


def _temporary_beside(path: Path) -> str:
    """An empty temporary file in `path`'s directory (made if missing); refusals name `path`."""
    if path.is_dir():
        raise OutputError(path, f"cannot write ({_CAUSES[errno.EISDIR]})")
    make_directory(path.parent)
    prefix, suffix = _temporary_affixes(path)
    with reporting_os_errors(path, name_path=True):
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    os.close(handle)
    return temporary


def _temporary_affixes(path: Path) -> tuple[str, str]:
    """How atomic_path names the temporaries beside `path`: hidden, with the same extensions
    (Keras picks the format of "x.weights.h5" from both)."""
    return f".{path.name}.", "".join(path.suffixes)


def remove_stale_temporaries(path: str | Path, name_is_pattern: bool = False) -> None:
    """Delete the temporaries a killed process left beside `path` (kill -9 skips atomic_path's
    clean-up). Only for a caller that alone writes `path`, as the holder of a directory lock.
    With name_is_pattern, path's name is a glob ("epoch-*.weights.h5") naming a family of files."""
    path = Path(path)
    prefix, suffix = _temporary_affixes(path)
    if not name_is_pattern:
        prefix, suffix = glob.escape(prefix), glob.escape(suffix)
    for stale in path.parent.glob(f"{prefix}*{suffix}"):
        with reporting_os_errors(stale):
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def reporting_tensorflow_errors(where: str | Path, name: str | Path | None = None) -> Iterator[None]:
    """Turn a TensorFlow OpError about a file under `where` that gives an OS cause into an
    OutputError naming `name` (default `where`); any other OpError is a bug and stays as it is.

    TensorFlow's own file writes (SavedModel, TensorBoard logs) report an OS failure as an
    OpError whose message holds the path and the OS's strerror ("...; File too large"), not as
    an OSError.
    """
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as error:
        lowered = error.message.lower()
        causes = [cause for number, cause in _CAUSES.items() if os.strerror(number).lower() in lowered]
        if str(where) not in error.message or not causes:
            raise
        raise OutputError(name or where, f"cannot write ({causes[0]})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")

"""TF Serving's versioned-directory protocol: which version an export writes, and how.

TF Serving watches a directory of integer versions and loads each as soon as it appears, so a
version must appear whole: an export stages it in a hidden `.N.partial-*` directory beside the
versions, locked while it runs, and renames it into place. Two exports never pick one version,
and a dead export's staging directory is removed by the next one. export.py builds what goes in.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ds2_keras.core import faults
from ds2_keras.core.errors import DS2Error
from ds2_keras.core.fileio import OutputError, reporting_os_errors
from ds2_keras.core.locks import record_holder, recorded_holder, try_lock

PARTIAL = ".partial-"  # staging directories are `.<version>.partial-<random>`
LOCK_SUFFIX = ".lock"


class ExportError(DS2Error):
    """An export cannot be written as asked (the version exists); the message names the directory."""


def next_version(out_dir: Path) -> int:
    """One more than the largest numeric version directory in out_dir (1 if there is none),
    passing over the versions that live exports are writing."""
    versions = [int(p.name) for p in out_dir.iterdir() if p.is_dir() and p.name.isdigit()] if out_dir.is_dir() else []
    version, reserved = max(versions, default=0) + 1, versions_in_progress(out_dir)
    while version in reserved:
        version += 1
    return version


def versions_in_progress(out_dir: Path) -> set[int]:
    """The versions whose staging lock is in out_dir: exports running now, once
    remove_dead_partials has removed the dead ones' (`.<version>.partial-*.lock`)."""
    names = (path.name[1:].split(".", 1)[0] for path in out_dir.glob(f".*{PARTIAL}*{LOCK_SUFFIX}"))
    return {int(name) for name in names if name.isdigit()}


def version_to_write(out_dir: Path, version: int | None) -> int:
    """`version`, or the next one; ExportError if it exists or another export is writing it."""
    if (out_dir / "saved_model.pb").exists():
        raise ExportError(f"{out_dir}: holds a SavedModel already (a version directory); "
                          "pass the directory above it, which holds the numbered versions")
    if version is None:
        return next_version(out_dir)
    target = out_dir / str(version)
    if target.exists():
        raise ExportError(f"{target}: version {version} already exists; pass another --version")
    if version in versions_in_progress(out_dir):
        raise ExportError(f"{target}: version {version} is being exported by another process; pass another --version")
    return version


@contextlib.contextmanager
def partial_directory(out_dir: Path, version: int) -> Iterator[Path]:
    """A hidden staging directory `.N.partial-*` for the block, removed after it.

    Beside it, `.N.partial-*.lock` stays locked by this process while the export runs: an export
    killed on the way leaves a directory whose lock anyone can take, which is how
    remove_dead_partials tells it from a live one.
    """
    with reporting_os_errors(out_dir, name_path=True):
        descriptor, lock_name = tempfile.mkstemp(dir=out_dir, prefix=f".{version}{PARTIAL}", suffix=LOCK_SUFFIX)
        os.close(descriptor)
    lock_path = Path(lock_name)
    lock = try_lock(lock_path, wait=True)  # our own name: at most a clean-up peeks at it, briefly
    staging = lock_path.with_suffix("")
    try:
        record_holder(lock)
        with reporting_os_errors(staging):
            staging.mkdir()
            staging.chmod(0o755)  # whatever the umask: a server may run as another user
        faults.reached("export_staging")
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        lock_path.unlink(missing_ok=True)
        lock.close()


def remove_dead_partials(out_dir: Path) -> None:
    """Remove the staging directories of exports that died (their lock is free); live ones stay."""
    for lock_path in out_dir.glob(f".*{PARTIAL}*{LOCK_SUFFIX}"):
        try:
            lock = try_lock(lock_path, create=False)
        except OutputError:  # another user's export: not ours to judge
            continue
        if lock is None:  # a live export holds it, or it finished meanwhile
            continue
        with lock:
            if recorded_holder(lock):  # empty: an export that is just starting, not yet locked
                shutil.rmtree(lock_path.with_suffix(""), ignore_errors=True)
                lock_path.unlink(missing_ok=True)
                print(f"removed {lock_path.with_suffix('')}, left by an export that did not finish")

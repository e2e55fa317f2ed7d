"""One process at a time: OS file locks that die with their holder.

`fcntl.flock` locks are released by the kernel when the process holding them exits, however
it exits (`kill -9` included), so a lock left by a dead process is simply free again: no pid
guessing, no stale-lock timeouts. The holder writes its pid and host into the lock file, so a
process that is refused can say who is in the way.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from typing import IO, Iterator

from ds2_keras.core.errors import FileError
from ds2_keras.core.fileio import reporting_os_errors


class DirectoryInUse(FileError):
    """Another live process holds the directory's lock; the message names it (pid, host)."""


def try_lock(path: Path, create: bool = True, wait: bool = False) -> IO[str] | None:
    """`path` opened and exclusively locked by this process (created if `create`), or None when
    another process holds its lock (or, without `create`, the file is gone). With `wait`, wait
    for the lock instead. Close the file to unlock it."""
    with reporting_os_errors(path):
        try:
            handle = open(path, "a+" if create else "r+", encoding="utf-8")
        except FileNotFoundError:
            if create:
                raise
            return None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        except OSError:
            handle.close()
            raise
    return handle


def record_holder(handle: IO[str]) -> None:
    """Write this process's pid and host into a lock file it holds."""
    with reporting_os_errors(handle.name):
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on host {socket.gethostname()}\n")
        handle.flush()


def recorded_holder(handle: IO[str]) -> str:
    """What the last holder of a lock file wrote into it ("" if nobody did)."""
    handle.seek(0)
    return handle.read().strip()


@contextlib.contextmanager
def exclusive_use(directory: Path, lock_name: str, user: str) -> Iterator[None]:
    """Hold `directory/lock_name` for the block; DirectoryInUse if a live process holds it.

    `user` names what takes the directory ("ds2 fit") in the refusal.
    """
    path = directory / lock_name
    handle = try_lock(path)
    if handle is None:
        holder = ""
        with contextlib.suppress(OSError):
            holder = path.read_text(encoding="utf-8").strip()
        raise DirectoryInUse(directory, f"in use by another {user} ({holder or 'starting up'}); wait for it to "
                                        "finish or choose another directory")
    try:
        record_holder(handle)
        yield
    finally:
        handle.close()


@contextlib.contextmanager
def holding_directory(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on `directory` itself for the block, waiting for it if another
    process holds it. For short critical sections (choosing a name in the directory): it leaves
    no lock file behind, which a directory that others read (TF Serving's) must not show."""
    with reporting_os_errors(directory):
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)

"""Real OS faults for the tests: a full disk, a refused permission, a directory nobody else can reach.

Tests run as root here and in CI, and root ignores file modes, so a permission refusal needs a
command run as an unprivileged user. A full disk is a file size limit (RLIMIT_FSIZE): Python
ignores SIGXFSZ, so past the limit every write fails with EFBIG, as on a full disk.
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest

DS2 = Path(sys.executable).with_name("ds2")
NOBODY = 65534


def as_unprivileged(shared: Path) -> dict:
    """run_ds2 arguments that run a command as `nobody` when we are root (file modes do not stop
    root), with a home of its own under `shared` (a `shared_dir`) for the caches libraries write;
    empty when we are not root."""
    if os.geteuid() != 0:
        return {}
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): no user for whom a directory is unwritable")
    home = shared / "home"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    return {"prefix": [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"],
            "env": {**os.environ, "HOME": str(home)}}


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A fresh directory that an unprivileged user can read but not write (pytest's tmp_path is 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="ds2-faults-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def file_size_limit(size: int) -> Callable[[], None]:
    """A subprocess `preexec_fn` after which no file can grow past `size` bytes."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def run_ds2(args: list[str], prefix: list[str] = (), timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, str(DS2), *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The `Error: ...` line a failed command printed, checked to be all it printed about it."""
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("Error: "), result.stderr[-3000:]
    return errors[0]

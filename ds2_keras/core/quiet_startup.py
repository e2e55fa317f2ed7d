"""Keep TensorFlow's start-up INFO lines out of a command's stderr.

TF_CPP_MIN_LOG_LEVEL hides TensorFlow's INFO lines once its logging is set up, but on CPUs where
TensorFlow turns oneDNN on (AVX-512), its shared libraries log "oneDNN custom operations are on"
through absl before that, each time behind a "WARNING: All log messages before
absl::InitializeLog()" preamble. A failed command must print its one `Error:` line and nothing
else, so while `tensorflow` is first imported, the C-level stderr goes to a temporary file and
everything but those lines is written back.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator

_START_UP_INFO = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} [\d:.]+ +\d+ \S+:\d+\] .*"
)


def hide_tensorflow_start_up_info() -> None:
    """Filter the first `import tensorflow` of this process, when the user hides INFO lines."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip()
    if level.isdigit() and int(level) >= 1 and "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _FirstTensorFlowImport())


class _FirstTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual, once, and runs its import with stderr filtered."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader, self)
        return spec


class _FilteredLoader(importlib.abc.Loader):
    """Runs the real loader with stderr filtered, then puts the real loader back on the module.

    The finder leaves sys.meta_path here, at the import itself: a mere look-up
    (importlib.util.find_spec, as tensorflow_build's check does first) must not use it up.
    """

    def __init__(self, loader: importlib.abc.Loader, finder: _FirstTensorFlowImport):
        self._loader = loader
        self._finder = finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        module.__spec__.loader = module.__loader__ = self._loader
        with _start_up_info_filtered():
            self._loader.exec_module(module)


@contextlib.contextmanager
def _start_up_info_filtered() -> Iterator[None]:
    """Capture fd 2 in a temporary file; write back all of it but the start-up INFO lines."""
    try:
        captured = tempfile.TemporaryFile()
    except OSError:  # no writable temporary directory: leave stderr as it is
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(captured.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        with captured:
            captured.seek(0)
            lines = captured.read().splitlines(keepends=True)
        kept = b"".join(line for line in lines if not _START_UP_INFO.fullmatch(line.rstrip(b"\r\n")))
        if kept:
            os.write(2, kept)

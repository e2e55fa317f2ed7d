"""Errors a user can act on (bad file, bad option).

A DS2Error's message names the file or option at fault and the cause; the command line (cli)
shows it the way click shows usage errors, one line and exit status 1. Anything else is a bug
in ds2 and keeps its traceback.
"""
from __future__ import annotations

from pathlib import Path


class DS2Error(Exception):
    """An error whose message names the file or option at fault and the cause."""


class FileError(DS2Error):
    """A file or directory that cannot be used: `path: cause`."""

    def __init__(self, path: str | Path, cause: str):
        self.path = path
        self.cause = cause
        super().__init__(f"{path}: {cause}")


class LanguageModelError(DS2Error, ValueError):
    """An LM or LM corpus that cannot be used (missing, unreadable, unusable order or words)."""

"""The base of errors a user can act on (bad file, bad option): the CLI prints them as one line.

Anything else is a bug in ds2 and keeps its traceback.
"""


class DS2Error(Exception):
    """An error whose message names the file or option at fault and the cause."""


class LanguageModelError(DS2Error, ValueError):
    """An LM or LM corpus that cannot be used (missing, unreadable, unusable order or words)."""

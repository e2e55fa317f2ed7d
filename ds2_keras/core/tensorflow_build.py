"""Which TensorFlow build is installed: ds2-keras leaves that choice to its extras.

`ds2-keras[cpu]` brings the CPU build (`tensorflow-cpu` on x86-64, `tensorflow` elsewhere) and
`ds2-keras[cuda]` the GPU build (`tensorflow[and-cuda]`). A plain install brings neither, so that
`pip install -U` never puts a second build beside the one chosen (two distributions writing one
`tensorflow` module). The command line checks here, before any work, that one build is there.
"""
from __future__ import annotations

from importlib import metadata, util

from ds2_keras.core.errors import DS2Error

BUILDS = ("tensorflow", "tensorflow-cpu")  # the distributions that install the `tensorflow` module
INSTALL = "pip install 'ds2-keras[cpu]' (or 'ds2-keras[cuda]' on a machine with an NVIDIA GPU)"


def installed_builds() -> list[str]:
    """The TensorFlow distributions pip has installed."""
    found = []
    for name in BUILDS:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def check_tensorflow() -> None:
    """Raise a DS2Error saying what to install when no TensorFlow, or two builds of it, are installed."""
    if util.find_spec("tensorflow") is None:
        raise DS2Error(f"TensorFlow is not installed: {INSTALL}")
    builds = installed_builds()
    if len(builds) > 1:
        raise DS2Error(f"{' and '.join(builds)} are both installed and write the same files: "
                       f"pip uninstall -y {' '.join(builds)}, then {INSTALL}")

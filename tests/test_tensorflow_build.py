"""The command line says which extra to install when TensorFlow is missing or installed twice."""
from __future__ import annotations

import sys

from click.testing import CliRunner

from ds2_keras.cli.main import main
from ds2_keras.core.tensorflow_build import BUILDS, installed_builds


def test_without_tensorflow_every_command_says_which_extra_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as after a plain `pip install ds2-keras`
    result = CliRunner().invoke(main, ["export", "--model-file", str(tmp_path / "m.keras"), str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == ("Error: TensorFlow is not installed: pip install 'ds2-keras[cpu]' "
                                     "(or 'ds2-keras[cuda]' on a machine with an NVIDIA GPU)")
    assert not (tmp_path / "out").exists()


def test_two_tensorflow_builds_side_by_side_are_refused_with_the_fix(monkeypatch, tmp_path):
    assert len(installed_builds()) == 1  # this environment, set up by `make test-setup`, has one
    for name in set(BUILDS) - set(installed_builds()):  # install the other's metadata, as pip would
        info = tmp_path / f"{name.replace('-', '_')}-2.21.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 2.21.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(main, ["export", "--model-file", str(tmp_path / "m.keras"), str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == (
        "Error: tensorflow and tensorflow-cpu are both installed and write the same files: "
        "pip uninstall -y tensorflow tensorflow-cpu, then pip install 'ds2-keras[cpu]' "
        "(or 'ds2-keras[cuda]' on a machine with an NVIDIA GPU)")

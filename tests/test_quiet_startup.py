"""TensorFlow's pre-logging start-up INFO lines are kept out of stderr; everything else stays."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# What TensorFlow 2.21 prints at import on an AVX-512 CPU, before it reads TF_CPP_MIN_LOG_LEVEL,
# and a warning of the kind that must still reach the user.
FAKE_TENSORFLOW = textwrap.dedent('''
    import os
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
    os.write(2, b"I0000 00:00:1796522847.925156   13615 port.cc:153] oneDNN custom operations are on.\\n")
    os.write(2, b"W0000 00:00:1796522847.925156   13615 gpu.cc:12] Cannot dlopen some GPU libraries.\\n")
    LOADED = True
''')

IMPORT_IT = textwrap.dedent('''
    import sys
    from ds2_keras.core.quiet_startup import hide_tensorflow_start_up_info
    hide_tensorflow_start_up_info()
    import importlib.util
    assert importlib.util.find_spec("tensorflow")  # a look-up first, as ds2's TensorFlow check does
    import tensorflow
    assert tensorflow.LOADED and type(tensorflow.__loader__).__name__ == "SourceFileLoader"
    print("after the import", file=sys.stderr)
''')


def import_fake_tensorflow(tmp_path: Path, log_level: str) -> subprocess.CompletedProcess:
    package = tmp_path / "tensorflow"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text(FAKE_TENSORFLOW)
    root = Path(__file__).resolve().parents[1]
    env = {"PYTHONPATH": f"{tmp_path}:{root}", "TF_CPP_MIN_LOG_LEVEL": log_level, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", IMPORT_IT], env=env, capture_output=True, text=True)


def test_start_up_info_lines_are_dropped_and_warnings_kept(tmp_path):
    result = import_fake_tensorflow(tmp_path, "2")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "W0000 00:00:1796522847.925156   13615 gpu.cc:12] Cannot dlopen some GPU libraries.",
        "after the import",
    ]


def test_a_user_who_asks_for_info_lines_gets_them(tmp_path):
    result = import_fake_tensorflow(tmp_path, "0")
    assert result.returncode == 0, result.stderr
    assert len(result.stderr.splitlines()) == 4
    assert "oneDNN custom operations are on" in result.stderr

"""scripts/bench_vs_deepspeech_pytorch.py trains the peer's fixed network, whatever our presets become."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ds2_keras.core.config import PRESETS, preset

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_vs_deepspeech_pytorch.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_vs_deepspeech_pytorch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_under_the_scripts_overrides_is_the_issues_network(name):
    bench = load_script()
    config = preset(name).with_overrides(bench.ISSUE_12_OVERRIDES)
    # deepspeech.pytorch's DeepSpeech: 161 linear bins, 2 Conv2D of 32 channels, 3 BiGRU of 256.
    assert config.num_features == 161
    assert config.conv_filters == (32, 32)
    assert config.conv_kernels == ((11, 41), (11, 21)) and config.conv_strides == ((2, 2), (1, 2))
    assert (config.rnn_type, config.rnn_layers, config.rnn_units, config.bidirectional) == ("gru", 3, 256, True)
    assert config.lookahead == 0 and not config.streaming
    # Neither side augments or drops out: the same work a step.
    assert config.dropout == 0 and not config.spec_augment and not config.speed_perturb and config.noise_snr_db == 0
    assert [next(iter(layer)) for layer in bench.ours_layers(config)] == ["conv", "conv", "gru", "gru", "gru", "dense"]

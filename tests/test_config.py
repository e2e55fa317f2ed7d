"""The config dataclass: typed CLI overrides, validation, round trips; and chief detection."""
from __future__ import annotations

import json
import re

import pytest

from ds2_keras.core.config import PRESETS, DS2Config, preset
from ds2_keras.core.distribute import cluster_workers, is_chief


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_round_trip_through_json(name):
    config = preset(name)
    assert DS2Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_overrides_are_parsed_as_each_fields_type():
    config = preset("small").with_overrides(
        ["bidirectional=False", "spec_augment=off", "rnn_units=128", "learning_rate=3e-4", "rnn_type=lstm",
         "conv_strides=[[2, 2], [2, 1]]"])
    assert config.bidirectional is False and config.spec_augment is False
    assert config.rnn_units == 128 and config.learning_rate == 3e-4 and config.rnn_type == "lstm"
    assert config.conv_strides == ((2, 2), (2, 1)) and config.time_stride == 4


@pytest.mark.parametrize("assignment, message", [
    ("rnn_units=abc", "not a valid int"),
    ("bidirectional=maybe", "not a valid bool"),
    ("rnn_type=rnn", "rnn_type must be one of gru, lstm"),
    ("feature_type=mfcc", "feature_type must be one of linear, mel"),
    ("conv_filters=[16]", "one entry per convolution"),
    ("rnn_layers=0", "rnn_layers must be in [1, 64], not 0"),
    ("lr_schedule=linear", "lr_schedule must be one of epoch, cosine"),
    ("lr_floor=1.5", "lr_floor must be in [0, 1], not 1.5"),
    ("warmup_steps=-1", "warmup_steps must be in [0, inf), not -1"),
    ("dropout=1.5", "dropout must be in [0, 1), not 1.5"),
    ("mel_bins=100000", "mel_bins must be in [1, 1024], not 100000"),
    ("conv_filters=[16, 0]", "conv_filters must be positive"),
    ("no_such_field=1", "unknown config field"),
    ("rnn_units", "expected field=value"),
])
def test_bad_overrides_are_refused_with_the_reason(assignment, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        preset("small").with_overrides([assignment])


@pytest.mark.parametrize("tf_config, chief, workers", [
    (None, True, 0),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True, 2),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False, 2),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False, 2),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True, 2),
])
def test_chief_and_cluster_size_follow_tf_config(monkeypatch, tf_config, chief, workers):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert is_chief() is chief and cluster_workers() == workers

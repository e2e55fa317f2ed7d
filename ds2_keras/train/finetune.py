"""`ds2 fit --init-from M`: a new run that starts from another model's weights.

The new run gets epoch 0, a fresh optimizer and a schedule sized for its own data. Its config
is M's, with the fields the new command chose (`--preset`, `--set`, `--freeze`) applied where
they leave the network's shape alone; changing the shape is refused in one line. When the new
corpus has another alphabet, the output layer is rebuilt for the new symbols: the rows of the
symbols both alphabets share (the blank always) are kept, the others start as a fresh layer's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ds2_keras.core.config import DS2Config
from ds2_keras.core.errors import DS2Error
from ds2_keras.model.network import DS2Model

OUTPUT_LAYER = "logits"


class InitFromError(DS2Error):
    """A new run cannot start from the model's weights as asked; the message says which field."""


def init_config(source: DS2Config, requested: DS2Config, chosen: frozenset[str], source_path: Path) -> DS2Config:
    """The source model's config with the new run's chosen fields, which must not change its network."""
    config = source.replace(**{name: getattr(requested, name) for name in chosen})
    changes = source.architecture_changes(config)
    if changes:
        shown = ", ".join(f"{name}={new!r} (the model has {old!r})" for name, (old, new) in changes.items())
        raise InitFromError(f"--init-from {source_path} keeps its network, but this run asks for {shown}: "
                            "drop those settings, or train a new model without --init-from")
    return config


def transfer_weights(source: DS2Model, target: DS2Model) -> str:
    """Copy every layer's weights from `source` into the same-named layer of `target`, the
    output layer symbol by symbol; returns what was kept, for the run's first line."""
    for layer in target.layers:
        if layer.weights and layer.name != OUTPUT_LAYER:
            layer.set_weights(source.get_layer(layer.name).get_weights())
    old, new = source.alphabet, target.alphabet
    output = target.get_layer(OUTPUT_LAYER)
    if old == new:
        output.set_weights(source.get_layer(OUTPUT_LAYER).get_weights())
        return f"all layers kept, output layer included ({new.num_classes} symbols)"
    kernel, bias = (np.array(w) for w in output.get_weights())
    old_kernel, old_bias = source.get_layer(OUTPUT_LAYER).get_weights()
    shared = [(new.symbols.index(ch), old.symbols.index(ch)) for ch in new.symbols if ch in old.symbols]
    for to, from_ in shared:
        kernel[:, to], bias[to] = old_kernel[:, from_], old_bias[from_]
    output.set_weights([kernel, bias])
    added = "".join(ch for ch in new.characters if ch not in old.symbols)
    return (f"output layer rebuilt for {new.num_classes} symbols: {len(shared)} shared with the model kept, "
            f"{new.num_classes - len(shared)} new ({added!r})")

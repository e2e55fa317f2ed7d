"""The Deep Speech 2 network as a Keras functional model, built from a DS2Config.

Inputs are waveforms [batch, samples] at the config's sample rate, their lengths in samples and,
in training, `augment_seed` (each example's position in the run, which seeds augmentation);
outputs are per-frame logits over the alphabet's symbols (config.alphabet) and the logit lengths. Feature extraction and
augmentation are the model's first layers (features.py, augment.py), so they run on the
accelerator and every use of the model computes features the same way. Every layer respects the lengths
(explicit symmetric padding instead of "same", masks after each convolution, masked RNNs), so
an utterance gets the same output alone or padded inside a batch: training, batch evaluation,
`ds2 transcribe` and the exported SavedModel all agree.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from ds2_keras.core.alphabet import BLANK_INDEX, Alphabet
from ds2_keras.data.augment import SpecAugment, WaveformNoise
from ds2_keras.core.config import DS2Config
from ds2_keras.model.convolution import Conv2D
from ds2_keras.core.distribute import cluster_workers
from ds2_keras.core.errors import DS2Error
from ds2_keras.model.features import LogSpectrogram, UtteranceNormalization
from ds2_keras.core.frames import strided
from ds2_keras.model.recurrent import GRU, LSTM

_PACKAGE = "ds2"


@keras.saving.register_keras_serializable(_PACKAGE)
class TimeMask(layers.Layer):
    """Zero every frame past each utterance's length so padding cannot leak into valid frames."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # accept a Keras mask without warning...

    def compute_mask(self, inputs, mask=None):
        return None  # ...and end it: explicit lengths carry the mask from here on

    def call(self, inputs, lengths):
        mask = ops.arange(ops.shape(inputs)[1])[None, :] < ops.expand_dims(lengths, 1)
        mask = ops.cast(mask, inputs.dtype)
        for _ in range(len(inputs.shape) - 2):
            mask = ops.expand_dims(mask, -1)
        return inputs * mask


@keras.saving.register_keras_serializable(_PACKAGE)
class FrameMask(layers.Layer):
    """Boolean mask of the real frames, shaped like `inputs` without its channel axis.

    [batch, frames] for the recurrent layers, [batch, frames, bins] for batch norm after a
    convolution, so that statistics are computed over real frames only.
    """

    def call(self, inputs, lengths):
        mask = ops.arange(ops.shape(inputs)[1])[None, :] < ops.expand_dims(lengths, 1)
        if len(inputs.shape) == 4:
            mask = ops.broadcast_to(ops.expand_dims(mask, -1), ops.shape(inputs)[:3])
        return mask


@keras.saving.register_keras_serializable(_PACKAGE)
class StridedLengths(layers.Layer):
    """Lengths after a time stride (frames.strided), matching the padded convolution."""

    def __init__(self, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride

    def call(self, lengths):
        return strided(lengths, self.stride)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(_PACKAGE)
class BatchNormalization(layers.BatchNormalization):
    """BatchNormalization whose moving statistics are averaged over replicas at every update.

    Keras creates them with aggregation "none": under a tf.distribute strategy each replica
    (and worker) would keep the statistics of its own share of the batch, and the replicas'
    models would differ at inference.
    """

    def add_weight(self, *args, **kwargs):
        if not kwargs.get("trainable", True):
            kwargs["aggregation"] = "mean"
        return super().add_weight(*args, **kwargs)


def _conv_block(x, lengths, config: DS2Config, index: int):
    (kernel_t, kernel_f), (stride_t, stride_f) = config.conv_kernels[index], config.conv_strides[index]
    # Centred in time, or causal (only past frames) in a streaming model; both keep ceil(T / stride) frames.
    past, future = (kernel_t - 1, 0) if config.streaming else (kernel_t // 2, kernel_t // 2)
    x = layers.ZeroPadding2D(((past, future), (kernel_f // 2, kernel_f // 2)), name=f"conv{index}_pad")(x)
    # Keras' Conv2D, with faster gradients on CPU (convolution.py).
    x = Conv2D(config.conv_filters[index], (kernel_t, kernel_f), strides=(stride_t, stride_f),
               padding="valid", use_bias=False, name=f"conv{index}")(x)
    lengths = StridedLengths(stride_t, name=f"conv{index}_lengths")(lengths)
    frames = FrameMask(name=f"conv{index}_frames")(x, lengths)
    x = BatchNormalization(momentum=config.batchnorm_momentum, name=f"conv{index}_bn")(x, mask=frames)
    x = layers.ReLU(max_value=config.relu_clip, name=f"conv{index}_relu")(x)
    return TimeMask(name=f"conv{index}_mask")(x, lengths), lengths


def _recurrent_block(x, mask, lengths, config: DS2Config, index: int):
    cell = GRU if config.rnn_type == "gru" else LSTM  # Keras' own, inputs projected before the loop on CPU
    rnn = cell(config.rnn_units, return_sequences=True, name=f"{config.rnn_type}{index}")
    if config.bidirectional:
        # An explicit backward layer: Bidirectional's own copy breaks when a .keras file is loaded.
        backward = cell(config.rnn_units, return_sequences=True, go_backwards=True,
                        name=f"{config.rnn_type}{index}_backward")
        rnn = layers.Bidirectional(rnn, backward_layer=backward, merge_mode="concat", name=f"bi{config.rnn_type}{index}")
    x = rnn(x, mask=mask)
    # Sequence-wise batch norm between recurrent layers (DS2 section 3.2).
    x = BatchNormalization(momentum=config.batchnorm_momentum, name=f"rnn{index}_bn")(x)
    if config.dropout > 0:
        x = layers.Dropout(config.dropout, name=f"rnn{index}_dropout")(x)
    return TimeMask(name=f"rnn{index}_mask")(x, lengths)


def _lookahead(x, lengths, config: DS2Config):
    """DS2's row convolution: each output frame sees `lookahead` future frames, for streaming."""
    x = layers.ZeroPadding1D((0, config.lookahead), name="lookahead_pad")(x)
    x = layers.DepthwiseConv1D(config.lookahead + 1, padding="valid", name="lookahead_conv")(x)
    x = layers.ReLU(max_value=config.relu_clip, name="lookahead_relu")(x)
    return TimeMask(name="lookahead_mask")(x, lengths)


def _build_graph(config: DS2Config):
    waveforms = keras.Input(shape=(None,), name="waveforms")
    sample_lengths = keras.Input(shape=(), dtype="int32", name="lengths")
    augment_seed = keras.Input(shape=(), dtype="int64", name="augment_seed", optional=True)
    audio = WaveformNoise(config.noise_snr_db, name="noise")(waveforms, sample_lengths, augment_seed)
    features, lengths = LogSpectrogram(config, name="log_spectrogram")(audio, sample_lengths)
    if config.streaming:  # statistics fixed at training time (training.adapt_normalization): causal
        features = layers.Normalization(axis=-1, name="global_normalization")(features)
    else:
        features = UtteranceNormalization(name="normalization")(features, lengths)
    features = SpecAugment(config, name="spec_augment")(features, lengths, augment_seed)
    x = TimeMask(name="input_mask")(features, lengths)
    x = layers.Reshape((-1, config.num_features, 1), name="add_channel")(x)
    bins = config.num_features
    for index in range(len(config.conv_filters)):
        x, lengths = _conv_block(x, lengths, config, index)
        kernel_f, stride_f = config.conv_kernels[index][1], config.conv_strides[index][1]
        bins = (bins + 2 * (kernel_f // 2) - kernel_f) // stride_f + 1
    x = layers.Reshape((-1, bins * config.conv_filters[-1]), name="flatten_frequency")(x)
    mask = FrameMask(name="frame_mask")(x, lengths)
    for index in range(config.rnn_layers):
        x = _recurrent_block(x, mask, lengths, config, index)
    if config.lookahead and not config.bidirectional:
        x = _lookahead(x, lengths, config)
    logits = layers.Dense(config.output_alphabet.num_classes, dtype="float32", name="logits")(x)
    return {"waveforms": waveforms, "lengths": sample_lengths, "augment_seed": augment_seed}, [logits, lengths]


@keras.saving.register_keras_serializable(_PACKAGE)
class DS2Model(keras.Model):
    """DS2 with its config and training progress saved inside the .keras file.

    `progress` ({"epoch", "step", "history"}) travels with the weights and optimizer state, so
    one atomic file is everything `--model-file` needs to resume exactly.
    """

    def __init__(self, ds2_config: DS2Config | dict, progress: dict | None = None, **kwargs):
        config = ds2_config if isinstance(ds2_config, DS2Config) else DS2Config.from_dict(ds2_config)
        inputs, outputs = _build_graph(config)
        kwargs.pop("trainable", None)
        super().__init__(inputs=inputs, outputs=outputs, name=kwargs.pop("name", f"ds2_{config.preset}"), **kwargs)
        self.ds2_config = config
        self.progress = progress or {"epoch": 0, "step": 0, "history": {}}
        for layer in frozen_layers(self, config.freeze):
            layer.trainable = False
        self.nonfinite_losses = keras.metrics.Sum(name="nonfinite_losses")
        self.nonfinite_steps = keras.metrics.Sum(name="nonfinite_steps")  # skipped, see train_step

    def get_config(self):
        return {"ds2_config": self.ds2_config.to_dict(), "progress": self.progress, "name": self.name}

    @property
    def alphabet(self) -> Alphabet:
        return self.ds2_config.output_alphabet

    def logits(self, waveforms, lengths) -> tuple[tf.Tensor, tf.Tensor]:
        """Inference: (logits [batch, frames, classes], logit lengths) for zero-padded waveforms."""
        return self({"waveforms": waveforms, "lengths": lengths, "augment_seed": None}, training=False)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras reduces a sample input batch across replicas here, which MultiWorkerMirroredStrategy
        # cannot do for dict inputs (keras-team/keras#20329). The functional model is built
        # already: only the optimizer's variables are left to create, which needs no data.
        with self.distribute_strategy.scope():
            self._symbolic_build()

    def train_step(self, data):
        """Keras' training step, except that a step that cannot be trusted changes nothing.

        Non-finite gradients (NaN or Inf audio, an overflow) would poison the weights, Adam's
        moments and the BatchNorm statistics, and a batch without a single finite loss has nothing
        to learn from (momentum alone would still move the weights). Such a step is skipped on
        every replica: no weight, optimizer slot or iteration count changes, the model's
        non-trainable state (moving statistics, seeds) is put back, and `nonfinite_steps` counts it.
        """
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        state = self.non_trainable_variables
        before = [tf.identity(variable) for variable in state]  # read before the forward pass updates them
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss, finite_losses = self._ctc_loss(y, y_pred)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_weights)
        finite_gradients, learnable = _agreed_across_replicas(gradients, finite_losses)
        # A loss-scaling optimizer (mixed precision) skips overflowing steps itself and lowers its scale.
        scaling = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
        _apply_if(learnable if scaling else learnable & finite_gradients, self.optimizer, gradients,
                  self.trainable_weights)
        applied = learnable & finite_gradients
        for variable, value in zip(state, before):
            variable.assign(tf.where(applied, variable, value))
        # `loss` is the mean over the utterances whose loss is finite, whether or not the step applied.
        self._loss_tracker.update_state(loss * tf.distribute.get_strategy().num_replicas_in_sync,
                                        sample_weight=finite_losses)
        first_replica = tf.distribute.get_replica_context().replica_id_in_sync_group == 0
        self.nonfinite_steps.update_state(tf.cast(~applied & first_replica, tf.float32))  # counted once
        logs = self.compute_metrics(x, y, y_pred)
        if cluster_workers() > 1:
            # Across workers Keras reduces each log along axis 0 (tensorflow/tensorflow#72388).
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean CTC loss over the batch's finite per-utterance losses (Keras' evaluate calls this)."""
        return self._ctc_loss(y, y_pred)[0]

    def _ctc_loss(self, y, y_pred) -> tuple[tf.Tensor, tf.Tensor]:
        """This replica's share of the mean CTC loss over the finite per-utterance losses, and how
        many those are; the non-finite ones are dropped and counted in `nonfinite_losses`."""
        logits, logit_lengths = y_pred
        per_utterance = ctc_loss(y["labels"], y["label_lengths"], logits, logit_lengths)
        finite = tf.math.is_finite(per_utterance)
        self.nonfinite_losses.update_state(tf.reduce_sum(tf.cast(~finite, tf.float32)))
        count = tf.reduce_sum(tf.cast(finite, tf.float32))
        loss = tf.reduce_sum(tf.where(finite, per_utterance, 0.0)) / tf.maximum(count, 1.0)
        # Replica gradients are summed, so each replica contributes its share of the mean.
        return loss / tf.distribute.get_strategy().num_replicas_in_sync, count


def _agreed_across_replicas(gradients: list[tf.Tensor], finite_losses: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(every replica's gradients are finite, some replica has a finite loss): the same answer on
    every replica, so that all of them take or skip the step together."""
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients if g is not None])
    nonfinite_replicas, finite_losses = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, [tf.cast(~finite, tf.float32), finite_losses])
    return nonfinite_replicas == 0, finite_losses > 0


def _apply_if(condition: tf.Tensor, optimizer: keras.optimizers.Optimizer, gradients: list[tf.Tensor],
              weights: list) -> None:
    """optimizer.apply_gradients only where `condition` (equal on every replica) holds.

    The optimizer synchronizes replicas with merge_call, which tf.distribute does not allow inside
    a tf.cond taken in replica context: the condition is then taken in cross-replica context, as
    Keras' LossScaleOptimizer does.
    """
    def apply(gradients):
        optimizer.apply_gradients(zip(gradients, weights))

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(condition, lambda: apply(gradients), lambda: None)
        return

    def cross_replica(strategy, condition, gradients):
        taken = strategy.experimental_local_results(condition)[0]
        tf.cond(taken, lambda: strategy.extended.call_for_each_replica(apply, args=(gradients,)), lambda: None)

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(condition, gradients))


def ctc_loss(labels, label_lengths, logits, logit_lengths):
    """Per-utterance CTC loss; labels are padded with 0 (the blank never occurs in a label).

    An utterance with fewer frames than label characters (audio that failed to decode is one
    window of silence) gets an infinite loss, as one that is too short for its repeats already does: the
    CTC op raises for it instead, so it is computed on a one-character stand-in and replaced.
    """
    labels = tf.cast(labels, tf.int32)
    logit_lengths = tf.cast(logit_lengths, tf.int32)
    fits = tf.cast(label_lengths, tf.int32) <= logit_lengths
    stand_in = tf.one_hot(0, tf.shape(labels)[1], on_value=1, off_value=0, dtype=tf.int32)[None, :]
    losses = tf.nn.ctc_loss(
        labels=tf.sparse.from_dense(tf.where(fits[:, None], labels, stand_in)),
        logits=tf.cast(logits, tf.float32),
        label_length=None,
        logit_length=tf.where(fits, logit_lengths, 1),
        logits_time_major=False,
        blank_index=BLANK_INDEX,
    )
    return tf.where(fits, losses, float("inf"))


def build_model(config: DS2Config) -> DS2Model:
    return DS2Model(config)


class FreezeError(DS2Error):
    """A --freeze prefix that names no layer with weights."""


def frozen_layers(model: keras.Model, prefixes: tuple[str, ...]) -> list[keras.layers.Layer]:
    """The layers with weights whose names start with one of `prefixes` (fit --freeze)."""
    weighted = [layer for layer in model.layers if layer.weights]
    for prefix in prefixes:
        if not any(layer.name.startswith(prefix) for layer in weighted):
            names = ", ".join(layer.name for layer in weighted)
            raise FreezeError(f"--freeze {prefix}: no layer with weights is named so; the model's are {names}")
    return [layer for layer in weighted if layer.name.startswith(tuple(prefixes))]

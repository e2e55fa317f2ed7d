"""Streaming recognition: audio in chunks of any size, logits as soon as the lookahead allows.

Only a model built with `streaming=true` (unidirectional, causal convolutions, feature
statistics fixed at training time) can stream: nothing it computes for a frame depends on audio
after it but the `lookahead` frames of its row convolution. `StreamingRecognizer.step` runs the
model's own layers (same weights) on each chunk and carries everything the next chunk needs in
a state of plain tensors, so the same function serves the Python `Streamer`, `ds2 transcribe
--stream` and the SavedModel's stateless `stream_step` signature (the client carries the state).
After the final chunk the logits equal the offline model's on the whole audio:

- STFT: samples that do not yet fill a window wait in the state;
- convolution i: the frames it still needs (at first kernel-1 zero frames, the causal padding);
  an output is made once its last input frame has arrived, so each stride's phase is kept;
- recurrent layer i: its hidden state (and LSTM cell state);
- row convolution: the last `lookahead` frames of the last RNN (zeros at first) and how many
  frames that RNN has made; a frame is emitted once its `lookahead` future frames have arrived
  (on the final chunk the missing future is zeros, as offline);
- the greedy transcript so far, the last frame's best symbol (repeats collapse across chunks)
  and the number of frames emitted (so word times are absolute).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, Iterator

import numpy as np
import tensorflow as tf

from ds2_keras.core.alphabet import BLANK_INDEX, Alphabet
from ds2_keras.data.audio import AudioError
from ds2_keras.decode.decoders import BeamSearchDecoder, Decoder, greedy_hypotheses
from ds2_keras.core.errors import DS2Error
from ds2_keras.core.frames import analysis_frames, output_frame_seconds, samples_spanned
from ds2_keras.decode.words import Hypothesis

if TYPE_CHECKING:
    from ds2_keras.model.network import DS2Model


# A stream's `last_token` after its final step: any further step is refused, so a client that
# sends the returned state again with final=true cannot append the flushed lookahead twice.
FINISHED_TOKEN = -2


class StreamingError(DS2Error):
    """A model that cannot stream was asked to."""


def check_streamable(model: DS2Model) -> None:
    config = model.ds2_config
    if not config.streaming:
        kind = "bidirectional" if config.bidirectional else "not built for streaming"
        raise StreamingError(f"this model is {kind}: streaming needs a model trained with "
                             "--set bidirectional=false --set streaming=true --set lookahead=N")


class StreamingRecognizer(tf.Module):
    """`initial_state(batch)` and `step(audio, state, final)` over a streaming DS2Model's layers."""

    def __init__(self, model: DS2Model):
        super().__init__(name="ds2_streaming")
        check_streamable(model)
        self.model = model
        config = self.config = model.ds2_config
        self._conv_inputs = [tuple(model.get_layer(f"conv{i}_pad").input.shape[2:]) for i in range(len(config.conv_filters))]
        self._rnn_states = 2 if config.rnn_type == "lstm" else 1
        # `step` traced once for any chunk size and batch: every Streamer of this recognizer reuses it.
        self.traced_step = tf.function(self.step, input_signature=[
            tf.TensorSpec([None, None], tf.float32), self.state_specs(), tf.TensorSpec([], tf.bool)])

    def _recurrent_state_names(self) -> list[str]:
        return [f"rnn{i}_{k}" for i in range(self.config.rnn_layers) for k in range(self._rnn_states)]

    def state_specs(self) -> dict[str, tf.TensorSpec]:
        specs = {"samples": tf.TensorSpec([None, None], tf.float32)}
        for i, (bins, channels) in enumerate(self._conv_inputs):
            specs[f"conv{i}"] = tf.TensorSpec([None, None, bins, channels], tf.float32)
        for name in self._recurrent_state_names():
            specs[name] = tf.TensorSpec([None, self.config.rnn_units], tf.float32)
        if self.config.lookahead:
            specs.update(lookahead=tf.TensorSpec([None, self.config.lookahead, self.config.rnn_units], tf.float32),
                         rnn_frames=tf.TensorSpec([None], tf.int32))
        specs.update(frames=tf.TensorSpec([None], tf.int32), last_token=tf.TensorSpec([None], tf.int32),
                     transcript=tf.TensorSpec([None], tf.string))
        return specs

    def initial_state(self, batch: tf.Tensor | int) -> dict[str, tf.Tensor]:
        config = self.config
        state = {"samples": tf.zeros([batch, 0])}
        for i, (bins, channels) in enumerate(self._conv_inputs):
            state[f"conv{i}"] = tf.zeros([batch, config.conv_kernels[i][0] - 1, bins, channels])
        for name in self._recurrent_state_names():
            state[name] = tf.zeros([batch, config.rnn_units])
        if config.lookahead:
            state.update(lookahead=tf.zeros([batch, config.lookahead, config.rnn_units]),
                         rnn_frames=tf.zeros([batch], tf.int32))
        state.update(frames=tf.zeros([batch], tf.int32), last_token=tf.fill([batch], -1), transcript=tf.fill([batch], ""))
        return state

    def step(self, audio: tf.Tensor, state: dict[str, tf.Tensor], final: tf.Tensor | bool = False
             ) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """Feed [batch, samples] of audio (every stream the same number); return (state, new logits [batch, frames, classes]).

        The inputs are checked first (see check_step_inputs): a TF Serving client carries the
        state, and a wrong one would otherwise give a wrong transcript without an error.
        """
        audio, state = self.check_step_inputs(tf.cast(audio, tf.float32), state)
        new = {}
        features, new["samples"] = self._frames(tf.concat([state["samples"], audio], axis=1))
        x = features[:, :, :, None]
        for i in range(len(self._conv_inputs)):
            x, new[f"conv{i}"] = self._convolution(i, tf.concat([state[f"conv{i}"], x], axis=1))
        x = tf.reshape(x, [tf.shape(x)[0], tf.shape(x)[1], x.shape[2] * x.shape[3]])
        for i in range(self.config.rnn_layers):
            names = [f"rnn{i}_{k}" for k in range(self._rnn_states)]
            x, states = self._recurrent(i, x, [state[name] for name in names])
            new.update(zip(names, states))
        if self.config.lookahead:
            new["rnn_frames"] = state["rnn_frames"] + tf.shape(x)[1]
            x, new["lookahead"] = self._lookahead(state["lookahead"], x, state["rnn_frames"], final)
        logits = self.model.get_layer("logits")(x)
        new["frames"] = state["frames"] + tf.shape(logits)[1]
        new["transcript"], last_token = _extend_greedy(state["transcript"], state["last_token"], logits,
                                                       self.model.alphabet)
        new["last_token"] = tf.where(tf.cast(final, tf.bool), FINISHED_TOKEN, last_token)
        return new, logits

    def check_step_inputs(self, audio: tf.Tensor, state: dict[str, tf.Tensor]
                          ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """`audio` and `state` once they are known to be a stream's: finite samples, every state
        tensor of the audio's batch, of the shape the recognizer makes and finite, and a stream
        that has not had its final step (its `last_token` is FINISHED_TOKEN after one).

        Messages name the tensor and the cause, never the data, as serving_inputs' checks do.
        """
        config, batch = self.config, tf.shape(audio)[0]
        checks = [tf.debugging.assert_all_finite(audio, "audio must hold finite samples")]
        # What a step leaves over: samples short of a window, frames short of a kernel.
        longest = {"samples": config.window_samples - 1}
        longest.update({f"conv{i}": config.conv_kernels[i][0] - 1 for i in range(len(self._conv_inputs))})
        for name, spec in self.state_specs().items():
            value, shape = state[name], tf.shape(state[name])
            checks.append(tf.debugging.assert_equal(shape[0], batch,
                                                    message=f"state_{name} must have the batch size of audio"))
            checks += [tf.debugging.assert_equal(shape[axis], size, message=f"state_{name} must have {size} in dimension {axis}")
                       for axis, size in enumerate(spec.shape[1:], start=1) if size is not None]
            if name in longest:
                checks.append(tf.debugging.assert_less_equal(
                    shape[1], longest[name], message=f"state_{name} must have at most {longest[name]} in dimension 1"))
            if spec.dtype == tf.float32:
                checks.append(tf.debugging.assert_all_finite(value, f"state_{name} must hold finite values"))
            elif name in ("frames", "rnn_frames"):
                checks.append(tf.debugging.assert_non_negative(value, message=f"state_{name} must be >= 0"))
        checks.append(tf.debugging.assert_none_equal(
            state["last_token"], FINISHED_TOKEN,
            message="this stream has finished (a step with final=true was sent); start a new one with stream_start"))
        checks.append(tf.debugging.assert_less(state["last_token"], self.model.alphabet.num_classes,
                                               message="state_last_token must be a symbol index or -1"))
        checks.append(tf.debugging.assert_greater_equal(state["last_token"], FINISHED_TOKEN,
                                                        message="state_last_token must be a symbol index or -1"))
        with tf.control_dependencies(checks):
            return tf.identity(audio), {name: tf.identity(value) for name, value in state.items()}

    def _frames(self, samples: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Normalized features of every whole window in `samples`, and the samples left over."""
        config = self.config
        count = analysis_frames(tf.shape(samples)[1], config)
        used = tf.maximum(samples_spanned(count, config), 0)
        # The spectrogram layer computes frames for lengths; padding a short buffer keeps shapes valid.
        padded = tf.pad(samples[:, :used], [[0, 0], [0, tf.maximum(config.window_samples - used, 0)]])
        features, _ = self.model.get_layer("log_spectrogram")(padded, tf.fill([tf.shape(samples)[0]], used))
        features = self.model.get_layer("global_normalization")(features[:, :count])
        return features, samples[:, count * config.hop_samples:]

    def _convolution(self, index: int, frames: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Outputs of conv `index` whose inputs have all arrived, and the frames the next ones need."""
        (kernel_t, kernel_f), (stride_t, _) = self.config.conv_kernels[index], self.config.conv_strides[index]
        available = tf.shape(frames)[1]
        count = tf.maximum((available - kernel_t) // stride_t + 1, 0)
        padded = tf.pad(frames, [[0, 0], [0, tf.maximum(kernel_t - available, 0)],
                                 [kernel_f // 2, kernel_f // 2], [0, 0]])
        x = self.model.get_layer(f"conv{index}")(padded)[:, :count]
        x = self.model.get_layer(f"conv{index}_bn")(x, training=False)
        return self.model.get_layer(f"conv{index}_relu")(x), frames[:, count * stride_t:]

    def _recurrent(self, index: int, x: tf.Tensor, states: list[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """Recurrent layer `index` over the new frames from its carried state, then its batch norm."""
        cell = self.model.get_layer(f"{self.config.rnn_type}{index}").cell

        def advance(carried, frame):
            _, next_states = cell(frame, list(carried), training=False)
            return tuple(next_states)

        def run() -> tuple[tf.Tensor, list[tf.Tensor]]:
            steps = tf.scan(advance, tf.transpose(x, [1, 0, 2]), initializer=tuple(states))
            # A GRU's or LSTM's output is its first state.
            return tf.transpose(steps[0], [1, 0, 2]), [step[-1] for step in steps]

        # tf.scan cannot stack zero steps of unknown batch size: a chunk without frames changes nothing.
        outputs, last = tf.cond(tf.shape(x)[1] > 0, run,
                                lambda: (tf.zeros([tf.shape(x)[0], 0, self.config.rnn_units]), list(states)))
        return self.model.get_layer(f"rnn{index}_bn")(outputs, training=False), last

    def _lookahead(self, history: tf.Tensor, x: tf.Tensor, made: tf.Tensor, final: tf.Tensor | bool
                   ) -> tuple[tf.Tensor, tf.Tensor]:
        """Row-convolution outputs whose `lookahead` future frames have arrived (all of them when final).

        `history` holds the last `lookahead` RNN frames before `x` (zeros before the first), so
        the buffer has a fixed shape that a JSON client can carry; `made` counts the RNN frames
        before `x` (every stream of a batch advances together), and outputs for the zero frames
        before the start are dropped.
        """
        lookahead = self.config.lookahead
        frames = tf.concat([history, x], axis=1)  # frames made - lookahead ... made + new - 1
        # Padded with `lookahead` zeros, as offline after the end; without `final` the outputs that
        # reach into them are not ready and are dropped. (Padding always also keeps the input as
        # long as the kernel: given fewer frames, TF 2.21's oneDNN depthwise convolution returns
        # as many frames as its input instead of none.)
        outputs = self.model.get_layer("lookahead_conv")(tf.pad(frames, [[0, 0], [0, lookahead], [0, 0]]))
        ready = tf.shape(frames)[1] - lookahead * (1 - tf.cast(final, tf.int32))
        outputs = outputs[:, :ready]
        before_start = tf.clip_by_value(lookahead - made[0], 0, tf.shape(outputs)[1])
        return self.model.get_layer("lookahead_relu")(outputs[:, before_start:]), frames[:, -lookahead:]


def _extend_greedy(transcript: tf.Tensor, last_token: tf.Tensor, logits: tf.Tensor, alphabet: Alphabet
                   ) -> tuple[tf.Tensor, tf.Tensor]:
    """Greedy decoding continued over new frames: repeats collapse across chunk boundaries."""
    best = tf.argmax(logits, axis=-1, output_type=tf.int32)
    path = tf.concat([last_token[:, None], best], axis=1)
    keep = tf.not_equal(path[:, 1:], path[:, :-1]) & tf.not_equal(path[:, 1:], BLANK_INDEX)
    characters = tf.gather(tf.constant(list(alphabet.symbols)), tf.ragged.boolean_mask(best, keep))
    return transcript + tf.strings.reduce_join(characters, axis=-1), path[:, -1]


def add_serving_signatures(module: tf.Module, model: DS2Model) -> dict[str, tf.types.experimental.GenericFunction]:
    """Attach `stream_start` and `stream_step` to a SavedModel module; return them by signature name.

    TF Serving is stateless, so the client carries the state: `stream_start(batch_size)` gives the
    first one, and every `stream_step(audio, final, state_*)` returns the next state (`state_*`),
    the new frames' `logits` and the partial `transcripts` so far.
    """
    recognizer = module.streaming = StreamingRecognizer(model)
    specs = recognizer.state_specs()

    def start(batch_size: tf.Tensor) -> dict[str, tf.Tensor]:
        return {f"state_{name}": value for name, value in recognizer.initial_state(batch_size).items()}

    def step(audio: tf.Tensor, final: tf.Tensor, *states: tf.Tensor) -> dict[str, tf.Tensor]:
        state, logits = recognizer.step(audio, dict(zip(specs, states)), final)
        return {**{f"state_{name}": value for name, value in state.items()}, "logits": logits,
                "transcripts": state["transcript"]}

    module.stream_start = tf.function(start, input_signature=[tf.TensorSpec([], tf.int32, name="batch_size")])
    module.stream_step = tf.function(step, input_signature=[
        tf.TensorSpec([None, None], tf.float32, name="audio"), tf.TensorSpec([], tf.bool, name="final"),
        *(tf.TensorSpec(spec.shape, spec.dtype, name=f"state_{name}") for name, spec in specs.items())])
    return {"stream_start": module.stream_start, "stream_step": module.stream_step}


class Streamer:
    """One live stream in Python: `feed(chunk)` returns the partial result, `finish()` the final one.

    Results are Hypotheses (text, words with times from the stream's start and confidences) of
    every frame emitted so far, decoded by the same greedy ops as the offline recognizer, so
    the final one equals the offline result. With a beam-search `decoder`, partials stay greedy
    while each chunk's frames also advance the (frame-synchronous) beam search, and the final
    result is the beam's: the same as the decoder's offline result over the same frames. The
    log-probabilities are kept for re-decoding.
    """

    def __init__(self, model: DS2Model | StreamingRecognizer, decoder: Decoder | None = None):
        """Pass a StreamingRecognizer to start many streams of one model without tracing it again."""
        self.recognizer = model if isinstance(model, StreamingRecognizer) else StreamingRecognizer(model)
        self.state = self.recognizer.initial_state(1)
        self._frame_seconds = output_frame_seconds(self.recognizer.config)
        self.log_probs = np.zeros((0, self.recognizer.model.alphabet.num_classes), np.float32)
        self.finished = False
        self._beam = decoder if isinstance(decoder, BeamSearchDecoder) else None
        self._search = self._beam.start() if self._beam is not None else None

    def feed(self, chunk: np.ndarray, final: bool = False) -> Hypothesis:
        if self.finished:
            raise StreamingError("this stream has finished; start a new Streamer")
        audio = np.asarray(chunk, np.float32).reshape(1, -1)
        self.state, logits = self.recognizer.traced_step(tf.constant(audio), self.state, tf.constant(final))
        new = tf.nn.log_softmax(logits[0]).numpy()
        self.log_probs = np.concatenate([self.log_probs, new])
        self.finished = final
        if self._search is not None:
            self._search.advance(new)
            if final:
                return self._beam.result(self._search, self.log_probs, frame_seconds=self._frame_seconds)
        return greedy_hypotheses(self.log_probs[None], frame_seconds=self._frame_seconds,
                                 alphabet=self.recognizer.model.alphabet)[0]

    def finish(self) -> Hypothesis:
        return self.feed(np.zeros(0, np.float32), final=True)


# The first bytes of the containers people pipe by mistake; as PCM they would decode to noise
# and a wrong transcript. (An MP3 without ID3 tags starts with a frame: 11 set sync bits.)
_CONTAINERS = ((b"RIFF", "a WAV file"), (b"fLaC", "a FLAC file"), (b"OggS", "an Ogg file"),
               (b"ID3", "an MP3 file"), (b"FORM", "an AIFF file"))
RAW_PCM_HINT = ("pass the file's path instead of -, or convert to raw PCM first "
                "(ffmpeg -i IN -f s16le -ac 1 -ar 16000 -)")


def container_name(head: bytes) -> str | None:
    """What container `head` (a stream's first bytes) starts, or None for anything else."""
    for magic, name in _CONTAINERS:
        if head.startswith(magic):
            return name
    if len(head) >= 3 and head[0] == 0xFF and head[1] >= 0xE0 and head[1] & 0x06 and _valid_mp3_rates(head[2]):
        return "an MP3 file"
    return None


def _valid_mp3_rates(byte: int) -> bool:
    """An MP3 frame header's bitrate and sample-rate indexes are not the reserved ones, which
    tells a real frame from PCM that starts with samples like -1 (0xFF 0xFF)."""
    return byte >> 4 != 0xF and (byte >> 2) & 0x3 != 0x3


def pcm_chunks(stream: BinaryIO, chunk_samples: int, name: str = "-") -> Iterator[np.ndarray]:
    """Raw 16-bit little-endian mono PCM (what `arecord -f S16_LE -c 1` writes) as float chunks.

    AudioError (naming `name`) if the stream starts with a container's header instead.
    """
    first = True
    while True:
        data = stream.read(2 * chunk_samples)
        if first and (kind := container_name(data[:4])):
            raise AudioError(name, f"this is {kind}, not raw 16-bit PCM; {RAW_PCM_HINT}")
        first = False
        if not data:
            return
        data = data[: len(data) // 2 * 2]  # a half sample at the very end is dropped
        yield np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def array_chunks(samples: np.ndarray, chunk_samples: int) -> Iterator[np.ndarray]:
    for start in range(0, len(samples), chunk_samples):
        yield samples[start: start + chunk_samples]

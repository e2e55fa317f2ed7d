"""`ds2 export --format litert`: a LiteRT (TensorFlow Lite) flatbuffer and its JSON sidecar.

The .tflite file holds builtin ops only (no Flex / SELECT_TF_OPS), so the stock LiteRT runtime
on Android, iOS, Linux ARM and x86 runs it. Its signatures (the contract, also in the sidecar):

- `offline`: waveforms float32 [batch, samples] (zero-padded, at the model's sample rate) and
  lengths int32 [batch] -> logits float32 [batch, frames, classes] and logit_lengths int32
  [batch]: the Keras model's own graph, features inside.
- `stream_step` (streaming=true models only): one step of `step_frames` output frames, see
  streaming_step. The state tensors are inputs and outputs of the same names.

The model is traced with its STFT written as a matmul (features.LogSpectrogram.dft_as_matmul):
LiteRT's RFFT2D takes only power-of-two lengths, the 20 ms window is 320 samples. Trained
weights and what the Keras model computes do not change.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from ds2_keras.core.errors import DS2Error
from ds2_keras.core.fileio import atomic_path, atomic_write_text, make_directory
from ds2_keras.core.frames import output_frame_seconds
from ds2_keras.deploy.litert_runtime import SIDECAR_FORMAT, sidecar_path
from ds2_keras.deploy.recognizer import generic_rnn_kernels

if TYPE_CHECKING:
    import tensorflow as tf

    from ds2_keras.model.network import DS2Model

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
STEP_MILLISECONDS = 160  # audio per streaming step, rounded to whole output frames
CALIBRATION_UTTERANCES = 200
_FLOAT_LAYERS = ("log_spectrogram", "normalization")  # names of the layers int8 leaves float


class LiteRTExportError(DS2Error):
    """A LiteRT export cannot be made as asked; the message names the file or option."""


@contextlib.contextmanager
def dft_as_matmul(model: DS2Model) -> Iterator[None]:
    """Within the block the model traces its STFT as a matmul (LiteRT-runnable); restored after."""
    layer = model.get_layer("log_spectrogram")
    layer.dft_as_matmul = True
    try:
        with generic_rnn_kernels(model):
            yield
    finally:
        layer.dft_as_matmul = False


def offline_function(model: DS2Model) -> tf.types.experimental.ConcreteFunction:
    """waveforms [batch, samples], lengths [batch] -> {"logits", "logit_lengths"}, traced for conversion."""
    import tensorflow as tf

    def offline(waveforms, lengths):
        logits, logit_lengths = model.logits(waveforms, lengths)
        return {"logits": logits, "logit_lengths": logit_lengths}

    with dft_as_matmul(model):
        return tf.function(offline).get_concrete_function(
            tf.TensorSpec([1, None], tf.float32, name="waveforms"), tf.TensorSpec([1], tf.int32, name="lengths"))


def step_frames(model: DS2Model) -> int:
    """Output frames per streaming step: STEP_MILLISECONDS of audio, at least one frame."""
    return max(1, round(STEP_MILLISECONDS / 1000 / output_frame_seconds(model.ds2_config)))


def state_shapes(model: DS2Model) -> dict[str, list[int]]:
    """The streaming step's state tensors (batch 1), in the order the step takes them."""
    config = model.ds2_config
    shapes = {}
    for i in range(len(config.conv_filters)):
        bins, channels = model.get_layer(f"conv{i}_pad").input.shape[2:]
        shapes[f"conv{i}"] = [1, config.conv_kernels[i][0] - 1, bins, channels]
    for i in range(config.rnn_layers):
        for k in range(2 if config.rnn_type == "lstm" else 1):
            shapes[f"rnn{i}_{k}"] = [1, config.rnn_units]
    if config.lookahead:
        shapes["lookahead"] = [1, config.lookahead, config.rnn_units]
    return shapes


def step_samples(model: DS2Model) -> int:
    """Samples one step takes: the carried window overlap, then step_frames output frames of new audio."""
    config = model.ds2_config
    return config.window_samples - config.hop_samples + step_frames(model) * config.time_stride * config.hop_samples


def streaming_function(model: DS2Model) -> tf.types.experimental.ConcreteFunction:
    """The stream_step signature: a fixed-shape step over a streaming model's own layers.

    Inputs: audio [1, step_samples] (the last window - hop samples of the previous step, then
    step_frames * time_stride * hop new ones; the runtime buffers), valid int32 [] (how many of
    the step's step_frames frames are inside the audio: step_frames but on the final step) and
    the state. Outputs: the new state and logits [1, step_frames + lookahead, classes], the
    row-convolution outputs for frames made - lookahead ... made + step_frames - 1, the last
    `lookahead` of them computed with zeros as the future (used only on the final step).
    Because each step is a whole number of every convolution's stride, each convolution carries
    exactly kernel - 1 frames, as the offline model's causal padding.
    """
    import tensorflow as tf

    config = model.ds2_config
    frames, lookahead = step_frames(model), config.lookahead
    shapes = state_shapes(model)
    cells = [model.get_layer(f"{config.rnn_type}{i}").cell for i in range(config.rnn_layers)]

    def step(audio, valid, **state):
        new = {}
        length = tf.fill([1], tf.shape(audio)[1])
        features, _ = model.get_layer("log_spectrogram")(audio, length)
        x = model.get_layer("global_normalization")(features)[:, :, :, None]
        for i in range(len(config.conv_filters)):
            kernel_t, kernel_f = config.conv_kernels[i]
            buffered = tf.concat([state[f"conv{i}"], x], axis=1)
            new[f"conv{i}"] = buffered[:, -(kernel_t - 1):] if kernel_t > 1 else buffered[:, :0]
            x = model.get_layer(f"conv{i}")(tf.pad(buffered, [[0, 0], [0, 0], [kernel_f // 2] * 2, [0, 0]]))
            x = model.get_layer(f"conv{i}_relu")(model.get_layer(f"conv{i}_bn")(x, training=False))
        x = tf.reshape(x, [1, frames, x.shape[2] * x.shape[3]])
        for i, cell in enumerate(cells):
            names = [name for name in shapes if name.startswith(f"rnn{i}_")]
            carried, outputs = [state[name] for name in names], []
            for t in range(frames):  # unrolled: a few frames, no WHILE op
                output, carried = cell(x[:, t], carried, training=False)
                outputs.append(output)
            new.update(zip(names, carried))
            x = model.get_layer(f"rnn{i}_bn")(tf.stack(outputs, axis=1), training=False)
        x = x * tf.sequence_mask(valid, frames, x.dtype)[None, :, None]  # past the end: zeros, as offline
        if lookahead:
            buffered = tf.concat([state["lookahead"], x], axis=1)
            new["lookahead"] = buffered[:, -lookahead:]
            x = model.get_layer("lookahead_conv")(tf.pad(buffered, [[0, 0], [0, lookahead], [0, 0]]))
            x = model.get_layer("lookahead_relu")(x)
        return {"logits": model.get_layer("logits")(x), **{f"new_{name}": value for name, value in new.items()}}

    specs = {name: tf.TensorSpec(shape, tf.float32, name=name) for name, shape in shapes.items()}
    with dft_as_matmul(model):
        return tf.function(step).get_concrete_function(
            tf.TensorSpec([1, step_samples(model)], tf.float32, name="audio"),
            tf.TensorSpec([], tf.int32, name="valid"), **specs)


def convert(model: DS2Model, quantize: str, calibration: Iterable[np.ndarray] | None = None) -> bytes:
    """The .tflite flatbuffer: `offline` (and `stream_step` for a streaming model), builtin ops only.

    quantize: none (float32), float16 (weights stored as float16), dynamic (weights int8,
    activations float) or int8 (weights and activations int8, calibrated on `calibration`
    waveforms; inputs and outputs stay float32, and ops without an int8 kernel stay float).
    """
    import tensorflow as tf

    functions = {"offline": offline_function(model)}
    if model.ds2_config.streaming:
        functions["stream_step"] = streaming_function(model)
    with tempfile.TemporaryDirectory(prefix="ds2-litert-") as staging:
        # Weights frozen first (else LiteRT gets VAR_HANDLE ops it cannot initialize), then
        # through a SavedModel: only there does the converter keep the signatures' names.
        frozen = {name: _frozen(function) for name, function in functions.items()}
        tf.saved_model.save(tf.Module(), staging, signatures=frozen,
                            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
        converter = tf.lite.TFLiteConverter.from_saved_model(staging, signature_keys=list(functions))
        _configure(converter, model, quantize, calibration, "stream_step" in functions)
        flatbuffer = converter.convert()
    return _quantized_after_features(flatbuffer) if quantize == "int8" else flatbuffer


def _quantized_after_features(calibrated: bytes) -> bytes:
    """The calibrated model quantized to int8 except its feature front end, which stays float.

    Power spectra span some 10 orders of magnitude before their log: in int8 (256 linear
    levels) every quiet bin is 0 and the transcripts are noise. Each op whose output tensor
    belongs to the spectrogram or its normalization is left float (TF's selective quantization,
    as tf.lite.experimental.QuantizationDebugger applies it).
    """
    from tensorflow.lite.python.convert import mlir_quantize
    from tensorflow.lite.tools import flatbuffer_utils

    flat = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    front = sorted({tensor.name.decode() for graph in flat.subgraphs for tensor in graph.tensors
                    if any(layer in tensor.name.decode() for layer in _FLOAT_LAYERS)})
    return mlir_quantize(calibrated, denylisted_nodes=front)


def _frozen(function: tf.types.experimental.ConcreteFunction) -> tf.types.experimental.ConcreteFunction:
    """`function` with its weights as constants, inputs and outputs named as before."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    constant = convert_variables_to_constants_v2(function)  # takes and returns flat tensors

    def named(*inputs):
        return tf.nest.pack_sequence_as(function.structured_outputs, constant(*inputs))

    return tf.function(named).get_concrete_function(*tf.nest.flatten(function.structured_input_signature))


def _configure(converter, model: DS2Model, quantize: str, calibration: Iterable[np.ndarray] | None,
               streaming: bool) -> None:
    """Builtin ops only, and the quantization asked for."""
    import tensorflow as tf

    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if calibration is None:
            raise LiteRTExportError("--quantize int8 needs --calibration MANIFEST (utterances to calibrate on)")
        converter.representative_dataset = _representative(model, list(calibration), streaming)
        converter._experimental_calibrate_only = True  # quantized by _quantized_after_features  # noqa: SLF001


def _representative(model: DS2Model, waveforms: list[np.ndarray], streaming: bool) -> Callable[[], Iterator]:
    """Calibration inputs for every signature: whole utterances offline, and for stream_step the
    states and audio met when streaming them (computed with the float step function)."""
    import tensorflow as tf

    def samples():
        for waveform in waveforms:
            yield "offline", {"waveforms": waveform[None].astype(np.float32),
                              "lengths": np.array([len(waveform)], np.int32)}
        if streaming:
            step = streaming_function(model)
            size, overlap = step_samples(model), model.ds2_config.window_samples - model.ds2_config.hop_samples
            shapes = state_shapes(model)
            for waveform in waveforms[:20]:
                state = {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}
                for start in range(0, max(len(waveform) - overlap, 1), size - overlap):
                    audio = np.zeros((1, size), np.float32)
                    piece = waveform[start:start + size]
                    audio[0, :len(piece)] = piece
                    inputs = {"audio": audio, "valid": np.int32(step_frames(model)), **state}
                    yield "stream_step", inputs
                    outputs = step(**{name: tf.constant(value) for name, value in inputs.items()})
                    state = {name: outputs[f"new_{name}"].numpy() for name in shapes}
    return samples


def calibration_waveforms(manifest: Path, sample_rate: int, limit: int = CALIBRATION_UTTERANCES) -> list[np.ndarray]:
    """Up to `limit` readable utterances of a manifest, spread over it, for int8 calibration."""
    from ds2_keras.data.audio import AudioError, load_audio
    from ds2_keras.data.manifest import read_manifest

    rows = read_manifest(manifest)
    if len(rows) == 0:
        raise LiteRTExportError(f"{manifest}: no utterances to calibrate int8 quantization on")
    picked = rows.iloc[np.linspace(0, len(rows) - 1, min(limit, len(rows))).astype(int)]
    waveforms = []
    for path in picked["audio_path"]:
        try:
            waveforms.append(load_audio(path, sample_rate))
        except AudioError:
            continue
    if not waveforms:
        raise LiteRTExportError(f"{manifest}: none of its audio files could be read for int8 calibration")
    return waveforms


def sidecar(model: DS2Model, flatbuffer: bytes, quantize: str) -> dict:
    """What a runtime needs besides the flatbuffer, and the contract of its signatures."""
    config = model.ds2_config
    facts = {
        "format": SIDECAR_FORMAT, "tflite_sha256": hashlib.sha256(flatbuffer).hexdigest(),
        "symbols": list(model.alphabet.symbols), "blank_index": 0, "language": config.language,
        "sample_rate": config.sample_rate, "frame_seconds": output_frame_seconds(config),
        "lookahead": config.lookahead, "streaming": config.streaming, "quantization": quantize,
        "signatures": {"offline": {
            "inputs": {"waveforms": "float32 [batch, samples]", "lengths": "int32 [batch]"},
            "outputs": {"logits": f"float32 [batch, frames, {model.alphabet.num_classes}]",
                        "logit_lengths": "int32 [batch]"}}},
        "config": config.to_dict(),
    }
    if config.streaming:
        shapes = state_shapes(model)
        facts["signatures"]["stream_step"] = {
            "step_frames": step_frames(model), "step_samples": step_samples(model),
            "overlap_samples": config.window_samples - config.hop_samples,
            "inputs": {"audio": f"float32 [1, {step_samples(model)}]", "valid": "int32 []",
                       **{name: f"float32 {shape}" for name, shape in shapes.items()}},
            "outputs": {"logits": f"float32 [1, {step_frames(model) + config.lookahead}, "
                                  f"{model.alphabet.num_classes}]",
                        **{f"new_{name}": f"float32 {shape}" for name, shape in shapes.items()}}}
    return facts


def litert_path(out: str | Path, quantize: str) -> Path:
    """OUT itself if it names a .tflite file, else OUT/model.tflite (model-<quantize>.tflite when quantized)."""
    out = Path(out)
    if out.suffix == ".tflite":
        make_directory(out.parent)
        return out
    make_directory(out)
    return out / ("model.tflite" if quantize == "none" else f"model-{quantize}.tflite")


def export_litert(model: DS2Model, out: str | Path, quantize: str = "none",
                  calibration: Iterable[np.ndarray] | None = None) -> Path:
    """Write the .tflite file and its .json sidecar beside it (each atomically); return the .tflite path."""
    from ds2_keras.core.fileio import reporting_tensorflow_errors

    if quantize not in QUANTIZATIONS:
        raise LiteRTExportError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, not {quantize!r}")
    target = litert_path(out, quantize)
    with reporting_tensorflow_errors(target):
        flatbuffer = convert(model, quantize, calibration)
    with atomic_path(target) as temporary:
        temporary.write_bytes(flatbuffer)
    atomic_write_text(sidecar_path(target), json.dumps(sidecar(model, flatbuffer, quantize), indent=1,
                                                       ensure_ascii=False) + "\n")
    return target

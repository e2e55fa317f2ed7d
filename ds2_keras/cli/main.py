"""The `ds2` command line: ingest, fit, evaluate, transcribe, export, lm, bench.

Each command parses its options and hands a plain request to the module that does the work;
TensorFlow is imported lazily so `ds2 --help` and `ds2 ingest` start fast.
"""
from __future__ import annotations

import os
from pathlib import Path

import click

# TensorFlow's C++ log stays out of the output unless TF_CPP_MIN_LOG_LEVEL asks for it. Its
# INFO/WARNING lines are chatter; the ERROR line every fit printed on AVX-512 CPUs was a false
# alarm (oneDNN "supports DT_BOOL only on platforms with AVX-512"); a failure ds2 must report
# reaches it as a Python exception; and fit says which devices it trains on, so a GPU TensorFlow
# could not use still shows.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ds2_keras.core.quiet_startup import hide_tensorflow_start_up_info  # noqa: E402

hide_tensorflow_start_up_info()  # the chatter TF prints before it reads TF_CPP_MIN_LOG_LEVEL

from ds2_keras.ingest.commands import ingest  # noqa: E402

from ds2_keras.cli.options import (  # noqa: E402
    OneLineErrors, batch_size_option, beam_width_option, config_from, decoder_options, lm_option, manifest_option,
    manifest_paths, model_file_option, overrides_option, parse_manifests, preset_option, vocabulary_option,
)
from ds2_keras.cli.transcribe import transcribe_command  # noqa: E402
from ds2_keras.deploy.litert_export import QUANTIZATIONS  # noqa: E402
from ds2_keras.core.tensorflow_build import check_tensorflow  # noqa: E402


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ds2-keras")
def main() -> None:
    """Deep Speech 2 on TensorFlow/Keras."""
    check_tensorflow()  # a plain `pip install ds2-keras` has no TensorFlow build: say which extra to add


main.add_command(ingest)
main.add_command(transcribe_command, name="transcribe")


@main.command("export")
@model_file_option()
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--version", "version", type=click.IntRange(min=1), default=None,
              help="Version directory to write (default: one more than the largest existing).")
@click.option("--format", "export_format", type=click.Choice(["savedmodel", "litert"]), default="savedmodel",
              show_default=True, help="savedmodel: for TF Serving; litert: a .tflite file for LiteRT on devices.")
@click.option("--quantize", type=click.Choice(QUANTIZATIONS), default="none",
              show_default=True, help="With --format litert: float16 weights, int8 weights (dynamic) or int8 "
                                      "weights and activations (int8, calibrated on --calibration).")
@click.option("--calibration", type=click.Path(path_type=Path), default=None, metavar="MANIFEST",
              help="With --quantize int8: a manifest whose utterances (a few hundred, spread over it) calibrate.")
def export_command(model_file: Path, out_dir: Path, version: int | None, export_format: str, quantize: str,
                   calibration: Path | None) -> None:
    """Export a model to OUT_DIR/<version>/ as a TF Serving SavedModel (waveforms or WAV in, text out), or
    with --format litert to OUT_DIR/model[-QUANTIZE].tflite (or OUT_DIR itself if it ends in .tflite) and
    its .json sidecar beside it."""
    from ds2_keras.model.checkpoints import load_model_file

    if export_format == "litert":
        return _export_litert(model_file, out_dir, version, quantize, calibration)
    if quantize != "none" or calibration is not None:
        raise click.UsageError("--quantize and --calibration need --format litert")
    from ds2_keras.deploy.export import export_saved_model

    model = load_model_file(model_file, compile=False)
    target = export_saved_model(model, out_dir, version)
    streaming = ", stream_start, stream_step" if model.ds2_config.streaming else ""
    click.echo(f"exported {model_file} to {target} (signatures serving_default, transcribe_wav, metadata{streaming})")


def _export_litert(model_file: Path, out: Path, version: int | None, quantize: str, calibration: Path | None) -> None:
    """`ds2 export --format litert`: options checked before the model is loaded and converted."""
    from ds2_keras.model.checkpoints import load_model_file
    from ds2_keras.deploy.litert_export import calibration_waveforms, export_litert

    if version is not None:
        raise click.UsageError("--version is for SavedModel exports; a LiteRT export is one file")
    if (quantize == "int8") != (calibration is not None):
        raise click.UsageError("--quantize int8 needs --calibration MANIFEST (the utterances to calibrate on); "
                               "other quantizations take none")
    model = load_model_file(model_file, compile=False)
    waveforms = calibration_waveforms(calibration, model.ds2_config.sample_rate) if calibration else None
    target = export_litert(model, out, quantize, waveforms)
    signatures = "offline, stream_step" if model.ds2_config.streaming else "offline"
    click.echo(f"exported {model_file} to {target} and {target.with_suffix('.json').name} "
               f"(LiteRT, quantization {quantize}, signatures {signatures})")


@main.command("bench")
@manifest_option
@model_file_option(required=False, help="Time this ds2 model file instead of a fresh model from --preset/--set.")
@preset_option
@overrides_option
@batch_size_option(16)
@click.option("--steps", type=click.IntRange(min=1), default=20, show_default=True, help="Timed training steps.")
@click.option("--warmup", type=click.IntRange(min=1), default=3, show_default=True,
              help="Untimed steps first (graph tracing, autotuning).")
@click.option("--epoch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Time the batches ds2 fit trains on from this epoch on, counted as fit counts them: "
                   "epoch 1 goes shortest first, later epochs in shuffled buckets, as most of a run does.")
@click.option("--profile", "profile_dir", type=click.Path(path_type=Path), default=None,
              help="Also write a TensorFlow profiler trace of the timed steps to this directory "
                   "(tensorboard --logdir DIR, Profile tab).")
def bench_command(manifests: tuple[str, ...], model_file: Path | None, preset: str, overrides: tuple[str, ...],
                  batch_size: int, steps: int, warmup: int, epoch: int, profile_dir: Path | None) -> None:
    """Print training and input-pipeline throughput, inference real-time factor, memory and size."""
    from ds2_keras.train.benchmark import run_bench

    if model_file is not None and overrides:
        raise click.UsageError("--set changes a fresh model's config; a --model-file brings its own")
    config = config_from(preset, overrides)
    click.echo(run_bench(config, manifest_paths(manifests), batch_size, steps, warmup, model_file,
                         first_epoch=epoch - 1, profile_dir=profile_dir).report())


@main.command()
@manifest_option
@click.option("-e", "--epochs", type=click.IntRange(min=1), required=True, help="Total epochs to reach (a resumed run continues to this).")
@batch_size_option(32)
@click.option("-s", "--save-path", "--save_path", "save_path", type=click.Path(path_type=Path), required=True,
              help="Output directory: model.keras, config.json, history.json, TensorBoard logs.")
@model_file_option(required=False, help="A model file to continue training (see docs/training.md).")
@click.option("--init-from", type=click.Path(path_type=Path), default=None,
              help="Start a new run from this model's weights (fine-tuning): epoch 0, a new optimizer; "
                   "--preset/--set may change the recipe, not the network.")
@click.option("--freeze", "freeze", multiple=True, metavar="PREFIX",
              help="Keep the layers whose names start with PREFIX fixed (repeatable), e.g. conv.")
@click.option("--alphabet", "alphabet_file", type=click.Path(path_type=Path), default=None,
              help="A new run's output characters, listed in a UTF-8 file [default: those of the training transcripts].")
@preset_option
@overrides_option
@click.option("--fresh", is_flag=True, help="Start over even if SAVE_PATH holds a checkpoint.")
@click.option("--cache", is_flag=True, help="Keep decoded audio in memory after the first epoch.")
@click.option("--save-every", type=click.IntRange(min=0), default=200, show_default=True, help="Checkpoint every N batches (0: epoch ends only).")
@click.option("--cpu-replicas", type=click.IntRange(min=0), default=0, help="Split the CPU into N logical devices for MirroredStrategy.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Wall-clock budget: stop, validate and save when it runs out (the same command continues).")
@click.option("--average", "average_last", type=click.IntRange(min=0), default=0, metavar="N",
              help="Keep the last N epochs' weights in SAVE_PATH/epochs and write their mean to "
                   "SAVE_PATH/averaged.keras at the end, scored on the val manifests.")
def fit(manifests, epochs, batch_size, save_path, model_file, init_from, freeze, alphabet_file, preset, overrides, fresh,
        cache, save_every, cpu_replicas, max_minutes, average_last):
    """Train (or resume training) a DS2 model with CTC loss."""
    from ds2_keras.core.distribute import split_cpu
    from ds2_keras.train.fit import FitRequest, fit as run_fit

    groups = parse_manifests(manifests)
    if "train" not in groups:
        raise click.UsageError("fit needs at least one --manifest train:PATH")
    if init_from and model_file:
        raise click.UsageError("--init-from starts a new run and --model-file resumes one: give one of them")
    config = config_from(preset, overrides)
    if freeze:
        config = config.replace(freeze=tuple(freeze))
    explicit_preset = click.get_current_context().get_parameter_source("preset") != click.core.ParameterSource.DEFAULT
    chosen = set(config.to_dict()) if explicit_preset else set()
    chosen |= {assignment.partition("=")[0].strip() for assignment in overrides} | ({"freeze"} if freeze else set())
    if cpu_replicas:
        split_cpu(cpu_replicas)
    request = FitRequest(
        train_manifests=groups["train"], val_manifests=groups.get("val", []), epochs=epochs, batch_size=batch_size,
        output_dir=save_path, config=config, model_file=model_file, fresh=fresh, cache=cache,
        save_every_steps=save_every, max_minutes=max_minutes, init_from=init_from,
        chosen_fields=frozenset(chosen - {"language", "alphabet"}), alphabet_file=alphabet_file,
        average_last=average_last,
    )
    run_fit(request)


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--last", type=click.IntRange(min=1), required=True,
              help="Average the newest N epochs kept by ds2 fit --average (fewer if fewer are kept).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="The averaged model file [default: RUN_DIR/averaged.keras].")
def average(run_dir, last, output):
    """Average the weights of a run's last epochs into one model file (checkpoint averaging)."""
    from ds2_keras.train.averaging import write_average

    model, path = write_average(run_dir, last, output)
    epochs = model.progress["averaged_epochs"]
    click.echo(f"weights of epochs {epochs[0]}-{epochs[-1]} of {run_dir} averaged into {path}")


def parse_floats(text: str, option: str) -> list[float]:
    try:
        return [float(value) for value in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}", param_hint=option) from None


@main.command()
@manifest_option
@model_file_option()
@click.option("--wer", "--use_wer", "use_wer", is_flag=True, help="Headline WER instead of CER.")
@click.option("--inference-file", "--inference_file", "inference_file", type=click.Path(path_type=Path),
              help="Write predictions beside ground truth: pickle (as neon), or .json / .csv.")
@click.option("--pooling", type=click.Choice(["pooled", "mean"]), default="pooled", show_default=True,
              help="pooled: total edits / total reference length (standard); mean: per-utterance average (neon).")
@batch_size_option(16)
@decoder_options
@click.option("--worst", type=int, default=5, show_default=True, help="How many worst utterances to show.")
@click.option("--plots", "plots_dir", type=click.Path(path_type=Path), help="Save PNG plots of the errors here.")
def evaluate(manifests, model_file, use_wer, inference_file, pooling, batch_size, decoder, worst, plots_dir):
    """Decode manifests with a model; print CER (or WER) and a short report."""
    from ds2_keras.evaluate.evaluation import evaluate as run_evaluate, save_inference_file
    from ds2_keras.core.fileio import check_writable

    paths = manifest_paths(manifests)
    if inference_file:  # every output is checked now: a refusal after the decoding would waste it
        check_writable(inference_file)
    if plots_dir:
        from ds2_keras.evaluate.plots import check_evaluation_plots_writable

        check_evaluation_plots_writable(plots_dir)
    result = run_evaluate(model_file, paths, batch_size, decoder, pooling)
    click.echo(result.report(worst))
    if inference_file:
        click.echo(f"inference file: {save_inference_file(result, inference_file, use_wer)}")
    if plots_dir:
        from ds2_keras.evaluate.plots import save_evaluation_plots

        for path in save_evaluation_plots(result, plots_dir):
            click.echo(f"plot: {path}")
    headline = result.word_errors if use_wer else result.character_errors
    click.echo(f"{headline.name}: {headline.rate:.2%}")


@main.group(cls=OneLineErrors)
def lm():
    """Build an n-gram language model, and tune its weights on a validation set."""


@lm.command("build")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--text", "text_files", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Plain text, one sentence per line (normalized like transcripts).")
@click.option("--manifest", "manifest_files", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Use a manifest's transcripts.")
@click.option("--order", type=click.IntRange(min=2), default=3, show_default=True)
@click.option("--language", default="en", show_default=True, metavar="CODE",
              help="The --text files' language, which picks their normalization (manifests record their own).")
def lm_build(output, text_files, manifest_files, order, language):
    """Write an ARPA n-gram LM (modified Kneser-Ney) from text files and/or manifests."""
    from ds2_keras.core.errors import LanguageModelError
    from ds2_keras.decode.lm import build_arpa, manifest_corpus, read_text_corpus

    if not text_files and not manifest_files:
        raise click.UsageError("give --text and/or --manifest")
    sentences = manifest_corpus(list(manifest_files)) if manifest_files else []
    for path in text_files:
        lines, unmappable = read_text_corpus(path, language)
        sentences += lines
        if unmappable:
            click.echo(f"{path}: skipped {unmappable} lines with characters outside the alphabet")
    if not any(sentence.strip() for sentence in sentences):
        sources = ", ".join(map(str, [*manifest_files, *text_files]))
        raise LanguageModelError(f"{sources}: no sentences to build a language model from")
    build_arpa(sentences, output, order)
    click.echo(f"wrote {order}-gram LM from {len(sentences)} sentences to {output}")


@lm.command("tune")
@manifest_option
@model_file_option()
@lm_option
@vocabulary_option
@click.option("--alphas", default="0.25,0.5,0.75,1.0,1.5", show_default=True)
@click.option("--betas", default="0,0.5,1,2,3", show_default=True)
@click.option("--unk-scores", default="-10,-6,-3", show_default=True)
@beam_width_option
@batch_size_option(16)
def lm_tune(manifests, model_file, lm_path, vocabulary_path, alphas, betas, unk_scores, beam_width, batch_size):
    """Grid-search alpha (LM weight), beta (word bonus) and the unknown-word score for the lowest WER on a
    val manifest; save the best beside the LM (<lm>.tuned.json), where beam decoding finds them."""
    from ds2_keras.model.checkpoints import load_model_file
    from ds2_keras.decode.settings import save_tuned_weights
    from ds2_keras.evaluate.evaluation import infer_manifests
    from ds2_keras.decode.lm import grid_search

    if lm_path is None:
        raise click.UsageError("ds2 lm tune needs --lm")
    grid = {"alpha": parse_floats(alphas, "--alphas"), "beta": parse_floats(betas, "--betas"),
            "unk_score": parse_floats(unk_scores, "--unk-scores")}
    if not lm_path.is_file():
        raise click.BadParameter(f"{lm_path}: language model not found", param_hint="--lm")
    result = infer_manifests(load_model_file(model_file, compile=False), manifest_paths(manifests), batch_size)
    logits = result.inference.logits
    references = result.utterances.rows["text"].to_numpy()[result.inference.indices].tolist()
    best, table = grid_search(logits, [len(scores) for scores in logits], references, lm_path, grid, beam_width,
                              vocabulary_path=vocabulary_path, alphabet=result.alphabet, echo=click.echo)
    saved = save_tuned_weights(lm_path, best, {"wer": float(table.iloc[0].wer), "cer": float(table.iloc[0].cer),
                                               "beam_width": beam_width, "utterances": len(references)})
    click.echo(f"saved to {saved}: `--decoder beam --lm {lm_path}` uses these weights unless given others")

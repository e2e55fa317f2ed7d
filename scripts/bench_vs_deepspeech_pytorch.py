"""Training throughput of ds2-keras beside deepspeech.pytorch, on the same machine, batches and architecture.

Both toolkits train the DS2-style network of issue 12: 2 Conv2D of 32 channels (11x41 and 11x21
kernels over 161 linear bins, time strides 2 and 1), then 3 bidirectional GRU of 256, CTC loss,
Adam, gradient norm clipped at 400. Each runs in its own subprocess with its own input pipeline,
features and loss, on the same batches: the manifest's utterances shortest first (SortaGrad,
ds2's plan_epoch), batch 16, 3 warm-up steps then 20 timed ones; each prints seconds of audio
per second over the timed steps. With --rounds N the two alternate (ours first in odd rounds,
the peer first in even ones) and the medians are compared.

The machine's FP32 matmul peak is measured in the same run (the best of numpy's, TensorFlow's
and PyTorch's matmul on all cores), and each toolkit's rate is turned into useful FLOP/s by
counting its network's FLOPs per second of audio analytically (convolutions and GRUs on the
real frames; a training step costs about 3x the forward pass), which gives the fraction of that
peak each reaches. Padding is not counted: work on padded frames is waste.

The peer is a checkout of https://github.com/SeanNaren/deepspeech.pytorch and a Python that can
import its model and loader (torch, pytorch-lightning, omegaconf, librosa, soundfile,
python-Levenshtein, six). None of its code is part of this repository: a small driver, written
to a temporary directory at run time, imports its `DeepSpeech` model, `SpectrogramDataset` and
`AudioDataLoader` from the checkout and runs its `training_step`, then backward, gradient
clipping and the optimizer its `configure_optimizers` returns, as its Lightning trainer would.
Its audio is read with soundfile instead of torchaudio (torchaudio.load gives the same float32
samples), and the modules its loader imports only for augmentations this benchmark does not use
(sox, spec_augment) are stand-ins.

    .venv/bin/python scripts/bench_vs_deepspeech_pytorch.py --manifest train-clean-5.csv \\
        --peer-checkout ../peer/deepspeech.pytorch --peer-python ../peer/venv/bin/python --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Every field that shapes a training step's work, pinned: the comparison must not follow the
# preset as it changes (the peer's network is fixed), and neither side augments or drops out.
ISSUE_12_OVERRIDES = ["feature_type=linear", "conv_filters=[32,32]", "conv_kernels=[[11,41],[11,21]]",
                      "conv_strides=[[2,2],[1,2]]", "rnn_type=gru", "rnn_layers=3", "rnn_units=256",
                      "bidirectional=true", "lookahead=0", "streaming=false", "dropout=0", "spec_augment=false",
                      "speed_perturb=false", "noise_snr_db=0"]
FRAMES_PER_SECOND = 100  # both toolkits: 10 ms hop, 20 ms window, 161 bins at 16 kHz

OURS = r"""
import json, sys
from pathlib import Path
from ds2_keras.train.benchmark import training_rate
from ds2_keras.core.config import preset
args = json.loads(sys.argv[1])
config = preset(args["preset"]).with_overrides(args["overrides"])
rate = training_rate(config, [Path(args["manifest"])], args["batch_size"], args["steps"], args["warmup"])
print("RESULT " + json.dumps({"rate": rate}), flush=True)
"""

PEER = r"""
import json, os, sys, time, types
args = json.loads(sys.argv[1])
sys.path.insert(0, args["peer_checkout"])
# Stand-ins for what the peer's loader imports only for augmentations not used here.
sys.modules["sox"] = types.ModuleType("sox")
torchaudio = types.ModuleType("torchaudio")
torchaudio.set_audio_backend = lambda backend: None
sys.modules["torchaudio"] = torchaudio
spec_augment = types.ModuleType("deepspeech_pytorch.loader.spec_augment")
spec_augment.spec_augment = None
sys.modules["deepspeech_pytorch.loader.spec_augment"] = spec_augment

import soundfile
import torch
import pytorch_lightning
from omegaconf import OmegaConf

# Its config dataclasses use dataclass instances as field defaults, which Python 3.11 refuses
# unless they are hashable: import them with hashes added (nothing else about them changes).
import dataclasses
_dataclass = dataclasses.dataclass
dataclasses.dataclass = lambda cls=None, **kw: _dataclass(cls, unsafe_hash=True, **kw) if cls else _dataclass(unsafe_hash=True, **kw)
from deepspeech_pytorch.configs.train_config import AdamConfig, BiDirectionalConfig, SpectConfig
dataclasses.dataclass = _dataclass
from deepspeech_pytorch.enums import RNNType
from deepspeech_pytorch.loader import data_loader
from deepspeech_pytorch.loader.data_loader import AudioDataLoader, SpectrogramDataset
from deepspeech_pytorch.model import DeepSpeech

data_loader.load_audio = lambda path: soundfile.read(path, dtype="float32")[0]  # torchaudio.load's samples
torch.manual_seed(123456)
with open(os.path.join(args["peer_checkout"], "labels.json")) as f:
    labels = json.load(f)
model_cfg = OmegaConf.structured(BiDirectionalConfig(rnn_type=RNNType.gru, hidden_size=256, hidden_layers=3))
model = DeepSpeech(labels=labels, model_cfg=model_cfg, precision=32, optim_cfg=OmegaConf.structured(AdamConfig()),
                   spect_cfg=SpectConfig())
optimizer = model.configure_optimizers()[0][0]
dataset = SpectrogramDataset(audio_conf=SpectConfig(), input_path=args["peer_manifest"], labels=labels,
                             normalize=True)
batch_size = args["batch_size"]
batches = [list(range(i, i + batch_size)) for i in range(0, len(dataset), batch_size)]
loader = AudioDataLoader(dataset=dataset, num_workers=args["workers"], batch_sampler=batches)

layers = []  # what the FLOP count needs, read off the peer's modules
for module in model.modules():
    if isinstance(module, torch.nn.Conv2d):  # its input is [batch, 1, frequency, time]
        layers.append({"conv": {"in": module.in_channels, "out": module.out_channels,
                                "kernel": [module.kernel_size[1], module.kernel_size[0]],
                                "stride": [module.stride[1], module.stride[0]],
                                "pad_f": module.padding[0]}})
    elif isinstance(module, torch.nn.GRU):
        layers.append({"gru": {"in": module.input_size, "units": module.hidden_size,
                               "directions": 2 if module.bidirectional else 1}})
    elif isinstance(module, torch.nn.Linear):
        layers.append({"dense": {"in": module.in_features, "out": module.out_features}})

model.train()
ends = []
for index, batch in enumerate(loader):
    loss = model.training_step(batch, index)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 400)  # its configs' gradient_clip_val
    optimizer.step()
    float(loss)
    ends.append(time.perf_counter())
timed = ends[-1] - ends[args["warmup"] - 1]
print("RESULT " + json.dumps({"rate": args["timed_audio"] / timed, "layers": layers,
                              "threads": torch.get_num_threads()}), flush=True)
"""

PEAK_NUMPY_TF = r"""
import json, time, numpy as np
n = 3072
a, b = (np.random.default_rng(i).standard_normal((n, n), dtype=np.float32) for i in (0, 1))
def best(run, repeats=6):
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter(); run(); times.append(time.perf_counter() - started)
    return 2 * n ** 3 / min(times) / 1e9
peaks = {"numpy": best(lambda: a @ b)}
import tensorflow as tf
ta, tb = tf.constant(a), tf.constant(b)
peaks["tensorflow"] = best(lambda: tf.linalg.matmul(ta, tb).numpy())
print("RESULT " + json.dumps(peaks), flush=True)
"""

PEAK_TORCH = r"""
import json, time, torch
n = 3072
a, b = torch.randn(n, n), torch.randn(n, n)
torch.mm(a, b)
times = []
for _ in range(6):
    started = time.perf_counter(); torch.mm(a, b); times.append(time.perf_counter() - started)
print("RESULT " + json.dumps({"torch": 2 * n ** 3 / min(times) / 1e9}), flush=True)
"""


def ours_layers(config) -> list[dict]:
    """The same layer description the peer driver reads off its modules, from a DS2Config."""
    layers = []
    channels = 1
    for filters, kernel, stride in zip(config.conv_filters, config.conv_kernels, config.conv_strides):
        layers.append({"conv": {"in": channels, "out": filters, "kernel": list(kernel), "stride": list(stride),
                                "pad_f": kernel[1] // 2}})
        channels = filters
    bins = config.num_features
    for kernel, stride in zip(config.conv_kernels, config.conv_strides):
        bins = (bins + 2 * (kernel[1] // 2) - kernel[1]) // stride[1] + 1
    width = bins * channels
    directions = 2 if config.bidirectional else 1
    for _ in range(config.rnn_layers):
        layers.append({config.rnn_type: {"in": width, "units": config.rnn_units, "directions": directions}})
        width = config.rnn_units * directions  # concatenated (the peer sums its two directions)
    layers.append({"dense": {"in": width, "out": 29}})
    return layers


def training_flops_per_audio_second(layers: list[dict], bins: int) -> float:
    """Multiply-adds x 2 of one forward pass over one second of audio (real frames only), x 3 for training."""
    frames, forward = float(FRAMES_PER_SECOND), 0.0
    for layer in layers:
        (kind, p), = layer.items()
        if kind == "conv":
            (kernel_t, kernel_f), (stride_t, stride_f) = p["kernel"], p["stride"]
            frames /= stride_t
            bins = (bins + 2 * p["pad_f"] - kernel_f) // stride_f + 1
            forward += 2 * frames * bins * p["out"] * p["in"] * kernel_t * kernel_f
        elif kind in ("gru", "lstm"):
            gates = 3 if kind == "gru" else 4
            forward += 2 * frames * p["directions"] * gates * p["units"] * (p["in"] + p["units"])
        elif kind == "dense":
            forward += 2 * frames * p["in"] * p["out"]
    return 3 * forward


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def run_child(python: str, code: str, payload: dict, cwd: Path, env: dict | None = None, label: str = "") -> dict:
    """Run `code` in a fresh interpreter; return its RESULT line, the machine's load and the child's CPU use."""
    before_children = os.times()
    busy0, total0 = _cpu_ticks()
    started = time.perf_counter()
    process = subprocess.run([python, "-c", code, json.dumps(payload)], cwd=cwd, env=env, capture_output=True,
                             text=True)
    wall = time.perf_counter() - started
    busy1, total1 = _cpu_ticks()
    after_children = os.times()
    if process.returncode:
        sys.exit(f"{label} failed (exit status {process.returncode}):\n{process.stdout[-3000:]}\n{process.stderr[-5000:]}")
    result = next(json.loads(line[7:]) for line in process.stdout.splitlines() if line.startswith("RESULT "))
    cores = os.cpu_count() or 1
    child_cpu = (after_children.children_user + after_children.children_system
                 - before_children.children_user - before_children.children_system)
    machine_busy = (busy1 - busy0) / max(total1 - total0, 1) * cores  # cores busy on average
    result["load"] = {"wall_s": wall, "machine_busy_cores": machine_busy, "own_cores": child_cpu / wall,
                      "others_cores": max(machine_busy - child_cpu / wall, 0.0)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True, type=Path, help="a ds2 manifest (CSV)")
    parser.add_argument("--peer-checkout", required=True, type=Path, help="deepspeech.pytorch source tree")
    parser.add_argument("--peer-python", required=True, help="a Python that imports the peer (torch etc.)")
    parser.add_argument("--ours-checkout", type=Path, default=REPO, help="ds2-keras source tree (this one)")
    parser.add_argument("--ours-python", default=sys.executable)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--set", dest="overrides", action="append", default=None,
                        help=f"ds2 config overrides (default: {' '.join(ISSUE_12_OVERRIDES)})")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two this many times each")
    parser.add_argument("--peer-workers", type=int, default=2,
                        help="DataLoader worker processes for the peer (its config's default is 4)")
    parser.add_argument("--only", choices=("ours", "peer"), help="run one side (and the peak) only")
    args = parser.parse_args()
    overrides = ISSUE_12_OVERRIDES if args.overrides is None else args.overrides

    sys.path.insert(0, str(args.ours_checkout))
    from ds2_keras.core.config import preset
    from ds2_keras.data.dataset import plan_epoch, select_utterances
    from ds2_keras.data.manifest import read_manifest

    config = preset(args.preset).with_overrides(overrides)
    utterances = select_utterances(read_manifest(args.manifest), config)
    total = args.warmup + args.steps
    plan = plan_epoch(utterances.durations, args.batch_size, 0, config)[:total]  # as ds2 bench plans them
    if len(plan) < total:
        sys.exit(f"{args.manifest}: {len(utterances)} usable utterances make fewer than {total} batches")
    timed_audio = float(utterances.durations[plan[args.warmup:]].sum())

    workdir = Path(tempfile.mkdtemp(prefix="bench_vs_dspt_"))
    samples = []
    for number, index in enumerate(plan.reshape(-1)):
        row = utterances.rows.iloc[int(index)]
        transcript = workdir / f"{number:05d}.txt"
        transcript.write_text(row["text"].upper())  # the peer's labels are upper case
        samples.append({"wav_path": str(Path(row["audio_path"]).resolve()), "transcript_path": str(transcript)})
    peer_manifest = workdir / "manifest.json"
    peer_manifest.write_text(json.dumps({"root_path": "/", "samples": samples}))

    ours_payload = {"preset": args.preset, "overrides": overrides, "manifest": str(args.manifest.resolve()),
                    "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup}
    # The ours side trains on the manifest through ds2's own plan; check that its batches are these.
    peer_payload = {"peer_checkout": str(args.peer_checkout.resolve()), "peer_manifest": str(peer_manifest),
                    "batch_size": args.batch_size, "warmup": args.warmup, "timed_audio": timed_audio,
                    "workers": args.peer_workers}
    ours_env = {**os.environ, "PYTHONPATH": str(args.ours_checkout.resolve()), "TF_CPP_MIN_LOG_LEVEL": "2"}

    print(f"manifest {args.manifest}: {len(utterances)} utterances; {total} batches of {args.batch_size}, shortest "
          f"first ({utterances.durations[plan].min():.2f}-{utterances.durations[plan].max():.2f} s), "
          f"{args.warmup} warm-up + {args.steps} timed steps = {timed_audio:.1f} s of audio timed")
    print(f"ds2-keras: {args.ours_checkout} (--preset {args.preset} {' '.join('--set ' + o for o in overrides)})")
    print(f"deepspeech.pytorch: {args.peer_checkout} ({args.peer_workers} DataLoader workers)")
    peaks = run_child(args.ours_python, PEAK_NUMPY_TF, {}, args.ours_checkout, ours_env, "peak (numpy, TF)")
    peaks.update(run_child(args.peer_python, PEAK_TORCH, {}, args.ours_checkout, None, "peak (torch)"))
    peaks.pop("load"), peaks.pop("layers", None)
    print("FP32 matmul peak before: " + ", ".join(f"{name} {value:.1f}" for name, value in peaks.items()) + " GFLOP/s",
          flush=True)

    rates: dict[str, list[float]] = {"ours": [], "peer": []}
    layers = {"ours": ours_layers(config)}
    try:
        for round_ in range(args.rounds):
            order = ["ours", "peer"] if round_ % 2 == 0 else ["peer", "ours"]
            for side in order:
                if args.only and side != args.only:
                    continue
                if side == "ours":
                    result = run_child(args.ours_python, OURS, ours_payload, args.ours_checkout, ours_env, "ds2-keras")
                else:
                    result = run_child(args.peer_python, PEER, peer_payload, workdir, None, "deepspeech.pytorch")
                    layers["peer"] = result["layers"]
                rates[side].append(result["rate"])
                load = result["load"]
                print(f"round {round_ + 1} {side}: {result['rate']:.2f} s of audio per second "
                      f"(process {load['wall_s']:.0f} s wall, {load['own_cores']:.2f} cores; other processes "
                      f"{load['others_cores']:.2f} cores on average)", flush=True)
    except KeyboardInterrupt:  # Ctrl-C: the run in progress is dropped, the finished ones are summarized
        print("interrupted: summary of the finished runs", flush=True)

    # Peak again at the end: the machine is shared, take the best seen.
    later = run_child(args.ours_python, PEAK_NUMPY_TF, {}, args.ours_checkout, ours_env, "peak (numpy, TF)")
    later.update(run_child(args.peer_python, PEAK_TORCH, {}, args.ours_checkout, None, "peak (torch)"))
    peaks = {name: max(value, later[name]) for name, value in peaks.items()}
    peak = max(peaks.values())
    print(f"FP32 matmul peak, {os.cpu_count()} cores, 3072x3072 (best of 6 before and 6 after): "
          + ", ".join(f"{name} {value:.1f}" for name, value in peaks.items()) + f" GFLOP/s -> peak {peak:.1f} GFLOP/s")

    medians = {}
    for side, name in (("ours", "ds2-keras"), ("peer", "deepspeech.pytorch")):
        if not rates[side]:
            continue
        medians[side] = statistics.median(rates[side])
        flops = training_flops_per_audio_second(layers[side], config.num_features)
        achieved = medians[side] * flops / 1e9
        print(f"{name}: median {medians[side]:.2f} s of audio per second (runs: "
              f"{', '.join(f'{r:.2f}' for r in rates[side])}); {flops / 1e9:.2f} GFLOP per second of audio "
              f"-> {achieved:.1f} GFLOP/s = {achieved / peak:.1%} of the matmul peak")
    if len(medians) == 2:
        print(f"ratio ds2-keras / deepspeech.pytorch: {medians['ours'] / medians['peer']:.2f}x")


if __name__ == "__main__":
    main()

"""`ds2 fit` under tf.distribute: MirroredStrategy over two logical CPUs, and two local workers.

Each run is a separate Python process: logical devices must be configured before TensorFlow
initializes, and each worker needs its own TF_CONFIG. A worker reports its losses, a checksum
of its weights and, per variable, whether its copies on the local replicas are equal, so the
tests can check that replicas (and workers) stay in step rather than just that nothing crashed.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKER = r'''
import hashlib, json, sys
from pathlib import Path

args = json.loads(sys.argv[1])
from ds2_keras.core.distribute import split_cpu

if args["cpu_replicas"] > 1:
    split_cpu(args["cpu_replicas"])
import keras
import numpy as np

import ds2_keras.data.dataset
from ds2_keras.core.config import preset
from ds2_keras.train.fit import FitRequest, fit

decodes = []  # every audio file this worker decoded: each input pipeline reads only its slice
load_audio = ds2_keras.data.dataset.load_audio
ds2_keras.data.dataset.load_audio = lambda path, *args: decodes.append(path) or load_audio(path, *args)

keras.utils.set_random_seed(0)
model = fit(FitRequest([Path(args["manifest"])], [], args["epochs"], args["batch_size"], Path(args["output_dir"]),
                       preset("tiny"), save_every_steps=0, verbose=2))


def digest(weights):
    return hashlib.sha256(b"".join(np.ascontiguousarray(w.numpy()).tobytes() for w in weights)).hexdigest()


def in_sync(weight):
    copies = [copy.numpy() for copy in weight.value.values]  # one per local replica
    return all(np.array_equal(copies[0], copy) for copy in copies[1:])


trainable = {id(w) for w in model.trainable_weights}
Path(args["report"]).write_text(json.dumps({
    "loss": model.progress["history"]["loss"],
    "replicas": len(model.weights[0].value.values),
    "unsynced_trainable": [w.path for w in model.weights if id(w) in trainable and not in_sync(w)],
    "unsynced_other": [w.path for w in model.weights if id(w) not in trainable and not in_sync(w)],
    "trainable_digest": digest(model.trainable_weights),
    "digest": digest(model.weights),
    "decodes": len(decodes),
}))
'''
EPOCHS = 3
BATCH_SIZE = 4
TIMEOUT = 300


def worker_command(manifest: Path, output_dir: Path, report: Path, cpu_replicas: int = 1) -> list[str]:
    args = {"manifest": str(manifest), "output_dir": str(output_dir), "report": str(report), "epochs": EPOCHS,
            "batch_size": BATCH_SIZE, "cpu_replicas": cpu_replicas}
    return [sys.executable, "-c", WORKER, json.dumps(args)]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def wait_all(processes: list[subprocess.Popen], timeout: float, grace: float = 20.0) -> None:
    """Wait for every process; once one fails, the others get `grace` seconds (a peer may block on it)."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
        if any(p.returncode for p in processes):
            deadline = min(deadline, time.monotonic() + grace)
        time.sleep(0.2)
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def loss_falls(report: dict) -> bool:
    return len(report["loss"]) == EPOCHS and report["loss"][-1] < 0.8 * report["loss"][0]


@pytest.fixture(scope="module")
def mirrored(corpus, tmp_path_factory) -> dict:
    directory = tmp_path_factory.mktemp("mirrored")
    command = worker_command(corpus["train"], directory / "model", directory / "report.json", cpu_replicas=2)
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((directory / "report.json").read_text())


def test_mirrored_replicas_train_with_identical_trainable_weights(mirrored):
    assert mirrored["replicas"] == 2
    assert loss_falls(mirrored), mirrored["loss"]
    assert mirrored["unsynced_trainable"] == []


def test_mirrored_replicas_keep_identical_batchnorm_statistics(mirrored):
    assert mirrored["unsynced_other"] == []


def planned_rows(corpus) -> int:
    """Rows of every planned batch of the run: what one host decodes in all."""
    from ds2_keras.data.manifest import read_manifest

    return EPOCHS * -(-len(read_manifest(corpus["train"])) // BATCH_SIZE) * BATCH_SIZE


def test_one_host_decodes_each_planned_row_once(mirrored, corpus):
    assert mirrored["decodes"] == planned_rows(corpus)


@pytest.fixture(scope="module")
def multi_worker(corpus, tmp_path_factory) -> list[dict]:
    """Two workers on loopback ports, each with its own output directory (only the chief writes there)."""
    directory = tmp_path_factory.mktemp("multi_worker")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        command = worker_command(corpus["train"], directory / f"worker{index}", directory / f"report{index}.json")
        with open(directory / f"worker{index}.log", "w") as log:
            processes.append(subprocess.Popen(command, env={**os.environ, "TF_CONFIG": json.dumps(config)},
                                              stdout=log, stderr=subprocess.STDOUT))
    wait_all(processes, TIMEOUT)
    return [
        {"returncode": process.returncode, "log": (directory / f"worker{index}.log").read_text()[-3000:],
         "output_dir": directory / f"worker{index}", "report": directory / f"report{index}.json"}
        for index, process in enumerate(processes)
    ]


def test_two_workers_train_in_step_and_only_the_chief_writes(multi_worker):
    for worker in multi_worker:
        assert worker["returncode"] == 0, worker["log"]
    chief, other = (json.loads(worker["report"].read_text()) for worker in multi_worker)
    assert loss_falls(chief) and chief["loss"] == other["loss"]
    assert chief["trainable_digest"] == other["trainable_digest"]
    assert (multi_worker[0]["output_dir"] / "model.keras").is_file()
    assert (multi_worker[0]["output_dir"] / ".fit.lock").is_file()  # one fit per directory: the chief's
    assert list(multi_worker[1]["output_dir"].iterdir()) == []  # nothing, not even a lock


def test_each_worker_decodes_only_its_half_of_every_batch(multi_worker, corpus):
    assert all(worker["returncode"] == 0 for worker in multi_worker)
    decodes = [json.loads(worker["report"].read_text())["decodes"] for worker in multi_worker]
    assert decodes == [planned_rows(corpus) // 2] * 2


def test_two_workers_end_with_identical_weights(multi_worker):
    assert all(worker["returncode"] == 0 for worker in multi_worker)
    chief, other = (json.loads(worker["report"].read_text()) for worker in multi_worker)
    assert chief["digest"] == other["digest"]

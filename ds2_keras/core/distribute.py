"""Choosing the tf.distribute strategy: one host or many, from the environment.

TF_CONFIG naming several workers selects MultiWorkerMirroredStrategy; otherwise
MirroredStrategy replicates over every visible GPU, or every logical CPU device when there is
no GPU (one CPU device on a plain machine, so single-device training costs nothing extra).
"""
from __future__ import annotations

import json
import os

import tensorflow as tf


def _tf_config() -> dict:
    return json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")


def cluster_workers() -> int:
    """Hosts taking part in training: the chief (if named apart) and the workers."""
    cluster = _tf_config().get("cluster", {})
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def is_chief() -> bool:
    """Only the chief writes checkpoints and logs: the `chief` task, else worker 0."""
    spec = _tf_config()
    task = spec.get("task", {})
    if spec.get("cluster", {}).get("chief"):
        return task.get("type") == "chief"
    return int(task.get("index", 0)) == 0


def choose_strategy() -> tf.distribute.Strategy:
    if cluster_workers() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def describe(strategy: tf.distribute.Strategy) -> str:
    """What fit trains on, said at the start: a GPU TensorFlow could not use shows up here."""
    devices = ", ".join(name.rsplit("device:", 1)[-1] for name in strategy.extended.worker_devices)
    hosts = f" on each of {cluster_workers()} hosts" if cluster_workers() > 1 else ""
    return f"training on {devices}{hosts}: {strategy.num_replicas_in_sync} replicas ({type(strategy).__name__})"


def split_cpu(count: int) -> None:
    """Expose the host CPU as `count` logical devices (tests, and trying Mirrored without GPUs)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)

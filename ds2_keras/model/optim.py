"""Optimizer and learning-rate schedule from the config.

The schedule is a function of the optimizer's step count only, so restoring the optimizer
from a model file restores the exact learning rate too.
"""
from __future__ import annotations

from typing import Callable

import keras
from keras import ops

from ds2_keras.core.config import DS2Config


@keras.saving.register_keras_serializable("ds2")
class EpochDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then the rate multiplied by `decay` after every epoch (DS2's annealing)."""

    def __init__(self, initial: float, decay: float, steps_per_epoch: int, warmup_steps: int = 0):
        self.initial = initial
        self.decay = decay
        self.steps_per_epoch = steps_per_epoch
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        epoch = ops.floor(step / float(max(self.steps_per_epoch, 1)))
        rate = self.initial * ops.power(self.decay, epoch)
        if self.warmup_steps:
            rate = rate * ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
        return rate

    def get_config(self):
        return {"initial": self.initial, "decay": self.decay, "steps_per_epoch": self.steps_per_epoch,
                "warmup_steps": self.warmup_steps}


def make_schedule(config: DS2Config, steps_per_epoch: int, epochs: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """config.lr_schedule: "epoch" (warm-up, then x lr_decay per epoch) or "cosine" (warm-up, then
    Keras' cosine decay to lr_floor x learning_rate at the end of the `epochs` the run plans).

    A short run gains most from ending at a low rate, which needs to know where the end is: the
    cosine schedule is sized by the run's first fit, so a resume that asks for more epochs
    continues at the floor rate.
    """
    if config.lr_schedule == "epoch":
        return EpochDecay(config.learning_rate, config.lr_decay, steps_per_epoch, config.warmup_steps)
    total = max(steps_per_epoch * epochs, 1)
    warmup = min(config.warmup_steps, total - 1)
    # Keras' warm-up starts at initial_learning_rate at step 0: one warm-up step in, not at 0.
    start = config.learning_rate / (warmup + 1) if warmup else config.learning_rate
    return keras.optimizers.schedules.CosineDecay(
        start, decay_steps=total - warmup, alpha=config.lr_floor,
        warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup)


def rate_after(config: DS2Config, steps_per_epoch: int, epochs: int) -> Callable[[int], float]:
    """The learning rate after n epochs of the run make_schedule plans, as a fraction of its peak."""
    schedule = make_schedule(config, steps_per_epoch, epochs)
    return lambda n: float(schedule(n * steps_per_epoch)) / config.learning_rate


def make_optimizer(config: DS2Config, steps_per_epoch: int, epochs: int = 1) -> keras.optimizers.Optimizer:
    schedule = make_schedule(config, steps_per_epoch, epochs)
    # Clip the global gradient norm, as DS2 and the neon seed do (not each tensor separately).
    if config.optimizer == "adam":
        return keras.optimizers.Adam(schedule, global_clipnorm=config.clipnorm)
    return keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=True, global_clipnorm=config.clipnorm)

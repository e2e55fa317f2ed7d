"""Optimizer and learning-rate schedule from the config.

The schedule is a function of the optimizer's step count only, so restoring the optimizer
from a model file restores the exact learning rate too.
"""
from __future__ import annotations

import keras
from keras import ops

from .config import DS2Config


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


def make_optimizer(config: DS2Config, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    schedule = EpochDecay(config.learning_rate, config.lr_decay, steps_per_epoch, config.warmup_steps)
    # Clip the global gradient norm, as DS2 and the neon seed do (not each tensor separately).
    if config.optimizer == "adam":
        return keras.optimizers.Adam(schedule, global_clipnorm=config.clipnorm)
    return keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=True, global_clipnorm=config.clipnorm)

"""Host-side input pipeline rate of a ds2-keras checkout: seconds of audio per second.

Iterates `data.training_dataset` (decode, resample, pad; in version 0.1 also the features) over
the first BATCHES shortest-first batches of 8 of a manifest, `small` preset, and prints the rate.
Pin it to one core to get a per-core figure, and run it against two checkouts to compare them:

    taskset -c 0 .venv/bin/python scripts/bench_input_pipeline.py . train-clean-5.csv 120
    git worktree add /tmp/v01 fb2e8a1
    taskset -c 0 .venv/bin/python scripts/bench_input_pipeline.py /tmp/v01 train-clean-5.csv 120
"""
import sys
import time

sys.path.insert(0, sys.argv[1])  # the checkout to measure, before any installed ds2_keras

from ds2_keras.core.config import preset  # noqa: E402
from ds2_keras.data.dataset import plan_epoch, select_utterances, training_dataset  # noqa: E402
from ds2_keras.data.manifest import read_manifest  # noqa: E402

config = preset("small")
utterances = select_utterances(read_manifest(sys.argv[2]), config)
batches = int(sys.argv[3]) if len(sys.argv) > 3 else 120
seconds = utterances.durations[plan_epoch(utterances.durations, 8, 0, config)[:batches]].sum()
started = time.perf_counter()
for _ in training_dataset(utterances, config, 8, range(1)).take(batches):
    pass
elapsed = time.perf_counter() - started
print(f"{sys.argv[1]}: {seconds:.0f} s of audio in {elapsed:.1f} s = {seconds / elapsed:.0f} s of audio per second")

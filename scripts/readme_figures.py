"""Draw the figures of the README and docs/ from real runs, so a reader sees them without running the notebook.

    python scripts/readme_figures.py --demo demo                   # after `make demo`
    python scripts/readme_figures.py --run "old recipe=runs/old" --run "new recipe=runs/new" \
        --runs-name small-recipe-librispeech

`--demo DIR` draws the demo model's training curve and copies the error plots `ds2 evaluate
--plots` wrote; each `--run LABEL=PATH` adds a fit's validation CER against its training
minutes to one figure, PATH being the fit's directory or a copy of its history.json (the
measured runs are kept in docs/figures/histories/, so the figure can be redrawn after the run
directories are gone). PNGs go to docs/figures/ (--out) and are overwritten, so rerunning
after a new measurement keeps the README and docs/ current.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ds2_keras.evaluate import plots
from ds2_keras.model.checkpoints import HISTORY_FILENAME, timed_cer

DEMO_PLOTS = ("error_rate_by_length.png", "character_confusion.png")  # written by the demo's evaluate --plots


def read_progress(path: Path) -> dict:
    """A fit's progress (history.json), or one line naming the file and what is wrong with it."""
    try:
        progress = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: not a ds2 fit's history ({type(error).__name__}: {error})") from None
    if not isinstance(progress, dict) or "history" not in progress:
        raise SystemExit(f"{path}: not a ds2 fit's history (it holds no 'history')")
    return progress


def demo_figures(demo: Path, out: Path) -> list[Path]:
    history = read_progress(demo / "model" / HISTORY_FILENAME)["history"]
    written = [plots.save_figure(plots.training_curve(history), out / "demo-training-curve.png")]
    for name in DEMO_PLOTS:
        target = out / f"demo-{name.replace('_', '-')}"
        shutil.copyfile(demo / "plots" / name, target)
        written.append(target)
    return written


def runs_figure(runs: list[str], out: Path, name: str) -> Path:
    points = {}
    for run in runs:
        label, sep, location = run.partition("=")
        if not sep:
            raise SystemExit(f"--run takes LABEL=PATH (a fit directory or its history.json), not {run!r}")
        path = Path(location)
        points[label] = timed_cer(read_progress(path / HISTORY_FILENAME if path.is_dir() else path))
    return plots.save_figure(plots.cer_against_time(points), out / f"{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, help="the directory `make demo` wrote (DEMO=...)")
    parser.add_argument("--run", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--runs-name", default="cer-against-minutes", help="file name of the --run figure")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "figures")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    written = demo_figures(args.demo, args.out) if args.demo else []
    if args.run:
        written.append(runs_figure(args.run, args.out, args.runs_name))
    for path in written:
        print(path)


if __name__ == "__main__":
    main()

"""The walkthrough notebook runs top to bottom (at its tiny budget) and draws its figures."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("ipykernel.kernelspec")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"
KERNEL_NAME = "ds2-test-python"
FIGURES = 5  # waveform and spectrogram, training curve, CTC posteriors, error by length, confusion
TIMEOUT_S = 300  # per cell; the whole tiny run takes well under a minute when the machine is idle


def test_notebook_is_stored_without_outputs():
    """Outputs stay out of git, so notebook diffs show only what a person changed."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, cell.source[:80]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_walkthrough_runs_with_tiny_budget(tmp_path, monkeypatch):
    # A kernelspec written for this interpreter: the kernel imports the same ds2_keras and
    # libraries as the tests, whatever `python3` kernels the machine has installed elsewhere.
    kernels = tmp_path / "kernels"
    kernelspec.write_kernel_spec(kernels / KERNEL_NAME)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("DS2_NOTEBOOK_BUDGET", "tiny")
    monkeypatch.setenv("DS2_NOTEBOOK_WORK_DIR", str(tmp_path / "work"))

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name=KERNEL_NAME, timeout=TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == FIGURES, f"expected {FIGURES} figures, got {len(images)}"
    assert (tmp_path / "work" / "model" / "model.keras").is_file()

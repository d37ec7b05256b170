"""The example notebooks (examples/*.ipynb) run from top to bottom without an error, headlessly, in a fresh
kernel that imports the swiftattr under test (nbclient; skipped where nbclient, nbformat or ipykernel is
absent — CI installs them from scripts/setup.sh); and they are committed without outputs."""
import glob
import json
import os

import pytest

import swiftattr as sa
from conftest import optional_import

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
NOTEBOOKS = sorted(glob.glob(os.path.join(EXAMPLES, "*.ipynb")))
EXPECTED = {"vision.ipynb", "genomics.ipynb", "tabular.ipynb", "text.ipynb"}


def test_the_example_notebooks_are_there():
    assert EXPECTED <= {os.path.basename(p) for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_committed_without_outputs(path):
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {i} has outputs: strip them before committing"
            assert cell.get("execution_count") is None, f"cell {i} has an execution count"
        assert "execution" not in cell.get("metadata", {}), f"cell {i} has execution timings"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, tmp_path, monkeypatch):
    nbformat = optional_import("nbformat")
    nbclient = optional_import("nbclient")
    optional_import("ipykernel")
    # The kernel is a new process: give it the package these tests import (a checkout's python/ or site-packages).
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(sa.__file__)))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "Agg")  # headless, whatever the notebook's %matplotlib line does
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images >= 2, "the notebook's figures were not displayed"

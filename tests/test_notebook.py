"""The walkthrough notebook runs top to bottom (so it cannot rot)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"


@pytest.mark.slow
def test_walkthrough_executes():
    nbformat = pytest.importorskip("nbformat", reason="nbformat is a test extra")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is a test extra")
    pytest.importorskip("ipykernel", reason="ipykernel is a test extra")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("leaflet" in h.lower() for h in html)  # the map is shown inline
    assert any("optimal: True" in o.get("text", "") for o in outputs)

"""The walkthrough notebooks are stored executed, with their pictures (fast check), and still execute top to
bottom (slow: each starts a kernel and decodes 2K images; ``make notebooks`` stores the result)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_executed_with_small_pictures() -> None:
    """A reader of the repository sees the pictures: every notebook holds its outputs (``make notebooks``),
    at least one PNG each, no error, and stays small."""
    import base64
    import json

    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(c.get("execution_count") for c in code), f"{path.name}: not executed (make notebooks)"
        outputs = [o for c in code for o in c.get("outputs", [])]
        assert not [o for o in outputs if o["output_type"] == "error"], path.name
        pngs = [base64.b64decode(o["data"]["image/png"]) for o in outputs if "image/png" in o.get("data", {})]
        assert pngs and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs), f"{path.name}: no picture"
        assert path.stat().st_size < 1_500_000, f"{path.name}: {path.stat().st_size} bytes"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors

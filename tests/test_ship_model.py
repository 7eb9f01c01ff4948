"""scripts/ship_model.py: check an export, ship it as the model and describe it; and the shipped file itself
when it is there."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from test_configs import ROOT

from scripts import ship_model
from src.gca import build_generator, export_generator, load_generator
from src.gca.networks import CoarseGenerator
from src.gca.refine import RefinePyramid


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random generator with gca_refine_small's settings, exported in int8 as the shipped model is."""
    torch.manual_seed(0)
    gen = build_generator(
        lambda in_channels: CoarseGenerator(in_channels, ngf=8, n_downsample_global=2, n_blocks_global=1,
                                            n_blocks_local=1),
        lambda extra_channels, use_thumbnail: RefinePyramid(levels=2, width=16, depth=4,
                                                            extra_channels=extra_channels,
                                                            use_thumbnail=use_thumbnail),
        use_thumbnail=True, use_mask=True, refine_inputs=("sca", "mask", "thumb"), refine_residual=True,
        mask_gate=8,
    )  # fmt: skip
    return export_generator(gen, tmp_path_factory.mktemp("export") / "gca_refine.pt", dtype="int8")


def test_ships_and_describes_the_model(tmp_path: Path, export: Path, capsys) -> None:
    data = export.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    (tmp_path / "gca_refine.pt.sha256").write_text(f"{digest}  gca_refine.pt\n")
    (tmp_path / "run_config.yaml").write_text("sca:\n  method: dc_thumb\n")
    (tmp_path / "table.md").write_text("# table\n")
    out = tmp_path / "weights" / "gca_refine.pt"
    meta = ship_model.ship(
        export, out, tmp_path / "run_config.yaml", sha256=str(tmp_path / "gca_refine.pt.sha256")
    )
    assert out.read_bytes() == data
    printed = capsys.readouterr().out
    assert f"sha256 {digest}" in printed and f"{meta['parameters']:,} parameters" in printed
    saved = json.loads((tmp_path / "weights" / "gca_refine.json").read_text())
    assert saved == meta
    gen = load_generator(out)
    assert meta["file"] == "gca_refine.pt" and meta["sha256"] == digest and meta["bytes"] == len(data)
    assert meta["dtype"] == "int8" and meta["spec"] == gen.spec()
    assert meta["parameters"] == sum(p.numel() for p in gen.parameters())
    assert meta["config"] == "gca_refine_config.yaml" and meta["metrics"] is None
    assert (tmp_path / "weights" / "gca_refine_config.yaml").read_text() == "sca:\n  method: dc_thumb\n"
    # later: the eval table is added to the same model (without --file: the shipped file is checked again
    # and its JSON kept)
    again = ship_model.ship(None, out, metrics=tmp_path / "table.md")
    assert again["metrics"] == "gca_refine_metrics.md" and again["config"] == "gca_refine_config.yaml"
    ship_model.main(["--out", str(out)])
    assert (
        json.loads((tmp_path / "weights" / "gca_refine.json").read_text())["metrics"]
        == "gca_refine_metrics.md"
    )


def test_rejects_a_wrong_digest_a_large_or_unloadable_file(tmp_path: Path, export: Path) -> None:
    out = tmp_path / "weights" / "gca_refine.pt"
    with pytest.raises(ship_model.ShipError, match="expected 0000"):
        ship_model.ship(export, out, sha256="0" * 64)
    big = tmp_path / "big.pt"
    with big.open("wb") as f:
        f.truncate(25 * 10**6 + 1)
    with pytest.raises(ship_model.ShipError, match="over the limit of 25000000"):
        ship_model.ship(big, out)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(export.read_bytes()[:-1000])  # truncated
    with pytest.raises(ship_model.ShipError, match="not a torch file"):
        ship_model.ship(junk, out)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ship_model.ShipError, match="not a generator export"):
        ship_model.ship(other, out)
    assert not out.parent.exists()  # nothing written
    with pytest.raises(SystemExit, match=r"ship_model: error: .*missing\.pt does not exist"):
        ship_model.main(["--file", str(tmp_path / "missing.pt"), "--out", str(out)])


@pytest.mark.skipif(not (ROOT / "weights" / "gca_refine.pt").is_file(), reason="no shipped model yet")
def test_the_shipped_model_matches_its_description() -> None:
    path = ROOT / "weights" / "gca_refine.pt"
    meta = json.loads(path.with_suffix(".json").read_text())
    data = path.read_bytes()
    assert len(data) == meta["bytes"] <= ship_model.MAX_BYTES
    assert hashlib.sha256(data).hexdigest() == meta["sha256"]
    gen = load_generator(path)
    assert gen.spec() == meta["spec"] and sum(p.numel() for p in gen.parameters()) == meta["parameters"]

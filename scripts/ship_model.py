"""Ship a trained generator as ``weights/gca_refine.pt`` and describe it.

Checks the export (at most 25 MB, a generator export that ``src.gca.load_generator`` rebuilds and that runs on
a small input, its sha256 when ``--sha256`` gives one), writes it atomically and writes / updates
``weights/gca_refine.json`` (file, sha256, bytes, dtype, parameters, generator spec). ``--config`` copies the
training run's ``run_config.yaml`` to ``weights/gca_refine_config.yaml`` (``src.restore`` / ``src.eval`` then
make the model's input with the SCA and decoder options it was trained with); ``--metrics`` copies an eval
table to ``weights/gca_refine_metrics.md``. Shipping a different model without ``--config`` / ``--metrics``
removes the old model's copies. Without ``--file`` the shipped file is checked again and its JSON refreshed
(e.g. to add ``--metrics`` after ``scripts/model_eval.sh``).

    python -m scripts.ship_model --file RUN/gca_refine.pt --config RUN/run_config.yaml
    python -m scripts.ship_model --metrics outputs/model_eval/table.md   # later: add the eval table
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from src.errors import BitstreamRestoreError
from src.gca import count_parameters, load_generator
from src.gca.generator import EXPORT_FORMAT
from src.utils import atomic_write_bytes, atomic_write_text

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "weights" / "gca_refine.pt"
MAX_BYTES = 25 * 10**6  # the shipped file must stay small enough to commit


class ShipError(BitstreamRestoreError):
    """The export is missing, too large, not a loadable generator export, or not the expected file."""


def expected_sha256(given: str) -> str:
    """The digest of ``given`` (hex digits or a ``sha256sum`` file)."""
    text = Path(given).read_text() if Path(given).is_file() else given
    digest = text.split()[0].lower() if text.split() else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ShipError(f"not a sha256 digest: {given!r}")
    return digest


def check_generator(data: bytes) -> tuple[dict[str, Any], int]:
    """(export payload without weights, parameter count) of export bytes; :class:`ShipError` unless
    ``load_generator`` rebuilds them and the generator runs on a small input."""
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises assorted errors on a file that is not its format
        raise ShipError(f"the file is not a torch file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != EXPORT_FORMAT:
        raise ShipError(f"the file is not a generator export (format {EXPORT_FORMAT!r})")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generator.pt"
        path.write_bytes(data)
        try:
            gen = load_generator(path)
            h = 4 * gen.required_multiple  # the coarsest feature map must outsize the reflect padding
            x = torch.rand(1, 3, h, 2 * h, generator=torch.Generator().manual_seed(0))
            with torch.inference_mode():
                out = gen(x, x, torch.ones(1, 1, h, 2 * h))["output"]
        except Exception as exc:  # any failure to rebuild or run it is the finding
            raise ShipError(f"load_generator cannot use the file ({type(exc).__name__}: {exc})") from exc
    if out.shape != x.shape or not torch.isfinite(out).all():
        raise ShipError(f"the generator gives a bad output ({tuple(out.shape)} for {tuple(x.shape)})")
    return {k: v for k, v in payload.items() if k not in ("state_dict", "int8")}, count_parameters(gen)


def ship(
    file: str | Path | None,
    out: str | Path = DEFAULT_OUT,
    config: str | Path | None = None,
    metrics: str | Path | None = None,
    sha256: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> dict[str, Any]:
    """Check and write the model and its JSON (see the module docstring); returns the JSON's dict. Nothing
    is written when a check fails."""
    out = Path(out)
    source = Path(file) if file is not None else out
    if not source.is_file():
        raise ShipError(f"{source} does not exist")
    size = source.stat().st_size
    if size > max_bytes:
        raise ShipError(f"the file has {size} bytes, over the limit of {max_bytes} ({max_bytes / 1e6:g} MB)")
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and expected_sha256(sha256) != digest:
        raise ShipError(f"sha256 of the file is {digest}, expected {expected_sha256(sha256)}")
    header, n_params = check_generator(data)
    for extra in (config, metrics):
        if extra is not None and not Path(extra).is_file():
            raise ShipError(f"{extra} does not exist")

    meta_path = out.with_suffix(".json")
    config_path = out.with_name(f"{out.stem}_config.yaml")
    metrics_path = out.with_name(f"{out.stem}_metrics.md")
    previous: dict[str, Any] = {}
    if meta_path.is_file():
        try:
            previous = json.loads(meta_path.read_text())
        except ValueError:  # an unreadable old description is replaced
            previous = {}
    same_model = previous.get("sha256") == digest
    if source.resolve() != out.resolve():
        atomic_write_bytes(out, data)
    for src, dst in ((config, config_path), (metrics, metrics_path)):
        if src is not None:
            atomic_write_bytes(dst, Path(src).read_bytes())
        elif dst.is_file() and not same_model:
            print(f"removing {dst}: it describes the previously shipped model")
            dst.unlink()
    meta = {
        **{k: v for k, v in previous.items() if k != "parts"},
        "file": out.name,
        "sha256": digest,
        "bytes": len(data),
        "format": header.get("format"),
        "dtype": header.get("dtype"),
        "parameters": n_params,
        "spec": header.get("spec"),
        "config": config_path.name if config_path.is_file() else None,
        "metrics": metrics_path.name if metrics_path.is_file() else None,
    }
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    mib = len(data) / 2**20
    print(f"{out}: {len(data)} bytes ({mib:.1f} MiB), dtype {meta['dtype']}, {n_params:,} parameters")
    print(f"sha256 {digest}")
    print(f"wrote {meta_path}" + "".join(f", {p}" for p in (config_path, metrics_path) if p.is_file()))
    return meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", type=Path, help="the export to ship (default: check the shipped file again)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: weights/gca_refine.pt")
    ap.add_argument("--config", type=Path, help="the training run's run_config.yaml")
    ap.add_argument("--metrics", type=Path, help="an eval table.md (scripts/model_eval.sh)")
    ap.add_argument("--sha256", help="expected digest (hex or a sha256sum file)")
    args = ap.parse_args(argv)
    try:
        ship(args.file, args.out, args.config, args.metrics, args.sha256)
    except ShipError as exc:
        raise SystemExit(f"ship_model: error: {exc}") from None


if __name__ == "__main__":
    main()

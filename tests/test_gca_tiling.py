"""src.gca.tiling: tiled GCA inference gives the untiled image (one tile: bit for bit; several: up to float
rounding, and within 0.05 dB Y-PSNR on a real corrupted photo with the shipped model), with no seam at tile
borders, at any size, for the generator variants; and the Restorer's tile / precision / device options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from src.corruption import Corruptor
from src.data.pipeline import prepare_photo
from src.gca import CoarseGenerator, GCAGenerator, RefinePyramid, load_generator
from src.gca.tiling import TileSettings, TilingError, _ramp, refine_halo, tiled_forward
from src.metrics import psnr_y
from src.restoration import RestoreError, Restorer, load_restorer, model_input, prepare
from src.utils.images import decode_jpeg_rgb, to_uint8

SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "gca_refine.pt"


def corrupted_input(photo: np.ndarray, size: tuple[int, int], ber: float, seed: int = 2):
    """(model input, clean decode) of ``photo`` corrupted at ``size`` by the paper preset."""
    sample = Corruptor.from_preset("paper", ber=ber).corrupt(prepare_photo(photo, size), seed)
    result = prepare(sample.corrupted_jpeg, {"strategy": "paper"}, {"method": "dc_thumb"})
    return model_input(result), decode_jpeg_rgb(sample.clean_jpeg)


def tensors(inp) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    def t(a: np.ndarray) -> torch.Tensor:
        a = a[:, :, None] if a.ndim == 2 else a
        x = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]
        return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()

    return t(inp.sca), t(inp.thumb), t(inp.mask)


def small_generator(
    n_local: int = 1, refine: bool = True, mask_gate: int = 2, levels: int = 2
) -> GCAGenerator:
    """A small generator with random (non-zero) weights in eval mode: every path does something."""
    torch.manual_seed(0)
    coarse = CoarseGenerator(7, ngf=4, n_local_enhancers=n_local, n_downsample_global=2, n_blocks_global=1,
                             n_blocks_local=1, init_std=0.2)  # fmt: skip
    ref = RefinePyramid(levels=levels, width=8, depth=3, extra_channels=7, init="kaiming") if refine else None
    gen = GCAGenerator(coarse, ref, use_thumbnail=True, use_mask=True,
                       refine_inputs=("sca", "mask", "thumb") if refine else (),
                       refine_residual=refine, mask_gate=mask_gate if refine else 0)  # fmt: skip
    return gen.eval()


@pytest.fixture(scope="module")
def coffee_input(coffee: np.ndarray):
    """The coffee photo corrupted at 512x256 (paper preset, BER 1e-4: several filled regions)."""
    inp, gt = corrupted_input(coffee, (512, 256), 1e-4)
    assert 0.005 < float(np.mean(inp.mask < 1)) < 0.5
    return inp, gt


@pytest.fixture(scope="module")
def shipped() -> GCAGenerator:
    if not SHIPPED.is_file():
        pytest.skip("no shipped model in weights/")
    return load_generator(SHIPPED)


@pytest.fixture(scope="module")
def coffee_ref(coffee_input, shipped: GCAGenerator) -> torch.Tensor:
    """The shipped model's untiled output on the corrupted coffee photo, (1, 3, H, W) in [0, 1]."""
    with torch.inference_mode():
        return shipped(*tensors(coffee_input[0]))["output"]


def as_uint8(x: torch.Tensor) -> np.ndarray:
    return to_uint8(x[0].permute(1, 2, 0).numpy())


# ---------------------------------------------------------------------------------------------- exactness
def test_one_tile_is_the_untiled_result_bit_for_bit(coffee_input, shipped, coffee_ref) -> None:
    inp, _ = coffee_input
    tiled = Restorer(shipped, torch.device("cpu"), tile=512)
    assert torch.equal(tiled.forward(*tensors(inp)), coffee_ref)
    assert tiled.last_report == {"tiled": False}
    assert np.array_equal(tiled.run(inp), as_uint8(coffee_ref))  # the arrays path (tensor views) too


def test_several_tiles_match_untiled_on_a_real_corrupted_photo(coffee_input, shipped, coffee_ref) -> None:
    """The shipped model on the corrupted coffee photo by tiles of 128 px (refine and coarse): the same image
    up to float rounding, far inside 0.05 dB Y-PSNR."""
    inp, gt = coffee_input
    restorer = Restorer(shipped, torch.device("cpu"), tile=128)
    out = restorer.run(inp)
    assert restorer.last_report["tiled"] and restorer.last_report["refine_tiles"] > 8
    ref8 = as_uint8(coffee_ref)
    assert int(np.abs(out.astype(int) - ref8).max()) <= 1
    q_ref, q_out = psnr_y(ref8, gt), psnr_y(out, gt)
    assert abs(q_out - q_ref) < 0.05, (q_out, q_ref)
    assert np.mean(ref8 != to_uint8(inp.sca)) > 0.001  # the model acts here: the check is not vacuous


def test_skipping_trusted_tiles_is_exact(coffee_input, shipped, coffee_ref) -> None:
    """Where the mask gate is 0 the untiled output is the SCA input bit for bit, so the refine boxes there
    are skipped: the tiled image equals it there exactly, and is within float rounding elsewhere."""
    inp, _ = coffee_input
    sca, thumb, mask = tensors(inp)
    shut = shipped.gate_pyramid(mask, shipped.refine.levels)[-1] == 0
    assert 0.1 < float(shut.float().mean()) < 0.99
    sca_out = (sca * 2 - 1 + 1) * 0.5
    shut3 = shut.expand_as(sca)
    assert torch.equal(coffee_ref[shut3], sca_out[shut3].clamp(0, 1))
    report: dict = {}
    with torch.inference_mode():
        skip = tiled_forward(shipped, sca, thumb, mask, TileSettings(tile=128), report=report)
        full = tiled_forward(shipped, sca, thumb, mask, TileSettings(tile=128, skip_trusted=False))
    assert 0 < report["refine_skipped"] < report["refine_tiles"]
    assert torch.equal(skip[shut3], coffee_ref[shut3])
    assert float((skip - full).abs().max()) < 1e-5


@pytest.mark.parametrize(
    "variant",
    [dict(), dict(n_local=0), dict(n_local=2), dict(refine=False), dict(mask_gate=0), dict(levels=3)],
    ids=["refine", "no_local", "two_local", "coarse_only", "no_gate", "three_levels"],
)
@pytest.mark.parametrize("size", [(203, 331), (130, 97)], ids=["203x331", "130x97"])
def test_odd_sizes_and_generator_variants(coffee: np.ndarray, variant: dict, size: tuple[int, int]) -> None:
    """Sizes that are multiples of neither the tile nor the nets' strides, every generator variant."""
    gen = small_generator(**variant)
    h, w = size
    rng = np.random.default_rng(1)
    sca = torch.from_numpy(coffee[:h, :w].transpose(2, 0, 1).copy())[None].float() / 255
    thumb = torch.nn.functional.interpolate(
        torch.nn.functional.avg_pool2d(sca, 8, ceil_mode=True), size=(h, w), mode="bilinear"
    )
    mask = torch.from_numpy((rng.random((1, 1, h, w)) > 0.02).astype(np.float32))
    mask[..., h // 3 : h // 2, w // 4 : w // 2] = 0.0
    with torch.inference_mode():
        ref = gen(sca, thumb, mask)["output"]
        for settings in (TileSettings(tile=64), TileSettings(tile=96, batch=3)):
            out = tiled_forward(gen, sca, thumb, mask, settings)
            assert out.shape == ref.shape
            assert float((out - ref).abs().max()) < 1e-5, settings


# ---------------------------------------------------------------------------------------------- seams
def test_no_seam_at_tile_borders(coffee_input, shipped, coffee_ref) -> None:
    """Exact tiles: the error against untiled on the pixels next to a tile border is no larger than inside.
    Blended tiles (context below the receptive field): the image stays within 0.05 dB and the error across
    a border stays small."""
    inp, gt = coffee_input
    sca, thumb, mask = tensors(inp)
    tile = 128
    ref = coffee_ref
    with torch.inference_mode():
        exact = tiled_forward(shipped, sca, thumb, mask, TileSettings(tile=tile, skip_trusted=False))
        blended = tiled_forward(shipped, sca, thumb, mask, TileSettings(tile=tile, overlap=16))
    h, w = ref.shape[-2:]
    border = torch.zeros(h, w, dtype=torch.bool)
    for b in range(tile, max(h, w), tile):
        border[max(0, b - 2) : b + 2, :] |= b < h
        border[:, max(0, b - 2) : b + 2] |= b < w
    err = (exact - ref).abs().amax(dim=1)[0]
    assert float(err[border].max()) <= max(2 * float(err[~border].max()), 1e-6)
    q = [psnr_y(to_uint8(x[0].permute(1, 2, 0).numpy()), gt) for x in (ref, blended)]
    assert abs(q[1] - q[0]) < 0.05, q
    assert float((blended - ref).abs().amax(dim=1)[0][border].mean()) < 2 / 255


def test_blend_weights_are_a_partition_of_unity() -> None:
    """Raised-cosine ramps of neighbouring tiles sum to 1 over the shared band."""
    n, band, step = 200, 8, 64
    total = torch.zeros(n)
    for c0 in range(0, n, step):
        c1 = min(c0 + step, n)
        y0, y1 = max(0, c0 - band), min(n, c1 + band)
        total[y0:y1] += _ramp(y1 - y0, band, c0 > 0, c1 < n, torch.device("cpu"))
    assert torch.allclose(total, torch.ones(n), atol=1e-6)


def test_refine_halo_covers_the_receptive_field() -> None:
    """A change of one input pixel moves the refine output no farther than the halo."""
    gen = small_generator(refine=True, mask_gate=0)
    halo = refine_halo(gen)
    assert halo % gen.refine.required_multiple == 0
    h = w = 128
    torch.manual_seed(0)
    coarse = torch.rand(1, 3, h, w) * 2 - 1
    sca, thumb, mask = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w), torch.ones(1, 1, h, w)
    with torch.inference_mode():
        a = gen.refine_levels(coarse, sca, thumb, mask)[0][-1]
        coarse[..., 64, 64] += 1.0
        b = gen.refine_levels(coarse, sca, thumb, mask)[0][-1]
    ys, xs = torch.nonzero((a - b).abs().amax(dim=1)[0] > 0, as_tuple=True)
    assert int((ys - 64).abs().max()) <= halo and int((xs - 64).abs().max()) <= halo


# ---------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(tile=10), "tile must be an integer >= 64"),
        (dict(tile="big"), "tile must be an integer >= 64"),
        (dict(tile=256, tile_overlap=-1), "tile_overlap must be"),
        (dict(tile=256, tile_batch=0), "tile_batch must be"),
        (dict(precision="8"), "precision must be 32, bf16 or 16"),
        (dict(precision=16, device="cpu"), "precision=16 (fp16) needs a CUDA device"),
        (dict(device="tpu"), "device must be auto, cpu or cuda"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, kwargs: dict, words: str) -> None:
    kwargs = {"device": "cpu", **kwargs}
    with pytest.raises(RestoreError) as info:
        load_restorer(tmp_path / "missing.pt", **kwargs)  # options are checked before the file
    assert words in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(RestoreError):
        Restorer(small_generator(), **kwargs)


def test_cuda_device_missing_is_a_one_line_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(RestoreError, match="no such CUDA device"):
        Restorer(small_generator(), "cuda")


def test_tile_settings_reject_bad_values() -> None:
    for bad in (dict(tile=32), dict(tile=True), dict(overlap=-2), dict(batch=0)):
        with pytest.raises(TilingError):
            TileSettings(**bad)


def test_bf16_on_cpu_runs_close_to_float32(coffee_input) -> None:
    """precision=bf16 (autocast) tiled on CPU: the same size, close to float32 (bf16 has 8 mantissa bits)."""
    inp, _ = coffee_input
    gen = small_generator()
    r32 = Restorer(gen, "cpu", tile=128)
    r16 = Restorer(gen, "cpu", precision="bf16", tile=128)
    a, b = r32.run(inp), r16.run(inp)
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    assert np.mean(np.abs(a.astype(int) - b)) < 3.0


@pytest.mark.slow
def test_2k_photo_in_several_tiles_matches_untiled(astronaut: np.ndarray, shipped: GCAGenerator) -> None:
    """The shipped model at 2048x1024 (astronaut, paper preset BER 1e-5) by tiles of 512 px: within 0.05 dB
    Y-PSNR of untiled and at most one 8-bit level apart anywhere (measured: identical)."""
    inp, gt = corrupted_input(astronaut, (2048, 1024), 1e-5, seed=1)
    untiled = Restorer(shipped, "cpu").run(inp)
    restorer = Restorer(shipped, "cpu", tile=512)
    tiled = restorer.run(inp)
    assert restorer.last_report["tiled"]
    assert int(np.abs(tiled.astype(int) - untiled).max()) <= 1
    assert abs(psnr_y(tiled, gt) - psnr_y(untiled, gt)) < 0.05

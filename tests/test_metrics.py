"""src.metrics: paper-protocol Y metrics, RGB metrics, PSNR-B; numpy vs torch twins; DDP-safe means."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.signal import convolve2d
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from src import metrics as M
from src.metrics import tensor as T


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB" if rgb.ndim == 3 else "L"))


def noisy(rgb: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(rgb + rng.normal(0, sigma, rgb.shape)), 0, 255).astype(np.uint8)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.array(rgb)).float() / 255.0
    return t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]


def paper_rgb2y(u8: np.ndarray) -> np.ndarray:
    """Two-ACIR's util/convert.rgb2y, restated: float dot product, round, uint8."""
    return (np.dot(u8[..., :3], [65.481, 128.553, 24.966]) / 255.0 + 16.0).round().astype(np.uint8)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """float64 convolutions of a few photos: one thread is as fast and leaves the shared cores alone."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- Y conversion


def test_y_matches_paper_code_on_photos(astronaut, coffee):
    for img in (astronaut, coffee):
        ours = M.rgb_to_y_bt601(img)
        theirs = paper_rgb2y(img).astype(np.float64)
        diff = np.abs(ours - theirs)
        assert diff.max() <= 1.0
        assert (diff > 0).mean() < 1e-4  # only exact .5 ties may round differently


def test_y_range_and_grey():
    corners = np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    assert M.rgb_to_y_bt601(corners).tolist() == [[16.0, 235.0]]
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(M.rgb_to_y_bt601(grey), M.rgb_to_y_bt601(np.repeat(grey[..., None], 3, 2)))
    # unrounded: exactly 16 + 219/255 * v on grey
    np.testing.assert_allclose(M.rgb_to_y_bt601(grey, rounded=False), 16 + grey * 219.0 / 255.0, atol=1e-12)


def test_float_input_equals_uint8_input(chelsea):
    np.testing.assert_array_equal(M.rgb_to_y_bt601(chelsea.astype(np.float32)), M.rgb_to_y_bt601(chelsea))


# ---------------------------------------------------------------- PSNR


def test_psnr_closed_form_on_constant_offset(astronaut):
    target = np.clip(astronaut, 10, 245).astype(np.uint8)
    pred = target + np.uint8(3)  # every RGB sample +3: MSE_rgb = 9, Y moves by 3 * 219 / 255 exactly
    assert M.psnr_rgb(pred, target) == pytest.approx(10 * math.log10(255**2 / 9), abs=1e-9)
    dy = 3 * 219 / 255
    assert M.psnr_y(pred, target, rounded=False) == pytest.approx(10 * math.log10(255**2 / dy**2), abs=1e-9)


def test_psnr_matches_skimage_and_paper_code(coffee):
    for pred in (noisy(coffee, 8), jpeg_roundtrip(coffee, 30)):
        assert M.psnr_rgb(pred, coffee) == pytest.approx(peak_signal_noise_ratio(coffee, pred), abs=1e-9)
        y_p, y_t = paper_rgb2y(pred), paper_rgb2y(coffee)
        assert M.psnr_y(pred, coffee) == pytest.approx(peak_signal_noise_ratio(y_t, y_p), abs=1e-3)


def test_psnr_identical_is_inf_and_ordering(chelsea):
    assert M.psnr_y(chelsea, chelsea) == math.inf
    p = [M.psnr_y(noisy(chelsea, s), chelsea) for s in (2, 5, 10, 20)]
    assert p == sorted(p, reverse=True)
    assert 20 < p[-1] < p[0] < 50


# ---------------------------------------------------------------- SSIM


def ssim_by_convolution(a: np.ndarray, b: np.ndarray) -> float:
    """Independent 2-D SSIM (Wang et al.): explicit 11x11 Gaussian, valid convolution, population variance."""
    x = np.arange(-5, 6)
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()

    def f(z):
        return convolve2d(z, w, mode="valid")

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = f(a), f(b)
    va, vb, cov = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
    s = (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(s.mean())


def test_ssim_y_matches_independent_convolution(astronaut):
    crop = astronaut[100:228, 150:278]
    pred = jpeg_roundtrip(crop, 20)
    expected = ssim_by_convolution(M.rgb_to_y_bt601(pred), M.rgb_to_y_bt601(crop))
    assert M.ssim_y(pred, crop) == pytest.approx(expected, abs=1e-9)
    assert 0.5 < expected < 0.99


def test_ssim_rgb_is_channel_mean(coffee):
    pred = noisy(coffee, 10)
    per_channel = [ssim_by_convolution(pred[..., c] * 1.0, coffee[..., c] * 1.0) for c in range(3)]
    assert M.ssim_rgb(pred, coffee) == pytest.approx(np.mean(per_channel), abs=1e-9)


def test_ssim_properties(chelsea):
    assert M.ssim_y(chelsea, chelsea) == pytest.approx(1.0)
    s = [M.ssim_y(noisy(chelsea, sig), chelsea) for sig in (2, 8, 32)]
    assert s == sorted(s, reverse=True)


def test_ssim_y_paper_is_the_paper_codes_call(astronaut):
    pred = jpeg_roundtrip(astronaut, 25)
    # The paper's util/metric.ssim: compare_ssim(Y_u8, Y_u8, multichannel=True), data range from uint8.
    expected = structural_similarity(paper_rgb2y(pred), paper_rgb2y(astronaut), channel_axis=-1)
    assert M.ssim_y_paper(pred, astronaut) == pytest.approx(expected, abs=1e-5)
    # ... which is the mean of 1-D column SSIMs, not the 2-D SSIM
    assert abs(M.ssim_y_paper(pred, astronaut) - M.ssim_y(pred, astronaut)) > 1e-3


def test_ssim_y_paper_is_mean_of_column_ssims(coffee):
    target = coffee[:64, :40]
    pred = noisy(target, 12)
    ya, yb = M.rgb_to_y_bt601(pred), M.rgb_to_y_bt601(target)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for col in range(ya.shape[1]):
        for r in range(3, ya.shape[0] - 3):
            a, b = ya[r - 3 : r + 4, col], yb[r - 3 : r + 4, col]
            va, vb = a.var(ddof=1), b.var(ddof=1)
            cov = ((a - a.mean()) * (b - b.mean())).sum() / 6
            vals.append(
                (2 * a.mean() * b.mean() + c1)
                * (2 * cov + c2)
                / ((a.mean() ** 2 + b.mean() ** 2 + c1) * (va + vb + c2))
            )
    assert M.ssim_y_paper(pred, target) == pytest.approx(np.mean(vals), abs=1e-9)


# ---------------------------------------------------------------- PSNR-B


def bef_by_loops(y: np.ndarray, bs: int = 8) -> float:
    h, w = y.shape
    b, bc = [], []
    for i in range(h):
        for j in range(w - 1):
            (b if j % bs == bs - 1 else bc).append((y[i, j] - y[i, j + 1]) ** 2)
    for i in range(h - 1):
        for j in range(w):
            (b if i % bs == bs - 1 else bc).append((y[i, j] - y[i + 1, j]) ** 2)
    d_b, d_bc = np.mean(b), np.mean(bc)
    return math.log2(bs) / math.log2(min(h, w)) * (d_b - d_bc) if d_b > d_bc else 0.0


def test_psnrb_matches_loop_definition(astronaut):
    target = astronaut[200:240, 100:156]  # 40 x 56: blocks split evenly in neither direction's pair count
    pred = jpeg_roundtrip(np.ascontiguousarray(target), 10)
    ya, yb = M.rgb_to_y_bt601(pred), M.rgb_to_y_bt601(target)
    bef = bef_by_loops(ya)
    assert bef > 0
    assert M.blocking_effect_factor(ya) == pytest.approx(bef, rel=1e-12)
    mse = np.mean((ya - yb) ** 2)
    assert M.psnrb_y(pred, target) == pytest.approx(10 * math.log10(255**2 / (mse + bef)), abs=1e-9)


def test_psnrb_penalises_blocking(coffee):
    q10 = jpeg_roundtrip(coffee, 10)
    assert M.psnrb_y(q10, coffee) < M.psnr_y(q10, coffee) - 0.2
    assert M.psnrb_y(jpeg_roundtrip(coffee, 10), coffee) < M.psnrb_y(jpeg_roundtrip(coffee, 50), coffee)


# ---------------------------------------------------------------- errors


def test_errors_name_what_was_found(astronaut):
    with pytest.raises(M.MetricInputError, match=r"\(512, 512, 3\).*\(256, 512, 3\)"):
        M.psnr_y(astronaut, astronaut[:256])
    with pytest.raises(M.MetricInputError, match="int32"):
        M.psnr_rgb(astronaut.astype(np.int32), astronaut)
    with pytest.raises(M.MetricInputError, match=r"span \[0.0, 300.0\]; allowed is 0..255"):
        M.psnr_y(astronaut / 255.0 * 300, astronaut)
    with pytest.raises(M.MetricInputError, match="NaN"):
        M.ssim_y(np.full((16, 16, 3), np.nan), np.zeros((16, 16, 3)))
    with pytest.raises(M.MetricInputError, match="unknown metric"):
        T.PerImageMean("lpips")


# ---------------------------------------------------------------- torch twins


@pytest.mark.parametrize("name", sorted(T.METRIC_FUNCTIONS))
def test_torch_twin_equals_numpy(name, astronaut, coffee, chelsea, camera):
    np_fn = getattr(M, name)
    coffee, camera, astronaut = (
        coffee[:200, :304],
        np.ascontiguousarray(camera[:160, :200]),
        astronaut[:256, :256],
    )
    for target, pred in (
        (coffee, jpeg_roundtrip(coffee, 30)),
        (chelsea, noisy(chelsea, 6)),  # 300 x 451: odd width, not a multiple of 8
        (camera, jpeg_roundtrip(camera, 20)),  # grey
    ):
        expected = np_fn(pred, target)
        got = T.METRIC_FUNCTIONS[name](to_tensor(pred), to_tensor(target))
        assert got.shape == (1,) and got.dtype == torch.float64
        assert got.item() == pytest.approx(expected, abs=1e-9)
    # a batch gives per-image values, equal to one-at-a-time
    preds = torch.cat([to_tensor(noisy(astronaut, s)) for s in (3, 9)])
    targets = to_tensor(astronaut).expand(2, -1, -1, -1)
    batch = T.METRIC_FUNCTIONS[name](preds, targets)
    singles = [T.METRIC_FUNCTIONS[name](preds[i : i + 1], targets[i : i + 1]).item() for i in range(2)]
    np.testing.assert_allclose(batch.numpy(), singles, atol=1e-12)
    assert batch[0] != batch[1]


def test_torch_quantises_like_saved_png(coffee):
    pred_u8 = jpeg_roundtrip(coffee, 40)
    jitter = (
        (torch.rand(1, 3, *coffee.shape[:2], generator=torch.Generator().manual_seed(0)) - 0.5) * 0.9 / 255
    )
    pred_float = (to_tensor(pred_u8) + jitter).clamp(0, 1)  # rounds back to pred_u8 exactly
    assert T.psnr_y(pred_float, to_tensor(coffee)).item() == pytest.approx(
        M.psnr_y(pred_u8, coffee), abs=1e-9
    )
    unq = T.psnr_y(pred_float, to_tensor(coffee), quantize=False).item()
    assert unq != pytest.approx(M.psnr_y(pred_u8, coffee), abs=1e-6)


def test_per_image_mean_is_not_pooled(astronaut):
    preds = [noisy(astronaut, s, seed=s) for s in (2, 4, 16, 32)]
    metric = T.image_metric_collection(("psnr_y", "ssim_y"), prefix="val/")
    metric.update(to_tensor(preds[0]), to_tensor(astronaut))
    metric.update(torch.cat([to_tensor(p) for p in preds[1:]]), to_tensor(astronaut).expand(3, -1, -1, -1))
    out = metric.compute()
    assert set(out) == {"val/psnr_y", "val/ssim_y"}
    per_image = [M.psnr_y(p, astronaut) for p in preds]
    assert out["val/psnr_y"].item() == pytest.approx(np.mean(per_image), abs=1e-9)
    pooled = 10 * math.log10(255**2 / np.mean([255**2 / 10 ** (p / 10) for p in per_image]))
    assert abs(out["val/psnr_y"].item() - pooled) > 0.5
    assert out["val/ssim_y"].item() == pytest.approx(
        np.mean([M.ssim_y(p, astronaut) for p in preds]), abs=1e-9
    )


def test_per_image_mean_caps_identical_pairs(chelsea):
    target = to_tensor(chelsea)
    pred = to_tensor(noisy(chelsea, 5))
    metric = T.PerImageMean("psnr_y")
    metric.update(torch.cat([target, pred]), torch.cat([target, target]))
    assert metric.compute().item() == pytest.approx((100.0 + M.psnr_y(noisy(chelsea, 5), chelsea)) / 2)
    uncapped = T.PerImageMean("psnr_y", psnr_cap_db=None)
    uncapped.update(target, target)
    assert uncapped.compute().item() == math.inf
    ssim = T.PerImageMean("ssim_y")  # the cap concerns PSNRs only
    ssim.update(target, target)
    assert ssim.compute().item() == pytest.approx(1.0)


def _ddp_worker(rank: int, world: int, port: int, values: list, queue) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    metric = T.PerImageMean("psnr_rgb")
    for pred, target in values[rank]:
        metric.update(pred, target)
    queue.put((rank, metric.compute().item()))
    dist.destroy_process_group()


@pytest.mark.slow
def test_per_image_mean_syncs_under_ddp(coffee):
    import socket

    import torch.multiprocessing as mp

    small = coffee[:64, :64]
    tgt = to_tensor(small)
    preds = [to_tensor(noisy(small, s, seed=s)) for s in (2, 3, 5, 8, 13)]
    # uneven split: rank 0 sees one image, rank 1 a batch of four
    values = [[(preds[0], tgt)], [(torch.cat(preds[1:]), tgt.expand(4, -1, -1, -1))]]
    expected = float(np.mean([T.psnr_rgb(p, tgt).item() for p in preds]))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, values, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert results[0] == pytest.approx(expected, abs=1e-9)
    assert results[1] == pytest.approx(expected, abs=1e-9)

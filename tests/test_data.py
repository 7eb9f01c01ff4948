"""src.data: sources and splits, transforms, the per-sample pipeline, the Dataset, the DataModule."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.corruption import Corruptor
from src.data.dataset import (
    CorruptedImageDataset,
    EpochSampler,
    SampleCache,
    sample_seed,
    settings_fingerprint,
)
from src.data.errors import DatasetError, TransformError
from src.data.pipeline import PipelineSettings, make_sample, prepare_photo
from src.data.sources import ImageItem, list_split, readable_items
from src.data.transforms import crop_to_multiple, mcu_alignment, random_crop, random_flip
from src.metrics import psnr_y
from src.utils.images import decode_jpeg_rgb, resize_cover, resize_uint8, to_uint8

SMALL = PipelineSettings(corruption_size=(256, 128), scale=(128, 64), sca={"method": "dc_thumb"})


@pytest.fixture(scope="module")
def corruptor() -> Corruptor:
    """The paper's preset at a BER that hits even 256x128 files."""
    return Corruptor.from_preset("paper", ber=3e-4)


def _save(img: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


# ------------------------------------------------------------------------------------------ sources
def test_samples_split_names_and_unknown_name() -> None:
    val = list_split("samples", "val", splits={"val": ["coffee", "chelsea"]})
    assert [i.key for i in val] == ["coffee", "chelsea"] and all(i.path is None for i in val)
    with pytest.raises(DatasetError, match=r"unknown bundled photo.*nosuch"):
        list_split("samples", "train", splits={"train": ["nosuch"]})
    with pytest.raises(DatasetError, match="unknown split"):
        list_split("samples", "training")
    with pytest.raises(DatasetError, match="unknown data source"):
        list_split("imagenet", "train")


def test_folder_split_by_subfolders_and_by_holdout(tmp_path: Path, coffee: np.ndarray) -> None:
    for split, n in (("train", 3), ("val", 1)):
        for k in range(n):
            _save(coffee[k * 10 : k * 10 + 64, :64], tmp_path / "split" / split / "city" / f"{split}{k}.png")
    train = list_split("folder", "train", tmp_path / "split", {"train": "train", "val": "val"})
    assert [Path(i.key).as_posix() for i in train] == [f"train/city/train{k}.png" for k in range(3)]
    assert len(list_split("folder", "val", tmp_path / "split", {"train": "train", "val": "val"})) == 1
    with pytest.raises(DatasetError, match="does not exist"):
        list_split("folder", "test", tmp_path / "split", {"test": "test"})
    # no split folders: the sorted list is cut, val and test from the end, no overlap
    flat = tmp_path / "flat"
    for k in range(10):
        _save(coffee[:32, k : k + 32], flat / f"{k:02d}.jpg")
    parts = {
        s: list_split("folder", s, flat, None, {"val": 0.2, "test": 1}) for s in ("train", "val", "test")
    }
    assert [len(parts[s]) for s in ("train", "val", "test")] == [7, 2, 1]
    keys = [i.key for s in ("train", "val", "test") for i in parts[s]]
    assert keys == sorted(keys) and len(set(keys)) == 10
    with pytest.raises(DatasetError, match="leaves no training image"):
        list_split("folder", "train", flat, None, {"val": 5, "test": 5})


def test_missing_or_empty_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"data\.root is not set"):
        list_split("folder", "train", None)
    with pytest.raises(DatasetError, match="does not exist"):
        list_split("folder", "train", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no image"):
        list_split("folder", "train", tmp_path / "empty")


def test_unreadable_files_are_separated(tmp_path: Path, chelsea: np.ndarray) -> None:
    good = _save(chelsea[:64, :64], tmp_path / "good.png")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not an image at all")
    ok, skipped = readable_items([ImageItem("good.png", str(good)), ImageItem("bad.jpg", str(bad))])
    assert [i.key for i in ok] == ["good.png"] and [i.key for i in skipped] == ["bad.jpg"]


def test_large_jpeg_is_decoded_reduced_but_still_covers(tmp_path: Path, astronaut: np.ndarray) -> None:
    from src.data.sources import load_item

    big = resize_uint8(astronaut, (2400, 1400))
    path = tmp_path / "big.jpg"
    Image.fromarray(big).save(path, quality=95)
    full = load_item(ImageItem("big.jpg", str(path)))
    reduced = load_item(ImageItem("big.jpg", str(path)), min_size=(512, 256))
    assert full.shape == (1400, 2400, 3) and reduced.shape == (350, 600, 3)  # libjpeg's 1/4 DCT scaling:
    # the smallest that still covers 512x256 after the resize to cover (2400x1400 -> 512x299)
    a, b = prepare_photo(full, (512, 256)), prepare_photo(reduced, (512, 256))
    assert a.shape == b.shape == (256, 512, 3) and psnr_y(b, a) > 38  # the same picture at the end
    assert load_item(ImageItem("big.jpg", str(path)), min_size=(2048, 1024)).shape == full.shape


@pytest.mark.skipif(not Path("/usr/share/backgrounds/mate/nature").is_dir(), reason="make photos")
def test_mate_source_uses_the_nature_photos() -> None:
    parts = {s: list_split("mate", s, holdout={"val": 2, "test": 2}) for s in ("train", "val", "test")}
    keys = [i.key for p in parts.values() for i in p]
    assert len(parts["val"]) == len(parts["test"]) == 2 and len(keys) == len(set(keys)) >= 12
    assert all("/nature/" in str(i.path) for p in parts.values() for i in p)


# ------------------------------------------------------------------------------------------ transforms
def test_resize_cover_keeps_aspect_and_crops_centre(coffee: np.ndarray) -> None:
    out = resize_cover(coffee, (256, 128))  # 600x400 -> scale 0.4267 -> 256x171 -> centre crop 128 rows
    assert out.shape == (128, 256, 3) and out.dtype == np.uint8
    full = resize_uint8(coffee, (256, round(400 * 256 / 600)))
    top = (full.shape[0] - 128) // 2
    assert np.array_equal(out, full[top : top + 128])


def test_resize_uint8_matches_pillow_bicubic(astronaut: np.ndarray) -> None:
    for size in ((200, 100), (1024, 700)):  # down and up
        ours = resize_uint8(astronaut, size).astype(int)
        pil = np.asarray(Image.fromarray(astronaut).resize(size, Image.Resampling.BICUBIC)).astype(int)
        assert ours.shape == pil.shape
        assert np.abs(ours - pil).max() <= 1 and np.abs(ours - pil).mean() < 0.01


def test_random_crop_is_aligned_and_identical_across_arrays(astronaut: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    idx = np.arange(512 * 512, dtype=np.int64).reshape(512, 512)  # pixel index: reveals the crop offset
    arrays = {"a": idx, "b": astronaut, "c": idx.astype(np.float32)}
    offsets = set()
    for _ in range(40):
        out = random_crop(arrays, (64, 32), align=8, rng=rng)
        y, x = divmod(int(out["a"][0, 0]), 512)
        assert out["a"].shape == (32, 64) and x % 8 == 0 and y % 8 == 0
        assert np.array_equal(out["b"], astronaut[y : y + 32, x : x + 64])
        assert np.array_equal(out["c"], out["a"].astype(np.float32))
        offsets.add((x, y))
    assert len(offsets) > 20  # really random
    with pytest.raises(TransformError, match="larger than the image"):
        random_crop(arrays, (1024, 32), 8, rng)
    assert mcu_alignment(16, 2048, 512) == 4 and mcu_alignment(16, 2048, 2048) == 16
    assert mcu_alignment(16, 2048, 64) == 1


def test_flips_and_multiple_crop(chelsea: np.ndarray) -> None:
    arrays = {"x": chelsea, "m": chelsea[:, :, 0].astype(np.float32)}
    candidates = {
        "none": chelsea, "h": chelsea[:, ::-1], "v": chelsea[::-1], "hv": chelsea[::-1, ::-1],
    }  # fmt: skip
    seen = set()
    for seed in range(16):
        out = random_flip(arrays, np.random.default_rng(seed), hflip=True, vflip=True)
        kind = [k for k, c in candidates.items() if np.array_equal(out["x"], c)]
        assert len(kind) == 1
        assert np.array_equal(out["m"], candidates[kind[0]][:, :, 0].astype(np.float32))  # same flip
        seen.add(kind[0])
    assert seen == set(candidates)
    assert np.array_equal(random_flip(arrays, np.random.default_rng(0), False, False)["x"], chelsea)
    cropped = crop_to_multiple(arrays, 128)
    assert cropped["x"].shape == (256, 384, 3) and np.array_equal(cropped["x"], chelsea[:256, :384])
    with pytest.raises(TransformError, match="smaller than the size multiple"):
        crop_to_multiple({"x": chelsea[:100]}, 128)


# ------------------------------------------------------------------------------------------ pipeline
def test_make_sample_layout_and_ground_truth(coffee: np.ndarray, corruptor: Corruptor) -> None:
    settings = PipelineSettings(corruption_size=(256, 128), scale=(128, 64), keep_corrupted=True)
    s = make_sample(coffee, corruptor, seed=5, settings=settings)
    assert s["sca"].shape == (64, 128, 3) and s["sca"].dtype == np.float32
    assert 0.0 <= s["sca"].min() and s["sca"].max() <= 1.0
    assert s["mask"].shape == (64, 128) and 0.0 <= s["mask"].min() and s["mask"].max() <= 1.0
    assert s["gt"].shape == s["thumb"].shape == s["corrupted"].shape == (64, 128, 3)
    assert s["thumb_found"] and s["ber"] == pytest.approx(3e-4) and s["seed"] == 5
    assert s["corruption_size"] == (256, 128) and s["mcu"] == 16
    # GT = the decoded CLEAN JPEG (not the photo), bicubic-downscaled
    clean = corruptor.corrupt(prepare_photo(coffee, (256, 128)), 5).clean_jpeg
    assert np.array_equal(s["gt"], resize_uint8(decode_jpeg_rgb(clean), (128, 64)))
    # the thumbnail guide is a blurry but faithful picture; the robust decode of a corrupted file is not
    assert psnr_y(s["thumb"], s["gt"]) > 22


def test_make_sample_is_deterministic_in_the_seed(chelsea: np.ndarray, corruptor: Corruptor) -> None:
    a = make_sample(chelsea, corruptor, 11, SMALL)
    b = make_sample(chelsea, corruptor, 11, SMALL)
    c = make_sample(chelsea, corruptor, 12, SMALL)
    assert all(np.array_equal(a[k], b[k]) for k in ("sca", "gt", "mask", "thumb"))
    assert np.array_equal(a["gt"], c["gt"]) and not np.array_equal(a["sca"], c["sca"])


def test_without_errors_the_sca_image_is_the_ground_truth(astronaut: np.ndarray) -> None:
    clean = Corruptor.from_preset("paper", ber=0.0)
    s = make_sample(astronaut, clean, 0, SMALL)
    assert psnr_y(to_uint8(s["sca"]), s["gt"]) > 45
    assert s["mask"].min() == pytest.approx(1.0)


def test_thumbnail_sources(coffee: np.ndarray, corruptor: Corruptor) -> None:
    import dataclasses

    from_input = make_sample(coffee, corruptor, 3, dataclasses.replace(SMALL, thumb_source="input"))
    header = make_sample(coffee, corruptor, 3, SMALL)
    zeros = make_sample(coffee, corruptor, 3, dataclasses.replace(SMALL, thumb_source="none"))
    assert not np.array_equal(from_input["thumb"], header["thumb"]) and zeros["thumb"].max() == 0
    # a file without thumbnail falls back to one made from the SCA output
    no_thumb = Corruptor.from_preset("paper", ber=3e-4, thumbnail_size=None)
    s = make_sample(coffee, no_thumb, 3, dataclasses.replace(SMALL, sca={"method": "dc"}))
    assert not s["thumb_found"] and s["thumb"].std() > 10


# ------------------------------------------------------------------------------------------ dataset
def _dataset(split: str, corruptor: Corruptor, **kw) -> CorruptedImageDataset:
    items = [ImageItem("coffee"), ImageItem("chelsea")]
    return CorruptedImageDataset(items, corruptor, SMALL, split=split, seed=7, **kw)


def test_seeds_and_sampler() -> None:
    seeds = {sample_seed(0, s, e, i) for s in ("train", "val") for e in range(3) for i in range(4)}
    assert len(seeds) == 24 and sample_seed(0, "val", 0, 1) == sample_seed(0, "val", 0, 1)
    ds = list(range(10))
    sampler = EpochSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=3)
    first = list(sampler)
    assert sorted(i for i, _ in first) == ds and {e for _, e in first} == {0}
    sampler.set_epoch(4)
    second = list(sampler)
    assert {e for _, e in second} == {4} and [i for i, _ in second] != [i for i, _ in first]
    halves = [list(EpochSampler(ds, num_replicas=2, rank=r, shuffle=True, seed=3)) for r in (0, 1)]
    assert sorted(i for h in halves for i, _ in h) == ds  # the ranks partition the images


def test_train_corruption_changes_every_epoch_val_never(corruptor: Corruptor) -> None:
    train = _dataset("train", corruptor, train=True, crop=(64, 64), size_multiple=32)
    e0, e0b, e1 = train[(0, 0)], train[(0, 0)], train[(0, 1)]
    assert e0["sca"].shape == (3, 64, 64) and e0["mask"].shape == (1, 64, 64)
    assert torch.equal(e0["sca"], e0b["sca"]) and int(e0["seed"]) != int(e1["seed"])
    val = _dataset("val", corruptor)
    v = val[(1, 0)]
    assert v["sca"].shape == (3, 64, 128) and torch.equal(v["sca"], val[(1, 5)]["sca"])
    assert v["path"] == "chelsea" and int(v["seed"]) == sample_seed(7, "val", 0, 1)
    assert torch.equal(val[1]["sca"], v["sca"])  # plain indices (e.g. from Lightning's overfit sampler)


def test_train_repeats_give_each_photo_distinct_corruptions(corruptor: Corruptor) -> None:
    train = _dataset("train", corruptor, train=True, crop=(64, 64), size_multiple=32, repeats=3)
    assert len(train) == 6  # 2 photos x 3 passes per epoch
    seeds = {int(train[(k, 0)]["seed"]) for k in range(6)}
    assert len(seeds) == 6  # every pass of every photo is its own corruption ...
    assert [train[(k, 0)]["path"] for k in (0, 2, 4)] == ["coffee"] * 3  # ... of the right photo
    assert seeds.isdisjoint(int(train[(k, 1)]["seed"]) for k in range(6))  # and the next epoch is new again
    single = _dataset("train", corruptor, train=True, repeats=1)
    assert int(train[(2, 0)]["seed"]) == int(single[(0, 1)]["seed"])  # pass r of epoch e = epoch e*R + r


def test_variant_cache_on_disk(tmp_path: Path, corruptor: Corruptor) -> None:
    cache = SampleCache(tmp_path / "cache", settings_fingerprint(corruptor, SMALL))
    ds = _dataset(
        "train", corruptor, train=True, crop=None, size_multiple=32, variants=2, cache=cache, hflip=False
    )
    a0, a2, a1 = ds[(0, 0)], ds[(0, 2)], ds[(0, 1)]
    assert torch.equal(a0["sca"], a2["sca"]) and not torch.equal(a0["sca"], a1["sca"])
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    fresh = _dataset(
        "train", corruptor, train=True, crop=None, size_multiple=32, variants=2, hflip=False,
        cache=SampleCache(tmp_path / "cache", settings_fingerprint(corruptor, SMALL)),
    )  # fmt: skip
    hit = fresh[(0, 4)]
    assert torch.equal(hit["sca"], a0["sca"]) and torch.equal(hit["gt"], a0["gt"])  # lossless for sca
    assert torch.allclose(hit["mask"], a0["mask"], atol=1e-3)
    assert hit["path"] == "coffee"


@pytest.mark.parametrize("on_disk", [False, True])
def test_clean_jpeg_cache_skips_loading_but_not_corrupting(
    on_disk: bool, tmp_path: Path, corruptor: Corruptor, monkeypatch
) -> None:
    from src.data import dataset as dataset_module
    from src.data.dataset import CleanJpegCache

    plain = _dataset("train", corruptor, train=True, crop=None, size_multiple=32, hflip=False)
    cached = _dataset("train", corruptor, train=True, crop=None, size_multiple=32, hflip=False,
                      clean_cache=CleanJpegCache(tmp_path if on_disk else None, "fp"))  # fmt: skip
    first = cached[(0, 0)]
    if on_disk:
        assert len(list(tmp_path.glob("*.jpg"))) == len(list(tmp_path.glob("*_gt.npy"))) == 1
    else:
        assert len(cached.clean_cache.memory) == 1

    def no_loading(*args, **kwargs):
        raise AssertionError("the photo was loaded although its clean JPEG is cached")

    monkeypatch.setattr(dataset_module, "load_item", no_loading)
    again = cached[(0, 3)]  # another epoch: a new corruption of the cached clean file
    assert int(again["seed"]) != int(first["seed"]) and not torch.equal(again["sca"], first["sca"])
    monkeypatch.undo()
    reference = plain[(0, 3)]  # the same as without any cache
    assert torch.equal(again["sca"], reference["sca"]) and torch.equal(again["gt"], reference["gt"])


def test_unreadable_image_is_skipped_and_counted(tmp_path: Path, coffee: np.ndarray, corruptor) -> None:
    good = _save(coffee[:128, :256], tmp_path / "good.png")
    broken = tmp_path / "broken.png"
    buf = io.BytesIO()
    Image.fromarray(coffee).save(buf, format="PNG")
    broken.write_bytes(buf.getvalue()[:200])  # a valid header, truncated pixel data
    ds = CorruptedImageDataset(
        [ImageItem("broken.png", str(broken)), ImageItem("good.png", str(good))], corruptor, SMALL, "val"
    )
    out = ds[0]
    assert out["path"] == str(good) and ds.skipped == {0}


# ------------------------------------------------------------------------------------------ datamodule
class _FakeTrainer:
    world_size = 2
    global_rank = 1


def test_datamodule_batches_and_per_device_batch(corruptor: Corruptor) -> None:
    from src.data.datamodule import RestorationDataModule

    dm = RestorationDataModule(
        source="samples",
        splits={"train": ["astronaut", "camera", "rocket"], "val": ["coffee"], "test": ["chelsea"]},
        corruptor=corruptor,
        corruption_size=(256, 128),
        scale=(128, 64),
        crop=(64, 64),
        size_multiple=32,
        batch_size=4,
    )
    dm.trainer = _FakeTrainer()
    dm.setup("fit")
    assert dm.batch_size_per_device == 2
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, EpochSampler) and loader.sampler.num_replicas == 2
    batch = next(iter(loader))
    assert batch["sca"].shape == (2, 3, 64, 64) and batch["mask"].shape == (2, 1, 64, 64)
    assert batch["ber"].shape == (2,) and batch["seed"].dtype == torch.int64 and len(batch["path"]) == 2
    val = next(iter(dm.val_dataloader()))
    assert val["corrupted"].shape == val["gt"].shape == (1, 3, 64, 128)
    assert "corrupted" not in batch
    dm.trainer = type("T", (), {"world_size": 3, "global_rank": 0})()
    with pytest.raises(DatasetError, match="not divisible by the world size 3"):
        dm.setup("fit")


def test_datamodule_missing_root_fails_in_setup_and_bad_sizes_at_once(corruptor: Corruptor) -> None:
    from src.data.datamodule import RestorationDataModule

    dm = RestorationDataModule(source="folder", root=None, corruptor=corruptor, warm_up=False)
    with pytest.raises(DatasetError, match=r"data\.root is not set"):
        dm.setup("fit")
    with pytest.raises(DatasetError, match=r"must be multiples of data\.size_multiple"):
        RestorationDataModule(corruptor=corruptor, crop=(100, 64), size_multiple=32)
    with pytest.raises(DatasetError, match="larger than the training images"):
        RestorationDataModule(
            corruptor=corruptor, corruption_size=(256, 128), scale=(128, 64), crop=(256, 64), size_multiple=32
        )


# ------------------------------------------------------------------------------ damage-focused, multi-scale
def test_focused_crop_holds_the_weighted_pixel_and_stays_aligned(astronaut: np.ndarray) -> None:
    from src.data.transforms import focused_crop

    rng = np.random.default_rng(0)
    img = astronaut[:256, :500]
    weight = np.zeros(img.shape[:2], np.float32)
    weight[240:244, 490:494] = 1.0  # one damaged block in the corner
    index = np.arange(img.shape[0] * img.shape[1]).reshape(img.shape[:2])
    for _ in range(100):
        c = focused_crop({"img": img, "w": weight, "i": index}, (128, 96), 4, rng, weight)
        assert c["img"].shape == (96, 128, 3) and c["w"].sum() > 0
        y, x = divmod(int(c["i"][0, 0]), img.shape[1])
        assert y % 4 == 0 and x % 4 == 0
    # no damage: a uniform crop, of the right size, like random_crop
    c = focused_crop({"img": img}, (128, 96), 4, rng, np.zeros_like(weight))
    assert c["img"].shape == (96, 128, 3)
    with pytest.raises(TransformError, match="larger than the image"):
        focused_crop({"img": img}, (600, 96), 4, rng, weight)


def test_rescaled_sample_equals_the_pipeline_at_that_scale(coffee: np.ndarray, corruptor: Corruptor) -> None:
    import dataclasses

    from src.data.dataset import rescale_sample

    full = make_sample(coffee, corruptor, 4, dataclasses.replace(SMALL, scale=None))
    assert full["sca"].shape == (128, 256, 3) and full["thumb_small"].shape[1] == 160
    direct = make_sample(coffee, corruptor, 4, SMALL)
    scaled = rescale_sample(full, (128, 64))
    for key in ("sca", "gt", "thumb", "mask"):
        assert scaled[key].dtype == direct[key].dtype
        np.testing.assert_allclose(scaled[key], direct[key], atol=1e-6, err_msg=key)
    assert rescale_sample(full, (256, 128)) is full


def test_datamodule_focused_multiscale_training_batches(corruptor: Corruptor) -> None:
    from src.data.datamodule import RestorationDataModule

    dm = RestorationDataModule(
        source="samples",
        splits={"train": ["astronaut", "coffee"], "val": ["chelsea"], "test": ["chelsea"]},
        corruptor=Corruptor.from_preset("paper", ber=1e-4),
        corruption_size=(512, 256),
        scale=(128, 64),
        train_scales=[[128, 64], [256, 128], [512, 256]],
        crop=(64, 64),
        crop_focus=1.0,
        size_multiple=32,
        batch_size=2,
        train_repeats=4,
        warm_up=False,
    )
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    masks = torch.cat([b["mask"] for b in batches])
    assert masks.shape == (8, 1, 64, 64)
    damaged = (masks < 0.999).flatten(1).any(dim=1)
    assert damaged.float().mean() >= 0.75  # crops land on what SCA had to fill
    train = dm._dataset("train")
    assert len({train.scale_of(v, i) for v in range(12) for i in range(2)}) == 3  # scales mix
    val = next(iter(dm.val_dataloader()))
    assert val["gt"].shape[-2:] == (64, 128)  # evaluation stays at data.scale
    with pytest.raises(DatasetError, match="crop_focus"):
        RestorationDataModule(source="samples", crop_focus=1.5, warm_up=False)
    with pytest.raises(DatasetError, match="larger than the training scale"):
        RestorationDataModule(
            source="samples", corruption_size=(512, 256), scale=(256, 128), train_scales=[[128, 64]],
            crop=(128, 128), size_multiple=32, warm_up=False,
        )  # fmt: skip

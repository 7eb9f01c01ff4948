"""src.restoration: one path from bytes to the model's input. The DataModule's training sample and the input
``src.eval`` and ``src.restore`` give the model, for the same file and seed, are the same arrays, bit for bit
(with and without a header thumbnail)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from src.corruption import Corruptor
from src.data.dataset import CorruptedImageDataset, batch_to_float
from src.data.pipeline import PipelineSettings, prepare_photo
from src.data.sources import ImageItem
from src.gca import export_generator
from src.gca.modules import RefineGANModule
from src.jpeg.presets import decoder_preset
from src.restoration import Restorer, load_restorer, model_input, prepare, restore_bytes
from src.restoration.scoring import evaluate_file
from src.sca.presets import sca_preset
from src.utils.images import thumbnail_of, to_float01, to_uint8

CORRUPTION_SIZE = (256, 128)
SCALE = (128, 64)
DECODER = decoder_preset("paper")
SCA = sca_preset("dc_thumb")


@dataclass
class RecordingRestorer(Restorer):
    """A real :class:`Restorer` that also keeps the arrays it is called with."""

    calls: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def __call__(self, sca: np.ndarray, thumb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.calls.append((sca.copy(), thumb.copy(), mask.copy()))
        return super().__call__(sca, thumb, mask)


@pytest.fixture(scope="module")
def small_generator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``gca_refine_small``-sized generator (random weights) exported like the shipped model."""
    torch.manual_seed(0)
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    conf = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "model" / "gca_refine_small.yaml")
    module: RefineGANModule = instantiate(conf)
    return export_generator(module.net, tmp_path_factory.mktemp("gen") / "g.pt", dtype="int8")


def recorder(path: Path) -> RecordingRestorer:
    r = load_restorer(path, "cpu")
    return RecordingRestorer(r.generator, r.device, r.sca_options, r.decoder_options, r.source)


def dataset(corruptor: Corruptor, scale: tuple[int, int] | None) -> CorruptedImageDataset:
    """The coffee photo's validation set as the DataModule builds it."""
    settings = PipelineSettings(corruption_size=CORRUPTION_SIZE, scale=scale, decoder=DECODER, sca=SCA)
    return CorruptedImageDataset([ImageItem("coffee")], corruptor, settings, split="val", seed=3)


def training_sample(corruptor: Corruptor, scale: tuple[int, int] | None) -> dict:
    """The DataModule's sample (uncropped numpy arrays, before the uint8 transfer)."""
    return dataset(corruptor, scale).build(0, 0)


def assert_same(recorded: tuple[np.ndarray, np.ndarray, np.ndarray], sample: dict) -> None:
    for name, got in zip(("sca", "thumb", "mask"), recorded, strict=True):
        assert got.dtype == sample[name].dtype and np.array_equal(got, sample[name]), name


@pytest.mark.parametrize("thumbnail", [True, False], ids=["header_thumbnail", "no_thumbnail"])
def test_training_sample_is_what_eval_and_restore_give_the_model(
    thumbnail: bool, coffee: np.ndarray, small_generator: Path
) -> None:
    corruptor = Corruptor.from_preset("paper", ber=3e-4, thumbnail_size=160 if thumbnail else None)
    photo = prepare_photo(coffee, CORRUPTION_SIZE)
    # src.eval at the training scale
    sample = training_sample(corruptor, SCALE)
    assert sample["thumb_found"] is thumbnail
    model = recorder(small_generator)
    evaluate_file(photo, corruptor, sample["seed"], DECODER, ["dc_thumb"], [SCALE], model, DECODER, SCA)
    (call,) = model.calls
    assert_same(call, sample)
    # ... and what the DataLoader hands the model after the uint8 transfer
    batch = batch_to_float(dataset(corruptor, SCALE)[0])
    assert torch.equal(batch["sca"], torch.from_numpy(call[0]).permute(2, 0, 1))
    assert torch.equal(batch["thumb"], torch.from_numpy(call[1]).permute(2, 0, 1).float() / 255.0)
    # src.restore on the corrupted file, at its own size
    full = training_sample(corruptor, None)
    model = recorder(small_generator)
    data = corruptor.corrupt(photo, full["seed"]).corrupted_jpeg
    result = restore_bytes(data, DECODER, SCA, restorer=model, gca_input_thumbnail=True)
    assert result.gca and result.method == ("dc_thumb" if thumbnail else "dc")
    (call,) = model.calls
    assert_same(call, full)
    assert np.array_equal(result.sca, to_uint8(full["sca"]))


def test_the_missing_thumbnail_rule(coffee: np.ndarray) -> None:
    """Without a header thumbnail, dc_thumb falls back to dc and the guide is made from the full-size SCA
    image (160 px on the long side), at every size; thumb_source=none feeds zeros."""
    corruptor = Corruptor.from_preset("paper", ber=3e-4, thumbnail_size=None)
    data = corruptor.corrupt(prepare_photo(coffee, CORRUPTION_SIZE), 1).corrupted_jpeg
    result = prepare(data, DECODER, SCA)
    assert result.fell_back and result.method == "dc" and result.thumbnail_source == "none"
    made = thumbnail_of(result.sca8)
    assert made.shape == (80, 160, 3)
    for size in (SCALE, CORRUPTION_SIZE):
        inputs = model_input(result, size)
        assert inputs.thumb_source == "sca" and np.array_equal(inputs.thumb_small, made)
        assert inputs.sca.shape == (size[1], size[0], 3) and inputs.mask.shape == (size[1], size[0])
    zeros = model_input(result, SCALE, thumb_source="none")
    assert zeros.thumb.max() == 0 and zeros.thumb_small is None
    # a given thumbnail (the camera's, here one of the clean photo) guides SCA and the model when the
    # header has none (one made from the dc result itself would give way to that result: it is closest)
    given = prepare(data, DECODER, SCA, thumbnail=thumbnail_of(prepare_photo(coffee, CORRUPTION_SIZE)))
    assert not given.fell_back and given.thumbnail_source == "given" and given.method == "dc_thumb"
    assert model_input(given).thumb_source == "given"


def test_one_rounding_rule() -> None:
    """float -> uint8 rounds half up; uint8 -> float -> uint8 is exact on every level."""
    levels = np.arange(256, dtype=np.uint8)
    assert np.array_equal(to_uint8(to_float01(levels)), levels)
    halves = (np.arange(255, dtype=np.float64) + 0.5) / 255.0
    assert np.array_equal(to_uint8(halves), np.arange(1, 256, dtype=np.uint8))
    assert to_uint8(np.array([-0.2, 1.3])).tolist() == [0, 255]

"""src.data's batch dtype contract (the loaders ship uint8 images and a float32 mask; the DataModule's
``on_after_batch_transfer`` makes float32 images in [0, 1], bit-identical to the former CPU conversion) and
the DataLoader workers' thread limits (``WorkerInit``)."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from src.corruption import Corruptor
from src.data import dataset as dataset_module
from src.data.datamodule import THREAD_ENV_VARS, RestorationDataModule, WorkerInit
from src.data.dataset import UINT8_KEYS, batch_to_float
from src.data.errors import DatasetError
from src.restoration.model import to_tensor_image

IMAGES = ("sca", "thumb", "gt", "corrupted", "mask")


@pytest.fixture(scope="module")
def corruptor() -> Corruptor:
    """The paper's preset at a BER that hits even 256x128 files."""
    return Corruptor.from_preset("paper", ber=3e-4)


def _datamodule(corruptor: Corruptor, **kw) -> RestorationDataModule:
    return RestorationDataModule(
        source="samples",
        splits={"train": ["astronaut", "camera", "rocket"], "val": ["coffee"], "test": ["chelsea"]},
        corruptor=corruptor,
        corruption_size=(256, 128),
        scale=(128, 64),
        crop=(64, 64),
        size_multiple=32,
        batch_size=2,
        warm_up=False,
        **kw,
    )


@pytest.mark.parametrize("cached", [False, True])
def test_loaders_ship_uint8_images_and_the_hook_gives_the_old_float_batches(
    cached: bool, corruptor: Corruptor, tmp_path: Path, monkeypatch
) -> None:
    dm = _datamodule(corruptor, **({"cache_variants": 1, "cache_dir": str(tmp_path)} if cached else {}))
    dm.setup("fit")
    if cached:
        list(dm.train_dataloader())  # fill the on-disk cache: the batches below are hits
    batch = next(iter(dm.train_dataloader()))
    val = next(iter(dm.val_dataloader()))
    for k in ("sca", "thumb", "gt"):
        assert batch[k].dtype == torch.uint8 and batch[k].shape == (2, 3, 64, 64), k
    assert batch["mask"].dtype == torch.float32 and batch["mask"].shape == (2, 1, 64, 64)
    assert val["corrupted"].dtype == val["sca"].dtype == torch.uint8 and val["mask"].dtype == torch.float32
    moved = [dm.on_after_batch_transfer(b, 0) for b in (batch, val)]

    # the former batches: the same samples with every image converted to float32 on the CPU
    monkeypatch.setattr(dataset_module, "to_batch_tensor", lambda key, img: to_tensor_image(img))
    old = [next(iter(dm.train_dataloader())), next(iter(dm.val_dataloader()))]
    for new, ref in zip(moved, old, strict=True):
        assert set(new) == set(ref)
        for k in IMAGES:
            if k not in ref:
                continue
            assert new[k].dtype == ref[k].dtype == torch.float32, k
            assert torch.equal(new[k], ref[k]), k  # bit-identical, the SCA image's 8-bit levels included
            assert 0.0 <= float(new[k].min()) and float(new[k].max()) <= 1.0
        assert new["path"] == ref["path"] and torch.equal(new["seed"], ref["seed"])
        torch.testing.assert_close(new["ber"], ref["ber"], rtol=0, atol=0, equal_nan=True)


def test_batch_to_float_is_idempotent_and_leaves_metadata() -> None:
    g = torch.Generator().manual_seed(0)
    batch = {k: torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8, generator=g) for k in UINT8_KEYS}
    batch.update(mask=torch.rand(2, 1, 4, 4, generator=g).half(), path=["a", "b"], seed=torch.tensor([1, 2]))
    once = batch_to_float(batch)
    assert batch["sca"].dtype == torch.uint8  # the input batch is not modified
    for k in UINT8_KEYS:
        assert once[k].dtype == torch.float32 and torch.equal(once[k], batch[k].float() / 255.0)
    assert once["mask"].dtype == torch.float32 and torch.equal(once["mask"], batch["mask"].float())
    assert once["path"] is batch["path"] and once["seed"] is batch["seed"]
    twice = batch_to_float(once)
    assert all(twice[k] is once[k] for k in (*UINT8_KEYS, "mask"))


class _Probe(L.LightningModule):
    """Records the dtypes of the batches its steps get."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: dict[str, set[torch.dtype]] = {}

    def _record(self, stage: str, batch: dict) -> None:
        self.seen.setdefault(stage, set()).update(batch[k].dtype for k in IMAGES if k in batch)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self._record("train", batch)
        return (self.w * batch["sca"].mean()).sum()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._record("val", batch)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._record("test", batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_modules_get_float32_batches_in_fit_validate_and_test(corruptor: Corruptor) -> None:
    dm = _datamodule(corruptor)
    probe = _Probe()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        limit_test_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(probe, datamodule=dm)
    trainer.test(probe, datamodule=dm)
    assert probe.seen == {stage: {torch.float32} for stage in ("train", "val", "test")}


# ------------------------------------------------------------------------------------------ worker threads
def test_worker_init_limits_torch_blas_and_env_threads(monkeypatch) -> None:
    calls: list[int] = []
    fake = types.SimpleNamespace(threadpool_limits=lambda limits: calls.append(limits))
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)
    monkeypatch.delenv("PL_SEED_WORKERS", raising=False)
    for var in THREAD_ENV_VARS:
        monkeypatch.setenv(var, "8")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        WorkerInit(1)(0)
        assert torch.get_num_threads() == 1 and calls == [1]
        assert all(os.environ[var] == "1" for var in THREAD_ENV_VARS)
        torch.set_num_threads(2)
        WorkerInit(None)(0)  # data.worker_threads=null: pools left alone
        assert torch.get_num_threads() == 2 and calls == [1]
        monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # not installed: torch and env vars only
        WorkerInit(1)(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_worker_init_keeps_lightnings_worker_seeding(monkeypatch) -> None:
    import lightning.fabric.utilities.seed as seed_module

    seen: list[tuple[int, int | None]] = []
    monkeypatch.setattr(
        seed_module, "pl_worker_init_function", lambda wid, rank=None: seen.append((wid, rank))
    )
    monkeypatch.delenv("PL_SEED_WORKERS", raising=False)
    WorkerInit(None, rank=3)(5)
    assert seen == []  # no seed_everything(workers=True): nothing to seed
    monkeypatch.setenv("PL_SEED_WORKERS", "1")
    WorkerInit(None, rank=3)(5)
    assert seen == [(5, 3)]


class _FakeTrainer:
    world_size = 2
    global_rank = 1


def test_every_loader_gets_the_worker_init(corruptor: Corruptor) -> None:
    dm = _datamodule(corruptor, num_workers=2)
    dm.trainer = _FakeTrainer()
    dm.setup()
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        init = loader.worker_init_fn
        assert isinstance(init, WorkerInit) and init.threads == 1 and init.rank == 1
    assert isinstance(loader.sampler, torch.utils.data.SequentialSampler)
    assert (
        _datamodule(corruptor, num_workers=2, worker_threads=None).train_dataloader().worker_init_fn is None
    )
    assert _datamodule(corruptor, num_workers=0).train_dataloader().worker_init_fn is None
    with pytest.raises(DatasetError, match="worker_threads"):
        _datamodule(corruptor, worker_threads=0)


class _ThreadReport(Dataset):
    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> tuple[int, str]:
        return torch.get_num_threads(), os.environ.get("OPENBLAS_NUM_THREADS", "")


def test_worker_init_runs_in_a_real_worker(monkeypatch) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    loader = DataLoader(_ThreadReport(), batch_size=None, num_workers=1, worker_init_fn=WorkerInit(1))
    assert [tuple(x) for x in loader] == [(1, "1")]
    assert "OPENBLAS_NUM_THREADS" not in os.environ  # the worker's settings stay in the worker


def test_configs_set_one_thread_per_worker(tmp_path: Path) -> None:
    from test_configs import compose_config

    for data in ("samples", "folder"):
        cfg = compose_config("train", [f"data={data}"], tmp_path)
        assert cfg.data.worker_threads == 1

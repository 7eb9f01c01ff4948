"""Corruptor: presets, the paper's pipeline, determinism, replay, thumbnails, Hydra, bad settings."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from PIL import Image
from scipy import stats

from src.corruption import (
    CorruptionError,
    Corruptor,
    SectorCipher,
    encode_jpeg,
    flip_bits,
    read_thumbnail,
    scan_extent,
)
from src.errors import BitstreamRestoreError

CONF = Path(__file__).resolve().parents[1] / "conf"
PAPER_KEY_BYTES = b'"\x81\xf4\xba\xef\xa5:\x89fWtP\xc7\x92o\xbf'


@pytest.fixture(scope="module")
def paper() -> Corruptor:
    return Corruptor.from_preset("paper")


def test_paper_preset_is_the_papers_setting(paper):
    assert bytes.fromhex(paper.key) == PAPER_KEY_BYTES
    assert (paper.cipher, paper.iv, paper.sector_size, paper.pad, paper.first_sector) == (
        "cbc-essiv", "be32", 512, "pkcs7", 0
    )  # fmt: skip
    assert (paper.ber, paper.region, paper.model) == (1e-5, "scan", "iid")
    assert (paper.quality, paper.subsampling, paper.restart_interval, paper.optimize) == (
        75,
        "4:2:0",
        0,
        False,
    )
    assert paper.thumbnail_size == 160


@pytest.mark.parametrize("name", ["paper", "android_fde", "xts", "raw"])
def test_every_preset_corrupts(coffee, name):
    c = Corruptor.from_preset(name, ber=1e-4)
    s = c.corrupt(coffee, 3)
    assert len(s.corrupted_jpeg) == len(s.clean_jpeg)
    assert s.n_flips > 0 and s.corrupted_jpeg != s.clean_jpeg
    json.dumps(s.to_json_dict())  # JSON-able
    assert s.settings["cipher"] == c.cipher


def test_preset_values():
    x = Corruptor.from_preset("xts")
    assert (x.cipher, x.sector_size, len(bytes.fromhex(x.key)), x.iv) == ("xts", 4096, 64, "le64")
    a = Corruptor.from_preset("android_fde")
    assert (a.cipher, a.iv, a.sector_size, len(bytes.fromhex(a.key))) == ("cbc-essiv", "le64", 512, 16)
    assert Corruptor.from_preset("raw").cipher == "none"


def _paper_oracle(clean: bytes, positions: np.ndarray) -> bytes:
    """The paper's pipeline written from its description: per-sector AES-128-CBC, ESSIV(be32), PKCS#7,
    flip bit b (0 = MSB) of byte j of sector s of the ciphertext, decrypt, unpad."""
    salt = hashlib.sha256(PAPER_KEY_BYTES).digest()
    pad = 16 - len(clean) % 16
    data = clean + bytes([pad]) * pad

    def iv(s):
        return Cipher(algorithms.AES(salt), modes.ECB()).encryptor().update(s.to_bytes(4, "big") + bytes(12))

    ct = bytearray()
    for i in range(0, len(data), 512):
        e = Cipher(algorithms.AES(PAPER_KEY_BYTES), modes.CBC(iv(i // 512))).encryptor()
        ct += e.update(data[i : i + 512]) + e.finalize()
    for s, j, b in positions:
        ct[s * 512 + j] ^= 1 << (7 - b)
    out = bytearray()
    for i in range(0, len(ct), 512):
        d = Cipher(algorithms.AES(PAPER_KEY_BYTES), modes.CBC(iv(i // 512))).decryptor()
        out += d.update(bytes(ct[i : i + 512])) + d.finalize()
    return bytes(out[: -out[-1]])


def test_paper_preset_matches_the_papers_pipeline(paper, astronaut, coffee):
    for img, seed in ((astronaut, 0), (coffee, 1), (coffee, 2)):
        s = paper.corrupt(img, seed)
        assert _paper_oracle(s.clean_jpeg, s.positions) == s.corrupted_jpeg
        start, end = scan_extent(s.clean_jpeg)
        assert np.all(s.positions[:, 0] >= start // 512 + 1) and np.all(s.positions[:, 0] <= end // 512 - 1)


def test_deterministic_and_replayable(coffee):
    c = Corruptor.from_preset("paper", ber=3e-5)
    a, b, other = c.corrupt(coffee, 11), c.corrupt(coffee, 11), c.corrupt(coffee, 12)
    assert a.corrupted_jpeg == b.corrupted_jpeg and np.array_equal(a.positions, b.positions)
    assert not np.array_equal(a.positions, other.positions)
    # replay the recorded positions (from JSON) on the clean file
    record = json.loads(json.dumps(a.to_json_dict()))
    positions = np.array(record["positions"], dtype=np.int64)
    assert c.apply(a.clean_jpeg, positions) == a.corrupted_jpeg
    cipher = SectorCipher(c.cipher, c.key, c.sector_size, c.iv, c.pad, c.first_sector)
    by_hand = cipher.decrypt(flip_bits(cipher.encrypt(a.clean_jpeg), positions), length=len(a.clean_jpeg))
    assert by_hand == a.corrupted_jpeg


@pytest.mark.parametrize(("lo", "hi"), [(1e-6, 1e-4), (5e-6, 2e-4)])  # the second: issue 12's training range
def test_ber_range_is_drawn_log_uniformly_and_recorded(coffee, lo, hi):
    c = Corruptor.from_preset("paper", ber=[lo, hi])
    s = c.corrupt(coffee, 5)
    assert lo <= s.ber <= hi and s.settings["ber_setting"] == [lo, hi]
    assert s.to_json_dict()["settings"]["ber"] == s.ber
    assert c.corrupt(coffee, 5).ber == s.ber
    # rebuilding with the drawn BER as a fixed value gives the same sample (separate seed streams)
    fixed = Corruptor(**(c.settings() | {"ber": s.ber}))
    assert fixed.corrupt(coffee, 5).corrupted_jpeg == s.corrupted_jpeg
    draws = np.log10([c.corrupt(coffee[:64, :64], seed).ber for seed in range(600)])
    assert stats.kstest(draws, stats.uniform(loc=np.log10(lo), scale=np.log10(hi / lo)).cdf).pvalue > 1e-3


def test_flip_effect_per_cipher(coffee):
    """cbc: ~16 garbage bytes + 1 byte per flip; xts: ~16; none: exactly the flipped bytes."""
    seeds = range(6)
    per_flip = {}
    for name in ("paper", "xts", "raw"):
        c = Corruptor.from_preset(name, region="scan")
        samples = [c.corrupt(coffee, s) for s in seeds]
        flips = sum(s.n_flips for s in samples)
        assert flips > 0
        per_flip[name] = sum(s.differing_bytes() for s in samples) / flips
        if name == "raw":
            assert all(
                s.differing_bytes() == len({(p[0], p[1]) for p in s.positions.tolist()}) for s in samples
            )
    assert 15 < per_flip["paper"] <= 17
    assert 14 < per_flip["xts"] <= 16
    assert per_flip["raw"] == 1


def test_thumbnail_survives_scan_corruption(paper, chelsea):
    s = paper.corrupt(chelsea, 9)
    assert s.thumbnail is not None and s.thumbnail == read_thumbnail(s.clean_jpeg)
    assert read_thumbnail(s.corrupted_jpeg) == s.thumbnail
    assert Image.open(io.BytesIO(s.thumbnail)).size == (160, 106)


def test_jpeg_bytes_input(paper, coffee):
    plain = encode_jpeg(coffee, thumbnail=False)
    s = paper.corrupt(plain, 0)
    assert s.clean_jpeg == plain and s.thumbnail is None  # existing bytes are kept: no thumbnail gained
    added = Corruptor.from_preset("paper", add_thumbnail="if_missing").corrupt(plain, 0)
    assert added.thumbnail is not None  # only when asked for
    assert added.clean_jpeg[scan_extent(added.clean_jpeg)[0] :] == plain[scan_extent(plain)[0] :]
    with_thumb = encode_jpeg(coffee)
    assert paper.corrupt(with_thumb, 0).clean_jpeg == with_thumb  # kept as is
    no_thumb = Corruptor.from_preset("paper", thumbnail_size=None)
    s2 = no_thumb.corrupt(plain, 0)
    assert s2.clean_jpeg == plain and s2.thumbnail is None
    assert no_thumb.corrupt(coffee, 0).thumbnail is None


def test_grayscale_input(paper, camera):
    s = paper.corrupt(camera, 1)
    assert Image.open(io.BytesIO(s.clean_jpeg)).mode == "L"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "not a JPEG"),
        ("a string", "expected a uint8 image array, a Pillow image or JPEG"),
    ],
)
def test_non_jpeg_input(paper, data, match):
    with pytest.raises(CorruptionError, match=match):
        paper.corrupt(data, 0)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"key": "00" * 15}, "16 or 24 or 32 bytes, got 15"),
        ({"cipher": "aes-ctr"}, "cipher must be one of"),
        ({"iv": "plain64"}, "iv must be one of"),
        ({"pad": "iso"}, "pad must be one of"),
        ({"region": "header"}, "region must be one of"),
        ({"model": "burst"}, "model must be one of"),
        ({"ber": 0.7}, r"ber must be in \[0, 0.5\], got 0.7"),
        ({"ber": [1e-4, 1e-6]}, "lo <= hi"),
        ({"ber": [0, 1e-4]}, "0 < lo"),
        ({"sector_size": 100}, "positive multiple of 16"),
        ({"quality": 0}, "quality"),
        ({"subsampling": "4:1:1"}, "subsampling"),
        ({"thumbnail_size": -5}, "thumbnail_size"),
        ({"cipher": "xts"}, "32 or 64 bytes, got 16"),
        ({"colour": 1}, "unknown Corruptor setting"),
    ],
)
def test_bad_settings_name_the_value(overrides, match):
    with pytest.raises(CorruptionError, match=match) as e:
        Corruptor.from_preset("paper", **overrides)
    assert isinstance(e.value, BitstreamRestoreError) and not isinstance(e.value, ValueError)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(CorruptionError, match="android_fde"):
        Corruptor.from_preset("nope")


def test_hydra_instantiate_matches_from_preset(coffee):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="corrupt", overrides=["corruption=xts", "corruption.ber=[1e-6,1e-4]"])
    c = instantiate(cfg.corruption)
    ref = Corruptor.from_preset("xts", ber=[1e-6, 1e-4])
    assert isinstance(c, Corruptor) and c.settings() == ref.settings()
    assert c.corrupt(coffee, 4).corrupted_jpeg == ref.corrupt(coffee, 4).corrupted_jpeg


def test_pickle_round_trip(paper, coffee):
    c = pickle.loads(pickle.dumps(paper))
    assert c.settings() == paper.settings()
    assert c.corrupt(coffee, 2).corrupted_jpeg == paper.corrupt(coffee, 2).corrupted_jpeg


def test_bytes_key_is_stored_as_hex():
    c = Corruptor(key=PAPER_KEY_BYTES)
    assert c.key == PAPER_KEY_BYTES.hex()
    json.dumps(c.settings())

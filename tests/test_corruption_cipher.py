"""Sector ciphers: known answers, oracles, round trips, error propagation, bad input."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from src.corruption import CorruptionError, SectorCipher, encode_jpeg, flip_bits
from src.errors import BitstreamRestoreError

KEY16 = bytes.fromhex("2281f4baefa53a8966577450c7926fbf")  # the paper's key
KEY64 = bytes(range(64))


def _pkcs7(data: bytes) -> bytes:
    n = 16 - len(data) % 16
    return data + bytes([n]) * n


def oracle_cbc_essiv(key: bytes, data: bytes, sector_size: int, iv: str, first_sector: int = 0) -> bytes:
    """Plain per-sector AES-CBC with ESSIV:SHA-256 IVs, written straight from the definition."""
    salt = hashlib.sha256(key).digest()
    data = _pkcs7(data)
    out = []
    for i in range(0, len(data), sector_size):
        s = first_sector + i // sector_size
        n = s.to_bytes(4, "big") + bytes(12) if iv == "be32" else s.to_bytes(8, "little") + bytes(8)
        essiv = Cipher(algorithms.AES(salt), modes.ECB()).encryptor().update(n)
        enc = Cipher(algorithms.AES(key), modes.CBC(essiv)).encryptor()
        out.append(enc.update(data[i : i + sector_size]) + enc.finalize())
    return b"".join(out)


def oracle_xts(key: bytes, data: bytes, sector_size: int, first_sector: int = 0) -> bytes:
    """cryptography's own XTS, one object per sector, tweak = sector number (128-bit little-endian)."""
    data = _pkcs7(data)
    out = []
    for i in range(0, len(data), sector_size):
        tweak = (first_sector + i // sector_size).to_bytes(16, "little")
        enc = Cipher(algorithms.AES(key), modes.XTS(tweak)).encryptor()
        out.append(enc.update(data[i : i + sector_size]) + enc.finalize())
    return b"".join(out)


@pytest.fixture(scope="module")
def jpeg(coffee) -> bytes:
    return encode_jpeg(coffee)


# -- known answers ------------------------------------------------------------------------------
IEEE1619 = [  # (key1, key2, data unit sequence number, plaintext, ciphertext), IEEE 1619-2007 Annex B
    ("00" * 16, "00" * 16, 0, "00" * 32, "917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e"),
    ("11" * 16, "22" * 16, 0x3333333333, "44" * 32,
     "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0"),
    ("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0", "22" * 16, 0x3333333333, "44" * 32,
     "af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89"),
]  # fmt: skip
VECTOR10_CT = (
    "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b5d31e276f8fe4a8d66b317f9ac683f44"
    "680a86ac35adfc3345befecb4bb188fd5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
    "c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca2a3e7a7d7df7b10355165c8b9a6d0a7d"
    "e8b062c4500dc4cd120c0f7418dae3d0b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
    "93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec583e9645e07b8d9670655ba5bbcfecc6"
    "dc3966380ad8fecb17b6ba02469a020a84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
    "505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae9be69a2ffeceb1bec9de244fbe15992b"
    "11b77c040f12bd8f6a975a44a0f90c29a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
    "6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f645e8b7e9bfdef33943054ff84011493"
    "c27b3429eaedb4ed5376441a77ed43851ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
    "773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151"
)


@pytest.mark.parametrize(("k1", "k2", "dusn", "ptx", "ctx"), IEEE1619)
def test_xts_ieee1619_32_byte_units(k1, k2, dusn, ptx, ctx):
    key = bytes.fromhex(k1 + k2)  # vector 1 has equal halves: accepted here (OpenSSL's XTS refuses them)
    cipher = SectorCipher("xts", key, sector_size=32, iv="le64", pad="zero", first_sector=dusn)
    assert cipher.encrypt(bytes.fromhex(ptx)).hex() == ctx
    assert cipher.decrypt(bytes.fromhex(ctx), length=32).hex() == ptx


def test_xts_ieee1619_vector10_aes256_512_byte_unit():
    key = bytes.fromhex(
        "2718281828459045235360287471352662497757247093699959574966967627"
        "3141592653589793238462643383279502884197169399375105820974944592"
    )
    cipher = SectorCipher("xts", key, sector_size=512, iv="le64", pad="zero", first_sector=0xFF)
    pt = bytes(i % 256 for i in range(512))
    assert cipher.encrypt(pt).hex() == VECTOR10_CT
    assert cipher.decrypt(bytes.fromhex(VECTOR10_CT), length=512) == pt


def test_essiv_iv_of_the_paper():
    # IV of sector s = AES-256-ECB_{SHA-256(key)}(be32(s) || 0^12); CBC of one block = E_K(P xor IV)
    salt = hashlib.sha256(KEY16).digest()
    block = bytes(range(16))
    for s, iv in ((0, "be32"), (5, "be32"), (5, "le64")):
        n = s.to_bytes(4, "big") + bytes(12) if iv == "be32" else s.to_bytes(8, "little") + bytes(8)
        essiv = Cipher(algorithms.AES(salt), modes.ECB()).encryptor().update(n)
        x = bytes(a ^ b for a, b in zip(block, essiv, strict=True))
        expected = Cipher(algorithms.AES(KEY16), modes.ECB()).encryptor().update(x)
        ct = SectorCipher("cbc-essiv", KEY16, 16, iv=iv, pad="zero", first_sector=s).encrypt(block)
        assert ct == expected


# -- oracles and round trips ---------------------------------------------------------------------
LENGTHS = [0, 1, 15, 16, 17, 511, 512, 513, 4095, 4096, 4097, 12345]


@pytest.mark.parametrize("sector_size", [512, 4096])
@pytest.mark.parametrize("iv", ["be32", "le64"])
def test_cbc_essiv_matches_per_sector_oracle(jpeg, sector_size, iv):
    rng = np.random.default_rng(1)
    for data in [jpeg, *(rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in LENGTHS)]:
        for first in (0, 12345):
            c = SectorCipher("cbc-essiv", KEY16, sector_size, iv, "pkcs7", first)
            assert c.encrypt(data) == oracle_cbc_essiv(KEY16, data, sector_size, iv, first)


@pytest.mark.parametrize("key", [bytes(range(32)), KEY64])
@pytest.mark.parametrize("sector_size", [512, 4096])
def test_xts_matches_cryptography_xts(jpeg, key, sector_size):
    rng = np.random.default_rng(2)
    for data in [jpeg, *(rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in LENGTHS)]:
        for first in (0, 2**40 + 3):
            c = SectorCipher("xts", key, sector_size, "le64", "pkcs7", first)
            assert c.encrypt(data) == oracle_xts(key, data, sector_size, first)


@pytest.mark.parametrize("mode", ["cbc-essiv", "xts", "none"])
@pytest.mark.parametrize("pad", ["pkcs7", "zero"])
@pytest.mark.parametrize("sector_size", [512, 4096])
def test_round_trip_every_mode(mode, pad, sector_size):
    key = {"cbc-essiv": KEY16, "xts": KEY64, "none": None}[mode]
    rng = np.random.default_rng(3)
    c = SectorCipher(mode, key, sector_size, "le64", pad, first_sector=7)
    for n in LENGTHS:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        ct = c.encrypt(data)
        assert len(ct) == c.padded_length(n)
        if mode != "none":
            if pad == "pkcs7":
                assert len(ct) == (n // 16 + 1) * 16
                assert c.decrypt(ct) == data
            else:
                assert len(ct) % sector_size == 0
            if n >= 32:
                assert ct[:n] != data[:n]
        assert c.decrypt(ct, length=n) == data


def test_zero_padding_needs_length():
    c = SectorCipher("cbc-essiv", KEY16, pad="zero")
    with pytest.raises(CorruptionError, match="length"):
        c.decrypt(c.encrypt(b"abc"))


def test_pkcs7_with_corrupted_last_block_does_not_crash(jpeg):
    c = SectorCipher("cbc-essiv", KEY16)
    ct = bytearray(c.encrypt(jpeg))
    ct[-5] ^= 0x10  # garbles the last plaintext block, padding included
    out = c.decrypt(bytes(ct))
    assert len(out) in range(len(jpeg), len(ct) + 1)  # pad unreadable: kept rather than guessed
    assert out[: len(jpeg) - 16] == jpeg[: len(jpeg) - 16]
    assert len(c.decrypt(bytes(ct), length=len(jpeg))) == len(jpeg)


# -- error propagation of one ciphertext bit flip -------------------------------------------------
def _flip_one(mode: str, byte: int, bit: int, sector_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    key = {"cbc-essiv": KEY16, "xts": KEY64, "none": None}[mode]
    data = np.random.default_rng(4).integers(0, 256, 4 * sector_size, dtype=np.uint8).tobytes()
    c = SectorCipher(mode, key, sector_size, "be32", "pkcs7")
    pos = np.array([[byte // sector_size, byte % sector_size, bit]])
    out = c.decrypt(flip_bits(c.encrypt(data), pos, sector_size), length=len(data))
    return np.frombuffer(data, np.uint8), np.frombuffer(out, np.uint8)


@pytest.mark.parametrize("byte", [512 + 40, 512 + 5, 1024 + 500, 1024 + 511 - 16])
@pytest.mark.parametrize("bit", [0, 5, 7])
def test_cbc_flip_garbles_its_block_and_flips_the_same_bit_16_bytes_later(byte, bit):
    clean, out = _flip_one("cbc-essiv", byte, bit)
    block = byte // 16 * 16
    diff = np.flatnonzero(clean != out)
    in_block = diff[(diff >= block) & (diff < block + 16)]
    outside = diff[(diff < block) | (diff >= block + 16)]
    assert in_block.size >= 10  # 16 pseudo-random bytes: each differs with probability 255/256
    if (byte + 16) // 512 == byte // 512:
        assert outside.tolist() == [byte + 16]
        assert clean[byte + 16] ^ out[byte + 16] == 0x80 >> bit
    else:
        assert outside.size == 0  # never across a sector end (the next sector has its own IV)


@pytest.mark.parametrize("byte", [512 + 40, 1024 + 511])
def test_xts_flip_garbles_only_its_block(byte):
    clean, out = _flip_one("xts", byte, 3)
    diff = np.flatnonzero(clean != out)
    assert diff.min() >= byte // 16 * 16 and diff.max() < byte // 16 * 16 + 16
    assert diff.size >= 10


def test_none_flips_only_the_bit():
    clean, out = _flip_one("none", 777, 6)
    assert np.flatnonzero(clean != out).tolist() == [777]
    assert clean[777] ^ out[777] == 0x80 >> 6


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "ctr", "key": KEY16}, "cipher must be one of"),
        ({"mode": "cbc-essiv", "key": bytes(15)}, "16 or 24 or 32 bytes, got 15"),
        ({"mode": "xts", "key": KEY16}, "32 or 64 bytes, got 16"),
        ({"mode": "cbc-essiv", "key": None}, "needs a key"),
        ({"mode": "cbc-essiv", "key": "zz" * 16}, "hex string"),
        ({"mode": "cbc-essiv", "key": KEY16, "iv": "plain"}, "iv must be one of"),
        ({"mode": "cbc-essiv", "key": KEY16, "pad": "none"}, "pad must be one of"),
        ({"mode": "cbc-essiv", "key": KEY16, "sector_size": 500}, "multiple of 16"),
        ({"mode": "cbc-essiv", "key": KEY16, "sector_size": 0}, "multiple of 16"),
        ({"mode": "cbc-essiv", "key": KEY16, "first_sector": -1}, "first_sector"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(CorruptionError, match=match) as e:
        SectorCipher(**kwargs)
    assert isinstance(e.value, BitstreamRestoreError) and not isinstance(e.value, ValueError)


def test_hex_key_and_be32_range():
    assert SectorCipher("cbc-essiv", KEY16.hex()).encrypt(b"x") == SectorCipher("cbc-essiv", KEY16).encrypt(
        b"x"
    )
    c = SectorCipher("cbc-essiv", KEY16, first_sector=2**32 - 1)
    with pytest.raises(CorruptionError, match="be32"):
        c.encrypt(bytes(1024))  # sector 2**32 does not fit 32 bits


def test_ciphertext_length_must_be_whole_blocks():
    with pytest.raises(CorruptionError, match="multiple of 16"):
        SectorCipher("cbc-essiv", KEY16).decrypt(bytes(17))


def test_pickle_round_trip(jpeg):
    c = SectorCipher("xts", KEY64, 4096, "le64", "zero", 9)
    c2 = pickle.loads(pickle.dumps(c))
    assert c2.encrypt(jpeg) == c.encrypt(jpeg)

"""Sector-wise disk encryption as storage stacks do it: AES-CBC-ESSIV, AES-XTS, or none.

A file is cut into sectors of ``sector_size`` bytes counted from its first byte; sector ``i`` of the file
has the sector number ``first_sector + i`` (the position of the file on the volume). Each sector is an
independent cipher unit, so a ciphertext bit error never spreads past its sector.

- ``cbc-essiv``: AES-CBC per sector, IV_s = AES-256-ECB_salt(n(s)), salt = SHA-256(key) (dm-crypt's
  ``aes-cbc-essiv:sha256``; Android FDE; the Two-ACIR paper). Keys of 16/24/32 bytes.
- ``xts``: AES-XTS per sector (IEEE 1619), tweak = n(s) (``aes-xts-plain64`` for ``iv="le64"``; LUKS,
  Android FBE/metadata encryption). Keys of 32 bytes (AES-128-XTS) or 64 bytes (AES-256-XTS), data key
  first; equal halves are accepted (IEEE 1619 vector 1 uses them; OpenSSL's own XTS refuses them).
- ``none``: identity (raw bit errors on the plaintext).

``iv`` says how the sector number becomes the 16-byte block n(s): ``be32`` = 32-bit big-endian then 12
zero bytes (the paper's code), ``le64`` = 64-bit little-endian then 8 zero bytes (dm-crypt, IEEE 1619).

Padding: ``pkcs7`` pads to 16 bytes (the paper's); ``zero`` pads with zeros to a whole sector. Decryption
returns exactly the original length when it is given (``decrypt(ct, length=n)``), so a corrupted last
block never matters; without it, pkcs7 padding is removed only if it is valid (a corrupted pad leaves the
buffer as it is) and zero padding needs the length.

Speed (why this is written by hand on top of AES-ECB instead of one ``cryptography`` CBC/XTS object per
sector, which costs ~15 µs per sector): CBC decryption is one ECB call over the whole buffer plus a numpy
XOR with the previous ciphertext block (or the sector's IV); CBC encryption is sequential inside a sector
but parallel across sectors, so it is ``sector_size / 16`` ECB calls, call j holding block j of every
sector; XTS is one ECB call over the whole buffer with per-block tweaks T_s * alpha^j computed by GF(2^128)
doubling in numpy. Tests check all modes against per-sector ``cryptography`` oracles and IEEE 1619 vectors.
"""

from __future__ import annotations

import hashlib

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from src.corruption.errors import CorruptionError

CIPHER_MODES = ("cbc-essiv", "xts", "none")
IV_MODES = ("be32", "le64")
PAD_MODES = ("pkcs7", "zero")
BLOCK = 16
_KEY_LENGTHS = {"cbc-essiv": (16, 24, 32), "xts": (32, 64)}


def parse_key(key: bytes | str | None, mode: str) -> bytes:
    """Key bytes from bytes or a hex string (spaces allowed); checks the length the mode needs."""
    if mode == "none":
        return b""  # no cipher, no key (a configured key is ignored)
    if key is None:
        raise CorruptionError(f"cipher {mode!r} needs a key of {_KEY_LENGTHS[mode]} bytes, got None")
    raw = _to_bytes(key)
    if len(raw) not in _KEY_LENGTHS[mode]:
        raise CorruptionError(
            f"cipher {mode!r} needs a key of {' or '.join(map(str, _KEY_LENGTHS[mode]))} bytes, "
            f"got {len(raw)} bytes"
        )
    return raw


def _to_bytes(key: bytes | str) -> bytes:
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key)
    if isinstance(key, str):
        try:
            return bytes.fromhex(key.replace(" ", ""))
        except ValueError:
            raise CorruptionError(f"key must be bytes or a hex string, got the string {key!r}") from None
    raise CorruptionError(
        f"key must be bytes or a hex string, got {type(key).__name__} {key!r} "
        "(on a Hydra command line quote a hex key: corruption.key='\"00ff...\"')"
    )


def sector_number_blocks(sectors: np.ndarray, iv: str) -> np.ndarray:
    """uint8 (n, 16): the 16-byte block n(s) for each sector number ``s`` (``be32`` or ``le64``)."""
    s = np.asarray(sectors, dtype=np.uint64)
    out = np.zeros((s.size, BLOCK), dtype=np.uint8)
    if iv == "be32":
        if s.size and int(s.max()) >= 1 << 32:
            raise CorruptionError(f"iv 'be32' holds sector numbers < 2**32, got {int(s.max())}")
        out[:, :4] = s.astype(">u4").view(np.uint8).reshape(-1, 4)
    elif iv == "le64":
        out[:, :8] = s.astype("<u8").view(np.uint8).reshape(-1, 8)
    else:
        raise CorruptionError(f"iv must be one of {IV_MODES}, got {iv!r}")
    return out


def _ecb(key: bytes):
    c = Cipher(algorithms.AES(key), modes.ECB())
    return c.encryptor(), c.decryptor()


def _gf_double_tweaks(t0: np.ndarray, count: int) -> np.ndarray:
    """uint8 (n, count, 16): T * alpha^j for j < count, T = t0 rows (GF(2^128), IEEE 1619 little-endian)."""
    lo = t0.view("<u8")[:, 0].copy()
    hi = t0.view("<u8")[:, 1].copy()
    out = np.empty((t0.shape[0], count, 2), dtype="<u8")
    one, sixty3, poly = np.uint64(1), np.uint64(63), np.uint64(0x87)
    for j in range(count):
        out[:, j, 0], out[:, j, 1] = lo, hi
        carry = hi >> sixty3
        hi = (hi << one) | (lo >> sixty3)
        lo = (lo << one) ^ (carry * poly)
    return out.view(np.uint8).reshape(t0.shape[0], count, BLOCK)


class SectorCipher:
    """Sector-wise AES (see the module docstring). ``encrypt`` pads; ``decrypt(ct, length)`` unpads.

    mode: ``cbc-essiv`` | ``xts`` | ``none``; key: bytes or hex string (ignored for ``none``);
    sector_size: bytes per sector, a positive multiple of 16 (512 and 4096 are the real ones);
    iv: ``be32`` | ``le64``; pad: ``pkcs7`` | ``zero``; first_sector: sector number of the file's first byte.
    """

    def __init__(
        self,
        mode: str = "cbc-essiv",
        key: bytes | str | None = None,
        sector_size: int = 512,
        iv: str = "be32",
        pad: str = "pkcs7",
        first_sector: int = 0,
    ) -> None:
        if mode not in CIPHER_MODES:
            raise CorruptionError(f"cipher must be one of {CIPHER_MODES}, got {mode!r}")
        if iv not in IV_MODES:
            raise CorruptionError(f"iv must be one of {IV_MODES}, got {iv!r}")
        if pad not in PAD_MODES:
            raise CorruptionError(f"pad must be one of {PAD_MODES}, got {pad!r}")
        if (
            isinstance(sector_size, bool)
            or not isinstance(sector_size, int | np.integer)
            or sector_size <= 0
            or sector_size % BLOCK
        ):
            raise CorruptionError(
                f"sector_size must be a positive multiple of 16 bytes (e.g. 512 or 4096), got {sector_size!r}"
            )
        if (
            isinstance(first_sector, bool)
            or not isinstance(first_sector, int | np.integer)
            or first_sector < 0
        ):
            raise CorruptionError(f"first_sector must be a non-negative integer, got {first_sector!r}")
        self.mode, self.iv, self.pad = mode, iv, pad
        self.sector_size, self.first_sector = int(sector_size), int(first_sector)
        self.key = parse_key(key, mode)
        self._blocks_per_sector = self.sector_size // BLOCK
        if mode == "cbc-essiv":
            self._enc, self._dec = _ecb(self.key)
            self._salt_enc, _ = _ecb(hashlib.sha256(self.key).digest())
        elif mode == "xts":
            half = len(self.key) // 2
            self._enc, self._dec = _ecb(self.key[:half])  # data key K1
            self._tweak_enc, _ = _ecb(self.key[half:])  # tweak key K2
        # sector-count -> IV / tweak table cache (files of one size reuse it)
        self._table_cache: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict:
        # cryptography's cipher contexts cannot be pickled: keep the settings, rebuild on unpickling
        return {
            "mode": self.mode,
            "key": self.key,
            "sector_size": self.sector_size,
            "iv": self.iv,
            "pad": self.pad,
            "first_sector": self.first_sector,
        }

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        return (
            f"SectorCipher(mode={self.mode!r}, key_bytes={len(self.key)}, sector_size={self.sector_size}, "
            f"iv={self.iv!r}, pad={self.pad!r}, first_sector={self.first_sector})"
        )

    # -- sizes -------------------------------------------------------------------------------------
    def padded_length(self, length: int) -> int:
        """Ciphertext length for a plaintext of ``length`` bytes."""
        if self.mode == "none":
            return length
        if self.pad == "pkcs7":
            return (length // BLOCK + 1) * BLOCK
        return -(-length // self.sector_size) * self.sector_size if length else 0

    def _pad(self, data: bytes) -> bytes:
        n = self.padded_length(len(data)) - len(data)
        return data + (bytes([n]) * n if self.pad == "pkcs7" else bytes(n))

    def _unpad(self, data: bytes, length: int | None) -> bytes:
        if length is not None:
            if not 0 <= length <= len(data):
                raise CorruptionError(f"length must be in 0..{len(data)} (the ciphertext size), got {length}")
            return data[:length]
        if self.pad == "zero":
            raise CorruptionError("pad 'zero' cannot be undone without the plaintext length: pass length=")
        n = data[-1] if data else 0
        if 1 <= n <= BLOCK and data[-n:] == bytes([n]) * n:
            return data[:-n]
        return data  # corrupted padding: keep everything rather than guess

    # -- per-sector tables -------------------------------------------------------------------------
    def _sector_blocks(self, n_sectors: int) -> np.ndarray:
        """uint8 (n_sectors, 16): ESSIV IVs (cbc-essiv) or encrypted tweaks T_s (xts), cached by count."""
        table = self._table_cache.get(n_sectors)
        if table is None:
            numbers = self.first_sector + np.arange(n_sectors, dtype=np.uint64)
            blocks = sector_number_blocks(numbers, self.iv).tobytes()
            enc = self._salt_enc if self.mode == "cbc-essiv" else self._tweak_enc
            table = np.frombuffer(enc.update(blocks), dtype=np.uint8).reshape(n_sectors, BLOCK)
            if self.mode == "xts":
                table = _gf_double_tweaks(table, self._blocks_per_sector)
            if len(self._table_cache) > 64:
                self._table_cache.clear()
            self._table_cache[n_sectors] = table
        return table

    def _sector_view(self, data: bytes) -> tuple[np.ndarray, int]:
        """Data zero-filled to whole sectors as uint8 (n_sectors, blocks_per_sector, 16), and n_sectors."""
        n_sectors = -(-len(data) // self.sector_size)
        buf = np.zeros(n_sectors * self.sector_size, dtype=np.uint8)
        buf[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        return buf.reshape(n_sectors, self._blocks_per_sector, BLOCK), n_sectors

    # -- public ------------------------------------------------------------------------------------
    def encrypt(self, plaintext: bytes) -> bytes:
        """Pad and encrypt; the result has :meth:`padded_length` ``(len(plaintext))`` bytes."""
        if self.mode == "none":
            return bytes(plaintext)
        data = self._pad(bytes(plaintext))
        if not data:
            return b""
        blocks, n_sectors = self._sector_view(data)
        if self.mode == "xts":
            tweaks = self._sector_blocks(n_sectors)
            x = np.frombuffer(self._enc.update((blocks ^ tweaks).tobytes()), dtype=np.uint8)
            out = x.reshape(blocks.shape) ^ tweaks
        else:
            # CBC: chained inside a sector, independent across sectors -> one ECB call per block index
            out = np.empty_like(blocks)
            prev = self._sector_blocks(n_sectors)
            for j in range(self._blocks_per_sector):
                prev = np.frombuffer(self._enc.update((blocks[:, j] ^ prev).tobytes()), dtype=np.uint8)
                prev = prev.reshape(n_sectors, BLOCK)
                out[:, j] = prev
        return out.reshape(-1)[: len(data)].tobytes()

    def decrypt(self, ciphertext: bytes, length: int | None = None) -> bytes:
        """Decrypt and remove the padding; ``length`` (the plaintext size) makes this exact in every case."""
        if self.mode == "none":
            return self._unpad(bytes(ciphertext), len(ciphertext) if length is None else length)
        data = bytes(ciphertext)
        if len(data) % BLOCK:
            raise CorruptionError(f"ciphertext length must be a multiple of 16 bytes, got {len(data)}")
        if not data:
            return self._unpad(b"", length)
        blocks, n_sectors = self._sector_view(data)
        table = self._sector_blocks(n_sectors)
        if self.mode == "xts":
            x = np.frombuffer(self._dec.update((blocks ^ table).tobytes()), dtype=np.uint8)
            out = x.reshape(blocks.shape) ^ table
        else:
            # CBC: P_j = D(C_j) xor C_{j-1}, with C_{-1} = the sector's IV: one ECB call for everything
            prev = np.empty_like(blocks)
            prev[:, 0] = table
            prev[:, 1:] = blocks[:, :-1]
            out = (
                np.frombuffer(self._dec.update(blocks.tobytes()), dtype=np.uint8).reshape(blocks.shape) ^ prev
            )
        return self._unpad(out.reshape(-1)[: len(data)].tobytes(), length)

"""Bitcoin consensus serialization helpers (transactions, blocks, hashes).

Pure python; used for building blocks, computing txids/wtxids and decoding
data for RPC results. Validation itself is done by libbitcoinkernel.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

COIN = 100_000_000
MAX_MONEY = 21_000_000 * COIN
WITNESS_SCALE_FACTOR = 4
SEQUENCE_FINAL = 0xFFFFFFFF


class DeserializationError(ValueError):
    pass


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def hash256(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def ser_compact_size(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


class Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0):
        self.data = data
        self.pos = pos

    def read(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DeserializationError("unexpected end of data")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self) -> int:
        return self.read(1)[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.read(4))[0]

    def i32(self) -> int:
        return struct.unpack("<i", self.read(4))[0]

    def i64(self) -> int:
        return struct.unpack("<q", self.read(8))[0]

    def compact_size(self) -> int:
        n = self.u8()
        if n < 0xFD:
            return n
        if n == 0xFD:
            v = struct.unpack("<H", self.read(2))[0]
            if v < 0xFD:
                raise DeserializationError("non-canonical compact size")
        elif n == 0xFE:
            v = struct.unpack("<I", self.read(4))[0]
            if v <= 0xFFFF:
                raise DeserializationError("non-canonical compact size")
        else:
            v = struct.unpack("<Q", self.read(8))[0]
            if v <= 0xFFFFFFFF:
                raise DeserializationError("non-canonical compact size")
        if v > 0x02000000:
            raise DeserializationError("compact size too large")
        return v

    def var_bytes(self) -> bytes:
        return self.read(self.compact_size())

    def at_end(self) -> bool:
        return self.pos == len(self.data)


@dataclass
class OutPoint:
    txid: bytes  # internal byte order (little endian)
    n: int

    def key(self) -> tuple[bytes, int]:
        return (self.txid, self.n)

    def is_null(self) -> bool:
        return self.txid == b"\x00" * 32 and self.n == 0xFFFFFFFF


@dataclass
class TxIn:
    prevout: OutPoint
    script_sig: bytes = b""
    sequence: int = SEQUENCE_FINAL
    witness: list[bytes] = field(default_factory=list)


@dataclass
class TxOut:
    value: int
    script_pubkey: bytes

    def serialize(self) -> bytes:
        return struct.pack("<q", self.value) + ser_compact_size(len(self.script_pubkey)) + self.script_pubkey


@dataclass
class Tx:
    version: int = 2
    vin: list[TxIn] = field(default_factory=list)
    vout: list[TxOut] = field(default_factory=list)
    locktime: int = 0
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # --- serialization -------------------------------------------------
    def has_witness(self) -> bool:
        return any(i.witness for i in self.vin)

    def serialize(self, with_witness: bool = True) -> bytes:
        key = "ser_w" if with_witness else "ser_nw"
        c = self._cache.get(key)
        if c is not None:
            return c
        use_w = with_witness and self.has_witness()
        parts = [struct.pack("<i", self.version)]
        if use_w:
            parts.append(b"\x00\x01")
        parts.append(ser_compact_size(len(self.vin)))
        for i in self.vin:
            parts.append(i.prevout.txid + struct.pack("<I", i.prevout.n))
            parts.append(ser_compact_size(len(i.script_sig)) + i.script_sig)
            parts.append(struct.pack("<I", i.sequence))
        parts.append(ser_compact_size(len(self.vout)))
        for o in self.vout:
            parts.append(o.serialize())
        if use_w:
            for i in self.vin:
                parts.append(ser_compact_size(len(i.witness)))
                for item in i.witness:
                    parts.append(ser_compact_size(len(item)) + item)
        parts.append(struct.pack("<I", self.locktime))
        out = b"".join(parts)
        self._cache[key] = out
        return out

    def invalidate(self) -> None:
        self._cache.clear()

    @property
    def txid_bytes(self) -> bytes:
        c = self._cache.get("txid")
        if c is None:
            c = hash256(self.serialize(False))
            self._cache["txid"] = c
        return c

    @property
    def wtxid_bytes(self) -> bytes:
        c = self._cache.get("wtxid")
        if c is None:
            c = hash256(self.serialize(True))
            self._cache["wtxid"] = c
        return c

    @property
    def txid(self) -> str:
        return self.txid_bytes[::-1].hex()

    @property
    def wtxid(self) -> str:
        return self.wtxid_bytes[::-1].hex()

    @property
    def size(self) -> int:
        return len(self.serialize(True))

    @property
    def stripped_size(self) -> int:
        return len(self.serialize(False))

    @property
    def weight(self) -> int:
        return self.stripped_size * (WITNESS_SCALE_FACTOR - 1) + self.size

    @property
    def vsize(self) -> int:
        return (self.weight + WITNESS_SCALE_FACTOR - 1) // WITNESS_SCALE_FACTOR

    def is_coinbase(self) -> bool:
        return len(self.vin) == 1 and self.vin[0].prevout.is_null()

    # --- parsing --------------------------------------------------------
    @classmethod
    def parse(cls, r: Reader) -> "Tx":
        start = r.pos
        version = r.i32()
        n_in = r.compact_size()
        flags = 0
        if n_in == 0:
            flags = r.u8()
            if flags == 0:
                # zero inputs, no witness marker -> actually an empty vin tx
                # (bitcoind would treat this as extended format attempt); we
                # mimic: a zero-input tx cannot be deserialized unambiguously
                raise DeserializationError("transaction has no inputs")
            n_in = r.compact_size()
        vin = []
        for _ in range(n_in):
            txid = r.read(32)
            n = r.u32()
            ss = r.var_bytes()
            seq = r.u32()
            vin.append(TxIn(OutPoint(txid, n), ss, seq))
        n_out = r.compact_size()
        vout = []
        for _ in range(n_out):
            value = r.i64()
            spk = r.var_bytes()
            vout.append(TxOut(value, spk))
        if flags & 1:
            flags ^= 1
            for i in vin:
                n_items = r.compact_size()
                i.witness = [r.var_bytes() for _ in range(n_items)]
            if not any(i.witness for i in vin):
                raise DeserializationError("superfluous witness record")
        if flags:
            raise DeserializationError("unknown transaction optional data")
        locktime = r.u32()
        tx = cls(version, vin, vout, locktime)
        raw = r.data[start : r.pos]
        tx._cache["ser_w"] = raw
        return tx

    @classmethod
    def from_bytes(cls, data: bytes) -> "Tx":
        r = Reader(data)
        tx = cls.parse(r)
        if not r.at_end():
            raise DeserializationError("trailing data after transaction")
        return tx

    @classmethod
    def from_hex(cls, h: str) -> "Tx":
        return cls.from_bytes(bytes.fromhex(h))


@dataclass
class BlockHeader:
    version: int
    prev_hash: bytes  # internal order
    merkle_root: bytes
    time: int
    bits: int
    nonce: int

    def serialize(self) -> bytes:
        return (
            struct.pack("<i", self.version)
            + self.prev_hash
            + self.merkle_root
            + struct.pack("<III", self.time, self.bits, self.nonce)
        )

    @property
    def hash_bytes(self) -> bytes:
        return hash256(self.serialize())

    @property
    def hash(self) -> str:
        return self.hash_bytes[::-1].hex()

    @classmethod
    def parse(cls, r: Reader) -> "BlockHeader":
        version = r.i32()
        prev = r.read(32)
        mr = r.read(32)
        t, bits, nonce = struct.unpack("<III", r.read(12))
        return cls(version, prev, mr, t, bits, nonce)


@dataclass
class Block:
    header: BlockHeader
    txs: list[Tx]

    def serialize(self, with_witness: bool = True) -> bytes:
        return (
            self.header.serialize()
            + ser_compact_size(len(self.txs))
            + b"".join(t.serialize(with_witness) for t in self.txs)
        )

    @property
    def hash(self) -> str:
        return self.header.hash

    @classmethod
    def from_bytes(cls, data: bytes) -> "Block":
        r = Reader(data)
        h = BlockHeader.parse(r)
        n = r.compact_size()
        txs = [Tx.parse(r) for _ in range(n)]
        if not r.at_end():
            raise DeserializationError("trailing data after block")
        return cls(h, txs)

    @property
    def size(self) -> int:
        return len(self.serialize(True))

    @property
    def stripped_size(self) -> int:
        return len(self.serialize(False))

    @property
    def weight(self) -> int:
        return self.stripped_size * (WITNESS_SCALE_FACTOR - 1) + self.size


def merkle_root(hashes: list[bytes]) -> bytes:
    if not hashes:
        return b"\x00" * 32
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [hash256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def bits_to_target(bits: int) -> int:
    exp = bits >> 24
    mant = bits & 0x007FFFFF
    if exp <= 3:
        return mant >> (8 * (3 - exp))
    return mant << (8 * (exp - 3))


def block_work(bits: int) -> int:
    target = bits_to_target(bits)
    if target <= 0:
        return 0
    return (1 << 256) // (target + 1)


def difficulty(bits: int) -> float:
    shift = (bits >> 24) & 0xFF
    diff = float(0x0000FFFF) / float(bits & 0x00FFFFFF)
    while shift < 29:
        diff *= 256.0
        shift += 1
    while shift > 29:
        diff /= 256.0
        shift -= 1
    return diff


def hex_to_hash(s: str) -> bytes:
    """Display hex (big endian) -> internal bytes."""
    b = bytes.fromhex(s)
    if len(b) != 32:
        raise ValueError("hash must be 32 bytes")
    return b[::-1]

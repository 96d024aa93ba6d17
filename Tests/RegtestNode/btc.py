"""Minimal, independent Bitcoin helpers for the regtest-node tests.

Pure python (no dependency on the node's own code, so the tests cross-check
its serialization): secp256k1, BIP340 Schnorr signing, BIP341 taproot
(key path and single-leaf script path), transaction serialization, bech32m.
Slow but plenty fast for tests. NOT for production use (not constant time).
"""

from __future__ import annotations

import hashlib
import struct

# --------------------------------------------------------------------------
# secp256k1
# --------------------------------------------------------------------------
P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)


def _jac_double(p):
    x, y, z = p
    if y == 0:
        return (0, 0, 0)
    ysq = y * y % P
    s = 4 * x * ysq % P
    m = 3 * x * x % P
    nx = (m * m - 2 * s) % P
    ny = (m * (s - nx) - 8 * ysq * ysq) % P
    nz = 2 * y * z % P
    return (nx, ny, nz)


def _jac_add(p, q):
    if p[2] == 0:
        return q
    if q[2] == 0:
        return p
    x1, y1, z1 = p
    x2, y2, z2 = q
    z1s, z2s = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2s % P, x2 * z1s % P
    s1, s2 = y1 * z2s * z2 % P, y2 * z1s * z1 % P
    if u1 == u2:
        if s1 != s2:
            return (0, 0, 0)
        return _jac_double(p)
    h = (u2 - u1) % P
    r = (s2 - s1) % P
    h2 = h * h % P
    h3 = h * h2 % P
    u1h2 = u1 * h2 % P
    nx = (r * r - h3 - 2 * u1h2) % P
    ny = (r * (u1h2 - nx) - s1 * h3) % P
    nz = h * z1 * z2 % P
    return (nx, ny, nz)


def _to_affine(p):
    if p[2] == 0:
        return None
    zi = pow(p[2], -1, P)
    return (p[0] * zi * zi % P, p[1] * zi * zi * zi % P)


def point_mul(pt, k: int):
    r = (0, 0, 0)
    a = (pt[0], pt[1], 1)
    while k:
        if k & 1:
            r = _jac_add(r, a)
        a = _jac_double(a)
        k >>= 1
    return _to_affine(r)


def point_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    return _to_affine(_jac_add((p1[0], p1[1], 1), (p2[0], p2[1], 1)))


def lift_x(x: int):
    if x >= P:
        return None
    y_sq = (pow(x, 3, P) + 7) % P
    y = pow(y_sq, (P + 1) // 4, P)
    if pow(y, 2, P) != y_sq:
        return None
    return (x, y if y % 2 == 0 else P - y)


def tagged_hash(tag: str, msg: bytes) -> bytes:
    t = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(t + t + msg).digest()


def xonly(pt) -> bytes:
    return pt[0].to_bytes(32, "big")


def schnorr_sign(msg32: bytes, seckey: int, aux: bytes = b"\x00" * 32) -> bytes:
    """BIP340 signing."""
    assert 1 <= seckey < N
    pk = point_mul(G, seckey)
    d = seckey if pk[1] % 2 == 0 else N - seckey
    t = (d ^ int.from_bytes(tagged_hash("BIP0340/aux", aux), "big")).to_bytes(32, "big")
    k0 = int.from_bytes(tagged_hash("BIP0340/nonce", t + xonly(pk) + msg32), "big") % N
    assert k0 != 0
    R = point_mul(G, k0)
    k = k0 if R[1] % 2 == 0 else N - k0
    e = int.from_bytes(tagged_hash("BIP0340/challenge", xonly(R) + xonly(pk) + msg32), "big") % N
    sig = xonly(R) + ((k + e * d) % N).to_bytes(32, "big")
    assert schnorr_verify(msg32, xonly(pk), sig)
    return sig


def schnorr_verify(msg32: bytes, pubkey: bytes, sig: bytes) -> bool:
    Pp = lift_x(int.from_bytes(pubkey, "big"))
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    if Pp is None or r >= P or s >= N:
        return False
    e = int.from_bytes(tagged_hash("BIP0340/challenge", sig[:32] + pubkey + msg32), "big") % N
    R = point_add(point_mul(G, s), point_mul(Pp, N - e))
    return R is not None and R[1] % 2 == 0 and R[0] == r


# --------------------------------------------------------------------------
# Taproot
# --------------------------------------------------------------------------
def tapleaf_hash(script: bytes, leaf_version: int = 0xC0) -> bytes:
    return tagged_hash("TapLeaf", bytes([leaf_version]) + ser_compact(len(script)) + script)


class TaprootKey:
    """A P2TR output with an internal key and optionally one script leaf."""

    def __init__(self, seckey: int, leaf_script: bytes | None = None):
        self.seckey = seckey
        self.internal = point_mul(G, seckey)
        self.internal_x = xonly(self.internal)
        self.leaf_script = leaf_script
        self.merkle_root = tapleaf_hash(leaf_script) if leaf_script is not None else b""
        tweak = int.from_bytes(tagged_hash("TapTweak", self.internal_x + self.merkle_root), "big")
        assert tweak < N
        self.tweak = tweak
        self.output_point = point_add(lift_x(self.internal[0]), point_mul(G, tweak))
        self.output_x = xonly(self.output_point)
        self.parity = self.output_point[1] % 2

    @property
    def script_pubkey(self) -> bytes:
        return b"\x51\x20" + self.output_x

    @property
    def address(self) -> str:
        return bech32m_address("bcrt", 1, self.output_x)

    def keypath_seckey(self) -> int:
        d = self.seckey if self.internal[1] % 2 == 0 else N - self.seckey
        return (d + self.tweak) % N

    def control_block(self) -> bytes:
        return bytes([0xC0 | self.parity]) + self.internal_x


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def hash256(b: bytes) -> bytes:
    return sha256(sha256(b))


def taproot_sighash(tx: "Tx", idx: int, spent: list[tuple[int, bytes]], hash_type: int = 0,
                    leaf_script: bytes | None = None) -> bytes:
    """BIP341 signature hash (SIGHASH_DEFAULT / ALL, no annex)."""
    assert hash_type in (0, 1)
    m = bytes([0, hash_type])
    m += struct.pack("<iI", tx.version, tx.locktime)
    m += sha256(b"".join(i[0] + struct.pack("<I", i[1]) for i in tx.vin))
    m += sha256(b"".join(struct.pack("<q", a) for a, _ in spent))
    m += sha256(b"".join(ser_compact(len(s)) + s for _, s in spent))
    m += sha256(b"".join(struct.pack("<I", i[3]) for i in tx.vin))
    m += sha256(b"".join(struct.pack("<q", v) + ser_compact(len(s)) + s for v, s in tx.vout))
    ext = 1 if leaf_script is not None else 0
    m += bytes([ext * 2])
    m += struct.pack("<I", idx)
    if leaf_script is not None:
        m += tapleaf_hash(leaf_script) + b"\x00" + b"\xff\xff\xff\xff"
    return tagged_hash("TapSighash", m)


# --------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------
def ser_compact(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    return b"\xfe" + struct.pack("<I", n)


class Tx:
    """vin items: [prev_txid_le(32), vout, script_sig, sequence, witness(list)]; vout: (value, spk)."""

    def __init__(self, version: int = 2, locktime: int = 0):
        self.version = version
        self.locktime = locktime
        self.vin: list[list] = []
        self.vout: list[tuple[int, bytes]] = []

    def add_input(self, txid_hex: str, vout: int, sequence: int = 0xFFFFFFFD):
        self.vin.append([bytes.fromhex(txid_hex)[::-1], vout, b"", sequence, []])
        return self

    def add_output(self, value: int, spk: bytes):
        self.vout.append((value, spk))
        return self

    def serialize(self, witness: bool = True) -> bytes:
        has_w = witness and any(i[4] for i in self.vin)
        out = struct.pack("<i", self.version)
        if has_w:
            out += b"\x00\x01"
        out += ser_compact(len(self.vin))
        for prev, n, ss, seq, _ in self.vin:
            out += prev + struct.pack("<I", n) + ser_compact(len(ss)) + ss + struct.pack("<I", seq)
        out += ser_compact(len(self.vout))
        for v, s in self.vout:
            out += struct.pack("<q", v) + ser_compact(len(s)) + s
        if has_w:
            for i in self.vin:
                out += ser_compact(len(i[4]))
                for item in i[4]:
                    out += ser_compact(len(item)) + item
        out += struct.pack("<I", self.locktime)
        return out

    def hex(self) -> str:
        return self.serialize().hex()

    @property
    def txid(self) -> str:
        return hash256(self.serialize(False))[::-1].hex()

    @property
    def wtxid(self) -> str:
        return hash256(self.serialize(True))[::-1].hex()

    def vsize(self) -> int:
        base = len(self.serialize(False))
        total = len(self.serialize(True))
        return (base * 3 + total + 3) // 4

    def sign_keypath(self, idx: int, key: TaprootKey, spent: list[tuple[int, bytes]]):
        msg = taproot_sighash(self, idx, spent)
        self.vin[idx][4] = [schnorr_sign(msg, key.keypath_seckey())]
        return self

    def sign_scriptpath(self, idx: int, key: TaprootKey, leaf_seckey: int, spent: list[tuple[int, bytes]]):
        msg = taproot_sighash(self, idx, spent, leaf_script=key.leaf_script)
        sig = schnorr_sign(msg, leaf_seckey)
        self.vin[idx][4] = [sig, key.leaf_script, key.control_block()]
        return self


# --------------------------------------------------------------------------
# Scripts / addresses
# --------------------------------------------------------------------------
def script_num(n: int) -> bytes:
    """Minimal push of a small positive integer."""
    if n == 0:
        return b"\x00"
    if 1 <= n <= 16:
        return bytes([0x50 + n])
    b = n.to_bytes((n.bit_length() + 8) // 8, "little")
    while len(b) > 1 and b[-1] == 0 and not (b[-2] & 0x80):
        b = b[:-1]
    return bytes([len(b)]) + b


def csv_leaf(blocks: int, xonly_pub: bytes) -> bytes:
    """<blocks> OP_CHECKSEQUENCEVERIFY OP_DROP <xonly> OP_CHECKSIG"""
    return script_num(blocks) + b"\xb2\x75" + b"\x20" + xonly_pub + b"\xac"


_B32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((b >> i) & 1) else 0
    return chk


def bech32m_address(hrp: str, ver: int, prog: bytes) -> str:
    acc, bits, data = 0, 0, [ver]
    for b in prog:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    const = 1 if ver == 0 else 0x2BC830A3
    values = [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp] + data
    pm = _polymod(values + [0] * 6) ^ const
    return hrp + "1" + "".join(_B32[d] for d in data + [(pm >> 5 * (5 - i)) & 31 for i in range(6)])


def btc(sats: int) -> str:
    return f"{sats // 100_000_000}.{sats % 100_000_000:08d}"


def sats(v) -> int:
    from decimal import Decimal

    return int(Decimal(str(v)) * 100_000_000)

"""Script classification, disassembly, regtest addresses and descriptors.

Only used for *presentation* (RPC result shapes) and policy checks; the
consensus validity of scripts is decided by libbitcoinkernel.
"""

from __future__ import annotations

import hashlib

from .serialization import hash256

# ---------------------------------------------------------------------------
# Opcodes
# ---------------------------------------------------------------------------

OP_0 = 0x00
OP_PUSHDATA1 = 0x4C
OP_PUSHDATA2 = 0x4D
OP_PUSHDATA4 = 0x4E
OP_1NEGATE = 0x4F
OP_1 = 0x51
OP_16 = 0x60
OP_RETURN = 0x6A
OP_DUP = 0x76
OP_EQUAL = 0x87
OP_EQUALVERIFY = 0x88
OP_HASH160 = 0xA9
OP_CHECKSIG = 0xAC
OP_CHECKMULTISIG = 0xAE
MAX_OPCODE = 0xBA  # OP_CHECKSIGADD
MAX_SCRIPT_SIZE = 10000

_OPNAMES = {
    0x00: "0", 0x4C: "OP_PUSHDATA1", 0x4D: "OP_PUSHDATA2", 0x4E: "OP_PUSHDATA4",
    0x4F: "-1", 0x50: "OP_RESERVED", 0x61: "OP_NOP", 0x62: "OP_VER", 0x63: "OP_IF",
    0x64: "OP_NOTIF", 0x65: "OP_VERIF", 0x66: "OP_VERNOTIF", 0x67: "OP_ELSE",
    0x68: "OP_ENDIF", 0x69: "OP_VERIFY", 0x6A: "OP_RETURN", 0x6B: "OP_TOALTSTACK",
    0x6C: "OP_FROMALTSTACK", 0x6D: "OP_2DROP", 0x6E: "OP_2DUP", 0x6F: "OP_3DUP",
    0x70: "OP_2OVER", 0x71: "OP_2ROT", 0x72: "OP_2SWAP", 0x73: "OP_IFDUP",
    0x74: "OP_DEPTH", 0x75: "OP_DROP", 0x76: "OP_DUP", 0x77: "OP_NIP", 0x78: "OP_OVER",
    0x79: "OP_PICK", 0x7A: "OP_ROLL", 0x7B: "OP_ROT", 0x7C: "OP_SWAP", 0x7D: "OP_TUCK",
    0x7E: "OP_CAT", 0x7F: "OP_SUBSTR", 0x80: "OP_LEFT", 0x81: "OP_RIGHT", 0x82: "OP_SIZE",
    0x83: "OP_INVERT", 0x84: "OP_AND", 0x85: "OP_OR", 0x86: "OP_XOR", 0x87: "OP_EQUAL",
    0x88: "OP_EQUALVERIFY", 0x89: "OP_RESERVED1", 0x8A: "OP_RESERVED2", 0x8B: "OP_1ADD",
    0x8C: "OP_1SUB", 0x8D: "OP_2MUL", 0x8E: "OP_2DIV", 0x8F: "OP_NEGATE", 0x90: "OP_ABS",
    0x91: "OP_NOT", 0x92: "OP_0NOTEQUAL", 0x93: "OP_ADD", 0x94: "OP_SUB", 0x95: "OP_MUL",
    0x96: "OP_DIV", 0x97: "OP_MOD", 0x98: "OP_LSHIFT", 0x99: "OP_RSHIFT",
    0x9A: "OP_BOOLAND", 0x9B: "OP_BOOLOR", 0x9C: "OP_NUMEQUAL", 0x9D: "OP_NUMEQUALVERIFY",
    0x9E: "OP_NUMNOTEQUAL", 0x9F: "OP_LESSTHAN", 0xA0: "OP_GREATERTHAN",
    0xA1: "OP_LESSTHANOREQUAL", 0xA2: "OP_GREATERTHANOREQUAL", 0xA3: "OP_MIN",
    0xA4: "OP_MAX", 0xA5: "OP_WITHIN", 0xA6: "OP_RIPEMD160", 0xA7: "OP_SHA1",
    0xA8: "OP_SHA256", 0xA9: "OP_HASH160", 0xAA: "OP_HASH256", 0xAB: "OP_CODESEPARATOR",
    0xAC: "OP_CHECKSIG", 0xAD: "OP_CHECKSIGVERIFY", 0xAE: "OP_CHECKMULTISIG",
    0xAF: "OP_CHECKMULTISIGVERIFY", 0xB0: "OP_NOP1", 0xB1: "OP_CHECKLOCKTIMEVERIFY",
    0xB2: "OP_CHECKSEQUENCEVERIFY", 0xB3: "OP_NOP4", 0xB4: "OP_NOP5", 0xB5: "OP_NOP6",
    0xB6: "OP_NOP7", 0xB7: "OP_NOP8", 0xB8: "OP_NOP9", 0xB9: "OP_NOP10",
    0xBA: "OP_CHECKSIGADD", 0xFF: "OP_INVALIDOPCODE",
}
for _i in range(1, 17):
    _OPNAMES[0x50 + _i] = str(_i)


class ScriptParseError(ValueError):
    pass


def iter_ops(script: bytes):
    """Yield (opcode, data|None). Raises ScriptParseError on truncated push."""
    i = 0
    n = len(script)
    while i < n:
        op = script[i]
        i += 1
        data = None
        if op <= OP_PUSHDATA4:
            if op < OP_PUSHDATA1:
                size = op
            elif op == OP_PUSHDATA1:
                if i + 1 > n:
                    raise ScriptParseError("truncated pushdata1")
                size = script[i]
                i += 1
            elif op == OP_PUSHDATA2:
                if i + 2 > n:
                    raise ScriptParseError("truncated pushdata2")
                size = int.from_bytes(script[i : i + 2], "little")
                i += 2
            else:
                if i + 4 > n:
                    raise ScriptParseError("truncated pushdata4")
                size = int.from_bytes(script[i : i + 4], "little")
                i += 4
            if i + size > n:
                raise ScriptParseError("truncated push")
            data = script[i : i + size]
            i += size
        yield op, data


def is_push_only(script: bytes) -> bool:
    try:
        for op, _ in iter_ops(script):
            if op > OP_16:
                return False
    except ScriptParseError:
        return False
    return True


def has_valid_ops(script: bytes) -> bool:
    try:
        for op, _ in iter_ops(script):
            if op > MAX_OPCODE:
                return False
    except ScriptParseError:
        return False
    return True


def is_unspendable(script: bytes) -> bool:
    return (len(script) > 0 and script[0] == OP_RETURN) or len(script) > MAX_SCRIPT_SIZE


def scriptnum_decode(b: bytes) -> int:
    if not b:
        return 0
    v = int.from_bytes(b, "little")
    if b[-1] & 0x80:
        v &= ~(0x80 << (8 * (len(b) - 1)))
        return -v
    return v


def scriptnum_encode(n: int) -> bytes:
    if n == 0:
        return b""
    neg = n < 0
    a = abs(n)
    out = bytearray()
    while a:
        out.append(a & 0xFF)
        a >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if neg else 0)
    elif neg:
        out[-1] |= 0x80
    return bytes(out)


def push_data(d: bytes) -> bytes:
    n = len(d)
    if n < OP_PUSHDATA1:
        return bytes([n]) + d
    if n <= 0xFF:
        return bytes([OP_PUSHDATA1, n]) + d
    if n <= 0xFFFF:
        return bytes([OP_PUSHDATA2]) + n.to_bytes(2, "little") + d
    return bytes([OP_PUSHDATA4]) + n.to_bytes(4, "little") + d


def push_int(n: int) -> bytes:
    """CScript() << n semantics."""
    if n == -1 or 1 <= n <= 16:
        return bytes([n + 0x50])
    if n == 0:
        return bytes([OP_0])
    return push_data(scriptnum_encode(n))


_SIGHASH_NAMES = {
    0x01: "ALL", 0x02: "NONE", 0x03: "SINGLE",
    0x81: "ALL|ANYONECANPAY", 0x82: "NONE|ANYONECANPAY", 0x83: "SINGLE|ANYONECANPAY",
}


def _looks_like_der_sig(b: bytes) -> bool:
    # Rough IsValidSignatureEncoding check
    if len(b) < 9 or len(b) > 73 or b[0] != 0x30 or b[1] != len(b) - 3:
        return False
    lenR = b[3]
    if 5 + lenR >= len(b):
        return False
    lenS = b[5 + lenR]
    return lenR + lenS + 7 == len(b) and b[2] == 0x02 and b[4 + lenR] == 0x02


def script_to_asm(script: bytes, sighash_decode: bool = False) -> str:
    parts = []
    try:
        for op, data in iter_ops(script):
            if data is not None:
                if len(data) <= 4:
                    parts.append(str(scriptnum_decode(data)))
                else:
                    s = data.hex()
                    if sighash_decode and _looks_like_der_sig(data) and data[-1] in _SIGHASH_NAMES:
                        s = data[:-1].hex() + "[" + _SIGHASH_NAMES[data[-1]] + "]"
                    parts.append(s)
            else:
                parts.append(_OPNAMES.get(op, "OP_UNKNOWN"))
    except ScriptParseError:
        parts.append("[error]")
    return " ".join(parts)


# ---------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------


def witness_program(spk: bytes):
    """Return (version, program) if spk is a witness program, else None."""
    if len(spk) < 4 or len(spk) > 42:
        return None
    if spk[0] != OP_0 and not (OP_1 <= spk[0] <= OP_16):
        return None
    if spk[1] + 2 != len(spk):
        return None
    ver = 0 if spk[0] == OP_0 else spk[0] - 0x50
    return ver, spk[2:]


def _match_multisig(spk: bytes):
    try:
        ops = list(iter_ops(spk))
    except ScriptParseError:
        return None
    if len(ops) < 4 or ops[-1][0] != OP_CHECKMULTISIG:
        return None
    m_op, n_op = ops[0][0], ops[-2][0]
    if not (OP_1 <= m_op <= OP_16 and OP_1 <= n_op <= OP_16):
        return None
    m, n = m_op - 0x50, n_op - 0x50
    keys = ops[1:-2]
    if len(keys) != n or m > n:
        return None
    for op, d in keys:
        if d is None or len(d) not in (33, 65):
            return None
    return m, [d for _, d in keys]


def classify(spk: bytes):
    """Return (type_name, extra) using bitcoind's TxoutType names."""
    if len(spk) == 25 and spk[0] == OP_DUP and spk[1] == OP_HASH160 and spk[2] == 20 \
            and spk[23] == OP_EQUALVERIFY and spk[24] == OP_CHECKSIG:
        return "pubkeyhash", spk[3:23]
    if len(spk) == 23 and spk[0] == OP_HASH160 and spk[1] == 20 and spk[22] == OP_EQUAL:
        return "scripthash", spk[2:22]
    if spk and spk[0] == OP_RETURN and is_push_only(spk[1:]):
        return "nulldata", None
    wp = witness_program(spk)
    if wp is not None:
        ver, prog = wp
        if ver == 0 and len(prog) == 20:
            return "witness_v0_keyhash", prog
        if ver == 0 and len(prog) == 32:
            return "witness_v0_scripthash", prog
        if ver == 1 and len(prog) == 32:
            return "witness_v1_taproot", prog
        if ver == 1 and prog == bytes.fromhex("4e73"):
            return "anchor", prog
        if ver != 0:
            return "witness_unknown", (ver, prog)
        return "nonstandard", None
    if (len(spk) == 35 and spk[0] == 33 and spk[34] == OP_CHECKSIG and spk[1] in (2, 3)) or \
            (len(spk) == 67 and spk[0] == 65 and spk[66] == OP_CHECKSIG and spk[1] in (4, 6, 7)):
        return "pubkey", spk[1:-1]
    ms = _match_multisig(spk)
    if ms is not None:
        return "multisig", ms
    return "nonstandard", None


# ---------------------------------------------------------------------------
# Addresses (regtest)
# ---------------------------------------------------------------------------

BECH32_HRP = "bcrt"
P2PKH_VERSION = 0x6F
P2SH_VERSION = 0xC4
_B32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32_CONST = 1
BECH32M_CONST = 0x2BC830A3


def _polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((b >> i) & 1) else 0
    return chk


def _hrp_expand(hrp):
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _convertbits(data, frombits, tobits, pad=True):
    acc = 0
    bits = 0
    ret = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or (value >> frombits):
            return None
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            ret.append((acc >> bits) & maxv)
    if pad:
        if bits:
            ret.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        return None
    return ret


def bech32_encode_segwit(hrp: str, ver: int, prog: bytes) -> str:
    data = [ver] + _convertbits(prog, 8, 5)
    const = BECH32_CONST if ver == 0 else BECH32M_CONST
    values = _hrp_expand(hrp) + data
    polymod = _polymod(values + [0] * 6) ^ const
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_B32[d] for d in data + checksum)


def bech32_decode_segwit(hrp: str, addr: str):
    if any(ord(x) < 33 or ord(x) > 126 for x in addr):
        return None
    if addr.lower() != addr and addr.upper() != addr:
        return None
    addr = addr.lower()
    pos = addr.rfind("1")
    if pos < 1 or pos + 7 > len(addr) or len(addr) > 90:
        return None
    if addr[:pos] != hrp:
        return None
    if not all(x in _B32 for x in addr[pos + 1 :]):
        return None
    data = [_B32.find(x) for x in addr[pos + 1 :]]
    const = _polymod(_hrp_expand(hrp) + data)
    if const not in (BECH32_CONST, BECH32M_CONST):
        return None
    data = data[:-6]
    if not data:
        return None
    ver = data[0]
    prog = _convertbits(data[1:], 5, 8, False)
    if prog is None or len(prog) < 2 or len(prog) > 40 or ver > 16:
        return None
    if ver == 0 and len(prog) not in (20, 32):
        return None
    if (ver == 0 and const != BECH32_CONST) or (ver != 0 and const != BECH32M_CONST):
        return None
    return ver, bytes(prog)


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check_encode(payload: bytes) -> str:
    data = payload + hash256(payload)[:4]
    n = int.from_bytes(data, "big")
    s = ""
    while n:
        n, r = divmod(n, 58)
        s = _B58[r] + s
    pad = len(data) - len(data.lstrip(b"\x00"))
    return "1" * pad + s


def base58check_decode(s: str):
    n = 0
    for c in s:
        i = _B58.find(c)
        if i < 0:
            return None
        n = n * 58 + i
    pad = len(s) - len(s.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    data = b"\x00" * pad + body
    if len(data) < 5:
        return None
    payload, chk = data[:-4], data[-4:]
    if hash256(payload)[:4] != chk:
        return None
    return payload


def script_to_address(spk: bytes):
    t, extra = classify(spk)
    if t == "pubkeyhash":
        return base58check_encode(bytes([P2PKH_VERSION]) + extra)
    if t == "scripthash":
        return base58check_encode(bytes([P2SH_VERSION]) + extra)
    wp = witness_program(spk)
    if wp is not None and t != "nonstandard":
        return bech32_encode_segwit(BECH32_HRP, wp[0], wp[1])
    return None


class AddressError(ValueError):
    pass


def address_to_script(addr: str) -> bytes:
    if not isinstance(addr, str) or not addr:
        raise AddressError("Invalid address")
    if addr.lower().startswith(BECH32_HRP + "1"):
        dec = bech32_decode_segwit(BECH32_HRP, addr)
        if dec is None:
            raise AddressError("Invalid address")
        ver, prog = dec
        return bytes([0 if ver == 0 else 0x50 + ver, len(prog)]) + prog
    payload = base58check_decode(addr)
    if payload is None or len(payload) != 21:
        raise AddressError("Invalid address")
    if payload[0] == P2PKH_VERSION:
        return bytes([OP_DUP, OP_HASH160, 20]) + payload[1:] + bytes([OP_EQUALVERIFY, OP_CHECKSIG])
    if payload[0] == P2SH_VERSION:
        return bytes([OP_HASH160, 20]) + payload[1:] + bytes([OP_EQUAL])
    raise AddressError("Invalid address")


# ---------------------------------------------------------------------------
# Descriptors (subset: addr(), raw(); inference for display)
# ---------------------------------------------------------------------------

_INPUT_CHARSET = (
    "0123456789()[],'/*abcdefgh@:$%{}"
    "IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~"
    "ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
)
_CHECKSUM_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _desc_polymod(c, val):
    c0 = c >> 35
    c = ((c & 0x7FFFFFFFF) << 5) ^ val
    if c0 & 1:
        c ^= 0xF5DEE51989
    if c0 & 2:
        c ^= 0xA9FDCA3312
    if c0 & 4:
        c ^= 0x1BAB10E32D
    if c0 & 8:
        c ^= 0x3706B1677A
    if c0 & 16:
        c ^= 0x644D626FFD
    return c


def descriptor_checksum(desc: str):
    c = 1
    cls = 0
    clscount = 0
    for ch in desc:
        pos = _INPUT_CHARSET.find(ch)
        if pos == -1:
            return None
        c = _desc_polymod(c, pos & 31)
        cls = cls * 3 + (pos >> 5)
        clscount += 1
        if clscount == 3:
            c = _desc_polymod(c, cls)
            cls = 0
            clscount = 0
    if clscount > 0:
        c = _desc_polymod(c, cls)
    for _ in range(8):
        c = _desc_polymod(c, 0)
    c ^= 1
    return "".join(_CHECKSUM_CHARSET[(c >> (5 * (7 - i))) & 31] for i in range(8))


def add_checksum(desc: str) -> str:
    return desc + "#" + descriptor_checksum(desc)


class DescriptorError(ValueError):
    pass


def parse_descriptor(desc: str) -> bytes:
    """Parse addr(ADDR) / raw(HEX) / rawtr(XONLY) [#checksum] into a scriptPubKey."""
    if not isinstance(desc, str):
        raise DescriptorError("Descriptor must be a string")
    if "#" in desc:
        body, _, chk = desc.partition("#")
        expected = descriptor_checksum(body)
        if expected is None or chk != expected:
            raise DescriptorError(
                f"Provided checksum '{chk}' does not match computed checksum '{expected}'"
            )
        desc = body
    if desc.startswith("addr(") and desc.endswith(")"):
        try:
            return address_to_script(desc[5:-1])
        except AddressError:
            raise DescriptorError("Address is not valid")
    if desc.startswith("rawtr(") and desc.endswith(")"):
        try:
            key = bytes.fromhex(desc[6:-1])
        except ValueError:
            raise DescriptorError("rawtr() key is not hex")
        if len(key) != 32:
            raise DescriptorError("rawtr() requires a 32-byte x-only public key")
        return bytes([OP_1, 32]) + key
    if desc.startswith("raw(") and desc.endswith(")"):
        try:
            b = bytes.fromhex(desc[4:-1])
        except ValueError:
            raise DescriptorError("Raw script is not hex")
        if not b:
            raise DescriptorError("Raw script is empty")
        return b
    raise DescriptorError(
        f"'{desc}' is not a supported descriptor (supported: addr(ADDRESS), raw(HEX), rawtr(XONLYKEY))"
    )


def infer_descriptor(spk: bytes) -> str:
    t, extra = classify(spk)
    if t == "pubkey":
        d = f"pk({extra.hex()})"
    elif t == "witness_v1_taproot":
        d = f"rawtr({extra.hex()})"
    elif t == "multisig":
        m, keys = extra
        d = f"multi({m},{','.join(k.hex() for k in keys)})"
    else:
        addr = script_to_address(spk)
        d = f"addr({addr})" if addr else f"raw({spk.hex()})"
    return add_checksum(d)


def script_pubkey_json(spk: bytes, include_desc: bool = True) -> dict:
    t, _ = classify(spk)
    out = {"asm": script_to_asm(spk)}
    if include_desc:
        out["desc"] = infer_descriptor(spk)
    out["hex"] = spk.hex()
    addr = script_to_address(spk)
    if addr:
        out["address"] = addr
    out["type"] = t
    return out


def sha256_hex(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()

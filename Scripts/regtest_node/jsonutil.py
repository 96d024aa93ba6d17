"""JSON encoding with exact bitcoind-style amounts (8 decimals, no float rounding)."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from .serialization import COIN


class Amount:
    """A satoshi amount rendered as a JSON number in BTC with 8 decimals."""

    __slots__ = ("sats",)

    def __init__(self, sats: int):
        self.sats = int(sats)

    def to_json(self) -> str:
        s = self.sats
        sign = "-" if s < 0 else ""
        s = abs(s)
        return f"{sign}{s // COIN}.{s % COIN:08d}"

    def __eq__(self, other):
        return isinstance(other, Amount) and other.sats == self.sats

    def __repr__(self):
        return f"Amount({self.to_json()})"


def _enc(o, out: list) -> None:
    if o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, Amount):
        out.append(o.to_json())
    elif isinstance(o, str):
        out.append(json.dumps(o))
    elif isinstance(o, int):
        out.append(str(int(o)))
    elif isinstance(o, float):
        if o != o or o in (float("inf"), float("-inf")):
            out.append("null")
        else:
            out.append(format(o, ".16g"))  # UniValue uses setprecision(16)
    elif isinstance(o, Decimal):
        out.append(str(o))
    elif isinstance(o, dict):
        out.append("{")
        first = True
        for k, v in o.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(k)))
            out.append(":")
            _enc(v, out)
        out.append("}")
    elif isinstance(o, (list, tuple)):
        out.append("[")
        for i, v in enumerate(o):
            if i:
                out.append(",")
            _enc(v, out)
        out.append("]")
    else:
        out.append(json.dumps(str(o)))


def dumps(o) -> str:
    out: list = []
    _enc(o, out)
    return "".join(out)


def loads(s):
    return json.loads(s, parse_float=Decimal)


def amount_from_value(v) -> int:
    """Parse a BTC amount (number or numeric string) into satoshis, like AmountFromValue."""
    if isinstance(v, bool) or v is None:
        raise ValueError("Amount is not a number or string")
    if isinstance(v, str):
        try:
            d = Decimal(v)
        except InvalidOperation:
            raise ValueError("Invalid amount")
    elif isinstance(v, (int, Decimal)):
        d = Decimal(v)
    elif isinstance(v, float):
        d = Decimal(repr(v))
    else:
        raise ValueError("Amount is not a number or string")
    if not d.is_finite():
        raise ValueError("Invalid amount")
    sats = d * COIN
    if sats != sats.to_integral_value():
        raise ValueError("Invalid amount")
    sats = int(sats)
    if sats < 0:
        raise ValueError("Amount out of range")
    if sats > 21_000_000 * COIN:
        raise ValueError("Amount out of range")
    return sats

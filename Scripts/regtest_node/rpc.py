"""bitcoind-compatible JSON-RPC methods and the HTTP server."""

from __future__ import annotations

import base64
import hmac
import os
import socket
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import __version__
from .jsonutil import Amount, amount_from_value, dumps, loads
from .mempool import (
    DEFAULT_MIN_RELAY_FEE,
    MISSING_INPUTS,
    TxReject,
    fee_for,
)
from .node import BlockRejected, Node
from .script import (
    AddressError,
    DescriptorError,
    address_to_script,
    add_checksum,
    classify,
    has_valid_ops,
    is_unspendable,
    parse_descriptor,
    script_pubkey_json,
    script_to_asm,
    witness_program,
)
from .serialization import (
    Block,
    BlockHeader,
    DeserializationError,
    Reader,
    Tx,
    bits_to_target,
    block_work,
    difficulty,
    hex_to_hash,
)
from .util import log

# bitcoind RPC error codes
RPC_MISC_ERROR = -1
RPC_TYPE_ERROR = -3
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_INVALID_PARAMETER = -8
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_UTXO_SET = -27
RPC_IN_WARMUP = -28
RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_INVALID_PARAMS = -32602
RPC_INTERNAL_ERROR = -32603
RPC_PARSE_ERROR = -32700

DEFAULT_MAX_RAW_TX_FEE_RATE = 10_000_000  # 0.10 BTC/kvB in sat/kvB
FALLBACK_FEE_RATE = 2000  # sat/kvB returned by estimatesmartfee (2 sat/vB)


class RPCError(Exception):
    def __init__(self, code: int, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


# ---------------------------------------------------------------------------
# Parameter helpers
# ---------------------------------------------------------------------------

_TYPE_NAMES = {
    type(None): "null", bool: "bool", int: "number", Decimal: "number", float: "number",
    str: "string", list: "array", dict: "object",
}


def _tname(v) -> str:
    return _TYPE_NAMES.get(type(v), "unknown")


class Params:
    def __init__(self, method: str, raw, names: list[str]):
        self.method = method
        if raw is None:
            raw = []
        if isinstance(raw, dict):
            vals = [None] * len(names)
            present = [False] * len(names)
            for key, v in raw.items():
                if key not in names:
                    raise RPCError(RPC_INVALID_PARAMETER, f"Unknown named parameter {key}")
                i = names.index(key)
                vals[i] = v
                present[i] = True
            last = max([i for i, p in enumerate(present) if p], default=-1)
            self.vals = vals[: last + 1]
        elif isinstance(raw, list):
            if len(raw) > len(names):
                raise RPCError(RPC_MISC_ERROR, f"Too many parameters for method {method}: {len(raw)} > {len(names)}")
            self.vals = list(raw)
        else:
            raise RPCError(RPC_INVALID_REQUEST, "Params must be an array or object")
        self.names = names

    def has(self, i: int) -> bool:
        return i < len(self.vals) and self.vals[i] is not None

    def raw(self, i: int, default=None):
        return self.vals[i] if self.has(i) else default

    def _require(self, i: int):
        if not self.has(i):
            raise RPCError(RPC_MISC_ERROR, f"Missing required parameter '{self.names[i]}' for {self.method}")
        return self.vals[i]

    def int(self, i: int, default=None, required=False):
        if not self.has(i):
            if required:
                self._require(i)
            return default
        v = self.vals[i]
        if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_tname(v)} is not of expected type number")
        if isinstance(v, Decimal):
            if v != v.to_integral_value():
                raise RPCError(RPC_TYPE_ERROR, "JSON integer out of range")
            v = int(v)
        return v

    def str(self, i: int, default=None, required=False):
        if not self.has(i):
            if required:
                self._require(i)
            return default
        v = self.vals[i]
        if not isinstance(v, str):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_tname(v)} is not of expected type string")
        return v

    def bool(self, i: int, default=None):
        if not self.has(i):
            return default
        v = self.vals[i]
        if not isinstance(v, bool):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_tname(v)} is not of expected type bool")
        return v

    def list(self, i: int, default=None, required=False):
        if not self.has(i):
            if required:
                self._require(i)
            return default
        v = self.vals[i]
        if not isinstance(v, list):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_tname(v)} is not of expected type array")
        return v

    def hash(self, i: int, required=True) -> bytes:
        v = self.str(i, required=required)
        if v is None:
            return None
        return parse_hash(v, self.names[i])

    def amount(self, i: int, default_sats: int):
        if not self.has(i):
            return default_sats
        try:
            return amount_from_value(self.vals[i])
        except ValueError as e:
            raise RPCError(RPC_TYPE_ERROR, str(e))


def parse_hash(v: str, name: str) -> bytes:
    if len(v) != 64:
        raise RPCError(RPC_INVALID_PARAMETER, f"{name} must be of length 64 (not {len(v)}, for '{v}')")
    try:
        return hex_to_hash(v)
    except ValueError:
        raise RPCError(RPC_INVALID_PARAMETER, f"{name} must be hexadecimal string (not '{v}')")


def parse_fee_rate(p: Params, i: int, default: int) -> int:
    """BTC/kvB -> sat/kvB (like ParseFeeRate)."""
    if not p.has(i):
        return default
    try:
        sats = amount_from_value(p.vals[i])
    except ValueError as e:
        raise RPCError(RPC_TYPE_ERROR, str(e))
    if sats >= 100_000_000:
        raise RPCError(RPC_INVALID_PARAMETER, "Fee rates larger than or equal to 1BTC/kvB are not accepted")
    return sats


def decode_tx(hexstr: str, what: str = "TX decode failed") -> Tx:
    try:
        return Tx.from_hex(hexstr)
    except (ValueError, DeserializationError):
        raise RPCError(RPC_DESERIALIZATION_ERROR, f"{what}. Make sure the tx has at least one input.")


def output_script(dest: str) -> bytes:
    """Address or descriptor (addr()/raw()) -> scriptPubKey (for generateblock)."""
    try:
        return address_to_script(dest)
    except AddressError:
        pass
    try:
        return parse_descriptor(dest)
    except DescriptorError as e:
        raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, f"Error: Invalid address or descriptor ({e})")


# ---------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------


def vin_json(tx: Tx, prevouts=None) -> list:
    out = []
    for idx, i in enumerate(tx.vin):
        if tx.is_coinbase():
            d = {"coinbase": i.script_sig.hex()}
        else:
            d = {
                "txid": i.prevout.txid[::-1].hex(),
                "vout": i.prevout.n,
                "scriptSig": {"asm": script_to_asm(i.script_sig, True), "hex": i.script_sig.hex()},
            }
        if i.witness:
            d["txinwitness"] = [w.hex() for w in i.witness]
        if prevouts is not None and not tx.is_coinbase() and prevouts[idx] is not None:
            c = prevouts[idx]
            d["prevout"] = {
                "generated": bool(c.coinbase),
                "height": c.height,
                "value": Amount(c.value),
                "scriptPubKey": script_pubkey_json(c.spk),
            }
        d["sequence"] = i.sequence
        out.append(d)
    return out


def tx_json(tx: Tx, include_hex: bool = True, prevouts=None, show_prevout: bool = False) -> dict:
    d = {
        "txid": tx.txid,
        "hash": tx.wtxid,
        "version": tx.version,
        "size": tx.size,
        "vsize": tx.vsize,
        "weight": tx.weight,
        "locktime": tx.locktime,
        "vin": vin_json(tx, prevouts if show_prevout else None),
        "vout": [
            {"value": Amount(o.value), "n": n, "scriptPubKey": script_pubkey_json(o.script_pubkey)}
            for n, o in enumerate(tx.vout)
        ],
    }
    if prevouts is not None and not tx.is_coinbase() and all(c is not None for c in prevouts):
        d["fee"] = Amount(sum(c.value for c in prevouts) - sum(o.value for o in tx.vout))
    if include_hex:
        d["hex"] = tx.serialize().hex()
    return d


# ---------------------------------------------------------------------------
# RPC implementation
# ---------------------------------------------------------------------------


class RPC:
    def __init__(self, node: Node, on_stop):
        self.node = node
        self.on_stop = on_stop
        self.methods = {
            # name: (function, [param names])
            "getblockchaininfo": (self.getblockchaininfo, []),
            "getblockcount": (self.getblockcount, []),
            "getbestblockhash": (self.getbestblockhash, []),
            "getblockhash": (self.getblockhash, ["height"]),
            "getblockheader": (self.getblockheader, ["blockhash", "verbose"]),
            "getblock": (self.getblock, ["blockhash", "verbosity"]),
            "getchaintips": (self.getchaintips, []),
            "getdifficulty": (self.getdifficulty, []),
            "getrawtransaction": (self.getrawtransaction, ["txid", "verbose", "blockhash"]),
            "decoderawtransaction": (self.decoderawtransaction, ["hexstring", "iswitness"]),
            "gettxout": (self.gettxout, ["txid", "n", "include_mempool"]),
            "gettxoutsetinfo": (self.gettxoutsetinfo, ["hash_type", "hash_or_height", "use_index"]),
            "getrawmempool": (self.getrawmempool, ["verbose", "mempool_sequence"]),
            "getmempoolentry": (self.getmempoolentry, ["txid"]),
            "getmempoolinfo": (self.getmempoolinfo, []),
            "sendrawtransaction": (self.sendrawtransaction, ["hexstring", "maxfeerate", "maxburnamount"]),
            "testmempoolaccept": (self.testmempoolaccept, ["rawtxs", "maxfeerate"]),
            "estimatesmartfee": (self.estimatesmartfee, ["conf_target", "estimate_mode"]),
            "getnetworkinfo": (self.getnetworkinfo, []),
            "getconnectioncount": (lambda p: 0, []),
            "getmininginfo": (self.getmininginfo, []),
            "scantxoutset": (self.scantxoutset, ["action", "scanobjects"]),
            "generatetoaddress": (self.generatetoaddress, ["nblocks", "address", "maxtries"]),
            "generatetodescriptor": (self.generatetodescriptor, ["num_blocks", "descriptor", "maxtries"]),
            "generateblock": (self.generateblock, ["output", "transactions", "submit"]),
            "generatetoaddressfrom": (self.generatetoaddressfrom, ["parent_blockhash", "nblocks", "address"]),
            "submitblock": (self.submitblock, ["hexdata", "dummy"]),
            "validateaddress": (self.validateaddress, ["address"]),
            "uptime": (self.uptime, []),
            "stop": (self.stop, ["wait"]),
            "help": (self.help, ["command"]),
        }
        self.unlocked = {"uptime", "help", "stop"}

    def call(self, method, params):
        if not isinstance(method, str):
            raise RPCError(RPC_INVALID_REQUEST, "Method must be a string")
        entry = self.methods.get(method)
        if entry is None:
            raise RPCError(RPC_METHOD_NOT_FOUND, "Method not found")
        fn, names = entry
        p = Params(method, params, names)
        if method in self.unlocked:
            return fn(p)
        with self.node.lock:
            if self.node._closed:
                raise RPCError(RPC_IN_WARMUP, "Shutting down")
            return fn(p)

    # --- helpers -------------------------------------------------------------
    def _entry_or_404(self, hash_le: bytes, msg="Block not found"):
        e = self.node.entry_by_hash(hash_le)
        if e is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, msg)
        return e

    def _header_json(self, entry, ntx=None) -> dict:
        node = self.node
        hdr = BlockHeader.parse(Reader(bytes(entry.block_header)))
        tip_h = node.tip_height()
        active = node.in_active_chain(entry)
        d = {
            "hash": hdr.hash,
            "confirmations": tip_h - entry.height + 1 if active else -1,
            "height": entry.height,
            "version": hdr.version,
            "versionHex": f"{hdr.version & 0xFFFFFFFF:08x}",
            "merkleroot": hdr.merkle_root[::-1].hex(),
            "time": hdr.time,
            "mediantime": node.mtp(entry),
            "nonce": hdr.nonce,
            "bits": f"{hdr.bits:08x}",
            "target": f"{bits_to_target(hdr.bits):064x}",
            "difficulty": difficulty(hdr.bits),
            # regtest never retargets, so every block has the same work
            "chainwork": f"{(entry.height + 1) * block_work(hdr.bits):064x}",
        }
        if ntx is None:
            try:
                ntx = len(node.chainman.blocks[entry].transactions)
            except Exception:
                ntx = 0
        d["nTx"] = ntx
        if entry.height > 0:
            d["previousblockhash"] = hdr.prev_hash[::-1].hex()
        if active:
            nxt = node.entry_at(entry.height + 1)
            if nxt is not None:
                d["nextblockhash"] = str(nxt.block_hash)
        return d

    def _prevouts_for_block(self, block_hash: bytes, blk: Block):
        undo = self.node.store.undo_for_block(block_hash)
        res = []
        for pos, tx in enumerate(blk.txs):
            if tx.is_coinbase():
                res.append(None)
                continue
            coins = []
            for vin in range(len(tx.vin)):
                u = undo.get((pos, vin))
                coins.append(u[2] if u else None)
            res.append(coins)
        return res

    def _tip_hash(self) -> str:
        return str(self.node.tip_entry().block_hash)

    # --- blockchain ------------------------------------------------------------
    def getblockchaininfo(self, p):
        node = self.node
        tip = node.tip_entry()
        hdr = BlockHeader.parse(Reader(bytes(tip.block_header)))
        size = 0
        try:
            for f in os.scandir(node.netdir / "blocks"):
                if f.is_file():
                    size += f.stat().st_size
        except OSError:
            pass
        return {
            "chain": "regtest",
            "blocks": tip.height,
            "headers": node.chainman.best_entry.height,
            "bestblockhash": hdr.hash,
            "bits": f"{hdr.bits:08x}",
            "target": f"{bits_to_target(hdr.bits):064x}",
            "difficulty": difficulty(hdr.bits),
            "time": hdr.time,
            "mediantime": node.mtp(tip),
            "verificationprogress": 1,
            "initialblockdownload": hdr.time < time.time() - 24 * 3600,
            "chainwork": f"{(tip.height + 1) * block_work(hdr.bits):064x}",
            "size_on_disk": size,
            "pruned": False,
            "warnings": [],
        }

    def getblockcount(self, p):
        return self.node.tip_height()

    def getbestblockhash(self, p):
        return self._tip_hash()

    def getdifficulty(self, p):
        return difficulty(0x207FFFFF)

    def getblockhash(self, p):
        h = p.int(0, required=True)
        e = self.node.entry_at(h)
        if e is None:
            raise RPCError(RPC_INVALID_PARAMETER, "Block height out of range")
        return str(e.block_hash)

    def getblockheader(self, p):
        hb = p.hash(0)
        verbose = p.bool(1, True)
        e = self._entry_or_404(hb)
        if not verbose:
            return bytes(e.block_header).hex()
        return self._header_json(e)

    def getblock(self, p):
        hb = p.hash(0)
        verbosity = 1
        if p.has(1):
            v = p.raw(1)
            verbosity = (1 if v else 0) if isinstance(v, bool) else p.int(1)
        e = self._entry_or_404(hb)
        try:
            blk, raw = self.node.read_block(e)
        except Exception:
            raise RPCError(RPC_MISC_ERROR, "Block not available (not fully downloaded)")
        if verbosity <= 0:
            return raw.hex()
        d = self._header_json(e, ntx=len(blk.txs))
        d["strippedsize"] = blk.stripped_size
        d["size"] = blk.size
        d["weight"] = blk.weight
        if verbosity == 1:
            d["tx"] = [t.txid for t in blk.txs]
        else:
            prevouts = self._prevouts_for_block(hb, blk)
            d["tx"] = [
                tx_json(t, include_hex=True, prevouts=prevouts[i], show_prevout=verbosity >= 3)
                for i, t in enumerate(blk.txs)
            ]
        return d

    def getchaintips(self, p):
        node = self.node
        chain = node.active_chain()
        blocks = node.store.all_blocks()
        status = {h: s for h, _, _, s in blocks}
        has_child = {prev for _, prev, _, _ in blocks if prev is not None}
        tip = node.tip_entry()
        tip_hash = bytes(tip.block_hash)
        tips = [h for h, _, _, _ in blocks if h not in has_child]
        if tip_hash not in tips:
            tips.append(tip_hash)
        res = []
        for h in tips:
            e = node.entry_by_hash(h)
            if e is None:
                continue
            if h == tip_hash:
                res.append({"height": e.height, "hash": str(e.block_hash), "branchlen": 0, "status": "active"})
                continue
            if e in chain.block_tree_entries:
                continue  # an ancestor of the active tip (can only happen on inconsistent records)
            fork = e
            while fork.height > 0 and fork not in chain.block_tree_entries:
                fork = fork.previous
            branchlen = e.height - fork.height
            st = status.get(h, "headers")
            # invalid if any block of the branch is invalid
            walk = e
            invalid = False
            for _ in range(branchlen):
                if status.get(bytes(walk.block_hash)) == "invalid":
                    invalid = True
                    break
                walk = walk.previous
            if invalid:
                s = "invalid"
            elif st == "valid":
                s = "valid-fork"
            else:
                s = "valid-headers"
            res.append({"height": e.height, "hash": str(e.block_hash), "branchlen": branchlen, "status": s})
        res.sort(key=lambda r: (-r["height"], r["status"] != "active"))
        return res

    # --- transactions ----------------------------------------------------------
    def getrawtransaction(self, p):
        txid = p.hash(0)
        verbosity = 0
        if p.has(1):
            v = p.raw(1)
            verbosity = (1 if v else 0) if isinstance(v, bool) else p.int(1)
        blockhash = p.hash(2, required=False)
        node = self.node
        tx = None
        entry = None
        pos = None
        prevouts = None
        if blockhash is not None:
            entry = self._entry_or_404(blockhash, "Block hash not found")
            blk, _ = node.read_block(entry)
            for i, t in enumerate(blk.txs):
                if t.txid_bytes == txid:
                    tx, pos = t, i
                    break
            if tx is None:
                raise RPCError(
                    RPC_INVALID_ADDRESS_OR_KEY,
                    "No such transaction found in the provided block. Use gettransaction for wallet transactions.",
                )
        else:
            me = node.mempool.entries.get(txid)
            if me is not None:
                tx = me.tx
                prevouts = list(me.spent)
            else:
                loc = node.store.tx_location(txid)
                if loc is not None:
                    entry = node.entry_by_hash(loc[0])
                    if entry is not None:
                        blk, _ = node.read_block(entry)
                        pos = loc[1]
                        tx = blk.txs[pos]
            if tx is None:
                raise RPCError(
                    RPC_INVALID_ADDRESS_OR_KEY,
                    "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.",
                )
        if verbosity <= 0:
            return tx.serialize().hex()
        if entry is not None and pos is not None and verbosity >= 2 and not tx.is_coinbase():
            undo = node.store.undo_for_block(bytes(entry.block_hash))
            prevouts = [undo.get((pos, i), (None, None, None))[2] for i in range(len(tx.vin))]
        if prevouts is not None:
            # mempool coins carry height -1 for unconfirmed parents; show as next block height
            fixed = []
            for c in prevouts:
                if c is not None and c.height < 0:
                    from .index import Coin

                    c = Coin(c.value, c.spk, node.tip_height() + 1, c.coinbase)
                fixed.append(c)
            prevouts = fixed
        d = tx_json(tx, include_hex=True, prevouts=prevouts if verbosity >= 2 else None,
                    show_prevout=verbosity >= 2)
        if entry is not None:
            d["blockhash"] = str(entry.block_hash)
            active = node.in_active_chain(entry)
            if blockhash is not None:
                d["in_active_chain"] = active
            hdr = BlockHeader.parse(Reader(bytes(entry.block_header)))
            if active:
                d["confirmations"] = node.tip_height() - entry.height + 1
                d["time"] = hdr.time
                d["blocktime"] = hdr.time
            else:
                d["confirmations"] = 0
        return d

    def decoderawtransaction(self, p):
        tx = decode_tx(p.str(0, required=True), "TX decode failed")
        return tx_json(tx, include_hex=False)

    def gettxout(self, p):
        txid = p.hash(0)
        n = p.int(1, required=True)
        include_mempool = p.bool(2, True)
        node = self.node
        coin = None
        confirmations = 0
        if include_mempool:
            if (txid, n) in node.mempool.spends:
                return None
            c = node.mempool.get_output(txid, n)
            if c is not None:
                coin = c
        if coin is None:
            coin = node.store.get_coin(txid, n)
            if coin is None:
                return None
            confirmations = node.tip_height() - coin.height + 1
        return {
            "bestblock": self._tip_hash(),
            "confirmations": confirmations,
            "value": Amount(coin.value),
            "scriptPubKey": script_pubkey_json(coin.spk),
            "coinbase": bool(coin.coinbase),
        }

    def gettxoutsetinfo(self, p):
        node = self.node
        count, total = node.store.utxo_stats()
        tip = node.tip_entry()
        return {
            "height": tip.height,
            "bestblock": str(tip.block_hash),
            "txouts": count,
            "bogosize": 0,
            "total_amount": Amount(total),
            "transactions": 0,
            "disk_size": 0,
        }

    def _mempool_entry_json(self, e) -> dict:
        mp = self.node.mempool
        anc = mp.ancestors(e.txid)
        desc = mp.descendants(e.txid)
        signals = any(i.sequence < 0xFFFFFFFE for i in e.tx.vin) or any(
            any(i.sequence < 0xFFFFFFFE for i in mp.entries[a].tx.vin) for a in anc
        )
        return {
            "vsize": e.vsize,
            "weight": e.weight,
            "time": e.time,
            "height": e.height,
            "descendantcount": len(desc) + 1,
            "descendantsize": e.vsize + sum(mp.entries[d].vsize for d in desc),
            "ancestorcount": len(anc) + 1,
            "ancestorsize": e.vsize + sum(mp.entries[a].vsize for a in anc),
            "wtxid": e.tx.wtxid,
            "fees": {
                "base": Amount(e.fee),
                "modified": Amount(e.fee),
                "ancestor": Amount(e.fee + sum(mp.entries[a].fee for a in anc)),
                "descendant": Amount(e.fee + sum(mp.entries[d].fee for d in desc)),
            },
            "depends": sorted(t[::-1].hex() for t in e.parents),
            "spentby": sorted(t[::-1].hex() for t in e.children),
            "bip125-replaceable": signals,
            "unbroadcast": False,
        }

    def getrawmempool(self, p):
        verbose = p.bool(0, False)
        seq = p.bool(1, False)
        entries = self.node.mempool.ordered()
        if verbose:
            if seq:
                raise RPCError(RPC_INVALID_PARAMETER, "Verbose results cannot contain mempool sequence values.")
            return {e.tx.txid: self._mempool_entry_json(e) for e in entries}
        ids = [e.tx.txid for e in entries]
        if seq:
            return {"txids": ids, "mempool_sequence": self.node.mempool._seq}
        return ids

    def getmempoolentry(self, p):
        txid = p.hash(0)
        e = self.node.mempool.entries.get(txid)
        if e is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")
        return self._mempool_entry_json(e)

    def getmempoolinfo(self, p):
        mp = self.node.mempool
        return {
            "loaded": True,
            "size": len(mp.entries),
            "bytes": sum(e.vsize for e in mp.entries.values()),
            "usage": sum(e.tx.size * 2 for e in mp.entries.values()),
            "total_fee": Amount(sum(e.fee for e in mp.entries.values())),
            "maxmempool": 300_000_000,
            "mempoolminfee": Amount(DEFAULT_MIN_RELAY_FEE),
            "minrelaytxfee": Amount(DEFAULT_MIN_RELAY_FEE),
            "incrementalrelayfee": Amount(1000),
            "unbroadcastcount": 0,
            "fullrbf": False,
        }

    def sendrawtransaction(self, p):
        tx = decode_tx(p.str(0, required=True))
        max_rate = parse_fee_rate(p, 1, DEFAULT_MAX_RAW_TX_FEE_RATE)
        max_burn = p.amount(2, 0)
        for o in tx.vout:
            if (is_unspendable(o.script_pubkey) or not has_valid_ops(o.script_pubkey)) and o.value > max_burn:
                raise RPCError(RPC_VERIFY_ERROR, "Unspendable output exceeds maximum configured by user (maxburnamount)")
        node = self.node
        txid = tx.txid_bytes
        if txid in node.mempool.entries:
            return tx.txid  # already in mempool: bitcoind just (re)broadcasts
        for n in range(len(tx.vout)):
            if node.store.get_coin(txid, n) is not None:
                raise RPCError(RPC_VERIFY_ALREADY_IN_UTXO_SET, "Transaction outputs already in utxo set")
        try:
            fee, coins, parents = node.mempool.check(tx)
        except TxReject as r:
            log(f"tx rejected txid={tx.txid} reason={r.full()}")
            code = RPC_VERIFY_ERROR if r.kind == MISSING_INPUTS else RPC_VERIFY_REJECTED
            raise RPCError(code, r.full())
        if max_rate > 0 and fee > fee_for(max_rate, tx.vsize):
            log(f"tx rejected txid={tx.txid} reason=max-fee-exceeded")
            raise RPCError(RPC_VERIFY_ERROR, "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
        node.mempool.add(tx, fee, coins, parents)
        log(f"tx accepted txid={tx.txid} wtxid={tx.wtxid} vsize={tx.vsize} fee={fee} mempool_size={len(node.mempool.entries)}")
        return tx.txid

    def testmempoolaccept(self, p):
        rawtxs = p.list(0, required=True)
        max_rate = parse_fee_rate(p, 1, DEFAULT_MAX_RAW_TX_FEE_RATE)
        if not 1 <= len(rawtxs) <= 25:
            raise RPCError(RPC_INVALID_PARAMETER, "Array must contain between 1 and 25 transactions.")
        txs = []
        for h in rawtxs:
            if not isinstance(h, str):
                raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_tname(h)} is not of expected type string")
            try:
                txs.append(Tx.from_hex(h))
            except (ValueError, DeserializationError) as e:
                raise RPCError(RPC_DESERIALIZATION_ERROR, f"TX decode failed: {e} Make sure the tx has at least one input.")
        node = self.node
        extra_outputs: dict = {}
        extra_spent: set = set()
        results = []
        from .index import Coin

        for tx in txs:
            r = {"txid": tx.txid, "wtxid": tx.wtxid}
            try:
                fee, coins, parents = node.mempool.check(tx, extra_outputs, extra_spent)
            except TxReject as rej:
                log(f"testmempoolaccept: tx rejected txid={tx.txid} reason={rej.full()}")
                r["allowed"] = False
                r["reject-reason"] = "missing-inputs" if rej.kind == MISSING_INPUTS else rej.reason
                r["reject-details"] = rej.full()
                results.append(r)
                continue
            if max_rate > 0 and fee > fee_for(max_rate, tx.vsize):
                r["allowed"] = False
                r["reject-reason"] = "max-fee-exceeded"
                results.append(r)
                continue
            r["allowed"] = True
            r["vsize"] = tx.vsize
            r["fees"] = {
                "base": Amount(fee),
                "effective-feerate": Amount(fee * 1000 // tx.vsize),
                "effective-includes": [tx.wtxid],
            }
            for n, o in enumerate(tx.vout):
                extra_outputs[(tx.txid_bytes, n)] = Coin(o.value, o.script_pubkey, -1, False)
            for i in tx.vin:
                extra_spent.add(i.prevout.key())
            results.append(r)
        return results

    def estimatesmartfee(self, p):
        target = p.int(0, required=True)
        mode = p.str(1, "economical")
        if mode.lower() not in ("unset", "economical", "conservative"):
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid estimate_mode parameter, must be one of: \"unset\", \"economical\", \"conservative\"")
        if target < 1 or target > 1008:
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid conf_target, must be between 1 and 1008")
        return {"feerate": Amount(FALLBACK_FEE_RATE), "blocks": max(2, target)}

    # --- network / misc ---------------------------------------------------------
    def getnetworkinfo(self, p):
        return {
            "version": 290000,
            "subversion": f"/regtest-node:{__version__}(libbitcoinkernel)/",
            "protocolversion": 70016,
            "localservices": "0000000000000409",
            "localservicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED"],
            "localrelay": True,
            "timeoffset": 0,
            "networkactive": False,
            "connections": 0,
            "connections_in": 0,
            "connections_out": 0,
            "networks": [],
            "relayfee": Amount(DEFAULT_MIN_RELAY_FEE),
            "incrementalfee": Amount(1000),
            "localaddresses": [],
            "warnings": [],
        }

    def getmininginfo(self, p):
        node = self.node
        return {
            "blocks": node.tip_height(),
            "difficulty": difficulty(0x207FFFFF),
            "networkhashps": 0,
            "pooledtx": len(node.mempool.entries),
            "chain": "regtest",
            "warnings": [],
        }

    def validateaddress(self, p):
        addr = p.str(0, required=True)
        try:
            spk = address_to_script(addr)
        except AddressError:
            return {"isvalid": False, "address": addr, "error": "Invalid or unsupported Segwit (Bech32) or Base58 encoding."}
        t, _ = classify(spk)
        d = {"isvalid": True, "address": addr, "scriptPubKey": spk.hex(), "isscript": t == "scripthash"}
        wp = witness_program(spk)
        d["iswitness"] = wp is not None
        if wp is not None:
            d["witness_version"] = wp[0]
            d["witness_program"] = wp[1].hex()
        return d

    def uptime(self, p):
        return int(time.time() - self.node.start_time)

    def stop(self, p):
        self.on_stop()
        return "regtest-node stopping"

    def help(self, p):
        cmd = p.str(0)
        if cmd:
            if cmd not in self.methods:
                return f"help: unknown command: {cmd}"
            return f"{cmd} " + " ".join(self.methods[cmd][1])
        return "\n".join(sorted(f"{m} " + " ".join(f"( {n} )" for n in a[1]) for m, a in self.methods.items()))

    # --- utxo scan --------------------------------------------------------------
    def scantxoutset(self, p):
        action = p.str(0, required=True)
        if action == "abort":
            return False
        if action == "status":
            return None
        if action != "start":
            raise RPCError(RPC_INVALID_PARAMETER, f"Invalid action '{action}'")
        objs = p.list(1)
        if objs is None:
            raise RPCError(RPC_MISC_ERROR, "scanobjects argument is required for the start action")
        descs = {}
        for o in objs:
            if isinstance(o, dict):
                d = o.get("desc")
            else:
                d = o
            if not isinstance(d, str):
                raise RPCError(RPC_INVALID_PARAMETER, "Scan object needs to be either a string or an object")
            try:
                spk = parse_descriptor(d)
            except DescriptorError as e:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, str(e))
            descs[spk] = add_checksum(d.split("#", 1)[0])
        node = self.node
        tip = node.tip_entry()
        unspents = []
        total = 0
        for txid, vout, coin in node.store.coins_by_spk(list(descs)):
            e = node.entry_at(coin.height)
            unspents.append({
                "txid": txid[::-1].hex(),
                "vout": vout,
                "scriptPubKey": coin.spk.hex(),
                "desc": descs[coin.spk],
                "amount": Amount(coin.value),
                "coinbase": coin.coinbase,
                "height": coin.height,
                "blockhash": str(e.block_hash) if e is not None else None,
            })
            total += coin.value
        unspents.sort(key=lambda u: (u["height"], u["txid"], u["vout"]))
        count, _ = node.store.utxo_stats()
        return {
            "success": True,
            "txouts": count,
            "height": tip.height,
            "bestblock": str(tip.block_hash),
            "unspents": unspents,
            "total_amount": Amount(total),
        }

    # --- mining -----------------------------------------------------------------
    def _generate(self, n: int, spk: bytes, parent=None, use_mempool=True):
        if n < 0:
            raise RPCError(RPC_INVALID_PARAMETER, "nblocks must be non-negative")
        try:
            return self.node.generate(n, spk, parent, use_mempool)
        except BlockRejected as e:
            raise RPCError(RPC_INTERNAL_ERROR, f"ProcessNewBlock, block not accepted: {e.reason}")

    def generatetoaddress(self, p):
        n = p.int(0, required=True)
        addr = p.str(1, required=True)
        try:
            spk = address_to_script(addr)
        except AddressError:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address")
        return self._generate(n, spk)

    def generatetodescriptor(self, p):
        n = p.int(0, required=True)
        d = p.str(1, required=True)
        try:
            spk = parse_descriptor(d)
        except DescriptorError as e:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, str(e))
        return self._generate(n, spk)

    def generatetoaddressfrom(self, p):
        parent_hash = p.hash(0)
        n = p.int(1, required=True)
        addr = p.str(2, required=True)
        parent = self._entry_or_404(parent_hash)
        try:
            spk = address_to_script(addr)
        except AddressError:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address")
        # Branch blocks never take mempool transactions: deterministic reorg tests.
        return self._generate(n, spk, parent, use_mempool=False)

    def generateblock(self, p):
        spk = output_script(p.str(0, required=True))
        items = p.list(1, required=True)
        submit = p.bool(2, True)
        node = self.node
        from .index import Coin

        txs = []
        fees = 0
        view: dict = {}
        spent: set = set()
        for it in items:
            if not isinstance(it, str):
                raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_tname(it)} is not of expected type string")
            tx = None
            if len(it) == 64:
                try:
                    txid = hex_to_hash(it)
                except ValueError:
                    txid = None
                if txid is not None:
                    e = node.mempool.entries.get(txid)
                    if e is None:
                        raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, f"Transaction {it} not in mempool.")
                    tx = e.tx
            if tx is None:
                try:
                    tx = Tx.from_hex(it)
                except (ValueError, DeserializationError):
                    raise RPCError(RPC_DESERIALIZATION_ERROR, f"Transaction decode failed for {it}. Make sure the tx has at least one input.")
            # fee: inputs from the chain or from earlier txs of this block
            value_in = 0
            for i in tx.vin:
                k = i.prevout.key()
                c = view.get(k) or (None if k in spent else node.store.get_coin(*k))
                if c is None or k in spent:
                    raise RPCError(RPC_VERIFY_ERROR, "TestBlockValidity failed: bad-txns-inputs-missingorspent")
                spent.add(k)
                value_in += c.value
            value_out = sum(o.value for o in tx.vout)
            if value_in < value_out:
                raise RPCError(RPC_VERIFY_ERROR, "TestBlockValidity failed: bad-txns-in-belowout")
            fees += value_in - value_out
            for n, o in enumerate(tx.vout):
                view[(tx.txid_bytes, n)] = Coin(o.value, o.script_pubkey, -1, False)
            txs.append(tx)
        blk = node.build_block(node.tip_entry(), spk, txs, fees)
        raw = blk.serialize()
        if not submit:
            return {"hash": blk.hash, "hex": raw.hex()}
        status, reason = node.submit_block(raw)
        if status not in ("connected", "stored"):
            raise RPCError(RPC_VERIFY_ERROR, f"TestBlockValidity failed: {reason or status}")
        return {"hash": blk.hash}

    def submitblock(self, p):
        h = p.str(0, required=True)
        try:
            raw = bytes.fromhex(h)
            blk = Block.from_bytes(raw)
        except (ValueError, DeserializationError):
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block decode failed")
        if not blk.txs or not blk.txs[0].is_coinbase():
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block does not start with a coinbase")
        status, reason = self.node.submit_block(raw)
        if status == "connected":
            return None
        if status == "stored":
            return "inconclusive"
        if status == "duplicate":
            return "duplicate"
        return (reason or "rejected").split(",")[0]


# ---------------------------------------------------------------------------
# HTTP / JSON-RPC transport
# ---------------------------------------------------------------------------

MAX_BODY = 64 * 1024 * 1024


class RPCServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, rpc: RPC, auth_pairs: list[tuple[str, str]]):
        self.rpc = rpc
        self.auth_tokens = [
            base64.b64encode(f"{u}:{pw}".encode()).decode() for u, pw in auth_pairs
        ]
        super().__init__(addr, Handler)


def _status_for_error(code: int) -> int:
    if code == RPC_INVALID_REQUEST:
        return 400
    if code == RPC_METHOD_NOT_FOUND:
        return 404
    return 500


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "regtest-node/" + __version__

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # silence default access log
        pass

    def setup(self):
        super().setup()
        try:  # avoid Nagle/delayed-ACK stalls on keep-alive connections
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def _send(self, status: int, body: bytes, ctype="application/json", extra=None):
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        # headers and body in a single write
        self._headers_buffer.append(b"\r\n")
        self.wfile.write(b"".join(self._headers_buffer) + (body or b""))
        self._headers_buffer = []

    def _authorized(self) -> bool:
        h = self.headers.get("Authorization", "")
        if not h.startswith("Basic "):
            return False
        token = h[6:].strip()
        ok = False
        for t in self.server.auth_tokens:
            if hmac.compare_digest(token.encode(), t.encode()):
                ok = True
        return ok

    def _read_body(self) -> bytes | None:
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    return None
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        tl = self.rfile.readline(65537)
                        if tl in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        n = int(length)
        if n < 0 or n > MAX_BODY:
            return None
        return self.rfile.read(n)

    def do_GET(self):
        self._send(405, b"JSONRPC server handles only POST requests", "text/html")

    do_PUT = do_GET
    do_DELETE = do_GET
    do_HEAD = do_GET

    def do_POST(self):
        try:
            body = self._read_body()
        except (ValueError, OSError):
            body = None
        if body is None:
            self.close_connection = True
            self._send(400, b"bad request body", "text/plain")
            return
        if not self._authorized():
            log(f"ThreadRPCServer incorrect password attempt from {self.client_address[0]}")
            time.sleep(0.05)
            self._send(401, b"", extra={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
            return
        status, out = self.server.rpc_dispatch(body)
        if status == 204:
            self._send(204, b"")
        else:
            self._send(status, out.encode())


def _reply(req_id, result, error, v2: bool) -> dict:
    if v2:
        r = {"jsonrpc": "2.0"}
        if error is not None:
            r["error"] = error
        else:
            r["result"] = result
        r["id"] = req_id
        return r
    return {"result": result, "error": error, "id": req_id}


def process_request(rpc: RPC, req) -> tuple[int, dict | None]:
    """Returns (http_status, reply or None for notifications)."""
    if not isinstance(req, dict):
        return 400, _reply(None, None, {"code": RPC_INVALID_REQUEST, "message": "Invalid Request object"}, False)
    req_id = req.get("id")
    ver = req.get("jsonrpc")
    v2 = False
    if ver is not None:
        if ver == "2.0":
            v2 = True
        elif ver != "1.0":
            return 400, _reply(req_id, None, {"code": RPC_INVALID_REQUEST, "message": "JSON-RPC version not supported"}, False)
    is_notification = v2 and "id" not in req
    method = req.get("method")
    try:
        if method is None:
            raise RPCError(RPC_INVALID_REQUEST, "Missing method")
        params = req.get("params")
        if params is not None and not isinstance(params, (list, dict)):
            raise RPCError(RPC_INVALID_REQUEST, "Params must be an array or object")
        result = rpc.call(method, params)
        if is_notification:
            return 204, None
        return 200, _reply(req_id, result, None, v2)
    except RPCError as e:
        if is_notification:
            return 204, None
        err = {"code": e.code, "message": e.message}
        return (200 if v2 else _status_for_error(e.code)), _reply(req_id, None, err, v2)
    except Exception as e:  # never crash the server
        import traceback

        log(f"internal error in {method}: {e!r}\n{traceback.format_exc()}")
        if is_notification:
            return 204, None
        err = {"code": RPC_MISC_ERROR, "message": f"internal error: {e}"}
        return (200 if v2 else 500), _reply(req_id, None, err, v2)


def _dispatch(self: RPCServer, body: bytes) -> tuple[int, str]:
    try:
        req = loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return 500, dumps(_reply(None, None, {"code": RPC_PARSE_ERROR, "message": "Parse error"}, False))
    if isinstance(req, list):
        replies = []
        for r in req:
            _, rep = process_request(self.rpc, r)
            if rep is not None:
                replies.append(rep)
        return 200, dumps(replies)
    if isinstance(req, dict):
        status, rep = process_request(self.rpc, req)
        if rep is None:
            return 204, ""
        return status, dumps(rep)
    return 500, dumps(_reply(None, None, {"code": RPC_PARSE_ERROR, "message": "Top-level object parse error"}, False))


RPCServer.rpc_dispatch = _dispatch


def serve_in_thread(server: RPCServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="rpc-server", daemon=True)
    t.start()
    return t


__all__ = ["RPC", "RPCServer", "serve_in_thread"]

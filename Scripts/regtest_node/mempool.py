"""Transaction memory pool with bitcoind-like acceptance rules.

Consensus script validity of every input is decided by libbitcoinkernel's
script interpreter (btck_script_pubkey_verify with all spent outputs and
all consensus flags). Everything else here (UTXO lookup, coinbase maturity,
value checks, finality, BIP68, standardness, fees) is re-implemented after
Bitcoin Core's AcceptToMemoryPool, since the kernel library has no mempool.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pbk
from pbk.script import PrecomputedTransactionData

from .index import Coin
from .script import (
    ScriptParseError,
    classify,
    is_push_only,
    is_unspendable,
    iter_ops,
    witness_program,
)
from .serialization import COIN, MAX_MONEY, Tx

COINBASE_MATURITY = 100
MAX_BLOCK_WEIGHT = 4_000_000
MAX_STANDARD_TX_WEIGHT = 400_000
MIN_STANDARD_TX_NONWITNESS_SIZE = 65
MAX_STANDARD_SCRIPTSIG_SIZE = 1650
TX_MAX_STANDARD_VERSION = 3
MAX_OP_RETURN_RELAY = 100_000  # Bitcoin Core v30 default -datacarriersize
DEFAULT_MIN_RELAY_FEE = 1000  # sat/kvB (1 sat/vB)
DUST_RELAY_FEE = 3000  # sat/kvB
DEFAULT_ANCESTOR_LIMIT = 25
DEFAULT_DESCENDANT_LIMIT = 25
LOCKTIME_THRESHOLD = 500_000_000
SEQUENCE_FINAL = 0xFFFFFFFF
SEQUENCE_LOCKTIME_DISABLE_FLAG = 1 << 31
SEQUENCE_LOCKTIME_TYPE_FLAG = 1 << 22
SEQUENCE_LOCKTIME_MASK = 0x0000FFFF
SEQUENCE_LOCKTIME_GRANULARITY = 9

SCRIPT_FLAGS = pbk.ScriptVerificationFlags.ALL
# Bitcoin Core >= 30 reports every script failure in the mempool as
# "mempool-script-verify-flag-failed (<script error>)". The kernel API only
# returns valid/invalid, so the script error detail is not available.
SCRIPT_REJECT = "mempool-script-verify-flag-failed"
POLICY_SCRIPT_REJECT = "mempool-script-verify-flag-failed"
SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0

_OP_SUCCESS = {80, 98, 126, 127, 128, 129, 131, 132, 133, 134, 137, 138, 141, 142,
               149, 150, 151, 152, 153} | set(range(187, 255))


def _has_op_success(script: bytes) -> bool:
    try:
        for op, _ in iter_ops(script):
            if op in _OP_SUCCESS:
                return True
    except ScriptParseError:
        return False
    return False


def _ecdsa_sig_policy_error(sig: bytes):
    """STRICTENC/DERSIG/LOW_S checks of an ECDSA signature with hashtype byte."""
    der, ht = sig[:-1], sig[-1]
    if ht & ~0x80 not in (1, 2, 3):
        return "Signature hash type missing or not understood"
    if len(der) < 8 or len(der) > 72 or der[0] != 0x30 or der[1] != len(der) - 2 or der[2] != 0x02:
        return "Non-canonical DER signature"
    lr = der[3]
    if 4 + lr + 2 > len(der) or der[4 + lr] != 0x02:
        return "Non-canonical DER signature"
    ls = der[5 + lr]
    if 6 + lr + ls != len(der) or lr == 0 or ls == 0:
        return "Non-canonical DER signature"
    r = der[4 : 4 + lr]
    s_ = der[6 + lr :]
    for v in (r, s_):
        if v[0] & 0x80 or (len(v) > 1 and v[0] == 0 and not (v[1] & 0x80)):
            return "Non-canonical DER signature"
    if int.from_bytes(s_, "big") > SECP256K1_HALF_N:
        return "Non-canonical signature: S value is unnecessarily high"
    return None

# Validation result categories (like TxValidationResult)
CONSENSUS = "consensus"
MISSING_INPUTS = "missing-inputs"
CONFLICT = "conflict"
POLICY = "policy"
PREMATURE = "premature-spend"
ALREADY_IN_MEMPOOL = "already-in-mempool"
NOT_STANDARD = "not-standard"


class TxReject(Exception):
    def __init__(self, reason: str, debug: str = "", kind: str = POLICY):
        self.reason = reason
        self.debug = debug
        self.kind = kind
        super().__init__(self.full())

    def full(self) -> str:
        return self.reason + (", " + self.debug if self.debug else "")


def fee_for(rate_sat_per_kvb: int, vsize: int) -> int:
    """CFeeRate::GetFee."""
    fee = rate_sat_per_kvb * vsize // 1000
    if fee == 0 and vsize != 0 and rate_sat_per_kvb > 0:
        fee = 1
    return fee


def dust_threshold(spk: bytes, value_size: int | None = None) -> int:
    """GetDustThreshold with the default dust relay fee (3000 sat/kvB)."""
    if is_unspendable(spk):
        return 0
    from .serialization import ser_compact_size

    size = 8 + len(ser_compact_size(len(spk))) + len(spk)
    if witness_program(spk) is not None:
        size += 32 + 4 + 1 + (107 // 4) + 4
    else:
        size += 32 + 4 + 1 + 107 + 4
    return fee_for(DUST_RELAY_FEE, size)


def fmt_btc(sats: int) -> str:
    return f"{sats // COIN}.{sats % COIN:08d}"


@dataclass
class MempoolEntry:
    tx: Tx
    fee: int
    time: int
    height: int
    seq: int
    spent: list  # list[Coin] per input (mempool parents as height=-1 placeholders resolved)
    parents: set = field(default_factory=set)
    children: set = field(default_factory=set)

    @property
    def txid(self) -> bytes:
        return self.tx.txid_bytes

    @property
    def vsize(self) -> int:
        return self.tx.vsize

    @property
    def weight(self) -> int:
        return self.tx.weight


class Mempool:
    def __init__(self, node):
        self.node = node
        self.entries: dict[bytes, MempoolEntry] = {}
        self.by_wtxid: dict[bytes, bytes] = {}
        self.spends: dict[tuple, bytes] = {}
        self._seq = 0

    # --- queries -------------------------------------------------------------
    def __contains__(self, txid: bytes) -> bool:
        return txid in self.entries

    def get_output(self, txid: bytes, n: int):
        e = self.entries.get(txid)
        if e is None or n >= len(e.tx.vout):
            return None
        o = e.tx.vout[n]
        return Coin(o.value, o.script_pubkey, -1, False)  # -1 == MEMPOOL_HEIGHT

    def ancestors(self, txid: bytes) -> set:
        out: set = set()
        stack = list(self.entries[txid].parents)
        while stack:
            p = stack.pop()
            if p in out:
                continue
            out.add(p)
            stack.extend(self.entries[p].parents)
        return out

    def descendants(self, txid: bytes) -> set:
        out: set = set()
        stack = list(self.entries[txid].children)
        while stack:
            c = stack.pop()
            if c in out:
                continue
            out.add(c)
            stack.extend(self.entries[c].children)
        return out

    def ordered(self) -> list[MempoolEntry]:
        return sorted(self.entries.values(), key=lambda e: e.seq)

    # --- acceptance ----------------------------------------------------------
    def check_transaction(self, tx: Tx) -> None:
        """Consensus CheckTransaction (context free)."""
        if not tx.vin:
            raise TxReject("bad-txns-vin-empty", kind=CONSENSUS)
        if not tx.vout:
            raise TxReject("bad-txns-vout-empty", kind=CONSENSUS)
        if tx.stripped_size * 4 > MAX_BLOCK_WEIGHT:
            raise TxReject("bad-txns-oversize", kind=CONSENSUS)
        total = 0
        for o in tx.vout:
            if o.value < 0:
                raise TxReject("bad-txns-vout-negative", kind=CONSENSUS)
            if o.value > MAX_MONEY:
                raise TxReject("bad-txns-vout-toolarge", kind=CONSENSUS)
            total += o.value
            if total > MAX_MONEY:
                raise TxReject("bad-txns-txouttotal-toolarge", kind=CONSENSUS)
        seen = set()
        for i in tx.vin:
            k = i.prevout.key()
            if k in seen:
                raise TxReject("bad-txns-inputs-duplicate", kind=CONSENSUS)
            seen.add(k)
        if tx.is_coinbase():
            return
        for i in tx.vin:
            if i.prevout.is_null():
                raise TxReject("bad-txns-prevout-null", kind=CONSENSUS)

    def check_standard(self, tx: Tx) -> None:
        """Subset of IsStandardTx (Bitcoin Core v30 defaults)."""
        if tx.version < 1 or tx.version > TX_MAX_STANDARD_VERSION:
            raise TxReject("version", kind=NOT_STANDARD)
        if tx.weight > MAX_STANDARD_TX_WEIGHT:
            raise TxReject("tx-size", kind=NOT_STANDARD)
        for i in tx.vin:
            if len(i.script_sig) > MAX_STANDARD_SCRIPTSIG_SIZE:
                raise TxReject("scriptsig-size", kind=NOT_STANDARD)
            if not is_push_only(i.script_sig):
                raise TxReject("scriptsig-not-pushonly", kind=NOT_STANDARD)
        datacarrier = 0
        for o in tx.vout:
            t, extra = classify(o.script_pubkey)
            if t == "nonstandard":
                raise TxReject("scriptpubkey", kind=NOT_STANDARD)
            if t == "multisig":
                m, keys = extra
                if len(keys) > 3 or m < 1:
                    raise TxReject("scriptpubkey", kind=NOT_STANDARD)
            if t == "nulldata":
                datacarrier += len(o.script_pubkey)
                continue
        if datacarrier > MAX_OP_RETURN_RELAY:
            raise TxReject("datacarrier", kind=NOT_STANDARD)
        for o in tx.vout:
            if o.value < dust_threshold(o.script_pubkey):
                raise TxReject("dust", kind=NOT_STANDARD)
        if tx.stripped_size < MIN_STANDARD_TX_NONWITNESS_SIZE:
            raise TxReject("tx-size-small", kind=NOT_STANDARD)

    def is_final(self, tx: Tx, height: int, block_time: int) -> bool:
        if tx.locktime == 0:
            return True
        limit = height if tx.locktime < LOCKTIME_THRESHOLD else block_time
        if tx.locktime < limit:
            return True
        return all(i.sequence == SEQUENCE_FINAL for i in tx.vin)

    def check_sequence_locks(self, tx: Tx, coins: list[Coin]) -> None:
        """BIP68 (CalculateSequenceLocks + EvaluateSequenceLocks at the tip)."""
        if tx.version < 2:
            return
        node = self.node
        tip_h = node.tip_height()
        next_h = tip_h + 1
        tip_mtp = node.mtp_at_height(tip_h)
        min_height = -1
        min_time = -1
        for txin, coin in zip(tx.vin, coins):
            seq = txin.sequence
            if seq & SEQUENCE_LOCKTIME_DISABLE_FLAG:
                continue
            coin_h = next_h if coin.height < 0 else coin.height
            if seq & SEQUENCE_LOCKTIME_TYPE_FLAG:
                coin_time = node.mtp_at_height(max(coin_h - 1, 0))
                min_time = max(
                    min_time,
                    coin_time + ((seq & SEQUENCE_LOCKTIME_MASK) << SEQUENCE_LOCKTIME_GRANULARITY) - 1,
                )
            else:
                min_height = max(min_height, coin_h + (seq & SEQUENCE_LOCKTIME_MASK) - 1)
        if min_height >= next_h or min_time >= tip_mtp:
            raise TxReject("non-BIP68-final", kind=PREMATURE)

    def verify_scripts(self, tx: Tx, coins: list[Coin]) -> None:
        """Every input is verified by libbitcoinkernel with all consensus flags."""
        ktx = pbk.Transaction(tx.serialize(True))
        spent = [pbk.TransactionOutput(pbk.ScriptPubkey(c.spk), c.value) for c in coins]
        pre = PrecomputedTransactionData(ktx, spent)
        for idx, c in enumerate(coins):
            try:
                ok = pbk.ScriptPubkey(c.spk).verify(c.value, ktx, pre, idx, SCRIPT_FLAGS)
            except pbk.ScriptVerifyException as e:  # flags/spent-outputs misuse: internal error
                raise TxReject(
                    SCRIPT_REJECT,
                    f"input {idx}: libbitcoinkernel script verification error {e.status.name}",
                    kind=CONSENSUS,
                )
            if not ok:
                prev = tx.vin[idx].prevout
                raise TxReject(
                    SCRIPT_REJECT,
                    f"input {idx} of {tx.txid} (wtxid {tx.wtxid}), spending {prev.txid[::-1].hex()}:{prev.n}: "
                    "script verification failed in libbitcoinkernel (flags P2SH,DERSIG,NULLDUMMY,"
                    "CHECKLOCKTIMEVERIFY,CHECKSEQUENCEVERIFY,WITNESS,TAPROOT)",
                    kind=CONSENSUS,
                )

    def policy_script_checks(self, tx: Tx, coins: list[Coin]) -> None:
        """Approximation (in python) of the most relevant non-consensus script
        policy rules: the kernel API only accepts consensus verification flags."""
        for idx, (txin, c) in enumerate(zip(tx.vin, coins)):
            spk = c.spk
            t, _ = classify(spk)
            if t == "scripthash" and txin.script_sig:
                try:
                    pushes = [d for _, d in iter_ops(txin.script_sig)]
                except ScriptParseError:
                    pushes = []
                if pushes and pushes[-1] is not None:
                    spk = pushes[-1]  # redeem script (P2SH-wrapped segwit)
            wp = witness_program(spk)
            if wp is None:
                continue
            ver, prog = wp
            stack = list(txin.witness)
            if ver == 0 and len(prog) == 20:
                if len(stack) == 2:
                    sig, pub = stack
                    if not (len(pub) == 33 and pub[0] in (2, 3)):
                        raise TxReject(POLICY_SCRIPT_REJECT + " (Using non-compressed keys in segwit)", kind=POLICY)
                    if sig:
                        err = _ecdsa_sig_policy_error(sig)
                        if err:
                            raise TxReject(f"{POLICY_SCRIPT_REJECT} ({err})", kind=POLICY)
            elif ver == 0 and len(prog) == 32:
                if stack:
                    if len(stack[-1]) > 3600 or len(stack) - 1 > 100 or any(len(x) > 80 for x in stack[:-1]):
                        raise TxReject("bad-witness-nonstandard", kind=POLICY)
            elif ver == 1 and len(prog) == 32 and not (t == "scripthash"):
                if len(stack) >= 2 and stack[-1][:1] == b"\x50":
                    raise TxReject("bad-witness-nonstandard", kind=POLICY)  # annex
                if len(stack) >= 2:
                    control, script = stack[-1], stack[-2]
                    if control and (control[0] & 0xFE) != 0xC0:
                        raise TxReject(
                            POLICY_SCRIPT_REJECT + " (Taproot version reserved for soft-fork upgrades)", kind=POLICY
                        )
                    if _has_op_success(script):
                        raise TxReject(
                            POLICY_SCRIPT_REJECT + " (OP_SUCCESSx reserved for soft-fork upgrades)", kind=POLICY
                        )
            elif ver != 0 and not (ver == 1 and prog == bytes.fromhex("4e73")):
                raise TxReject(
                    POLICY_SCRIPT_REJECT + " (Witness version reserved for soft-fork upgrades)", kind=POLICY
                )

    def check(self, tx: Tx, extra_outputs: dict | None = None, extra_spent: set | None = None,
              bypass_limits: bool = False):
        """Run all acceptance checks. Returns (fee, coins, parents). Raises TxReject."""
        node = self.node
        extra_outputs = extra_outputs or {}
        extra_spent = extra_spent or set()
        self.check_transaction(tx)
        if tx.is_coinbase():
            raise TxReject("coinbase", kind=CONSENSUS)
        self.check_standard(tx)
        tip_h = node.tip_height()
        if not self.is_final(tx, tip_h + 1, node.mtp_at_height(tip_h)):
            raise TxReject("non-final", kind=PREMATURE)
        txid = tx.txid_bytes
        if tx.wtxid_bytes in self.by_wtxid:
            raise TxReject("txn-already-in-mempool", kind=ALREADY_IN_MEMPOOL)
        if txid in self.entries:
            raise TxReject("txn-same-nonwitness-data-in-mempool", kind=ALREADY_IN_MEMPOOL)
        for txin in tx.vin:
            k = txin.prevout.key()
            if k in self.spends or k in extra_spent:
                raise TxReject("txn-mempool-conflict", kind=CONFLICT)
        coins: list[Coin] = []
        parents: set = set()
        for txin in tx.vin:
            pt, pv = txin.prevout.key()
            coin = self.get_output(pt, pv)
            if coin is not None:
                parents.add(pt)
            else:
                coin = extra_outputs.get((pt, pv))
                if coin is None:
                    coin = node.store.get_coin(pt, pv)
            if coin is None:
                if node.store.has_any_output(txid):
                    raise TxReject("txn-already-known", kind=CONFLICT)
                raise TxReject("bad-txns-inputs-missingorspent", kind=MISSING_INPUTS)
            coins.append(coin)
        self.check_sequence_locks(tx, coins)
        # Consensus::CheckTxInputs
        spend_height = tip_h + 1
        value_in = 0
        for coin in coins:
            if coin.coinbase and coin.height >= 0 and spend_height - coin.height < COINBASE_MATURITY:
                raise TxReject(
                    "bad-txns-premature-spend-of-coinbase",
                    f"tried to spend coinbase at depth {spend_height - coin.height}",
                    kind=PREMATURE,
                )
            value_in += coin.value
            if coin.value < 0 or coin.value > MAX_MONEY or value_in > MAX_MONEY:
                raise TxReject("bad-txns-inputvalues-outofrange", kind=CONSENSUS)
        value_out = sum(o.value for o in tx.vout)
        if value_in < value_out:
            raise TxReject(
                "bad-txns-in-belowout",
                f"value in ({fmt_btc(value_in)}) < value out ({fmt_btc(value_out)})",
                kind=CONSENSUS,
            )
        fee = value_in - value_out
        if fee < 0 or fee > MAX_MONEY:
            raise TxReject("bad-txns-fee-outofrange", kind=CONSENSUS)
        # policy: minimum relay fee
        min_fee = fee_for(DEFAULT_MIN_RELAY_FEE, tx.vsize)
        if not bypass_limits and fee < min_fee:
            raise TxReject("min relay fee not met", f"{fee} < {min_fee}", kind=POLICY)
        # policy: package limits
        if parents and not bypass_limits:
            anc: set = set()
            for p in parents:
                anc.add(p)
                anc |= self.ancestors(p)
            if len(anc) + 1 > DEFAULT_ANCESTOR_LIMIT:
                raise TxReject(
                    "too-long-mempool-chain",
                    f"too many unconfirmed ancestors [limit: {DEFAULT_ANCESTOR_LIMIT}]",
                    kind=POLICY,
                )
            for a in anc:
                if len(self.descendants(a)) + 1 > DEFAULT_DESCENDANT_LIMIT - 1:
                    raise TxReject(
                        "too-long-mempool-chain",
                        f"exceeds descendant count limit [limit: {DEFAULT_DESCENDANT_LIMIT}]",
                        kind=POLICY,
                    )
        # consensus: scripts (libbitcoinkernel), then our policy approximations
        self.verify_scripts(tx, coins)
        self.policy_script_checks(tx, coins)
        return fee, coins, parents

    def add(self, tx: Tx, fee: int, coins: list[Coin], parents: set, when: int | None = None) -> MempoolEntry:
        self._seq += 1
        e = MempoolEntry(
            tx=tx, fee=fee, time=int(when if when is not None else time.time()),
            height=self.node.tip_height(), seq=self._seq, spent=coins, parents=set(parents),
        )
        txid = tx.txid_bytes
        self.entries[txid] = e
        self.by_wtxid[tx.wtxid_bytes] = txid
        for txin in tx.vin:
            self.spends[txin.prevout.key()] = txid
        for p in parents:
            self.entries[p].children.add(txid)
        return e

    def remove(self, txid: bytes, with_descendants: bool = True) -> list[bytes]:
        if txid not in self.entries:
            return []
        todo = [txid] + (list(self.descendants(txid)) if with_descendants else [])
        removed = []
        for t in todo:
            e = self.entries.pop(t, None)
            if e is None:
                continue
            removed.append(t)
            self.by_wtxid.pop(e.tx.wtxid_bytes, None)
            for txin in e.tx.vin:
                k = txin.prevout.key()
                if self.spends.get(k) == t:
                    del self.spends[k]
            for p in e.parents:
                if p in self.entries:
                    self.entries[p].children.discard(t)
            for c in e.children:
                if c in self.entries:
                    self.entries[c].parents.discard(t)
        return removed

    def remove_for_block(self, txs: list[Tx]) -> tuple[list[bytes], list[bytes]]:
        """Remove mined txs and anything conflicting with them. Returns (mined, conflicts)."""
        mined, conflicts = [], []
        for tx in txs:
            txid = tx.txid_bytes
            if txid in self.entries:
                e = self.entries[txid]
                # its children stay; they now spend a confirmed output
                for c in list(e.children):
                    if c in self.entries:
                        self.entries[c].parents.discard(txid)
                        # refresh the coin info of the child (now confirmed)
                e.children.clear()
                self.remove(txid, with_descendants=False)
                mined.append(txid)
            if tx.is_coinbase():
                continue
            for txin in tx.vin:
                spender = self.spends.get(txin.prevout.key())
                if spender is not None and spender != txid:
                    conflicts.extend(self.remove(spender, with_descendants=True))
        # children of mined txs hold stale "mempool" coin heights: refresh from the store
        for e in self.entries.values():
            for i, txin in enumerate(e.tx.vin):
                if e.spent[i].height < 0 and txin.prevout.txid not in self.entries:
                    c = self.node.store.get_coin(*txin.prevout.key())
                    if c is not None:
                        e.spent[i] = c
        return mined, conflicts

    def clear(self) -> list[MempoolEntry]:
        old = self.ordered()
        self.entries.clear()
        self.by_wtxid.clear()
        self.spends.clear()
        return old

    # --- block template ------------------------------------------------------
    def select_for_block(self, max_weight: int) -> list[MempoolEntry]:
        """Greedy ancestor-feerate selection, parents always before children."""
        if not self.entries:
            return []
        scores = []
        for txid, e in self.entries.items():
            anc = self.ancestors(txid)
            fee = e.fee + sum(self.entries[a].fee for a in anc)
            vs = e.vsize + sum(self.entries[a].vsize for a in anc)
            scores.append((-(fee / max(vs, 1)), e.seq, txid))
        scores.sort()
        chosen: set = set()
        result: list[MempoolEntry] = []
        weight = 0
        for _, _, txid in scores:
            if txid in chosen:
                continue
            pkg = [a for a in self.ancestors(txid) if a not in chosen] + [txid]
            pkg_entries = sorted((self.entries[t] for t in pkg), key=lambda e: e.seq)
            w = sum(e.weight for e in pkg_entries)
            if weight + w > max_weight:
                continue
            for pe in pkg_entries:
                chosen.add(pe.txid)
                result.append(pe)
            weight += w
        # final topological safety: order by entry sequence keeps parents first
        result.sort(key=lambda e: e.seq)
        return result

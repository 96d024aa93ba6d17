"""The node: libbitcoinkernel chainstate + our indexes + mempool + mining."""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from pathlib import Path

import pbk
import pbk.capi.bindings as k
from pbk.notifications import NotificationInterfaceCallbacks

from .index import Store
from .mempool import Mempool, TxReject
from .script import push_data, push_int
from .serialization import (
    COIN,
    Block,
    BlockHeader,
    OutPoint,
    Tx,
    TxIn,
    TxOut,
    bits_to_target,
    hash256,
    merkle_root,
)
from .util import log

REGTEST_BITS = 0x207FFFFF
BLOCK_VERSION = 0x20000000
HALVING_INTERVAL = 150  # regtest
MAX_BLOCK_WEIGHT = 4_000_000
TEMPLATE_MAX_WEIGHT = 3_996_000  # bitcoind -blockmaxweight default
WITNESS_COMMITMENT_HEADER = bytes.fromhex("aa21a9ed")


class BlockRejected(Exception):
    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def block_subsidy(height: int) -> int:
    halvings = height // HALVING_INTERVAL
    if halvings >= 64:
        return 0
    return (50 * COIN) >> halvings


def _entry_time(entry) -> int:
    hdr = entry.block_header
    return int(k.btck_block_header_get_timestamp(hdr))


class Node:
    def __init__(self, datadir: str):
        self.datadir = Path(datadir).absolute()
        self.netdir = self.datadir / "regtest"
        self.netdir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.start_time = time.time()
        self._log_capture: list | None = None
        self._block_states: dict[bytes, tuple] = {}
        self._closed = False

        # Kernel log lines: errors/warnings go to stderr; during block
        # processing they are captured to extract reject reasons.
        self._log_conn = pbk.LoggingConnection(self._on_kernel_log)
        self._validation_cbs = pbk.ValidationInterfaceCallbacks(block_checked=self._on_block_checked)
        self._notification_cbs = NotificationInterfaceCallbacks(
            fatal_error=self._on_fatal_error, flush_error=self._on_flush_error,
        )
        opts = pbk.ContextOptions()
        opts.set_chainparams(pbk.ChainParameters(pbk.ChainType.REGTEST))
        opts.set_validation_interface(self._validation_cbs)
        opts.set_notifications(self._notification_cbs)
        self.context = pbk.Context(opts)
        self.chainman = self._open_chainman()

        self.store = Store(str(self.netdir / "regtest-node-index.sqlite"))
        self.mempool = Mempool(self)
        with self.lock:
            self._recover_if_needed()
            self._block_states.clear()  # statuses from startup/reindex are already reflected by sync
            self.sync_index(initial=True)
            self._load_mempool()

    def _open_chainman(self, reindex: bool = False):
        cm_opts = pbk.ChainstateManagerOptions(
            self.context, str(self.netdir), str(self.netdir / "blocks")
        )
        if reindex:
            cm_opts.set_wipe_dbs(True, True)
        cm = pbk.ChainstateManager(cm_opts)
        if reindex:
            cm.import_blocks([])
        return cm

    def _recover_if_needed(self) -> None:
        """Handle an unclean shutdown (SIGKILL, crash).

        The kernel only flushes its block index / chainstate periodically and
        on clean shutdown, so after a crash it may have forgotten blocks that
        are already in its blk*.dat files (and in our index). In that case we
        reindex from the block files, exactly like bitcoind -reindex.
        """
        my = self.store.tip()
        if my is not None and self.entry_by_hash(my[1]) is None:
            log(f"kernel does not know indexed tip {my[1][::-1].hex()} (height {my[0]}): "
                "unclean shutdown? reindexing from block files")
            t0 = time.time()
            old = self.chainman
            self.chainman = None
            old.__del__()
            self.chainman = self._open_chainman(reindex=True)
            log(f"reindex finished height={self.tip_height()} in {time.time() - t0:.2f}s")
        # header/data known beyond the active tip (chainstate not flushed): activate it
        best = self.chainman.best_entry
        if best.height > self.tip_height():
            try:
                self.chainman.process_block(self.chainman.blocks[best])
            except Exception as e:
                log(f"could not activate best known block {best}: {e}")

    # ------------------------------------------------------------------
    # kernel callbacks
    # ------------------------------------------------------------------
    def _on_kernel_log(self, msg: str) -> None:
        msg = msg.rstrip()
        cap = self._log_capture
        if cap is not None:
            cap.append(msg)
        if "[error]" in msg or "[warning]" in msg or "InvalidChainFound" in msg:
            log(f"kernel: {msg}")

    def _on_block_checked(self, _ud, block, state) -> None:
        try:
            self._block_states[bytes(block.block_hash)] = (
                state.validation_mode, state.block_validation_result,
            )
        except Exception as e:  # never raise into C
            log(f"block_checked callback error: {e}")

    def _on_fatal_error(self, _ud, message, length) -> None:
        import ctypes

        log("kernel FATAL ERROR: " + ctypes.string_at(message, length).decode("utf-8", "replace"))

    def _on_flush_error(self, _ud, message, length) -> None:
        import ctypes

        log("kernel flush error: " + ctypes.string_at(message, length).decode("utf-8", "replace"))

    # ------------------------------------------------------------------
    # chain queries
    # ------------------------------------------------------------------
    def active_chain(self):
        return self.chainman.get_active_chain()

    def tip_height(self) -> int:
        return self.active_chain().height

    def tip_entry(self):
        c = self.active_chain()
        return c.block_tree_entries[c.height]

    def entry_at(self, height: int):
        c = self.active_chain()
        if height < 0 or height > c.height:
            return None
        return c.block_tree_entries[height]

    def entry_by_hash(self, hash_le: bytes):
        try:
            return self.chainman.block_tree_entries[pbk.BlockHash(hash_le)]
        except KeyError:
            return None

    def in_active_chain(self, entry) -> bool:
        return entry in self.active_chain().block_tree_entries

    def mtp(self, entry) -> int:
        ts = []
        e = entry
        for _ in range(11):
            ts.append(_entry_time(e))
            if e.height == 0:
                break
            e = e.previous
        ts.sort()
        return ts[len(ts) // 2]

    def mtp_at_height(self, height: int) -> int:
        e = self.entry_at(height)
        return self.mtp(e) if e is not None else 0

    def read_block(self, entry) -> tuple[Block, bytes]:
        raw = bytes(self.chainman.blocks[entry])
        return Block.from_bytes(raw), raw

    def next_entry(self, entry):
        if not self.in_active_chain(entry):
            return None
        return self.entry_at(entry.height + 1)

    # ------------------------------------------------------------------
    # index synchronisation with the kernel's active chain
    # ------------------------------------------------------------------
    def sync_index(self, initial: bool = False):
        """Bring the SQLite indexes to the kernel's active chain.

        Returns (disconnected_blocks, connected_blocks) as lists of Block.
        """
        chain = self.active_chain()
        k_height = chain.height
        my = self.store.tip()
        if my is not None:
            my_h = my[0]
            h = min(my_h, k_height)
            while h >= 0:
                mine = self.store.hash_at(h)
                theirs = bytes(chain.block_tree_entries[h].block_hash)
                if mine == theirs:
                    break
                h -= 1
            fork = h
        else:
            my_h = -1
            fork = -1
        disconnected: list[Block] = []
        for h in range(my_h, fork, -1):
            hb = self.store.hash_at(h)
            entry = self.entry_by_hash(hb)
            blk = None
            if entry is not None:
                try:
                    blk, _ = self.read_block(entry)
                except Exception:
                    blk = None
            self.store.disconnect_block(hb, h)
            if blk is not None:
                disconnected.append(blk)
            log(f"block disconnected height={h} hash={hb[::-1].hex()}"
                + (f" txs={len(blk.txs)}" if blk is not None else " (block data unavailable)"))
        connected: list[Block] = []
        for h in range(fork + 1, k_height + 1):
            entry = chain.block_tree_entries[h]
            hb = bytes(entry.block_hash)
            blk, _ = self.read_block(entry)
            self.store.add_block(hb, blk.header.prev_hash if h > 0 else None, h, "valid")
            self.store.connect_block(blk, hb, h)
            connected.append(blk)
            if not initial or k_height - fork <= 20 or h == k_height:
                log(f"block connected height={h} hash={hb[::-1].hex()} txs={len(blk.txs)}")
        if disconnected or connected:
            self.store.set_meta("tip", f"{k_height}")
        return disconnected, connected

    def _after_chain_change(self, disconnected: list[Block], connected: list[Block]) -> None:
        if disconnected:
            # Re-validate: transactions of disconnected blocks first (oldest
            # block first), then the previous mempool contents.
            resurrect = []
            for blk in reversed(disconnected):
                resurrect.extend(blk.txs[1:])
            resurrected_ids = {t.txid_bytes for t in resurrect}
            old = self.mempool.clear()
            times = {e.txid: e.time for e in old}
            for tx in resurrect + [e.tx for e in old]:
                if tx.txid_bytes in self.mempool.entries:
                    continue
                try:
                    fee, coins, parents = self.mempool.check(tx, bypass_limits=True)
                    self.mempool.add(tx, fee, coins, parents, when=times.get(tx.txid_bytes))
                    if tx.txid_bytes in resurrected_ids:
                        log(f"tx returned to mempool after reorg txid={tx.txid}")
                except TxReject as r:
                    if tx.txid_bytes in resurrected_ids:
                        if self.store.tx_location(tx.txid_bytes) is None:
                            log(f"tx from disconnected block dropped txid={tx.txid} reason={r.full()}")
                    else:
                        log(f"tx removed from mempool after reorg txid={tx.txid} reason={r.full()}")
            log(f"reorg: {len(disconnected)} block(s) disconnected, {len(connected)} connected, mempool size={len(self.mempool.entries)}")
        else:
            for blk in connected:
                mined, conflicts = self.mempool.remove_for_block(blk.txs)
                for c in conflicts:
                    log(f"tx removed from mempool (conflict with block) txid={c[::-1].hex()}")

    # ------------------------------------------------------------------
    # block submission
    # ------------------------------------------------------------------
    def submit_block(self, raw: bytes):
        """Hand a block to the kernel. Returns (status, reason).

        status: 'connected' | 'stored' (valid so far, not on the best chain) |
        'duplicate' | 'invalid' | 'error'
        """
        blk_hash = hash256(raw[:80])
        try:
            kblock = pbk.Block(raw)
        except RuntimeError:
            return "invalid", "block decode failed"
        prev = raw[4:36]
        self._block_states.pop(blk_hash, None)
        self._log_capture = []
        ok = True
        is_new = False
        try:
            is_new = self.chainman.process_block(kblock)
        except pbk.ProcessBlockException:
            ok = False
        finally:
            lines = self._log_capture
            self._log_capture = None
        states = dict(self._block_states)
        self._block_states.clear()
        entry = self.entry_by_hash(blk_hash)
        # record statuses of all blocks the kernel checked (reorgs may check several)
        for hb, (mode, _res) in states.items():
            e = self.entry_by_hash(hb)
            if e is not None:
                self.store.add_block(hb, bytes(e.previous.block_hash) if e.height > 0 else None, e.height,
                                     "valid" if mode == pbk.ValidationMode.VALID else "invalid")
        disc, conn = self.sync_index()
        self._after_chain_change(disc, conn)
        st = states.get(blk_hash)
        reason = _extract_reason(lines)
        if not ok or (st is not None and st[0] != pbk.ValidationMode.VALID):
            if entry is not None:
                self.store.add_block(blk_hash, prev, entry.height, "invalid")
            log(f"block rejected hash={blk_hash[::-1].hex()} reason={reason or 'unknown'}")
            if reason and reason.startswith("duplicate-invalid"):
                return "invalid", "duplicate-invalid"
            return "invalid", reason or "rejected by libbitcoinkernel"
        if entry is None:
            return "error", reason or "block not stored"
        if self.in_active_chain(entry):
            if not is_new:
                return "duplicate", None
            return "connected", None
        if not is_new:
            return "duplicate", None
        self.store.add_block(blk_hash, prev, entry.height, "headers")
        log(f"block stored (not on best chain) height={entry.height} hash={blk_hash[::-1].hex()}")
        return "stored", None

    # ------------------------------------------------------------------
    # mining
    # ------------------------------------------------------------------
    def build_block(self, prev_entry, payout_spk: bytes, txs: list[Tx], fees: int) -> Block:
        height = prev_entry.height + 1
        btime = max(int(time.time()), self.mtp(prev_entry) + 1)
        script_sig = push_int(height) + push_data(secrets.token_bytes(4))
        coinbase = Tx(
            version=2,
            vin=[TxIn(OutPoint(b"\x00" * 32, 0xFFFFFFFF), script_sig, 0xFFFFFFFF, [b"\x00" * 32])],
            vout=[TxOut(block_subsidy(height) + fees, payout_spk)],
            locktime=0,
        )
        # BIP141 witness commitment (always added, like bitcoind)
        wtxids = [b"\x00" * 32] + [t.wtxid_bytes for t in txs]
        commitment = hash256(merkle_root(wtxids) + b"\x00" * 32)
        coinbase.vout.append(TxOut(0, bytes([0x6A, 0x24]) + WITNESS_COMMITMENT_HEADER + commitment))
        coinbase.invalidate()
        all_txs = [coinbase] + list(txs)
        header = BlockHeader(
            BLOCK_VERSION, bytes(prev_entry.block_hash),
            merkle_root([t.txid_bytes for t in all_txs]), btime, REGTEST_BITS, 0,
        )
        target = bits_to_target(REGTEST_BITS)
        hdr_prefix = header.serialize()[:76]
        nonce = 0
        while True:
            h = hash256(hdr_prefix + nonce.to_bytes(4, "little"))
            if int.from_bytes(h, "little") <= target:
                break
            nonce += 1
        header.nonce = nonce
        return Block(header, all_txs)

    def mine_one(self, prev_entry, payout_spk: bytes, use_mempool: bool) -> str:
        """Mine one block on prev_entry; returns the block hash (display hex)."""
        selected = []
        if use_mempool and prev_entry == self.tip_entry():
            selected = self.mempool.select_for_block(TEMPLATE_MAX_WEIGHT)
        blk = self.build_block(prev_entry, payout_spk, [e.tx for e in selected], sum(e.fee for e in selected))
        status, reason = self.submit_block(blk.serialize())
        if status in ("connected", "stored"):
            return blk.hash
        if selected:
            # Should never happen: our mempool checks disagree with the kernel.
            log(f"ERROR: kernel rejected a block template ({reason}); evicting {len(selected)} mempool tx(s)")
            for e in selected:
                log(f"tx evicted txid={e.tx.txid}")
                self.mempool.remove(e.txid)
            blk = self.build_block(prev_entry, payout_spk, [], 0)
            status, reason = self.submit_block(blk.serialize())
            if status in ("connected", "stored"):
                return blk.hash
        raise BlockRejected(reason or status)

    def generate(self, n: int, payout_spk: bytes, parent_entry=None, use_mempool: bool = True) -> list[str]:
        """Mine n blocks on the tip (or on parent_entry, building a branch).
        Mempool transactions are only included in blocks built on the active tip."""
        hashes = []
        prev = parent_entry if parent_entry is not None else self.tip_entry()
        for _ in range(n):
            h = self.mine_one(prev, payout_spk, use_mempool and prev == self.tip_entry())
            hashes.append(h)
            prev = self.entry_by_hash(bytes.fromhex(h)[::-1])
        return hashes

    # ------------------------------------------------------------------
    # mempool persistence
    # ------------------------------------------------------------------
    @property
    def mempool_path(self) -> Path:
        return self.netdir / "mempool.json"

    def _load_mempool(self) -> None:
        p = self.mempool_path
        if not p.exists():
            return
        try:
            items = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            log(f"could not read {p}: {e}")
            return
        n = 0
        for it in items:
            try:
                tx = Tx.from_hex(it["hex"])
                fee, coins, parents = self.mempool.check(tx)
                self.mempool.add(tx, fee, coins, parents, when=it.get("time"))
                n += 1
            except (TxReject, ValueError, KeyError) as e:
                log(f"mempool.json: dropped tx: {e}")
        log(f"loaded {n} mempool transaction(s) from {p}")
        try:
            p.unlink()
        except OSError:
            pass

    def _save_mempool(self) -> None:
        items = [{"hex": e.tx.serialize().hex(), "time": e.time} for e in self.mempool.ordered()]
        tmp = self.mempool_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(items))
        os.replace(tmp, self.mempool_path)

    def close(self) -> None:
        with self.lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._save_mempool()
            except OSError as e:
                log(f"could not save mempool: {e}")
            self.store.close()
            # Destroying the chainstate manager flushes the chainstate to disk.
            cm, ctx = self.chainman, self.context
            self.chainman = None
            cm.__del__()
            ctx.__del__()
            self._log_conn.__del__()


_REASON_PATTERNS = [
    re.compile(r"ConnectBlock \S+ failed, (.*)$"),
    re.compile(r"AcceptBlock FAILED \((.*)\)$"),
    re.compile(r"ProcessNewBlock: (?:CheckBlock|AcceptBlock) FAILED \((.*)\)$"),
    re.compile(r"\[error\] \S+: (.*)$"),
]


def _extract_reason(lines) -> str | None:
    if not lines:
        return None
    for pat in _REASON_PATTERNS:
        for line in reversed(lines):
            m = pat.search(line)
            if m:
                return m.group(1).strip()
    return None

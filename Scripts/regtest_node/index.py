"""SQLite-backed indexes kept in lock-step with the kernel's active chain.

libbitcoinkernel (0.1.0a5) does not expose its UTXO set (no coins-view
lookup), so this module maintains a mirror of it, plus a transaction index,
undo data and the set of known blocks (for getchaintips). Whenever the
kernel's active chain changes, `Node.sync_index()` disconnects/connects
blocks here until both tips match. Every connected block is one SQLite
transaction, so the index is always consistent with some block.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .script import is_unspendable
from .serialization import Block

SCHEMA_VERSION = "1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chain (
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS blocks (
    hash BLOB PRIMARY KEY,
    prev BLOB,
    height INTEGER NOT NULL,
    status TEXT NOT NULL      -- 'valid' (fully validated), 'headers' (stored, not yet validated), 'invalid'
);
CREATE TABLE IF NOT EXISTS utxo (
    txid BLOB NOT NULL,
    vout INTEGER NOT NULL,
    value INTEGER NOT NULL,
    spk BLOB NOT NULL,
    height INTEGER NOT NULL,
    coinbase INTEGER NOT NULL,
    PRIMARY KEY (txid, vout)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS utxo_spk ON utxo (spk);
CREATE TABLE IF NOT EXISTS undo (
    block_hash BLOB NOT NULL,
    tx_pos INTEGER NOT NULL,
    vin INTEGER NOT NULL,
    prev_txid BLOB NOT NULL,
    prev_vout INTEGER NOT NULL,
    value INTEGER NOT NULL,
    spk BLOB NOT NULL,
    height INTEGER NOT NULL,
    coinbase INTEGER NOT NULL,
    PRIMARY KEY (block_hash, tx_pos, vin)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS txindex (
    txid BLOB PRIMARY KEY,
    block_hash BLOB NOT NULL,
    pos INTEGER NOT NULL
) WITHOUT ROWID;
"""


@dataclass
class Coin:
    value: int
    spk: bytes
    height: int
    coinbase: bool


class MissingInput(Exception):
    pass


class Store:
    def __init__(self, path: str):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        v = self.get_meta("schema")
        if v is None:
            self.set_meta("schema", SCHEMA_VERSION)

    def close(self) -> None:
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        self.db.close()

    # --- meta -------------------------------------------------------------
    def get_meta(self, key: str):
        r = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return r[0] if r else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # --- chain ------------------------------------------------------------
    def tip(self):
        """(height, hash) of the indexed tip or None."""
        r = self.db.execute("SELECT height, hash FROM chain ORDER BY height DESC LIMIT 1").fetchone()
        return (r[0], bytes(r[1])) if r else None

    def hash_at(self, height: int):
        r = self.db.execute("SELECT hash FROM chain WHERE height=?", (height,)).fetchone()
        return bytes(r[0]) if r else None

    # --- blocks (all known) -------------------------------------------------
    def add_block(self, hash_: bytes, prev, height: int, status: str) -> None:
        cur = self.db.execute("SELECT status FROM blocks WHERE hash=?", (hash_,)).fetchone()
        if cur is None:
            self.db.execute(
                "INSERT INTO blocks (hash, prev, height, status) VALUES (?,?,?,?)",
                (hash_, prev, height, status),
            )
        elif cur[0] != status and not (cur[0] == "valid" and status == "headers"):
            self.db.execute("UPDATE blocks SET status=? WHERE hash=?", (status, hash_))

    def block_status(self, hash_: bytes):
        r = self.db.execute("SELECT status FROM blocks WHERE hash=?", (hash_,)).fetchone()
        return r[0] if r else None

    def all_blocks(self):
        return [
            (bytes(h), bytes(p) if p is not None else None, height, status)
            for h, p, height, status in self.db.execute("SELECT hash, prev, height, status FROM blocks")
        ]

    # --- utxo ---------------------------------------------------------------
    def get_coin(self, txid: bytes, vout: int):
        r = self.db.execute(
            "SELECT value, spk, height, coinbase FROM utxo WHERE txid=? AND vout=?", (txid, vout)
        ).fetchone()
        if r is None:
            return None
        return Coin(r[0], bytes(r[1]), r[2], bool(r[3]))

    def has_any_output(self, txid: bytes) -> bool:
        return self.db.execute("SELECT 1 FROM utxo WHERE txid=? LIMIT 1", (txid,)).fetchone() is not None

    def coins_by_spk(self, spks: list[bytes]):
        out = []
        for spk in spks:
            for txid, vout, value, s, height, cb in self.db.execute(
                "SELECT txid, vout, value, spk, height, coinbase FROM utxo WHERE spk=?", (spk,)
            ):
                out.append((bytes(txid), vout, Coin(value, bytes(s), height, bool(cb))))
        return out

    def utxo_stats(self):
        r = self.db.execute("SELECT COUNT(*), COALESCE(SUM(value),0) FROM utxo").fetchone()
        return r[0], r[1]

    # --- undo / txindex -----------------------------------------------------
    def undo_for_block(self, block_hash: bytes):
        """{(tx_pos, vin): (prev_txid, prev_vout, Coin)} or None if unknown."""
        rows = self.db.execute(
            "SELECT tx_pos, vin, prev_txid, prev_vout, value, spk, height, coinbase FROM undo WHERE block_hash=?",
            (block_hash,),
        ).fetchall()
        return {
            (p, v): (bytes(pt), pv, Coin(val, bytes(spk), h, bool(cb)))
            for p, v, pt, pv, val, spk, h, cb in rows
        }

    def has_undo(self, block_hash: bytes) -> bool:
        return self.db.execute("SELECT 1 FROM undo WHERE block_hash=? LIMIT 1", (block_hash,)).fetchone() is not None

    def tx_location(self, txid: bytes):
        r = self.db.execute("SELECT block_hash, pos FROM txindex WHERE txid=?", (txid,)).fetchone()
        return (bytes(r[0]), r[1]) if r else None

    # --- connect / disconnect ------------------------------------------------
    def connect_block(self, block: Block, block_hash: bytes, height: int) -> None:
        """Apply a block on top of the indexed tip (one atomic SQLite transaction)."""
        db = self.db
        db.execute("BEGIN")
        try:
            db.execute("DELETE FROM undo WHERE block_hash=?", (block_hash,))
            for pos, tx in enumerate(block.txs):
                txid = tx.txid_bytes
                cb = tx.is_coinbase()
                if not cb:
                    for vin_idx, txin in enumerate(tx.vin):
                        pt, pv = txin.prevout.txid, txin.prevout.n
                        r = db.execute(
                            "SELECT value, spk, height, coinbase FROM utxo WHERE txid=? AND vout=?", (pt, pv)
                        ).fetchone()
                        if r is None:
                            raise MissingInput(
                                f"index inconsistency: block {block_hash[::-1].hex()} spends unknown "
                                f"{pt[::-1].hex()}:{pv}"
                            )
                        db.execute(
                            "INSERT INTO undo VALUES (?,?,?,?,?,?,?,?,?)",
                            (block_hash, pos, vin_idx, pt, pv, r[0], r[1], r[2], r[3]),
                        )
                        db.execute("DELETE FROM utxo WHERE txid=? AND vout=?", (pt, pv))
                for n, out in enumerate(tx.vout):
                    if is_unspendable(out.script_pubkey):
                        continue
                    db.execute(
                        "INSERT OR REPLACE INTO utxo VALUES (?,?,?,?,?,?)",
                        (txid, n, out.value, out.script_pubkey, height, 1 if cb else 0),
                    )
                db.execute("INSERT OR REPLACE INTO txindex VALUES (?,?,?)", (txid, block_hash, pos))
            db.execute("INSERT OR REPLACE INTO chain (height, hash) VALUES (?, ?)", (height, block_hash))
            db.execute("DELETE FROM chain WHERE height > ?", (height,))
            db.execute("UPDATE blocks SET status='valid' WHERE hash=? AND status!='valid'", (block_hash,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def disconnect_block(self, block_hash: bytes, height: int) -> None:
        """Undo the indexed tip block using only our own data (txindex + undo rows),
        so it works even if the kernel no longer has the block. Undo rows are kept
        (they stay valid for this block forever)."""
        db = self.db
        undo = self.undo_for_block(block_hash)
        txids = {bytes(r[0]) for r in db.execute("SELECT txid FROM txindex WHERE block_hash=?", (block_hash,))}
        db.execute("BEGIN")
        try:
            for txid in txids:
                db.execute("DELETE FROM utxo WHERE txid=?", (txid,))
                db.execute("DELETE FROM txindex WHERE txid=?", (txid,))
            for pt, pv, coin in undo.values():
                if pt in txids:
                    continue  # created and spent within this block
                db.execute(
                    "INSERT OR REPLACE INTO utxo VALUES (?,?,?,?,?,?)",
                    (pt, pv, coin.value, coin.spk, coin.height, 1 if coin.coinbase else 0),
                )
            db.execute("DELETE FROM chain WHERE height >= ?", (height,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

"""Test-side helpers: funding a taproot key by mining and building spends."""

from __future__ import annotations

from btc import TaprootKey, Tx, sats

FEE = 1_000  # sats; ~ 7-9 sat/vB for the 1-in-1-out taproot txs used here


def coinbase_utxo(rpc, blockhash: str):
    """(txid, vout, amount_sats, spk) of output 0 of a block's coinbase."""
    blk = rpc.getblock(blockhash, 2)
    cb = blk["tx"][0]
    out = cb["vout"][0]
    return cb["txid"], 0, sats(out["value"]), bytes.fromhex(out["scriptPubKey"]["hex"])


def mine_to(rpc, key: TaprootKey, n: int) -> list[str]:
    return rpc.generatetoaddress(n, key.address)


def spend_keypath(key: TaprootKey, utxo, dest_spk: bytes, fee: int = FEE, sequence: int = 0xFFFFFFFD,
                  version: int = 2, amount: int | None = None) -> Tx:
    txid, vout, value, spk = utxo
    tx = Tx(version=version)
    tx.add_input(txid, vout, sequence)
    tx.add_output(value - fee if amount is None else amount, dest_spk)
    tx.sign_keypath(0, key, [(value, spk)])
    return tx

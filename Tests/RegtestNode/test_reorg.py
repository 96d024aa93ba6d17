"""Reorgs via the custom generatetoaddressfrom RPC."""

from __future__ import annotations

import pytest

from btc import TaprootKey
from conftest import RPCFailure
from helpers import coinbase_utxo, spend_keypath

KEY = TaprootKey(0x4E06)
DEST = TaprootKey(0xD0D0)
MINER_B = TaprootKey(0xB0B)


def test_reorg_returns_tx_to_mempool(node):
    rpc = node.rpc()
    hashes = rpc.generatetoaddress(101, KEY.address)
    fork_point = hashes[-1]
    utxo = coinbase_utxo(rpc, hashes[0])
    tx = spend_keypath(KEY, utxo, DEST.script_pubkey)
    rpc.sendrawtransaction(tx.hex())
    block_a = rpc.generatetoaddress(1, KEY.address)[0]  # height 102 contains tx
    assert tx.txid in rpc.getblock(block_a)["tx"]
    assert rpc.getrawtransaction(tx.txid, True)["blockhash"] == block_a
    assert rpc.gettxout(tx.txid, 0)["confirmations"] == 1

    # competing branch from block 101: first block is not enough (equal work)
    b1 = rpc.generatetoaddressfrom(fork_point, 1, MINER_B.address)
    assert len(b1) == 1
    assert rpc.getbestblockhash() == block_a
    tips = {t["hash"]: t for t in rpc.getchaintips()}
    assert tips[block_a]["status"] == "active"
    assert tips[b1[0]]["branchlen"] == 1 and tips[b1[0]]["status"] in ("valid-headers", "valid-fork")
    assert rpc.getblockheader(b1[0])["confirmations"] == -1

    # second block on the branch: more work -> the kernel reorgs to it
    b2 = rpc.generatetoaddressfrom(b1[0], 1, MINER_B.address)
    assert rpc.getbestblockhash() == b2[0]
    assert rpc.getblockcount() == 103
    assert rpc.getblockhash(102) == b1[0]
    assert rpc.getblockheader(block_a)["confirmations"] == -1
    assert rpc.getblock(block_a)["confirmations"] == -1
    tips = {t["hash"]: t for t in rpc.getchaintips()}
    assert tips[b2[0]]["status"] == "active"
    assert tips[block_a]["status"] == "valid-fork" and tips[block_a]["branchlen"] == 1

    # the tx is no longer confirmed but back in the mempool
    assert tx.txid in rpc.getrawmempool()
    r = rpc.getrawtransaction(tx.txid, True)
    assert "blockhash" not in r
    assert rpc.gettxout(tx.txid, 0)["confirmations"] == 0
    assert rpc.gettxout(tx.txid, 0, False) is None
    # it can still be looked up in the stale block explicitly
    r = rpc.getrawtransaction(tx.txid, True, block_a)
    assert r["in_active_chain"] is False
    # the stale block's coinbase output is gone from the UTXO set, branch B's coinbases exist
    stale_cb = rpc.getblock(block_a)["tx"][0]
    assert rpc.gettxout(stale_cb, 0) is None
    scan = rpc.scantxoutset("start", [f"addr({MINER_B.address})"])
    assert sorted(u["blockhash"] for u in scan["unspents"]) == sorted(b1 + b2)

    # mining again confirms the tx on the new branch
    c = rpc.generatetoaddress(1, KEY.address)[0]
    assert tx.txid in rpc.getblock(c)["tx"]
    assert rpc.getrawmempool() == []
    assert rpc.getrawtransaction(tx.txid, True)["blockhash"] == c

    # restart keeps the reorged chain
    assert node.stop() == 0
    node.start()
    rpc = node.rpc()
    assert rpc.getbestblockhash() == c
    assert rpc.getblockhash(102) == b1[0]
    assert rpc.getrawtransaction(tx.txid, True)["blockhash"] == c
    tips = {t["hash"]: t for t in rpc.getchaintips()}
    assert tips[block_a]["status"] == "valid-fork"


def test_reorg_drops_conflicting_and_invalidated_txs(rpc):
    hashes = rpc.generatetoaddress(101, KEY.address)
    fork_point = hashes[-1]
    u = coinbase_utxo(rpc, hashes[0])
    a = spend_keypath(KEY, u, DEST.script_pubkey)
    rpc.sendrawtransaction(a.hex())
    block_a = rpc.generatetoaddress(1, KEY.address)[0]
    # child of a, in the mempool
    child = spend_keypath(DEST, (a.txid, 0, u[2] - 1000, DEST.script_pubkey), KEY.script_pubkey)
    rpc.sendrawtransaction(child.hex())
    # competing branch includes a double spend of a's input
    conflict = spend_keypath(KEY, u, MINER_B.script_pubkey, fee=3000)
    # while a is confirmed, the conflicting spend is rejected
    assert rpc.testmempoolaccept([conflict.hex()])[0]["reject-reason"] == "missing-inputs"
    side = rpc.generatetoaddressfrom(fork_point, 2, MINER_B.address)
    assert rpc.getbestblockhash() == side[-1]
    # a and child are back in the mempool (still valid on the new branch)
    assert set(rpc.getrawmempool()) == {a.txid, child.txid}
    # now confirm the conflicting tx on the new branch with generateblock -> a and child get evicted
    rpc.generateblock(MINER_B.address, [conflict.hex()])
    assert rpc.getrawmempool() == []
    assert rpc.gettxout(conflict.txid, 0)["confirmations"] == 1


def test_generatetoaddressfrom_errors(rpc):
    rpc.generatetoaddress(2, KEY.address)
    with pytest.raises(RPCFailure) as e:
        rpc.generatetoaddressfrom("11" * 32, 1, KEY.address)
    assert e.value.code == -5
    with pytest.raises(RPCFailure) as e:
        rpc.generatetoaddressfrom(rpc.getblockhash(1), 1, "notanaddress")
    assert e.value.code == -5
    # on the tip it behaves like generatetoaddress
    tip = rpc.getbestblockhash()
    h = rpc.generatetoaddressfrom(tip, 2, KEY.address)
    assert rpc.getbestblockhash() == h[-1] and rpc.getblockcount() == 4


def test_submitblock_roundtrip(rpc):
    rpc.generatetoaddress(1, KEY.address)
    res = rpc.generateblock(KEY.address, [], False)
    assert rpc.submitblock(res["hex"]) is None
    assert rpc.getbestblockhash() == res["hash"]
    assert rpc.submitblock(res["hex"]) == "duplicate"
    with pytest.raises(RPCFailure) as e:
        rpc.submitblock("00")
    assert e.value.code == -22


def test_sigkill_recovery_reindexes(node_factory):
    """After an unclean shutdown the kernel may have forgotten unflushed blocks;
    the node reindexes from its block files and ends up with the same chain."""
    import signal

    n = node_factory("crash")
    rpc = n.rpc()
    hashes = rpc.generatetoaddress(101, KEY.address)
    utxo = coinbase_utxo(rpc, hashes[0])
    tx = spend_keypath(KEY, utxo, DEST.script_pubkey)
    rpc.sendrawtransaction(tx.hex())
    tip = rpc.generatetoaddress(5, KEY.address)[-1]
    n.proc.send_signal(signal.SIGKILL)
    n.proc.wait(timeout=5)
    n.proc = None
    n.start()
    rpc = n.rpc()
    assert rpc.getblockcount() == 106
    assert rpc.getbestblockhash() == tip
    assert rpc.getrawtransaction(tx.txid, True)["confirmations"] == 5
    assert rpc.gettxout(utxo[0], 0) is None
    assert rpc.gettxout(tx.txid, 0)["confirmations"] == 5
    rpc.generatetoaddress(1, KEY.address)
    assert rpc.getblockcount() == 107

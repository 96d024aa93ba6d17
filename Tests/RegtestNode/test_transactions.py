"""Mempool acceptance: kernel script verification, double spends, maturity, policy."""

from __future__ import annotations

import pytest

from btc import TaprootKey, Tx, sats
from conftest import RPCFailure
from helpers import coinbase_utxo, spend_keypath

KEY = TaprootKey(0x5EC12E7)
DEST = TaprootKey(0xD357)
OTHER = TaprootKey(0x07E3)


@pytest.fixture
def funded(rpc):
    """101 blocks to KEY: the first coinbase is mature (spendable in block 102)."""
    hashes = rpc.generatetoaddress(101, KEY.address)
    return rpc, hashes


def test_spend_mature_coinbase_mine_and_lookup(funded):
    rpc, hashes = funded
    utxo = coinbase_utxo(rpc, hashes[0])
    assert utxo[3] == KEY.script_pubkey
    tx = spend_keypath(KEY, utxo, DEST.script_pubkey)
    # testmempoolaccept first: shape and no side effects
    res = rpc.testmempoolaccept([tx.hex()])
    assert res[0]["txid"] == tx.txid and res[0]["wtxid"] == tx.wtxid
    assert res[0]["allowed"] is True and res[0]["vsize"] == tx.vsize()
    assert sats(res[0]["fees"]["base"]) == 1000
    assert rpc.getrawmempool() == []
    # broadcast
    assert rpc.sendrawtransaction(tx.hex()) == tx.txid
    assert rpc.getrawmempool() == [tx.txid]
    # re-sending the same tx is a no-op returning the txid (like bitcoind)
    assert rpc.sendrawtransaction(tx.hex()) == tx.txid
    entry = rpc.getmempoolentry(tx.txid)
    assert entry["vsize"] == tx.vsize() and entry["wtxid"] == tx.wtxid
    assert sats(entry["fees"]["base"]) == 1000 and entry["ancestorcount"] == 1
    verbose = rpc.getrawmempool(True)
    assert tx.txid in verbose
    # visible in the mempool view of gettxout, spent output hidden
    out = rpc.gettxout(tx.txid, 0)
    assert out["confirmations"] == 0 and out["scriptPubKey"]["address"] == DEST.address
    assert rpc.gettxout(tx.txid, 0, False) is None
    assert rpc.gettxout(utxo[0], 0) is None  # spent in mempool
    assert rpc.gettxout(utxo[0], 0, False) is not None  # still unspent in the chain
    mtx = rpc.getrawtransaction(tx.txid, True)
    assert mtx["txid"] == tx.txid and "blockhash" not in mtx
    assert mtx["vin"][0]["txinwitness"] == [tx.vin[0][4][0].hex()]
    # mine it: block pays subsidy + fee
    blockhash = rpc.generatetoaddress(1, OTHER.address)[0]
    assert rpc.getrawmempool() == []
    blk = rpc.getblock(blockhash, 2)
    assert [t["txid"] for t in blk["tx"]][1:] == [tx.txid]
    assert sats(blk["tx"][0]["vout"][0]["value"]) == 50 * 100_000_000 + 1000
    assert sats(blk["tx"][1]["fee"]) == 1000
    # lookups after confirmation
    out = rpc.gettxout(tx.txid, 0)
    assert out["confirmations"] == 1 and out["coinbase"] is False
    assert sats(out["value"]) == utxo[2] - 1000
    assert out["bestblock"] == blockhash
    assert rpc.gettxout(utxo[0], 0) is None
    conf = rpc.getrawtransaction(tx.txid, True)
    assert conf["blockhash"] == blockhash and conf["confirmations"] == 1
    assert conf["hex"] == tx.hex()
    v2 = rpc.getrawtransaction(tx.txid, 2)
    assert v2["vin"][0]["prevout"]["generated"] is True and sats(v2["fee"]) == 1000
    # the tx is now in the chain: re-sending -> -27
    with pytest.raises(RPCFailure) as e:
        rpc.sendrawtransaction(tx.hex())
    assert e.value.code == -27
    assert "already in utxo set" in e.value.message
    # scantxoutset sees the new output
    scan = rpc.scantxoutset("start", [f"addr({DEST.address})"])
    assert [u["txid"] for u in scan["unspents"]] == [tx.txid]


def test_corrupted_signature_rejected_by_kernel(funded):
    rpc, hashes = funded
    utxo = coinbase_utxo(rpc, hashes[0])
    tx = spend_keypath(KEY, utxo, DEST.script_pubkey)
    sig = bytearray(tx.vin[0][4][0])
    sig[10] ^= 0x01
    tx.vin[0][4] = [bytes(sig)]
    with pytest.raises(RPCFailure) as e:
        rpc.sendrawtransaction(tx.hex())
    assert e.value.code == -26
    assert "mempool-script-verify-flag-failed" in e.value.message
    res = rpc.testmempoolaccept([tx.hex()])[0]
    assert res["allowed"] is False and res["reject-reason"] == "mempool-script-verify-flag-failed"
    # signed by the wrong key
    bad = spend_keypath(OTHER, utxo, DEST.script_pubkey)
    assert rpc.testmempoolaccept([bad.hex()])[0]["allowed"] is False
    # signature over different amounts (taproot commits to all spent amounts)
    tx2 = Tx()
    tx2.add_input(utxo[0], 0).add_output(utxo[2] - 1000, DEST.script_pubkey)
    tx2.sign_keypath(0, KEY, [(utxo[2] + 1, utxo[3])])
    assert rpc.testmempoolaccept([tx2.hex()])[0]["reject-reason"] == "mempool-script-verify-flag-failed"
    assert rpc.getrawmempool() == []
    # and the correctly signed version still goes through
    good = spend_keypath(KEY, utxo, DEST.script_pubkey)
    assert rpc.sendrawtransaction(good.hex()) == good.txid


def test_double_spend_rejected(funded):
    rpc, hashes = funded
    utxo = coinbase_utxo(rpc, hashes[0])
    tx1 = spend_keypath(KEY, utxo, DEST.script_pubkey)
    tx2 = spend_keypath(KEY, utxo, OTHER.script_pubkey, fee=5000)
    assert rpc.sendrawtransaction(tx1.hex()) == tx1.txid
    with pytest.raises(RPCFailure) as e:
        rpc.sendrawtransaction(tx2.hex())
    assert e.value.code == -26 and "txn-mempool-conflict" in e.value.message
    assert rpc.testmempoolaccept([tx2.hex()])[0]["reject-reason"] == "txn-mempool-conflict"
    rpc.generatetoaddress(1, OTHER.address)
    # after tx1 is confirmed, tx2's input is gone
    with pytest.raises(RPCFailure) as e:
        rpc.sendrawtransaction(tx2.hex())
    assert e.value.code == -25 and "bad-txns-inputs-missingorspent" in e.value.message
    assert rpc.testmempoolaccept([tx2.hex()])[0]["reject-reason"] == "missing-inputs"


def test_immature_coinbase_rejected(funded):
    rpc, hashes = funded
    # tip is 101, so the next block is 102: coinbases of heights 1 and 2 are mature,
    # height 3 matures with the next block, and the coinbase of block 101 is immature.
    utxo = coinbase_utxo(rpc, hashes[-1])
    tx = spend_keypath(KEY, utxo, DEST.script_pubkey)
    with pytest.raises(RPCFailure) as e:
        rpc.sendrawtransaction(tx.hex())
    assert e.value.code == -26
    assert "bad-txns-premature-spend-of-coinbase" in e.value.message
    # the coinbase of block 3 is one block short of maturity
    utxo2 = coinbase_utxo(rpc, hashes[2])
    tx2 = spend_keypath(KEY, utxo2, DEST.script_pubkey)
    assert rpc.testmempoolaccept([tx2.hex()])[0]["reject-reason"] == "bad-txns-premature-spend-of-coinbase"
    rpc.generatetoaddress(1, OTHER.address)
    assert rpc.sendrawtransaction(tx2.hex()) == tx2.txid


def test_policy_rules(funded):
    rpc, hashes = funded
    utxo = coinbase_utxo(rpc, hashes[0])
    value = utxo[2]
    # dust: P2TR threshold 330 sats
    dust = Tx().add_input(utxo[0], 0).add_output(329, DEST.script_pubkey).add_output(value - 329 - 2000, DEST.script_pubkey)
    dust.sign_keypath(0, KEY, [(value, utxo[3])])
    assert rpc.testmempoolaccept([dust.hex()])[0]["reject-reason"] == "dust"
    ok = Tx().add_input(utxo[0], 0).add_output(330, DEST.script_pubkey).add_output(value - 330 - 2000, DEST.script_pubkey)
    ok.sign_keypath(0, KEY, [(value, utxo[3])])
    assert rpc.testmempoolaccept([ok.hex()])[0]["allowed"] is True
    # P2WPKH dust threshold is 294
    p2wpkh = b"\x00\x14" + b"\x11" * 20
    d2 = Tx().add_input(utxo[0], 0).add_output(293, p2wpkh).add_output(value - 293 - 2000, DEST.script_pubkey)
    d2.sign_keypath(0, KEY, [(value, utxo[3])])
    assert rpc.testmempoolaccept([d2.hex()])[0]["reject-reason"] == "dust"
    # OP_RETURN burn above maxburnamount (default 0)
    burn = Tx().add_input(utxo[0], 0).add_output(1000, b"\x6a\x04test").add_output(value - 3000, DEST.script_pubkey)
    burn.sign_keypath(0, KEY, [(value, utxo[3])])
    with pytest.raises(RPCFailure) as e:
        rpc.sendrawtransaction(burn.hex())
    assert e.value.code == -25
    assert e.value.message == "Unspendable output exceeds maximum configured by user (maxburnamount)"
    # zero-value OP_RETURN is fine
    opret = Tx().add_input(utxo[0], 0).add_output(0, b"\x6a\x04test").add_output(value - 2000, DEST.script_pubkey)
    opret.sign_keypath(0, KEY, [(value, utxo[3])])
    assert rpc.testmempoolaccept([opret.hex()])[0]["allowed"] is True
    # fee above maxfeerate (default 0.10 BTC/kvB)
    big_fee = spend_keypath(KEY, utxo, DEST.script_pubkey, fee=2_000_000)  # > 0.10 BTC/kvB * ~111 vB
    with pytest.raises(RPCFailure) as e:
        rpc.sendrawtransaction(big_fee.hex())
    assert e.value.code == -25 and "maxfeerate" in e.value.message
    assert rpc.testmempoolaccept([big_fee.hex()])[0]["reject-reason"] == "max-fee-exceeded"
    assert rpc.testmempoolaccept([big_fee.hex()], 0)[0]["allowed"] is True
    # fee below min relay fee (1 sat/vB)
    cheap = spend_keypath(KEY, utxo, DEST.script_pubkey, fee=50)
    r = rpc.testmempoolaccept([cheap.hex()])[0]
    assert r["allowed"] is False and r["reject-reason"] == "min relay fee not met"
    # outputs exceeding inputs
    over = spend_keypath(KEY, utxo, DEST.script_pubkey, amount=value + 1)
    assert rpc.testmempoolaccept([over.hex()])[0]["reject-reason"] == "bad-txns-in-belowout"
    # unknown input
    missing = Tx().add_input("ab" * 32, 0).add_output(10_000, DEST.script_pubkey)
    missing.sign_keypath(0, KEY, [(20_000, KEY.script_pubkey)])
    with pytest.raises(RPCFailure) as e:
        rpc.sendrawtransaction(missing.hex())
    assert e.value.code == -25 and "bad-txns-inputs-missingorspent" in e.value.message
    # non-standard version
    v4 = spend_keypath(KEY, utxo, DEST.script_pubkey, version=4)
    assert rpc.testmempoolaccept([v4.hex()])[0]["reject-reason"] == "version"
    assert rpc.getrawmempool() == []


def test_chained_mempool_txs_and_package_testaccept(funded):
    rpc, hashes = funded
    utxo = coinbase_utxo(rpc, hashes[0])
    parent = spend_keypath(KEY, utxo, KEY.script_pubkey)
    child = spend_keypath(KEY, (parent.txid, 0, utxo[2] - 1000, KEY.script_pubkey), DEST.script_pubkey)
    res = rpc.testmempoolaccept([parent.hex(), child.hex()])
    assert [r["allowed"] for r in res] == [True, True]
    assert rpc.testmempoolaccept([child.hex()])[0]["reject-reason"] == "missing-inputs"
    rpc.sendrawtransaction(parent.hex())
    rpc.sendrawtransaction(child.hex())
    e = rpc.getmempoolentry(child.txid)
    assert e["depends"] == [parent.txid] and e["ancestorcount"] == 2
    assert rpc.getmempoolentry(parent.txid)["spentby"] == [child.txid]
    blockhash = rpc.generatetoaddress(1, OTHER.address)[0]
    txids = rpc.getblock(blockhash)["tx"]
    assert txids[1:] == [parent.txid, child.txid]
    assert rpc.getrawmempool() == []


def test_generateblock_with_raw_and_mempool_txs(funded):
    rpc, hashes = funded
    rpc.generatetoaddress(1, OTHER.address)
    u1 = coinbase_utxo(rpc, hashes[0])
    u2 = coinbase_utxo(rpc, hashes[1])
    t1 = spend_keypath(KEY, u1, DEST.script_pubkey)
    t2 = spend_keypath(KEY, u2, DEST.script_pubkey)
    rpc.sendrawtransaction(t1.hex())
    res = rpc.generateblock(f"addr({OTHER.address})", [t1.txid, t2.hex()])
    blk = rpc.getblock(res["hash"])
    assert blk["tx"][1:] == [t1.txid, t2.txid]
    assert rpc.getrawmempool() == []
    # an invalid raw tx makes the kernel reject the block
    bad = spend_keypath(KEY, coinbase_utxo(rpc, hashes[2]), DEST.script_pubkey)
    bad.vin[0][4] = [bytes(64)]
    before = rpc.getbestblockhash()
    with pytest.raises(RPCFailure) as e:
        rpc.generateblock(OTHER.address, [bad.hex()])
    assert e.value.code == -25
    assert rpc.getbestblockhash() == before
    # empty block to a raw() descriptor
    res = rpc.generateblock("raw(51)", [])
    assert rpc.getbestblockhash() == res["hash"]


def test_mempool_survives_restart(node_factory):
    n = node_factory("mp")
    rpc = n.rpc()
    hashes = rpc.generatetoaddress(101, KEY.address)
    tx = spend_keypath(KEY, coinbase_utxo(rpc, hashes[0]), DEST.script_pubkey)
    rpc.sendrawtransaction(tx.hex())
    assert n.stop() == 0
    n.start()
    rpc = n.rpc()
    assert rpc.getrawmempool() == [tx.txid]
    blockhash = rpc.generatetoaddress(1, OTHER.address)[0]
    assert tx.txid in rpc.getblock(blockhash)["tx"]

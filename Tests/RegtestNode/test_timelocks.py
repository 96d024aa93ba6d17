"""Relative (BIP68/CSV) and absolute timelocks; taproot script-path spends."""

from __future__ import annotations

import pytest

from btc import TaprootKey, Tx, csv_leaf, point_mul, G, xonly
from conftest import RPCFailure
from helpers import coinbase_utxo, spend_keypath

KEY = TaprootKey(0x71CC)
DEST = TaprootKey(0xDE57)
LEAF_SECKEY = 0x1EAF
CSV_BLOCKS = 5
VAULT = TaprootKey(0x1A7E, leaf_script=csv_leaf(CSV_BLOCKS, xonly(point_mul(G, LEAF_SECKEY))))


def _vault_spend(utxo, sequence, version=2, seckey=LEAF_SECKEY, control=None):
    txid, vout, value, spk = utxo
    tx = Tx(version=version)
    tx.add_input(txid, vout, sequence)
    tx.add_output(value - 1000, DEST.script_pubkey)
    tx.sign_scriptpath(0, VAULT, seckey, [(value, spk)])
    if control is not None:
        tx.vin[0][4][2] = control
    return tx


@pytest.fixture
def vault_utxo(rpc):
    hashes = rpc.generatetoaddress(101, KEY.address)
    cb = coinbase_utxo(rpc, hashes[0])
    fund = spend_keypath(KEY, cb, VAULT.script_pubkey)
    rpc.sendrawtransaction(fund.hex())
    blockhash = rpc.generatetoaddress(1, KEY.address)[0]
    assert fund.txid in rpc.getblock(blockhash)["tx"]
    height = rpc.getblockcount()
    assert height == 102
    return rpc, (fund.txid, 0, cb[2] - 1000, VAULT.script_pubkey), height


def test_csv_rejected_before_maturity_accepted_after(vault_utxo):
    rpc, utxo, conf_height = vault_utxo
    tx = _vault_spend(utxo, sequence=CSV_BLOCKS)
    # BIP68: spendable in block conf_height + CSV_BLOCKS (= 107), i.e. once tip is 106
    for _ in range(conf_height, conf_height + CSV_BLOCKS - 1):
        with pytest.raises(RPCFailure) as e:
            rpc.sendrawtransaction(tx.hex())
        assert e.value.code == -26 and "non-BIP68-final" in e.value.message
        rpc.generatetoaddress(1, KEY.address)
    assert rpc.getblockcount() == conf_height + CSV_BLOCKS - 1  # tip 106
    # exactly now the next block (107) satisfies the lock
    res = rpc.testmempoolaccept([tx.hex()])[0]
    assert res["allowed"] is True, res
    assert rpc.sendrawtransaction(tx.hex()) == tx.txid
    blockhash = rpc.generatetoaddress(1, KEY.address)[0]
    assert tx.txid in rpc.getblock(blockhash)["tx"]
    assert rpc.gettxout(tx.txid, 0)["confirmations"] == 1


def test_csv_one_block_early_rejected(vault_utxo):
    rpc, utxo, conf_height = vault_utxo
    rpc.generatetoaddress(CSV_BLOCKS - 2, KEY.address)  # tip 105: next block 106 is one too early
    tx = _vault_spend(utxo, sequence=CSV_BLOCKS)
    r = rpc.testmempoolaccept([tx.hex()])[0]
    assert r["allowed"] is False and r["reject-reason"] == "non-BIP68-final"
    rpc.generatetoaddress(1, KEY.address)
    assert rpc.testmempoolaccept([tx.hex()])[0]["allowed"] is True


def test_script_level_csv_checked_by_kernel(vault_utxo):
    rpc, utxo, conf_height = vault_utxo
    rpc.generatetoaddress(CSV_BLOCKS + 2, KEY.address)
    # nSequence 3 satisfies BIP68 (enough confirmations) but not the script's OP_CSV 5
    short = _vault_spend(utxo, sequence=3)
    r = rpc.testmempoolaccept([short.hex()])[0]
    assert r["allowed"] is False and r["reject-reason"] == "mempool-script-verify-flag-failed"
    # version 1 transactions cannot satisfy OP_CSV
    v1 = _vault_spend(utxo, sequence=CSV_BLOCKS, version=1)
    assert rpc.testmempoolaccept([v1.hex()])[0]["reject-reason"] == "mempool-script-verify-flag-failed"
    # disabled relative lock (bit 31) fails OP_CSV too
    disabled = _vault_spend(utxo, sequence=(1 << 31) | CSV_BLOCKS)
    assert rpc.testmempoolaccept([disabled.hex()])[0]["reject-reason"] == "mempool-script-verify-flag-failed"
    # a wrongly built script path: bad control block parity / wrong internal key / wrong signer
    bad_parity = _vault_spend(utxo, sequence=CSV_BLOCKS, control=bytes([0xC0 | (VAULT.parity ^ 1)]) + VAULT.internal_x)
    assert rpc.testmempoolaccept([bad_parity.hex()])[0]["reject-reason"] == "mempool-script-verify-flag-failed"
    bad_internal = _vault_spend(utxo, sequence=CSV_BLOCKS, control=bytes([0xC0 | VAULT.parity]) + DEST.internal_x)
    assert rpc.testmempoolaccept([bad_internal.hex()])[0]["allowed"] is False
    wrong_signer = _vault_spend(utxo, sequence=CSV_BLOCKS, seckey=LEAF_SECKEY + 1)
    with pytest.raises(RPCFailure) as e:
        rpc.sendrawtransaction(wrong_signer.hex())
    assert e.value.code == -26 and "mempool-script-verify-flag-failed" in e.value.message
    # the correct spend works
    good = _vault_spend(utxo, sequence=CSV_BLOCKS)
    assert rpc.sendrawtransaction(good.hex()) == good.txid


def test_absolute_locktime_finality(rpc):
    hashes = rpc.generatetoaddress(101, KEY.address)
    cb = coinbase_utxo(rpc, hashes[0])
    tip = rpc.getblockcount()
    tx = Tx(locktime=tip + 1)
    tx.add_input(cb[0], 0, 0xFFFFFFFE).add_output(cb[2] - 1000, DEST.script_pubkey)
    tx.sign_keypath(0, KEY, [(cb[2], cb[3])])
    with pytest.raises(RPCFailure) as e:
        rpc.sendrawtransaction(tx.hex())
    assert e.value.code == -26 and "non-final" in e.value.message
    rpc.generatetoaddress(1, KEY.address)  # now locktime < next block height -> final
    assert rpc.sendrawtransaction(tx.hex()) == tx.txid


def test_op_success_leaf_is_policy_rejected(rpc):
    """OP_SUCCESSx (e.g. OP_CAT, 0x7e) makes a tapscript consensus-valid for anyone,
    but bitcoind's mempool refuses it; so does this node."""
    hashes = rpc.generatetoaddress(101, KEY.address)
    cb = coinbase_utxo(rpc, hashes[0])
    cat = TaprootKey(0xCA7, leaf_script=bytes([0x7E]))
    fund = spend_keypath(KEY, cb, cat.script_pubkey)
    rpc.sendrawtransaction(fund.hex())
    rpc.generatetoaddress(1, KEY.address)
    value = cb[2] - 1000
    tx = Tx().add_input(fund.txid, 0).add_output(value - 1000, DEST.script_pubkey)
    tx.vin[0][4] = [cat.leaf_script, cat.control_block()]
    r = rpc.testmempoolaccept([tx.hex()])[0]
    assert r["allowed"] is False
    assert r["reject-reason"] == "mempool-script-verify-flag-failed (OP_SUCCESSx reserved for soft-fork upgrades)"
    # ...while a block containing it is valid by consensus (the kernel accepts it)
    res = rpc.generateblock(KEY.address, [tx.hex()])
    assert tx.txid in rpc.getblock(res["hash"])["tx"]

"""Process lifecycle, auth, JSON-RPC transport and result shapes."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import threading
import time

import pytest

from btc import TaprootKey
from conftest import RPCClient, RPCFailure

ADDR = TaprootKey(0xA11CE).address


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_startup_fast_cookie_and_ready_line(node):
    assert node.startup_seconds < 2.0, f"startup took {node.startup_seconds:.2f}s"
    assert node.ready_line.startswith("regtest-node ready rpc=127.0.0.1:")
    assert f"datadir={node.datadir}" in node.ready_line
    cookie = node.datadir / ".cookie"
    mode = stat.S_IMODE(os.stat(cookie).st_mode)
    assert mode == 0o600
    user, pw = cookie.read_text().split(":", 1)
    assert user == "__cookie__" and len(pw) == 64 and int(pw, 16) >= 0
    rpc = node.rpc()
    info = rpc.getblockchaininfo()
    assert info["chain"] == "regtest"
    assert info["blocks"] == 0
    assert info["bestblockhash"] == "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    assert info["pruned"] is False


def test_wrong_auth_gets_401_and_server_survives(node):
    bad = RPCClient(node.host, node.port_used, "__cookie__", "wrong")
    status, parsed, body = bad.raw(b'{"method":"getblockcount","params":[],"id":1}')
    assert status == 401
    bad.close()
    noauth = RPCClient(node.host, node.port_used, "x", "y")
    status, _, _ = noauth.raw(b'{"method":"getblockcount"}', headers={"Authorization": ""})
    assert status == 401
    noauth.close()
    assert node.rpc().getblockcount() == 0


def test_user_password_auth_and_fixed_port(node_factory):
    port = free_port()
    n = node_factory("up", extra_args=["--rpcuser", "alice", "--rpcpassword", "s3cret"], port=port)
    assert n.port_used == port
    assert not (n.datadir / ".cookie").exists()
    assert n.rpc("alice", "s3cret").getblockcount() == 0
    status, _, _ = RPCClient(n.host, port, "alice", "nope").raw(b'{"method":"getblockcount"}')
    assert status == 401


def test_errors_and_malformed_input(node, rpc):
    # parse error
    status, parsed, _ = rpc.raw(b"{this is not json")
    assert status == 500
    assert parsed["error"]["code"] == -32700
    # unknown method (JSON-RPC 1.0 -> HTTP 404 like bitcoind)
    status, parsed, _ = rpc.raw(b'{"method":"nosuchmethod","params":[],"id":7}')
    assert status == 404 and parsed["error"]["code"] == -32601 and parsed["id"] == 7
    # JSON-RPC 2.0: HTTP 200 with error object, no "result"
    status, parsed, _ = rpc.raw(b'{"jsonrpc":"2.0","method":"nosuchmethod","id":"x"}')
    assert status == 200 and parsed["error"]["code"] == -32601 and "result" not in parsed
    # invalid parameter codes
    with pytest.raises(RPCFailure) as e:
        rpc.getblockhash(5)
    assert e.value.code == -8
    with pytest.raises(RPCFailure) as e:
        rpc.getblockhash("zero")
    assert e.value.code == -3
    with pytest.raises(RPCFailure) as e:
        rpc.getblockheader("00" * 32)
    assert e.value.code == -5
    with pytest.raises(RPCFailure) as e:
        rpc.getblockheader("xyz")
    assert e.value.code == -8
    with pytest.raises(RPCFailure) as e:
        rpc.sendrawtransaction("deadbeef")
    assert e.value.code == -22
    with pytest.raises(RPCFailure) as e:
        rpc.generatetoaddress(1, "bc1qnotregtest")
    assert e.value.code == -5
    # garbage of all kinds never kills the server
    for body in [b"", b"[]", b"null", b"42", b'"str"', b"[1,2]", b'{"method":5}', b'{"method":"getblockcount","params":"x"}',
                 b"\xff\xfe\x00", b'{"method":"getblock","params":[null, null]}', b'{"method":"getblockhash","params":[1e400]}']:
        status, parsed, _ = rpc.raw(body)
        assert status in (200, 400, 404, 500), body
    # batch: mixed success/failure, notifications omitted
    status, parsed, _ = rpc.raw(json.dumps([
        {"method": "getblockcount", "id": 1},
        {"method": "nope", "id": 2},
        {"jsonrpc": "2.0", "method": "getblockcount"},
        {"jsonrpc": "2.0", "method": "getbestblockhash", "id": 3},
    ]).encode())
    assert status == 200 and isinstance(parsed, list) and len(parsed) == 3
    assert parsed[0] == {"result": 0, "error": None, "id": 1}
    assert parsed[1]["error"]["code"] == -32601
    assert parsed[2]["jsonrpc"] == "2.0" and len(parsed[2]["result"]) == 64
    # text/plain content type (like bitcoin-cli / some curl users)
    status, parsed, _ = rpc.raw(b'{"method":"getblockcount","id":1}', headers={"Content-Type": "text/plain"})
    assert status == 200 and parsed["result"] == 0
    # named parameters
    status, parsed, _ = rpc.raw(b'{"jsonrpc":"2.0","method":"getblockhash","params":{"height":0},"id":1}')
    assert parsed["result"].startswith("0f9188f1")
    assert node.proc.poll() is None
    assert rpc.getblockcount() == 0


def test_concurrent_requests(node):
    rpc0 = node.rpc()
    rpc0.generatetoaddress(5, ADDR)
    errors = []

    def worker(i):
        c = node.rpc()
        try:
            for _ in range(20):
                assert c.getblockcount() >= 5
                h = c.getblockhash(3)
                assert c.getblockheader(h)["height"] == 3
            if i % 2 == 0:
                c.generatetoaddress(1, ADDR)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert rpc0.getblockcount() == 9


def test_block_and_header_shapes(rpc):
    hashes = rpc.generatetoaddress(3, ADDR)
    assert len(hashes) == 3
    assert rpc.getblockcount() == 3
    assert rpc.getbestblockhash() == hashes[-1]
    assert rpc.getblockhash(2) == hashes[1]
    hdr = rpc.getblockheader(hashes[1])
    for k in ["hash", "confirmations", "height", "version", "versionHex", "merkleroot", "time", "mediantime",
              "nonce", "bits", "difficulty", "chainwork", "nTx", "previousblockhash", "nextblockhash"]:
        assert k in hdr, k
    assert hdr["confirmations"] == 2 and hdr["height"] == 2 and hdr["bits"] == "207fffff"
    assert hdr["versionHex"] == "20000000" and hdr["nTx"] == 1
    assert hdr["time"] > hdr["mediantime"] or hdr["height"] == 0 or hdr["time"] >= hdr["mediantime"]
    raw = rpc.getblockheader(hashes[1], False)
    assert len(raw) == 160
    b0 = rpc.getblock(hashes[2], 0)
    assert b0.startswith(raw[:0]) and len(b0) > 160
    b1 = rpc.getblock(hashes[2], 1)
    assert b1["tx"] and len(b1["tx"][0]) == 64 and "nextblockhash" not in b1
    b2 = rpc.getblock(hashes[2])  # default verbosity 1
    assert b2["hash"] == hashes[2] and b2["weight"] > 0 and b2["size"] > b2["strippedsize"]
    b3 = rpc.getblock(hashes[2], 2)
    cb = b3["tx"][0]
    assert "coinbase" in cb["vin"][0]
    out = cb["vout"][0]
    assert out["scriptPubKey"]["type"] == "witness_v1_taproot"
    assert out["scriptPubKey"]["address"] == ADDR
    assert str(out["value"]) == "50.00000000"
    # witness commitment output
    assert cb["vout"][1]["scriptPubKey"]["hex"].startswith("6a24aa21a9ed")
    # coinbase height push (BIP34): height 3 -> OP_3
    assert cb["vin"][0]["coinbase"].startswith("53")
    # tx lookup of a confirmed coinbase via the tx index
    t = rpc.getrawtransaction(cb["txid"], True)
    assert t["blockhash"] == hashes[2] and t["confirmations"] == 1
    assert rpc.getrawtransaction(cb["txid"]) == cb["hex"]
    assert rpc.getrawtransaction(cb["txid"], False, hashes[2]) == cb["hex"]
    tips = rpc.getchaintips()
    assert tips == [{"height": 3, "hash": hashes[-1], "branchlen": 0, "status": "active"}]
    assert rpc.getdifficulty() > 0
    net = rpc.getnetworkinfo()
    assert net["connections"] == 0 and "version" in net
    fee = rpc.estimatesmartfee(6)
    assert fee["feerate"] > 0 and fee["blocks"] >= 1
    assert isinstance(rpc.uptime(), int)


def test_scantxoutset(rpc):
    key = TaprootKey(0xBEEF)
    rpc.generatetoaddress(2, key.address)
    rpc.generatetoaddress(1, ADDR)
    res = rpc.scantxoutset("start", [f"addr({key.address})"])
    assert res["success"] is True
    assert len(res["unspents"]) == 2
    assert str(res["total_amount"]) == "100.00000000"
    u = res["unspents"][0]
    assert set(["txid", "vout", "scriptPubKey", "amount", "height"]) <= set(u)
    assert u["scriptPubKey"] == key.script_pubkey.hex() and u["height"] == 1
    res2 = rpc.scantxoutset("start", [{"desc": f"raw({key.script_pubkey.hex()})"}])
    assert len(res2["unspents"]) == 2
    with pytest.raises(RPCFailure) as e:
        rpc.scantxoutset("start", ["pkh(garbage)"])
    assert e.value.code == -5


def test_sigterm_clean_exit_and_restart_keeps_chain(node_factory):
    n = node_factory("persist")
    rpc = n.rpc()
    hashes = rpc.generatetoaddress(300, ADDR)
    assert rpc.getblockcount() == 300
    cb_txid = rpc.getblock(hashes[150], 1)["tx"][0]
    t0 = time.monotonic()
    rc = n.stop(signal.SIGTERM)
    elapsed = time.monotonic() - t0
    assert rc == 0
    assert elapsed < 5.0
    assert not (n.datadir / ".cookie").exists(), "cookie must be removed on shutdown"
    assert "shutdown complete" in n.stderr()
    # restart with the same datadir: same chain, fast startup
    n.start()
    assert n.startup_seconds < 2.0, f"restart took {n.startup_seconds:.2f}s"
    rpc = n.rpc()
    assert rpc.getblockcount() == 300
    assert rpc.getbestblockhash() == hashes[-1]
    assert rpc.getrawtransaction(cb_txid, True)["blockhash"] == hashes[150]
    assert len(rpc.scantxoutset("start", [f"addr({ADDR})"])["unspents"]) == 300
    more = rpc.generatetoaddress(1, ADDR)
    assert rpc.getblockheader(more[0])["previousblockhash"] == hashes[-1]
    # SIGINT also exits cleanly
    assert n.stop(signal.SIGINT) == 0


def test_stop_rpc(node):
    rpc = node.rpc()
    assert "stopping" in rpc.stop()
    assert node.proc.wait(timeout=5) == 0

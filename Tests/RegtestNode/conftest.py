"""Fixtures: start Scripts/regtest-node as a real subprocess on a loopback port."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "Scripts" / "regtest-node"
START_TIMEOUT = 15.0


class RPCFailure(Exception):
    def __init__(self, code, message, http_status):
        self.code = code
        self.message = message
        self.http_status = http_status
        super().__init__(f"RPC error {code}: {message} (HTTP {http_status})")


class RPCClient:
    """Tiny JSON-RPC client using one keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int, user: str, password: str, timeout: float = 60.0):
        self.host, self.port = host, port
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.timeout = timeout
        self.conn = None
        self._id = 0

    def raw(self, body: bytes, headers: dict | None = None):
        """POST raw bytes; returns (status, parsed-json-or-None, raw body)."""
        h = {"Authorization": self.auth, "Content-Type": "application/json"}
        h.update(headers or {})
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("POST", "/", body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        parsed = None
        if data:
            try:
                parsed = json.loads(data, parse_float=Decimal)
            except ValueError:
                parsed = None
        return resp.status, parsed, data

    def call(self, method: str, *params):
        self._id += 1
        body = json.dumps({"jsonrpc": "1.0", "id": self._id, "method": method, "params": list(params)}).encode()
        status, parsed, data = self.raw(body)
        if parsed is None:
            raise RuntimeError(f"non-JSON reply (HTTP {status}): {data[:200]!r}")
        if parsed.get("error") is not None:
            raise RPCFailure(parsed["error"]["code"], parsed["error"]["message"], status)
        assert status == 200
        return parsed["result"]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *a: self.call(name, *a)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class NodeProcess:
    def __init__(self, datadir: Path, extra_args=(), port: int = 0):
        self.datadir = Path(datadir)
        self.extra_args = list(extra_args)
        self.port = port
        self.proc = None
        self.ready_file = self.datadir.parent / (self.datadir.name + ".ready")
        self.log_path = self.datadir.parent / (self.datadir.name + ".stderr.log")
        self.startup_seconds = None
        self.host = None
        self.clients = []

    def start(self):
        self.datadir.mkdir(parents=True, exist_ok=True)
        if self.ready_file.exists():
            self.ready_file.unlink()
        self._log = open(self.log_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [str(NODE_BIN), "--datadir", str(self.datadir), "--rpcport", str(self.port),
             "--ready-file", str(self.ready_file), *self.extra_args],
            stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL,
        )
        deadline = t0 + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited early with {self.proc.returncode}: {self.stderr()[-2000:]}")
            if self.ready_file.exists():
                line = self.ready_file.read_text().strip()
                if line:
                    break
            time.sleep(0.02)
        else:
            self.kill()
            raise RuntimeError("node did not become ready in time")
        self.startup_seconds = time.monotonic() - t0
        self.ready_line = line
        rpc_part = [p for p in line.split() if p.startswith("rpc=")][0][4:]
        self.host, port = rpc_part.rsplit(":", 1)
        self.port_used = int(port)
        return self

    def stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def cookie(self):
        user, pw = (self.datadir / ".cookie").read_text().split(":", 1)
        return user, pw

    def rpc(self, user=None, password=None) -> RPCClient:
        if user is None:
            user, password = self.cookie()
        c = RPCClient(self.host, self.port_used, user, password)
        self.clients.append(c)
        return c

    def stop(self, sig=signal.SIGTERM, timeout=10.0) -> int:
        for c in self.clients:
            c.close()
        self.clients.clear()
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self.proc = None
        self._log.close()
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None


@pytest.fixture
def node_factory(tmp_path):
    nodes = []

    def make(name="node", extra_args=(), port=0, start=True):
        n = NodeProcess(tmp_path / name, extra_args, port)
        nodes.append(n)
        return n.start() if start else n

    yield make
    for n in nodes:
        try:
            n.stop(timeout=5)
        except Exception:
            n.kill()


@pytest.fixture
def node(node_factory):
    return node_factory()


@pytest.fixture
def rpc(node):
    return node.rpc()

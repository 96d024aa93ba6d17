"""regtest-node entry point (run via Scripts/regtest-node)."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from regtest_node import __version__  # noqa: E402
from regtest_node.util import log  # noqa: E402

DESCRIPTION = """\
A bitcoind-compatible *regtest* node for tests and local devnets.

Every block is validated and connected by Bitcoin Core's own consensus code
(libbitcoinkernel via py-bitcoinkernel); every input of every transaction
submitted with sendrawtransaction/testmempoolaccept is verified by the
kernel's script interpreter (all consensus flags incl. taproot).

It speaks bitcoind's JSON-RPC over HTTP (Basic auth; JSON-RPC 1.0/2.0;
batches). Without --rpcuser/--rpcpassword a cookie file DATADIR/.cookie
(__cookie__:<hex>) is written and removed on shutdown.

Extra (non-bitcoind) RPC: generatetoaddressfrom <parent_blockhash> <nblocks>
<address> mines coinbase-only blocks on top of any known block (a competing
branch); the kernel switches to it once it has the most work, and the UTXO
index, tx index and mempool follow the reorg.

No P2P networking, no wallet.
"""


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="regtest-node",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--datadir", required=True, help="data directory (created if missing); chain data lives in DATADIR/regtest")
    ap.add_argument("--rpcbind", default="127.0.0.1", help="address to bind the RPC server to (default: 127.0.0.1)")
    ap.add_argument("--rpcport", type=int, default=18443, help="RPC port (default: 18443; 0 = pick a free port, reported in the ready line)")
    ap.add_argument("--rpcuser", help="RPC user name (requires --rpcpassword); otherwise cookie auth is used")
    ap.add_argument("--rpcpassword", help="RPC password")
    ap.add_argument("--ready-file", help="write the ready line to this file once the RPC server accepts connections")
    ap.add_argument("--version", action="version", version=f"regtest-node {__version__}")
    args = ap.parse_args(argv)
    if (args.rpcuser is None) != (args.rpcpassword is None):
        ap.error("--rpcuser and --rpcpassword must be given together")
    if args.rpcuser is not None and ":" in args.rpcuser:
        ap.error("--rpcuser must not contain ':'")
    # accept host:port / [v6]:port like bitcoind's -rpcbind
    host = args.rpcbind
    try:
        if host.count(":") == 1:
            host, _, p = host.partition(":")
            args.rpcport = int(p)
        elif host.startswith("[") and "]:" in host:
            host, _, p = host[1:].partition("]:")
            args.rpcport = int(p)
    except ValueError:
        ap.error(f"invalid --rpcbind {args.rpcbind!r}")
    args.rpcbind = host.strip("[]")
    if not 0 <= args.rpcport <= 65535:
        ap.error("--rpcport out of range")
    return args


def write_cookie(datadir: Path) -> tuple[Path, str]:
    path = datadir / ".cookie"
    password = secrets.token_hex(32)
    tmp = datadir / ".cookie.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"__cookie__:{password}")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path, password


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.time()
    datadir = Path(args.datadir).absolute()
    datadir.mkdir(parents=True, exist_ok=True)

    stop_event = threading.Event()

    def request_stop(*_a):
        stop_event.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, request_stop)

    from regtest_node.node import Node
    from regtest_node.rpc import RPC, RPCServer, serve_in_thread

    log(f"regtest-node {__version__} starting datadir={datadir}")
    try:
        node = Node(str(datadir))
    except Exception as e:
        log(f"fatal: could not open chainstate in {datadir}: {e}")
        return 1

    cookie_path = None
    if args.rpcuser is not None:
        auth = [(args.rpcuser, args.rpcpassword)]
    else:
        cookie_path, pw = write_cookie(datadir)
        auth = [("__cookie__", pw)]
        log(f"generated RPC authentication cookie {cookie_path}")

    def on_stop():
        threading.Timer(0.05, stop_event.set).start()

    rpc = RPC(node, on_stop)
    if args.rpcbind not in ("127.0.0.1", "::1", "localhost"):
        log(f"WARNING: binding RPC to non-loopback address {args.rpcbind}")
    try:
        if ":" in args.rpcbind:
            import socket

            class V6Server(RPCServer):
                address_family = socket.AF_INET6

            server = V6Server((args.rpcbind, args.rpcport), rpc, auth)
        else:
            server = RPCServer((args.rpcbind, args.rpcport), rpc, auth)
    except OSError as e:
        log(f"fatal: unable to bind RPC server to {args.rpcbind}:{args.rpcport}: {e}")
        if cookie_path:
            cookie_path.unlink(missing_ok=True)
        node.close()
        return 1
    host, port = server.server_address[:2]
    serve_in_thread(server)

    ready = f"regtest-node ready rpc={host}:{port} datadir={datadir}"
    if args.ready_file:
        rf = Path(args.ready_file)
        tmp = rf.with_name(rf.name + ".tmp")
        tmp.write_text(ready + "\n")
        os.replace(tmp, rf)
    try:
        print(ready, flush=True)
    except (OSError, ValueError):
        pass
    log(f"{ready} height={node.tip_height()} startup={time.time() - t0:.2f}s")

    while not stop_event.wait(0.5):
        pass

    log("shutdown requested")
    server.shutdown()
    server.server_close()
    node.close()
    if cookie_path:
        try:
            cookie_path.unlink()
        except FileNotFoundError:
            pass
    log("shutdown complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())

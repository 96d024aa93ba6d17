"""Small shared helpers."""

from __future__ import annotations

import sys
import threading
import time

_log_lock = threading.Lock()


def log(msg: str) -> None:
    """One line per event on stderr, bitcoind-like timestamp prefix."""
    t = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
    line = f"{ts} {msg}\n"
    with _log_lock:
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

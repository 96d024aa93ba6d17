"""regtest-node: a bitcoind-compatible regtest node built on libbitcoinkernel (py-bitcoinkernel)."""

__version__ = "0.1.0"

// RocksDB's C API (Debian: librocksdb-dev).
#ifndef ISHTAR_CROCKSDB_SHIM_H
#define ISHTAR_CROCKSDB_SHIM_H
#include <rocksdb/c.h>
#endif

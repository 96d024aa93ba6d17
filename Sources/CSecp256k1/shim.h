// Pulls in the libsecp256k1 modules Ishtar uses (Debian's libsecp256k1 0.2.0:
// schnorrsig and extrakeys are all we need).
#ifndef ISHTAR_CSECP256K1_SHIM_H
#define ISHTAR_CSECP256K1_SHIM_H
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#endif

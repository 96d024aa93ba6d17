// swift-crypto's BoringSSL, reached directly as in InlineSHA256.swift (see there).
import CCryptoBoringSSL
import Foundation

/// The AES-256-CTR keystream from the all-zero counter block — what `openssl enc
/// -aes-256-ctr -iv 00…00` makes of zeros — written into a caller's buffer.
///
/// swift-crypto's `AES._CTR` gives the same bytes, but per call it builds a key object, a
/// cipher context and a fresh `Data` for input and output; for the state commitment, which
/// expands two 2 KiB elements for every state key a block changes, that wrapping cost as
/// much as the AES-NI work itself.
public enum AESKeystream {
    /// Fills `out` with the keystream under the 32-byte `key` (counter blocks 0, 1, …).
    /// Returns false, leaving `out` unspecified, if `key` is not 32 bytes or `out` holds more
    /// than 2^32 blocks (the counter would wrap its low 32 bits, where BoringSSL's fast
    /// path counts).
    public static func fill(_ out: UnsafeMutableRawBufferPointer, key: UnsafeRawBufferPointer) -> Bool {
        guard key.count == 32, let keyBase = key.baseAddress, out.count / 16 < Int(UInt32.max) else { return false }
        guard let base = out.baseAddress, !out.isEmpty else { return true }
        var schedule = AES_KEY()
        guard CCryptoBoringSSL_AES_set_encrypt_key(keyBase.assumingMemoryBound(to: UInt8.self), 256, &schedule) == 0 else {
            return false
        }
        // CTR encryption of zeros is the keystream; encrypting in place needs no input buffer.
        // memset, not initializeMemory(as:): the caller's memory keeps whatever type it has.
        memset(base, 0, out.count)
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { scratch in
            // Counter block (16 bytes, zero) and BoringSSL's partial-block buffer (16 bytes).
            scratch.initialize(repeating: 0)
            guard let counter = scratch.baseAddress else { return false }
            var used: UInt32 = 0
            CCryptoBoringSSL_AES_ctr128_encrypt(bytes, bytes, out.count, &schedule, counter, counter + 16, &used)
            return true
        }
    }
}

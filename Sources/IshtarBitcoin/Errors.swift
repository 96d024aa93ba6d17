import IshtarCrypto

/// Why a byte string could not be decoded as a Bitcoin structure (transaction, header,
/// CompactSize, hash). Offsets are byte offsets from the start of the decoded input.
public enum BitcoinDecodingError: Error, Equatable, Sendable {
    /// The input ended inside `field`: `needed` bytes were required at `offset`, `available` remained.
    case truncated(field: String, offset: Int, needed: Int, available: Int)
    /// The CompactSize for `field` at `offset` used a longer encoding than its value needs;
    /// Bitcoin Core rejects these, and accepting them would let one transaction have two encodings.
    case nonMinimalCompactSize(field: String, offset: Int)
    /// The count or length `value` for `field` at `offset` is more than the remaining input could
    /// hold, so it is rejected before anything is allocated for it.
    case countExceedsInput(field: String, offset: Int, value: UInt64)
    /// Decoding finished at `offset`, but `count` more bytes followed.
    case trailingBytes(offset: Int, count: Int)
    /// The segwit marker 0x00 at `offset` was followed by flag `flag`; only 0x01 is defined (BIP-144).
    case unknownSegwitFlag(offset: Int, flag: UInt8)
    /// The transaction starting at `offset` has no inputs; such a transaction cannot be
    /// serialized unambiguously, because its input count 0x00 reads as the segwit marker.
    case noInputs(offset: Int)
    /// The segwit marker and flag were present, but every input's witness was empty
    /// (Bitcoin Core: "Superfluous witness record"); the witness section ends at `offset`.
    case superfluousWitness(offset: Int)
    /// The output value at `offset` is negative or above 21 million BTC.
    case invalidAmount(offset: Int, sats: Int64)
    /// A fixed-size `field` had `actual` bytes instead of `expected`.
    case invalidLength(field: String, expected: Int, actual: Int)
    /// `field` was not valid hexadecimal.
    case invalidHex(field: String)
}

/// Why an amount of satoshis was rejected.
public enum AmountError: Error, Equatable, Sendable {
    /// The amount was negative.
    case negative(sats: Int64)
    /// The amount exceeded 21,000,000 BTC (`Amount.maxMoney`).
    case exceedsMaxMoney(sats: Int64)
    /// An arithmetic operation overflowed 64 bits or went below zero.
    case arithmeticOverflow
}

/// Why a script could not be parsed, built or interpreted.
public enum ScriptError: Error, Equatable, Sendable {
    /// The push opcode at `offset` declares `declared` bytes of data (or a length field), but
    /// only `available` bytes remain in the script.
    case truncatedPush(offset: Int, declared: Int, available: Int)
    /// A script number was longer than `maxSize` bytes (consensus limit: 4, or 5 for CLTV/CSV).
    case numberTooLong(size: Int, maxSize: Int)
    /// A script number had a redundant trailing 0x00/0x80 byte (minimal encoding required).
    case nonMinimalNumber
    /// A multisig was requested with an unusable `threshold` for `keyCount` keys.
    case invalidThreshold(threshold: Int, keyCount: Int)
    /// A multisig listed the same key more than once.
    case duplicateKey
}

/// Why an address or bech32 string was rejected. Positions are character indexes in the string.
public enum AddressError: Error, Equatable, Sendable {
    /// The string is longer than the 90 characters bech32 allows.
    case tooLong(length: Int)
    /// The character at `position` is outside the printable ASCII range 33...126.
    case characterOutOfRange(position: Int)
    /// The string mixes upper- and lower-case letters.
    case mixedCase
    /// The string has no '1' separator between human-readable part and data.
    case noSeparator
    /// The human-readable part (before the last '1') is empty.
    case emptyHumanReadablePart
    /// The data part is shorter than the 6-character checksum.
    case checksumTooShort
    /// The character at `position` in the data part is not in the bech32 alphabet.
    case invalidDataCharacter(position: Int)
    /// The checksum matches neither bech32 nor bech32m.
    case invalidChecksum
    /// The checksum is valid, but of the wrong variant for the witness version (BIP-350:
    /// version 0 uses bech32, versions 1-16 use bech32m).
    case wrongChecksumVariant(witnessVersion: UInt8)
    /// The human-readable part names no known network (`bc`, `tb`, `bcrt`).
    case unknownHumanReadablePart(String)
    /// The address belongs to another network than the one expected.
    case wrongNetwork(expected: String, found: String)
    /// The address has no data beyond its checksum, so no witness version.
    case emptyData
    /// The witness version is above 16.
    case invalidWitnessVersion(UInt8)
    /// The witness program length is outside 2...40 bytes.
    case invalidProgramLength(Int)
    /// A version-0 witness program is neither 20 (P2WPKH) nor 32 (P2WSH) bytes (BIP-141).
    case invalidVersion0ProgramLength(Int)
    /// The 5-to-8-bit conversion left more than 4 bits of padding, or padding that is not zero.
    case invalidPadding
    /// The output script is not a witness program, so it has no segwit address.
    case notAWitnessProgram
}

/// Why a taproot construction, control block or spend could not be built or verified.
public enum TaprootError: Error, Equatable, Sendable {
    /// A control block had `length` bytes; valid lengths are 33 + 32·m with m ≤ 128.
    case invalidControlBlockLength(Int)
    /// A leaf version had its low bit set (it is reserved for the output key parity), or was 0x50 (the annex tag).
    case invalidLeafVersion(UInt8)
    /// The internal key in a control block is not the x coordinate of a curve point.
    case invalidInternalKey
    /// A merkle root was not 32 bytes.
    case invalidMerkleRootLength(Int)
    /// The leaf is not in this tree.
    case leafNotInTree
    /// The tree is deeper than the 128 levels a control block can express.
    case treeTooDeep(depth: Int)
    /// The underlying elliptic-curve operation failed.
    case crypto(CryptoError)
    /// Computing the signature hash failed.
    case sighash(SighashError)
}

/// Why a BIP-341 signature hash could not be computed.
public enum SighashError: Error, Equatable, Sendable {
    /// The hash type byte is not one of 0x00-0x03, 0x81-0x83.
    case invalidHashType(UInt8)
    /// The input index is not below the transaction's `inputCount`.
    case inputIndexOutOfRange(index: Int, inputCount: Int)
    /// BIP-341 commits to every spent output: `provided` were given for `inputCount` inputs.
    case prevoutsCountMismatch(provided: Int, inputCount: Int)
    /// SIGHASH_SINGLE at input `index` has no output at the same index (`outputCount` outputs).
    case singleWithoutMatchingOutput(index: Int, outputCount: Int)
    /// A tapleaf hash was not 32 bytes.
    case invalidLeafHashLength(Int)
    /// An annex did not start with 0x50.
    case invalidAnnex
}

/// Why a block header, target or header chain was rejected.
public enum PowError: Error, Equatable, Sendable {
    /// The compact target `bits` has its sign bit set with a nonzero mantissa.
    case negativeTarget(bits: UInt32)
    /// The compact target `bits` does not fit in 256 bits.
    case targetOverflow(bits: UInt32)
    /// The compact target `bits` decodes to zero.
    case zeroTarget(bits: UInt32)
    /// The target of `bits` is easier than the network's proof-of-work limit.
    case targetAbovePowLimit(bits: UInt32)
    /// The header hash (display hex) is above its target.
    case insufficientProofOfWork(hash: String)
    /// The header at `height` does not build on the previous header in the chain.
    case previousHashMismatch(height: Int)
    /// The header at `height` carries `found` bits where the difficulty rules require `expected`.
    case unexpectedBits(height: Int, expected: UInt32, found: UInt32)
    /// The header at `height` has a timestamp not above the median of the previous 11.
    case timestampTooOld(height: Int)
    /// The chain has no header at `height`, which the difficulty rules need.
    case missingAncestor(height: Int)
}

/// Why a transaction Merkle root or inclusion proof was rejected.
public enum MerkleError: Error, Equatable, Sendable {
    /// A Merkle root of zero transactions was requested.
    case noTransactions
    /// Two identical sibling hashes at `level`, `index` (CVE-2012-2459): the list was mutated
    /// by duplicating transactions, so the same root commits to a different block.
    case mutatedTree(level: Int, index: Int)
    /// The proven transaction is exactly 64 bytes without witness, so it could be an inner
    /// node of the tree, and its proof proves nothing.
    case sixtyFourByteTransaction
    /// The index is not below the transaction count (`count`).
    case indexOutOfRange(index: Int, count: Int)
    /// The proof has more than 32 levels or its index has bits above its depth.
    case malformedProof
    /// The root computed from the proof differs from the expected one.
    case rootMismatch
    /// The transaction given as the block's coinbase does not spend the null outpoint.
    case notACoinbase
    /// The coinbase's own path (index 0) does not lead to the expected root.
    case coinbaseRootMismatch
    /// The proof has `proof` levels but the block's tree, measured by its coinbase's path, has
    /// `tree`: a shorter or longer path reaches the root only through a 64-byte transaction
    /// taken for an inner node, or an inner node taken for a transaction.
    case depthMismatch(proof: Int, tree: Int)
}

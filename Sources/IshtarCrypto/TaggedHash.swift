import Crypto
import Foundation

/// BIP-340 tagged hashes: `SHA256(SHA256(tag) ‖ SHA256(tag) ‖ data)`.
public enum TaggedHash {
    /// Tags hashed on hot paths (signing, verifying, taproot); their 64-byte prefix is absorbed
    /// once into a SHA-256 state that every call copies instead of rehashing the tag twice.
    static let cachedTags: [String] = [
        "BIP0340/challenge", "TapLeaf", "TapBranch", "TapTweak", "TapSighash",
        "SchnorrAdaptor/aux", "SchnorrAdaptor/nonce",
        // Ishtar's own: every transaction's signing digest, every changed state key.
        "ishtar/tx", "ishtar/state-element",
    ]

    private static let cache: [String: SHA256] = {
        var states = [String: SHA256]()
        for tag in cachedTags {
            states[tag] = makeHasher(tag: tag)
        }
        return states
    }()

    private static func makeHasher(tag: String) -> SHA256 {
        let tagDigest = SHA256.hash(data: Data(tag.utf8))
        var hasher = SHA256()
        hasher.update(contiguous: Data(tagDigest))
        hasher.update(contiguous: Data(tagDigest))
        return hasher
    }

    /// A SHA-256 state that has already absorbed the tag prefix; feed it data and finalize.
    public static func hasher(tag: String) -> SHA256 {
        cache[tag] ?? makeHasher(tag: tag)
    }

    private static let inlineCache: [String: InlineSHA256] = {
        var states = [String: InlineSHA256]()
        for tag in cachedTags { states[tag] = makeInlineHasher(tag: tag) }
        return states
    }()

    private static func makeInlineHasher(tag: String) -> InlineSHA256 {
        let tagDigest = InlineSHA256.hash(data: Data(tag.utf8))
        var hasher = InlineSHA256()
        hasher.update(data: tagDigest)
        hasher.update(data: tagDigest)
        return hasher
    }

    /// ``hasher(tag:)`` as an ``InlineSHA256``: the same state, and copying it allocates
    /// nothing (a copy of swift-crypto's `SHA256` allocates a context at its first update).
    public static func inlineHasher(tag: String) -> InlineSHA256 {
        inlineCache[tag] ?? makeInlineHasher(tag: tag)
    }

    /// The 32-byte tagged hash of `data`.
    public static func hash(tag: String, data: some DataProtocol) -> Data {
        var hasher = inlineHasher(tag: tag)
        hasher.update(bytes: data)
        return hasher.finalize()
    }

    /// The BIP-340 challenge `H_challenge(R.x ‖ P.x ‖ m) mod n`.
    static func challenge(nonceX: some DataProtocol, publicKeyX: some DataProtocol, message: some DataProtocol) -> Scalar {
        var hasher = hasher(tag: "BIP0340/challenge")
        hasher.update(bytes: nonceX)
        hasher.update(bytes: publicKeyX)
        hasher.update(bytes: message)
        return Scalar(reducing: Data(hasher.finalize()))
    }
}

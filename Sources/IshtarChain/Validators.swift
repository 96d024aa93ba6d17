import Foundation
import IshtarCrypto

/// One validator of the chain: its 32-byte x-only BIP-340 key (which is also its address,
/// the same bytes the consensus engine names it by), its voting power and a display name.
public struct ChainValidator: Hashable, Sendable, BinaryCodable {
    /// 32-byte x-only public key = address.
    public var publicKey: Data
    /// Voting power, > 0.
    public var power: UInt64
    /// Display name; not part of the validator-set hash.
    public var name: String

    /// Longest accepted ``name``, in UTF-8 bytes (the stored encoding's limit).
    public static let maxNameBytes = 256

    /// A validator from its parts.
    public init(publicKey: Data, power: UInt64, name: String = "") {
        self.publicKey = publicKey
        self.power = power
        self.name = name
    }

    /// The address consensus uses (the key itself).
    public var address: Data { publicKey }

    /// `key(32) ‖ u64 power ‖ str name`.
    public func encode(to w: inout BinaryWriter) {
        w.fixed(publicKey)
        w.u64(power)
        w.string(name)
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        publicKey = try r.fixed(32, "validator key")
        power = try r.u64("validator power")
        name = try r.string("validator name", limit: Self.maxNameBytes)
    }
}

/// The validator set: sorted by address, unique, every power > 0, total power bounded.
public struct ChainValidatorSet: Hashable, Sendable, BinaryCodable {
    /// Tendermint's bound (the same as the consensus engine's), leaving headroom so
    /// proposer-priority arithmetic cannot overflow.
    public static let maxTotalPower: UInt64 = UInt64(Int64.max) / 8

    /// Ascending by address.
    public let validators: [ChainValidator]
    /// Sum of the powers.
    public let totalPower: UInt64

    /// Why a list of validators is not a valid set.
    public enum Problem: Error, Equatable, Sendable {
        /// The list is empty.
        case empty
        /// A key is not a valid x-only public key.
        case invalidKey(Data)
        /// Two validators share a key.
        case duplicate(Data)
        /// A validator has zero power.
        case zeroPower(Data)
        /// The total exceeds ``ChainValidatorSet/maxTotalPower``.
        case totalPowerOverflow
        /// A name is longer than ``ChainValidator/maxNameBytes`` (it could be stored but
        /// never read back).
        case nameTooLong(Data)
    }

    /// Validates and sorts `validators`.
    public init(_ validators: [ChainValidator]) throws(Problem) {
        guard !validators.isEmpty else { throw .empty }
        let sorted = validators.sorted { $0.publicKey.lexicographicallyPrecedes($1.publicKey) }
        var total: UInt64 = 0
        var previous: Data?
        for v in sorted {
            guard v.publicKey.count == 32, (try? Schnorr.PublicKey(rawRepresentation: v.publicKey)) != nil else {
                throw .invalidKey(v.publicKey)
            }
            if let previous, previous == v.publicKey { throw .duplicate(v.publicKey) }
            previous = v.publicKey
            guard v.power > 0 else { throw .zeroPower(v.publicKey) }
            guard v.name.utf8.count <= ChainValidator.maxNameBytes else { throw .nameTooLong(v.publicKey) }
            let (t, overflow) = total.addingReportingOverflow(v.power)
            guard !overflow, t <= Self.maxTotalPower else { throw .totalPowerOverflow }
            total = t
        }
        self.validators = sorted
        self.totalPower = total
    }

    /// The validator with `address`, if any (binary search: the set is sorted).
    public func validator(address: Data) -> ChainValidator? {
        var lo = 0
        var hi = validators.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let k = validators[mid].publicKey
            if k == address { return validators[mid] }
            if k.lexicographicallyPrecedes(address) { lo = mid + 1 } else { hi = mid }
        }
        return nil
    }

    /// RFC-6962 Merkle root over `key(32) ‖ BE8(power)` of each validator in address order
    /// (names excluded: they are cosmetic).
    public var hash: Data {
        MerkleTree.root(leaves: validators.map { v in
            var w = BinaryWriter()
            w.fixed(v.publicKey)
            w.u64(v.power)
            return w.data
        })
    }

    /// Whether `power` is more than 2/3 of the total (integer arithmetic, no overflow:
    /// the total is bounded by ``maxTotalPower``).
    public func isSupermajority(_ power: UInt64) -> Bool { power * 3 > totalPower * 2 }

    /// `u32 count ‖ validators`.
    public func encode(to w: inout BinaryWriter) {
        w.count(validators.count)
        for v in validators { v.encode(to: &w) }
    }

    /// Inverse of ``encode(to:)``; the decoded set is re-validated, and must already be
    /// in canonical (sorted) order.
    public init(from r: inout BinaryReader) throws(CodecError) {
        let n = try r.count("validators", minElementSize: 44)
        var list: [ChainValidator] = []
        for _ in 0..<n { list.append(try ChainValidator(from: &r)) }
        do {
            self = try ChainValidatorSet(list)
        } catch {
            throw .nonCanonical(field: "validator set", reason: "\(error)")
        }
        guard self.validators == list else { throw .nonCanonical(field: "validator set", reason: "not sorted") }
    }
}

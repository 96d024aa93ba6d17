import Foundation
import IshtarCrypto

/// Why a genesis file was rejected. Every case names the JSON field at fault.
public enum GenesisError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read.
    case unreadable(path: String, reason: String)
    /// The bytes are not JSON.
    case invalidJSON(String)
    /// A required field is absent.
    case missingField(String)
    /// A field has the wrong JSON type.
    case wrongType(field: String, expected: String)
    /// A field this version does not know (rejected so a typo is not silently ignored).
    case unknownField(String)
    /// The chain id is empty, too long, or uses characters outside `[A-Za-z0-9._-]`.
    case invalidChainID(String)
    /// The genesis time is not an RFC-3339 timestamp at or after the Unix epoch.
    case invalidTime(String)
    /// The initial height must be at least 1.
    case invalidInitialHeight(UInt64)
    /// A genesis needs at least one validator.
    case noValidators
    /// A validator key is not a 32-byte x-only public key in hex.
    case invalidValidatorKey(index: Int, reason: String)
    /// Two validators share a key.
    case duplicateValidator(String)
    /// A validator has zero power.
    case zeroPower(index: Int)
    /// A validator name is longer than ``ChainValidator/maxNameBytes`` UTF-8 bytes.
    case validatorNameTooLong(index: Int)
    /// The total voting power exceeds the consensus bound.
    case totalPowerOverflow
    /// A consensus parameter is out of range.
    case invalidConsensusParam(name: String, reason: String)
    /// Module parameters were given for a module this application does not have.
    case unknownModule(String)
    /// A module rejected its parameters.
    case invalidModuleParams(module: String, reason: String)

    /// One line naming the rule.
    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read genesis file \(path): \(reason)"
        case .invalidJSON(let r): return "genesis is not valid JSON: \(r)"
        case .missingField(let f): return "genesis field \(f) is missing"
        case let .wrongType(f, t): return "genesis field \(f) must be \(t)"
        case .unknownField(let f): return "genesis field \(f) is not known"
        case .invalidChainID(let r): return "chain_id: \(r)"
        case .invalidTime(let v): return "genesis_time \"\(v)\" is not an RFC-3339 time after 1970"
        case .invalidInitialHeight(let h): return "initial_height must be 1…2^62, got \(h)"
        case .noValidators: return "validators: at least one validator is required"
        case let .invalidValidatorKey(i, r): return "validators[\(i)].pub_key: \(r)"
        case .duplicateValidator(let k): return "validators: key \(k) appears twice"
        case .zeroPower(let i): return "validators[\(i)].power must be > 0"
        case .validatorNameTooLong(let i): return "validators[\(i)].name must be at most \(ChainValidator.maxNameBytes) bytes (UTF-8)"
        case .totalPowerOverflow: return "validators: total power exceeds \(ChainValidatorSet.maxTotalPower)"
        case let .invalidConsensusParam(n, r): return "consensus_params.\(n): \(r)"
        case .unknownModule(let m): return "modules.\(m): no such module"
        case let .invalidModuleParams(m, r): return "modules.\(m): \(r)"
        }
    }
}

/// Chain-wide limits from genesis.
public struct ConsensusParams: Hashable, Sendable, BinaryCodable {
    /// Default `max_block_bytes`: 4 MiB.
    public static let defaultMaxBlockBytes = 4 << 20
    /// Default `max_tx_bytes`: 64 KiB.
    public static let defaultMaxTxBytes = 64 << 10
    /// Upper bound on `max_block_bytes`: 100 MiB.
    public static let maxBlockBytesCeiling = 100 << 20

    /// Largest encoded block.
    public var maxBlockBytes: Int
    /// Largest encoded transaction.
    public var maxTxBytes: Int

    /// Parameters from their parts (validate with ``validate()``).
    public init(maxBlockBytes: Int = defaultMaxBlockBytes, maxTxBytes: Int = defaultMaxTxBytes) {
        self.maxBlockBytes = maxBlockBytes
        self.maxTxBytes = maxTxBytes
    }

    /// `256 ≤ max_tx_bytes ≤ max_block_bytes ≤ 100 MiB`.
    public func validate() throws(GenesisError) {
        guard maxBlockBytes >= 1024, maxBlockBytes <= Self.maxBlockBytesCeiling else {
            throw .invalidConsensusParam(name: "max_block_bytes", reason: "must be in 1024…\(Self.maxBlockBytesCeiling)")
        }
        guard maxTxBytes >= 256, maxTxBytes <= maxBlockBytes else {
            throw .invalidConsensusParam(name: "max_tx_bytes", reason: "must be in 256…max_block_bytes")
        }
    }

    /// `u32 maxBlockBytes ‖ u32 maxTxBytes`.
    public func encode(to w: inout BinaryWriter) {
        w.u32(UInt32(clamping: maxBlockBytes))
        w.u32(UInt32(clamping: maxTxBytes))
    }

    /// Inverse of ``encode(to:)``.
    public init(from r: inout BinaryReader) throws(CodecError) {
        maxBlockBytes = Int(try r.u32("max_block_bytes"))
        maxTxBytes = Int(try r.u32("max_tx_bytes"))
    }
}

/// The genesis document: the chain's identity, its first validator set, its limits and
/// each module's parameters (a JSON object per module, passed to that module verbatim).
///
/// ```json
/// { "chain_id": "ishtar-devnet-1", "genesis_time": "2025-01-01T00:00:00Z",
///   "initial_height": 1,
///   "validators": [ { "pub_key": "<64 hex>", "power": 10, "name": "val-0" } ],
///   "consensus_params": { "max_block_bytes": 4194304, "max_tx_bytes": 65536 },
///   "modules": { "accounts": { "max_label_bytes": 64 } } }
/// ```
/// `initial_height`, `consensus_params`, `modules` and validator `name`s are optional;
/// integers may be JSON numbers or decimal strings.
public struct Genesis: Hashable, Sendable {
    /// The chain id (1–64 bytes of `[A-Za-z0-9._-]`).
    public var chainID: String
    /// Genesis time, ms since the epoch.
    public var genesisTime: UInt64
    /// The first block's height.
    public var initialHeight: UInt64
    /// The validator set.
    public var validators: ChainValidatorSet
    /// Limits.
    public var consensusParams: ConsensusParams
    /// Canonical (sorted-keys) JSON of each module's parameters, by module name.
    public var moduleParams: [String: Data]

    /// The largest `initial_height`: heights count up by one per block from there, so they
    /// must stay far from 2^64 (a chain started near it would trap a few blocks later).
    public static let maxInitialHeight: UInt64 = 1 << 62

    /// A genesis from its parts (validated).
    public init(chainID: String, genesisTime: UInt64, initialHeight: UInt64 = 1, validators: [ChainValidator],
                consensusParams: ConsensusParams = ConsensusParams(), moduleParams: [String: Data] = [:]) throws(GenesisError) {
        try Genesis.validateChainID(chainID)
        guard initialHeight >= 1, initialHeight <= Genesis.maxInitialHeight else { throw .invalidInitialHeight(initialHeight) }
        try consensusParams.validate()
        self.chainID = chainID
        self.genesisTime = genesisTime
        self.initialHeight = initialHeight
        self.validators = try Genesis.makeSet(validators)
        self.consensusParams = consensusParams
        self.moduleParams = moduleParams
    }

    /// Reads and validates the genesis file at `path`.
    public static func load(path: String) throws(GenesisError) -> Genesis {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        return try parse(data)
    }

    /// Parses and validates genesis JSON.
    public static func parse(_ data: Data) throws(GenesisError) -> Genesis {
        let any: Any
        do {
            any = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw .invalidJSON(error.localizedDescription)
        }
        guard let root = any as? [String: Any] else { throw .wrongType(field: "(root)", expected: "an object") }
        try rejectUnknown(root, allowed: ["chain_id", "genesis_time", "initial_height", "validators",
                                          "consensus_params", "modules"], path: "")
        let chainID = try string(root, "chain_id", path: "")
        let timeText = try string(root, "genesis_time", path: "")
        guard let time = RFC3339.parse(timeText) else { throw .invalidTime(timeText) }
        let initialHeight = try root["initial_height"] == nil ? 1 : integer(root, "initial_height", path: "")

        guard let rawValidators = root["validators"] else { throw .missingField("validators") }
        guard let list = rawValidators as? [Any] else { throw .wrongType(field: "validators", expected: "an array") }
        var validators: [ChainValidator] = []
        for (i, item) in list.enumerated() {
            let path = "validators[\(i)]."
            guard let obj = item as? [String: Any] else { throw .wrongType(field: "validators[\(i)]", expected: "an object") }
            try rejectUnknown(obj, allowed: ["pub_key", "power", "name"], path: path)
            let hex = try string(obj, "pub_key", path: path)
            let key: Data
            do {
                key = try Data(hex: hex, field: "pub_key")
            } catch {
                throw .invalidValidatorKey(index: i, reason: "not hex")
            }
            guard key.count == 32 else { throw .invalidValidatorKey(index: i, reason: "must be 32 bytes, got \(key.count)") }
            guard (try? Schnorr.PublicKey(rawRepresentation: key)) != nil else {
                throw .invalidValidatorKey(index: i, reason: "not a point on secp256k1")
            }
            let power = try integer(obj, "power", path: path)
            guard power > 0 else { throw .zeroPower(index: i) }
            let name = obj["name"] == nil ? "validator-\(i)" : try string(obj, "name", path: path)
            validators.append(ChainValidator(publicKey: key, power: power, name: name))
        }

        var params = ConsensusParams()
        if let raw = root["consensus_params"] {
            guard let obj = raw as? [String: Any] else { throw .wrongType(field: "consensus_params", expected: "an object") }
            try rejectUnknown(obj, allowed: ["max_block_bytes", "max_tx_bytes"], path: "consensus_params.")
            if obj["max_block_bytes"] != nil {
                params.maxBlockBytes = Int(clamping: try integer(obj, "max_block_bytes", path: "consensus_params."))
            }
            if obj["max_tx_bytes"] != nil {
                params.maxTxBytes = Int(clamping: try integer(obj, "max_tx_bytes", path: "consensus_params."))
            }
        }

        var moduleParams: [String: Data] = [:]
        if let raw = root["modules"] {
            guard let obj = raw as? [String: Any] else { throw .wrongType(field: "modules", expected: "an object") }
            for (name, value) in obj {
                guard value is [String: Any] else { throw .wrongType(field: "modules.\(name)", expected: "an object") }
                do {
                    moduleParams[name] = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
                } catch {
                    throw .invalidModuleParams(module: name, reason: error.localizedDescription)
                }
            }
        }
        return try Genesis(chainID: chainID, genesisTime: time, initialHeight: initialHeight, validators: validators,
                           consensusParams: params, moduleParams: moduleParams)
    }

    /// Canonical JSON of this genesis (sorted keys), parseable by ``parse(_:)``.
    public func jsonData() -> Data {
        var modules: [String: Any] = [:]
        for (name, data) in moduleParams {
            modules[name] = (try? JSONSerialization.jsonObject(with: data, options: [])) ?? [String: Any]()
        }
        let root: [String: Any] = [
            "chain_id": chainID,
            "genesis_time": RFC3339.format(genesisTime),
            "initial_height": String(initialHeight),
            "validators": validators.validators.map {
                ["pub_key": $0.publicKey.hexString, "power": String($0.power), "name": $0.name] as [String: Any]
            },
            "consensus_params": ["max_block_bytes": consensusParams.maxBlockBytes, "max_tx_bytes": consensusParams.maxTxBytes],
            "modules": modules,
        ]
        return (try? JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted])) ?? Data()
    }

    /// SHA-256 of ``jsonData()``: identifies the genesis (for operators comparing files).
    public var hash: Data { sha256(jsonData()) }

    /// Whether `id` is a chain id by the genesis rules: 1…64 bytes of `A-Z a-z 0-9 . - _`.
    /// Module messages naming a (consumer) chain follow the same rules, so every chain id is
    /// plain ASCII and comparing strings is comparing bytes (Swift's `==` would otherwise
    /// equate canonically equivalent Unicode, while state keys hold the bytes).
    public static func isValidChainID(_ id: String) -> Bool {
        (try? validateChainID(id)) != nil
    }

    static func validateChainID(_ id: String) throws(GenesisError) {
        guard !id.isEmpty else { throw .invalidChainID("must not be empty") }
        guard id.utf8.count <= Transaction.maxChainIDBytes else {
            throw .invalidChainID("longer than \(Transaction.maxChainIDBytes) bytes")
        }
        for c in id.utf8 {
            let ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
            guard ok else { throw .invalidChainID("only A-Z a-z 0-9 . - _ are allowed") }
        }
    }

    static func makeSet(_ validators: [ChainValidator]) throws(GenesisError) -> ChainValidatorSet {
        do {
            return try ChainValidatorSet(validators)
        } catch {
            switch error {
            case .empty: throw .noValidators
            case .invalidKey(let k):
                throw .invalidValidatorKey(index: validators.firstIndex { $0.publicKey == k } ?? 0, reason: "not a valid x-only key")
            case .duplicate(let k): throw .duplicateValidator(k.hexString)
            case .zeroPower(let k): throw .zeroPower(index: validators.firstIndex { $0.publicKey == k } ?? 0)
            case .totalPowerOverflow: throw .totalPowerOverflow
            case .nameTooLong(let k): throw .validatorNameTooLong(index: validators.firstIndex { $0.publicKey == k } ?? 0)
            }
        }
    }

    private static func rejectUnknown(_ obj: [String: Any], allowed: Set<String>, path: String) throws(GenesisError) {
        // Sorted so the reported field does not depend on dictionary order.
        if let unknown = obj.keys.sorted().first(where: { !allowed.contains($0) }) { throw .unknownField(path + unknown) }
    }

    private static func string(_ obj: [String: Any], _ key: String, path: String) throws(GenesisError) -> String {
        guard let raw = obj[key] else { throw .missingField(path + key) }
        guard let s = raw as? String else { throw .wrongType(field: path + key, expected: "a string") }
        return s
    }

    private static func integer(_ obj: [String: Any], _ key: String, path: String) throws(GenesisError) -> UInt64 {
        guard let raw = obj[key] else { throw .missingField(path + key) }
        let text: String
        if let s = raw as? String {
            text = s
        } else if type(of: raw) != Bool.self, let n = raw as? NSNumber {
            // A JSON boolean must not pass as 0/1; a fractional or huge number fails to
            // parse below.
            text = n.stringValue
        } else {
            throw .wrongType(field: path + key, expected: "a non-negative integer")
        }
        guard let v = UInt64(text) else { throw .wrongType(field: path + key, expected: "a non-negative integer") }
        return v
    }
}

/// Strict RFC-3339 timestamps ⇄ milliseconds since the Unix epoch, with exact integer
/// arithmetic (no floating point, no locale or time-zone database involved).
public enum RFC3339 {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; fractions beyond milliseconds are
    /// truncated. `nil` for anything else or for times before 1970.
    public static func parse(_ text: String) -> UInt64? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ len: Int) -> Int? {
            guard from + len <= b.count else { return nil }
            var v = 0
            for c in b[from..<from + len] {
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard b.count >= 20, let year = num(0, 4), b[4] == UInt8(ascii: "-"), let month = num(5, 2),
              b[7] == UInt8(ascii: "-"), let day = num(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
              let hour = num(11, 2), b[13] == UInt8(ascii: ":"), let minute = num(14, 2), b[16] == UInt8(ascii: ":"),
              let second = num(17, 2)
        else { return nil }
        var i = 19
        var millis = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if digits < 3 { millis = millis * 10 + Int(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { millis *= 10 }
        }
        guard i < b.count else { return nil }
        var offsetMinutes = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign = b[i] == UInt8(ascii: "+") ? 1 : -1
            guard let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2),
                  oh < 24, om < 60 else { return nil }
            offsetMinutes = sign * (oh * 60 + om)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard month >= 1, month <= 12, day >= 1, day <= monthDays[month - 1], hour < 24, minute < 60, second < 60
        else { return nil }
        let days = daysFromCivil(year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60
        guard seconds >= 0 else { return nil }
        return UInt64(seconds) * 1000 + UInt64(millis)
    }

    /// `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
    public static func format(_ millis: UInt64) -> String {
        let totalSeconds = Int(millis / 1000)
        let ms = Int(millis % 1000)
        let (y, m, d) = civilFromDays(totalSeconds / 86_400)
        let rem = totalSeconds % 86_400
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        var out = "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(rem / 3600, 2)):\(pad(rem / 60 % 60, 2)):\(pad(rem % 60, 2))"
        if ms != 0 { out += "." + pad(ms, 3) }
        return out + "Z"
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Inverse of ``daysFromCivil(_:_:_:)``.
    static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp + (mp < 10 ? 3 : -9)
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

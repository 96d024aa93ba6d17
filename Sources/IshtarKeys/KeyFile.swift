import Crypto
import CryptoExtras
import Foundation
import IshtarCrypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong reading, writing or unlocking a key file.
public enum KeyFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No file exists at the path.
    case fileNotFound(path: String)
    /// The file exists but could not be read (permissions, I/O error).
    case unreadable(path: String, reason: String)
    /// The file is not a valid Ishtar key file; the reason names the field or the syntax error.
    case malformed(reason: String)
    /// The file was written by a newer format version than this program understands.
    case unsupportedVersion(Int)
    /// The file names a key-derivation function or cipher this program does not implement.
    case unsupportedAlgorithm(String)
    /// The scrypt parameters are outside the accepted range (too weak to protect a key,
    /// or so large that unlocking would exhaust memory).
    case kdfParametersOutOfRange(reason: String)
    /// The passphrase did not decrypt the key (AES-GCM authentication failed).
    case wrongPassphrase
    /// The decrypted secret key does not belong to the public key stored beside it.
    case publicKeyMismatch
    /// The stored secret or public key is not a valid secp256k1 key.
    case invalidKey(IshtarCrypto.CryptoError)
    /// The key file is readable or writable by other users; it must be mode 0600.
    case insecurePermissions(path: String, mode: String)
    /// Refusing to overwrite an existing key file.
    case alreadyExists(path: String)
    /// Writing the file failed; nothing was left at the destination path.
    case writeFailed(path: String, reason: String)
    /// The key is encrypted and no passphrase was given.
    case passphraseRequired
    /// An empty passphrase was given; it would protect nothing.
    case emptyPassphrase

    public var description: String {
        switch self {
        case .fileNotFound(let path): "key file not found: \(path)"
        case .unreadable(let path, let reason): "cannot read key file \(path): \(reason)"
        case .malformed(let reason): "malformed key file: \(reason)"
        case .unsupportedVersion(let v): "unsupported key file version \(v) (this program reads version \(KeyFile.currentVersion))"
        case .unsupportedAlgorithm(let a): "unsupported key file algorithm: \(a)"
        case .kdfParametersOutOfRange(let reason): "key file scrypt parameters out of range: \(reason)"
        case .wrongPassphrase: "wrong passphrase (the key file could not be decrypted)"
        case .publicKeyMismatch: "key file is corrupt: the secret key does not match its public key"
        case .invalidKey(let e): "key file holds an invalid key: \(e)"
        case .insecurePermissions(let path, let mode):
            "\(path) has mode \(mode); a file holding a secret must be readable by its owner only (chmod 600)"
        case .alreadyExists(let path): "refusing to overwrite existing file \(path)"
        case .writeFailed(let path, let reason): "cannot write key file \(path): \(reason)"
        case .passphraseRequired:
            "this key file is encrypted: give --passphrase-file or set ISHTAR_PASSPHRASE"
        case .emptyPassphrase: "the passphrase is empty"
        }
    }
}

/// scrypt cost parameters. The defaults cost about 32 MiB and a tenth of a second,
/// which is cheap for an operator unlocking once and expensive for a guesser.
public struct ScryptParameters: Codable, Equatable, Sendable {
    /// CPU/memory cost (a power of two).
    public var n: Int
    /// Block size.
    public var r: Int
    /// Parallelism.
    public var p: Int

    public init(n: Int = 1 << 15, r: Int = 8, p: Int = 1) {
        self.n = n
        self.r = r
        self.p = p
    }

    /// The weakest and strongest settings a key file may carry. The upper bound keeps a
    /// crafted file from making `unlock` allocate gigabytes.
    static let minimumN = 1 << 12
    static let maximumN = 1 << 20

    func validate() throws(KeyFileError) {
        guard n >= Self.minimumN, n <= Self.maximumN, n & (n - 1) == 0 else {
            throw .kdfParametersOutOfRange(reason: "n must be a power of two in \(Self.minimumN)...\(Self.maximumN), got \(n)")
        }
        guard (1...32).contains(r) else { throw .kdfParametersOutOfRange(reason: "r must be in 1...32, got \(r)") }
        guard (1...16).contains(p) else { throw .kdfParametersOutOfRange(reason: "p must be in 1...16, got \(p)") }
        // Each bound alone still let n = 2^20, r = 32, p = 16 through: 4 GiB and 2,048 times
        // the default work to unlock. The default (2^15, 8, 1) needs 32 MiB.
        let memory = 128 * n * r * p
        guard memory <= Self.maximumMemory else {
            throw .kdfParametersOutOfRange(reason: "128·n·r·p = \(memory) bytes exceeds \(Self.maximumMemory)")
        }
    }

    /// Most memory (bytes) unlocking a key file may take: 8 times the default.
    static let maximumMemory = 256 << 20
}

/// The encrypted part of a key file: scrypt derives an AES-256-GCM key from the passphrase.
public struct EncryptedSecret: Codable, Equatable, Sendable {
    public var kdf: String
    public var kdfParams: ScryptParameters
    public var salt: String
    public var cipher: String
    public var nonce: String
    public var ciphertext: String
    public var tag: String

    enum CodingKeys: String, CodingKey {
        case kdf, kdfParams = "kdf_params", salt, cipher, nonce, ciphertext, tag
    }
}

/// An Ishtar key file: one secp256k1 key, its x-only public key in the clear, and its
/// secret either encrypted under a passphrase or — only when asked for explicitly, for
/// tests — in plain text.
public struct KeyFile: Codable, Equatable, Sendable {
    /// The format version this program writes.
    public static let currentVersion = 1

    public var version: Int
    /// Always "secp256k1-bip340" today.
    public var keyType: String
    /// The x-only (BIP-340) public key, hex.
    public var publicKey: String
    /// The encrypted secret; nil for a plain-text file.
    public var encrypted: EncryptedSecret?
    /// The secret in plain text, present only in files written with `insecurePlaintext`.
    public var insecurePlaintextSecretKey: String?

    enum CodingKeys: String, CodingKey {
        case version, keyType = "key_type", publicKey = "public_key", encrypted
        case insecurePlaintextSecretKey = "insecure_plaintext_secret_key"
    }

    static let keyType = "secp256k1-bip340"

    /// How a new key file protects its secret.
    public enum Protection: Sendable {
        /// Encrypted with a key derived from this passphrase.
        case passphrase(Data, ScryptParameters = ScryptParameters())
        /// Stored in plain text. For tests and throwaway devnets only.
        case insecurePlaintext
    }

    /// Seals `privateKey` into a new key file.
    public init(privateKey: Schnorr.PrivateKey, protection: Protection) throws(KeyFileError) {
        version = Self.currentVersion
        keyType = Self.keyType
        publicKey = privateKey.publicKey.rawRepresentation.hexString
        switch protection {
        case .insecurePlaintext:
            encrypted = nil
            insecurePlaintextSecretKey = privateKey.rawRepresentation.hexString
        case .passphrase(let passphrase, let params):
            guard !passphrase.isEmpty else { throw .emptyPassphrase }
            try params.validate()
            let salt = Data((0..<16).map { _ in UInt8.random(in: .min ... .max) })
            let key = try Self.deriveKey(passphrase: passphrase, salt: salt, params: params)
            let nonce = AES.GCM.Nonce()
            do {
                let box = try AES.GCM.seal(
                    privateKey.rawRepresentation, using: key, nonce: nonce,
                    authenticating: Self.associatedData(publicKeyHex: publicKey))
                encrypted = EncryptedSecret(
                    kdf: "scrypt", kdfParams: params, salt: salt.hexString, cipher: "aes-256-gcm",
                    nonce: Data(nonce).hexString, ciphertext: box.ciphertext.hexString,
                    tag: box.tag.hexString)
            } catch {
                throw .writeFailed(path: "-", reason: "encryption failed: \(error)")
            }
            insecurePlaintextSecretKey = nil
        }
    }

    /// Parses a key file's JSON text and checks its structure (not the passphrase).
    public init(jsonData: Data) throws(KeyFileError) {
        let file: KeyFile
        do {
            file = try JSONDecoder().decode(KeyFile.self, from: jsonData)
        } catch let DecodingError.keyNotFound(key, _) {
            throw .malformed(reason: "missing field \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw .malformed(reason: "wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))")
        } catch {
            throw .malformed(reason: "not valid JSON")
        }
        guard file.version == Self.currentVersion else { throw .unsupportedVersion(file.version) }
        guard file.keyType == Self.keyType else { throw .unsupportedAlgorithm(file.keyType) }
        do {
            _ = try Schnorr.PublicKey(rawRepresentation: Data(hex: file.publicKey, field: "public_key"))
        } catch {
            throw .invalidKey(error)
        }
        switch (file.encrypted, file.insecurePlaintextSecretKey) {
        case (.some(let e), nil):
            guard e.kdf == "scrypt" else { throw .unsupportedAlgorithm(e.kdf) }
            guard e.cipher == "aes-256-gcm" else { throw .unsupportedAlgorithm(e.cipher) }
            try e.kdfParams.validate()
        case (nil, .some):
            break
        default:
            throw .malformed(reason: "exactly one of \"encrypted\" and \"insecure_plaintext_secret_key\" must be present")
        }
        self = file
    }

    /// Whether unlocking needs a passphrase.
    public var isEncrypted: Bool { encrypted != nil }

    /// The public key, without unlocking anything.
    public func publicKeyValue() throws(KeyFileError) -> Schnorr.PublicKey {
        do {
            return try Schnorr.PublicKey(rawRepresentation: Data(hex: publicKey, field: "public_key"))
        } catch {
            throw .invalidKey(error)
        }
    }

    /// Decrypts the secret key and checks that it matches the stored public key.
    public func unlock(passphrase: Data?) throws(KeyFileError) -> Schnorr.PrivateKey {
        var secret: Data
        if let plain = insecurePlaintextSecretKey {
            do { secret = try Data(hex: plain, field: "insecure_plaintext_secret_key") } catch { throw .invalidKey(error) }
        } else if let e = encrypted {
            guard let passphrase else { throw .passphraseRequired }
            guard !passphrase.isEmpty else { throw .emptyPassphrase }
            let salt: Data, nonceBytes: Data, ciphertext: Data, tag: Data
            do {
                salt = try Data(hex: e.salt, field: "salt")
                nonceBytes = try Data(hex: e.nonce, field: "nonce")
                ciphertext = try Data(hex: e.ciphertext, field: "ciphertext")
                tag = try Data(hex: e.tag, field: "tag")
            } catch {
                throw .malformed(reason: "\(error)")
            }
            let key = try Self.deriveKey(passphrase: passphrase, salt: salt, params: e.kdfParams)
            do {
                let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonceBytes), ciphertext: ciphertext, tag: tag)
                secret = try AES.GCM.open(box, using: key, authenticating: Self.associatedData(publicKeyHex: publicKey))
            } catch {
                throw .wrongPassphrase
            }
        } else {
            throw .malformed(reason: "no secret key present")
        }
        // The decrypted bytes live in this buffer only until the key object owns a copy.
        defer { secret.resetBytes(in: 0..<secret.count) }
        let key: Schnorr.PrivateKey
        do { key = try Schnorr.PrivateKey(rawRepresentation: secret) } catch { throw .invalidKey(error) }
        guard key.publicKey.rawRepresentation.hexString == publicKey.lowercased() else { throw .publicKeyMismatch }
        return key
    }

    /// JSON text, pretty-printed with sorted keys so files diff cleanly.
    public func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // Encoding plain strings and integers cannot fail.
        return (try? encoder.encode(self)) ?? Data()
    }

    /// Binding the public key into the AEAD means a file whose public key was swapped
    /// fails to decrypt instead of silently pairing the secret with the wrong identity.
    static func associatedData(publicKeyHex: String) -> Data {
        Data("ishtar-keyfile-v1:\(publicKeyHex.lowercased())".utf8)
    }

    static func deriveKey(passphrase: Data, salt: Data, params: ScryptParameters) throws(KeyFileError) -> SymmetricKey {
        do {
            return try KDF.Scrypt.deriveKey(
                from: passphrase, salt: salt, outputByteCount: 32,
                rounds: params.n, blockSize: params.r, parallelism: params.p)
        } catch {
            throw .kdfParametersOutOfRange(reason: "scrypt failed: \(error)")
        }
    }
}

/// Reading and writing key files on disk with owner-only permissions.
public enum KeyFileStore {
    /// Writes `file` to `path` with mode 0600, never exposing a partially written file:
    /// the bytes go to a temporary file in the same directory, are synced, then renamed.
    public static func write(_ file: KeyFile, to path: String, overwrite: Bool = false) throws(KeyFileError) {
        if !overwrite, FileManager.default.fileExists(atPath: path) { throw .alreadyExists(path: path) }
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = (dir.isEmpty ? "." : dir) + "/.\((path as NSString).lastPathComponent).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw .writeFailed(path: path, reason: String(cString: strerror(errno))) }
        let bytes = file.jsonData() + Data("\n".utf8)
        let written = bytes.withUnsafeBytes { buf in Glibc.write(fd, buf.baseAddress, buf.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else {
            unlink(tmp)
            throw .writeFailed(path: path, reason: "short write or fsync failed")
        }
        if overwrite {
            guard rename(tmp, path) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(tmp)
                throw .writeFailed(path: path, reason: reason)
            }
        } else {
            // `link` fails if the name exists — a check-then-rename could clobber a key file
            // created in between, and a lost key is lost stake.
            let linked = link(tmp, path) == 0
            let error = errno
            unlink(tmp)
            guard linked else {
                if error == EEXIST { throw .alreadyExists(path: path) }
                throw .writeFailed(path: path, reason: String(cString: strerror(error)))
            }
        }
        // The new name must survive a power loss too: its public key may already be
        // registered by the time the machine goes down.
        let dirFD = open(dir.isEmpty ? "." : dir, O_RDONLY)
        guard dirFD >= 0 else { throw .writeFailed(path: path, reason: "cannot open its directory to sync it") }
        defer { close(dirFD) }
        guard fsync(dirFD) == 0 else { throw .writeFailed(path: path, reason: "cannot sync its directory") }
    }

    /// Reads and structurally checks a key file. Refuses files that other users can read
    /// or write, as ssh does, because such a file may already be compromised.
    public static func read(from path: String) throws(KeyFileError) -> KeyFile {
        try KeyFile(jsonData: SecretFile.read(path, what: "key file"))
    }
}

/// Small files holding secrets — key files, passphrases, bitcoind passwords, API tokens:
/// read only when their owner alone can read and write them (as ssh does: a file others
/// can read may already be compromised), and only up to ``maxBytes``, judged from the
/// open file's size before reading it.
public enum SecretFile {
    /// The largest secret file read.
    public static let maxBytes = 64 * 1024

    /// The file's bytes. `what` names the file in errors ("passphrase file").
    public static func read(_ path: String, what: String) throws(KeyFileError) -> Data {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw .fileNotFound(path: path) }
            throw .unreadable(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, reason: "\(what): \(String(cString: strerror(errno)))") }
        let mode = st.st_mode & 0o777
        if mode & 0o077 != 0 { throw .insecurePermissions(path: path, mode: String(mode, radix: 8)) }
        guard st.st_size <= maxBytes else { throw .malformed(reason: "\(what) \(path) is larger than \(maxBytes / 1024) KiB") }
        var bytes = [UInt8](repeating: 0, count: maxBytes + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buf -> Int in
                guard let base = buf.baseAddress else { return 0 }
                return Glibc.read(fd, base + count, buf.count - count)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            count += n
        }
        // The size was checked before reading; a file that grew meanwhile is refused too.
        guard count <= maxBytes else { throw .malformed(reason: "\(what) \(path) is larger than \(maxBytes / 1024) KiB") }
        return Data(bytes[0..<count])
    }

    /// The first line of the file (without `\n` or `\r\n`); nil when it is empty.
    public static func firstLine(_ path: String, what: String) throws(KeyFileError) -> Data? {
        var bytes = Array(try read(path, what: what))
        if let nl = bytes.firstIndex(of: 0x0a) { bytes = Array(bytes[..<nl]) }
        if bytes.last == 0x0d { bytes.removeLast() }
        return bytes.isEmpty ? nil : Data(bytes)
    }
}

/// Where a passphrase comes from: a file (first line) or the `ISHTAR_PASSPHRASE` variable.
public enum PassphraseSource {
    /// The environment variable consulted when no passphrase file is given.
    public static let environmentVariable = "ISHTAR_PASSPHRASE"

    /// Resolves the passphrase, preferring the file. Returns nil when neither is set.
    /// A trailing newline in the file is not part of the passphrase.
    public static func resolve(
        file: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(KeyFileError) -> Data? {
        if let file {
            guard let line = try SecretFile.firstLine(file, what: "passphrase file") else { throw .emptyPassphrase }
            return line
        }
        if let env = environment[environmentVariable] {
            guard !env.isEmpty else { throw .emptyPassphrase }
            return Data(env.utf8)
        }
        return nil
    }
}

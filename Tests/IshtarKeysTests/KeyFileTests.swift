import Foundation
import IshtarCrypto
import IshtarTestSupport
import Testing

@testable import IshtarKeys

/// Cheap scrypt settings keep the suite fast; the format and code path are the real ones.
private let fastScrypt = ScryptParameters(n: 1 << 12, r: 8, p: 1)

private func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ishtar-keys-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}

@Suite struct KeyFileTests {
    @Test func encryptedRoundTripOnDisk() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = Schnorr.PrivateKey()
        let file = try KeyFile(privateKey: key, protection: .passphrase(Data("correct horse".utf8), fastScrypt))
        let path = dir + "/k.json"
        try KeyFileStore.write(file, to: path)

        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains(key.rawRepresentation.hexString), "the secret must not appear in the file")

        let loaded = try KeyFileStore.read(from: path)
        #expect(loaded.isEncrypted)
        let unlocked = try loaded.unlock(passphrase: Data("correct horse".utf8))
        #expect(unlocked.rawRepresentation == key.rawRepresentation)
        #expect(try loaded.publicKeyValue().rawRepresentation == key.publicKey.rawRepresentation)
    }

    @Test func wrongPassphraseIsRejected() throws {
        let file = try KeyFile(privateKey: Schnorr.PrivateKey(), protection: .passphrase(Data("a".utf8), fastScrypt))
        #expect(throws: KeyFileError.wrongPassphrase) { try file.unlock(passphrase: Data("b".utf8)) }
        #expect(throws: KeyFileError.passphraseRequired) { try file.unlock(passphrase: nil) }
        #expect(throws: KeyFileError.emptyPassphrase) { try file.unlock(passphrase: Data()) }
    }

    @Test func swappedPublicKeyFailsAuthentication() throws {
        var file = try KeyFile(privateKey: Schnorr.PrivateKey(), protection: .passphrase(Data("pw".utf8), fastScrypt))
        file.publicKey = Schnorr.PrivateKey().publicKey.rawRepresentation.hexString
        // The public key is bound into the AEAD, so the swap is caught before the secret is used.
        #expect(throws: KeyFileError.wrongPassphrase) { try file.unlock(passphrase: Data("pw".utf8)) }
    }

    @Test func plaintextFileMustMatchItsPublicKey() throws {
        var file = try KeyFile(privateKey: Schnorr.PrivateKey(), protection: .insecurePlaintext)
        #expect(!file.isEncrypted)
        file.publicKey = Schnorr.PrivateKey().publicKey.rawRepresentation.hexString
        #expect(throws: KeyFileError.publicKeyMismatch) { try file.unlock(passphrase: nil) }
    }

    @Test func refusesOverwriteAndOpenPermissions() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/k.json"
        let file = try KeyFile(privateKey: Schnorr.PrivateKey(), protection: .insecurePlaintext)
        try KeyFileStore.write(file, to: path)
        #expect(throws: KeyFileError.alreadyExists(path: path)) { try KeyFileStore.write(file, to: path) }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: KeyFileError.insecurePermissions(path: path, mode: "644")) { try KeyFileStore.read(from: path) }
        #expect(throws: KeyFileError.fileNotFound(path: dir + "/nope")) { try KeyFileStore.read(from: dir + "/nope") }
    }

    @Test(arguments: [
        ("", "not valid JSON"),
        ("{}", "missing field \"version\""),
        (#"{"version":1,"key_type":"secp256k1-bip340"}"#, "missing field \"public_key\""),
    ])
    func malformedJSONNamesTheProblem(json: String, reason: String) {
        #expect(throws: KeyFileError.malformed(reason: reason)) { try KeyFile(jsonData: Data(json.utf8)) }
    }

    @Test func structuralChecksOnLoad() throws {
        let good = try KeyFile(privateKey: Schnorr.PrivateKey(), protection: .passphrase(Data("pw".utf8), fastScrypt))
        var newer = good
        newer.version = 2
        #expect(throws: KeyFileError.unsupportedVersion(2)) { try KeyFile(jsonData: newer.jsonData()) }

        var huge = good
        huge.encrypted?.kdfParams.n = 1 << 30
        #expect(throws: KeyFileError.self) { try KeyFile(jsonData: huge.jsonData()) }
        // Each parameter within its own bound, together 4 GiB to unlock: refused before any work.
        var heavy = good
        heavy.encrypted?.kdfParams.n = 1 << 20
        heavy.encrypted?.kdfParams.r = 32
        heavy.encrypted?.kdfParams.p = 16
        #expect { try KeyFile(jsonData: heavy.jsonData()) } throws: { "\($0)".contains("exceeds") }
        var heaviestAllowed = good
        heaviestAllowed.encrypted?.kdfParams.n = 1 << 20
        heaviestAllowed.encrypted?.kdfParams.r = 2
        #expect(throws: Never.self) { try KeyFile(jsonData: heaviestAllowed.jsonData()) }

        var both = good
        both.insecurePlaintextSecretKey = "00"
        #expect(throws: KeyFileError.self) { try KeyFile(jsonData: both.jsonData()) }

        var badKey = good
        badKey.publicKey = String(repeating: "ff", count: 32)  // x ≥ p: not on the curve
        #expect(throws: KeyFileError.self) { try KeyFile(jsonData: badKey.jsonData()) }

        #expect(try KeyFile(jsonData: good.jsonData()) == good)
    }

    @Test func mutatedKeyFilesAreRefusedWithTypedErrors() throws {
        // Key files are edited, copied and truncated by hand. Every mutation either loads —
        // and then unlocks to the same key or is refused — or fails with a KeyFileError.
        let key = try Schnorr.PrivateKey(rawRepresentation: Data(repeating: 0x42, count: 32))
        let passphrase = Data("pw".utf8)
        let good = try KeyFile(privateKey: key, protection: .passphrase(passphrase, fastScrypt))
        let plain = try KeyFile(privateKey: key, protection: .insecurePlaintext)
        var rng = SplitMix64(seed: 0x6b65_7966)
        var (refused, loaded, unlocked) = (0, 0, 0)
        for i in 0..<1500 {
            let seed = i % 3 == 0 ? plain : good
            let file: KeyFile
            do {
                file = try KeyFile(jsonData: rng.mutatedJSON(seed.jsonData()))
            } catch {
                refused += 1
                continue
            }
            loaded += 1
            // scrypt with mutated (possibly large) parameters would only be slow, not wrong.
            guard file.encrypted?.kdfParams == nil || file.encrypted?.kdfParams == fastScrypt else { continue }
            do {
                let k = try file.unlock(passphrase: passphrase)
                #expect(k.rawRepresentation == key.rawRepresentation, "a mutated file unlocked to another key")
                unlocked += 1
            } catch {
                // KeyFileError (typed throws): authentication or structure refused.
            }
        }
        #expect(refused > 1000 && loaded > 5 && unlocked > 0, "\(refused) refused, \(loaded) loaded, \(unlocked) unlocked")
    }

    @Test func passphraseSources() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/pw"
        try Data("s3cret\r\nignored\n".utf8).write(to: URL(fileURLWithPath: path))
        // Readable by others: refused like a key file (the passphrase may already be out).
        #expect(throws: KeyFileError.insecurePermissions(path: path, mode: "644")) {
            try PassphraseSource.resolve(file: path, environment: [:])
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(try PassphraseSource.resolve(file: path, environment: [:]) == Data("s3cret".utf8))
        // Bounded before reading: a passphrase "file" of a gigabyte is not read into memory.
        let big = dir + "/big"
        #expect(FileManager.default.createFile(atPath: big, contents: nil, attributes: [.posixPermissions: 0o600]))
        #expect(truncate(big, 1 << 30) == 0)
        #expect { try PassphraseSource.resolve(file: big, environment: [:]) } throws: { "\($0)".contains("larger than 64 KiB") }
        let empty = dir + "/empty"
        #expect(FileManager.default.createFile(atPath: empty, contents: Data("\n".utf8), attributes: [.posixPermissions: 0o600]))
        #expect(throws: KeyFileError.emptyPassphrase) { try PassphraseSource.resolve(file: empty, environment: [:]) }
        #expect(try PassphraseSource.resolve(file: nil, environment: ["ISHTAR_PASSPHRASE": "env"]) == Data("env".utf8))
        #expect(try PassphraseSource.resolve(file: nil, environment: [:]) == nil)
        #expect(throws: KeyFileError.emptyPassphrase) { try PassphraseSource.resolve(file: nil, environment: ["ISHTAR_PASSPHRASE": ""]) }
    }
}

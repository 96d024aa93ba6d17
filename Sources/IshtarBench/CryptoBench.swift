import CSecp256k1
import Crypto
import Foundation
import IshtarCrypto

/// `Scripts/bench crypto`: IshtarCrypto's operations beside raw libsecp256k1 calls made
/// directly through the same C module in the same run.
enum CryptoBench {
    static func pair(_ p: Paired, baselineName: String) -> [String: Double] {
        ["us": rounded(p.operation), "\(baselineName)_us": rounded(p.baseline), "ratio": rounded(p.ratio)]
    }

    static func run() -> [String: Any] {
        let n = Int(ProcessInfo.processInfo.environment["BENCH_ITERATIONS"] ?? "") ?? 2000
        progress("crypto bench: \(n) iterations per figure, median of 5 batches")

        // Inputs are fixed up front so every figure measures only the operation itself.
        let key = Schnorr.PrivateKey()
        let secret = key.rawRepresentation
        let message = Data(SHA256.hash(data: Data("ishtar bench".utf8)))
        let aux = Data(repeating: 7, count: 32)

        // --- raw libsecp256k1, the baseline ---
        guard let ctx = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE)) else {
            progress("secp256k1_context_create failed")
            return ["error": "secp256k1_context_create failed"]
        }
        defer { secp256k1_context_destroy(ctx) }
        var keypair = secp256k1_keypair()
        var xonly = secp256k1_xonly_pubkey()
        var rawSig = [UInt8](repeating: 0, count: 64)
        let secretBytes = [UInt8](secret), msgBytes = [UInt8](message), auxBytes = [UInt8](aux)
        guard secp256k1_keypair_create(ctx, &keypair, secretBytes) == 1,
              secp256k1_keypair_xonly_pub(ctx, &xonly, nil, &keypair) == 1,
              secp256k1_schnorrsig_sign32(ctx, &rawSig, msgBytes, &keypair, auxBytes) == 1 else {
            return ["error": "raw libsecp256k1 setup failed"]
        }
        var sink = 0
        let rawSignOnce: (Int) -> Void = { _ in
            sink &+= Int(secp256k1_schnorrsig_sign32(ctx, &rawSig, msgBytes, &keypair, auxBytes))
        }
        let rawVerifyOnce: (Int) -> Void = { _ in
            sink &+= Int(secp256k1_schnorrsig_verify(ctx, rawSig, msgBytes, 32, &xonly))
        }

        // --- BIP-340 through IshtarCrypto ---
        let publicKey = key.publicKey
        let signature = (try? key.signature(for: message, auxiliaryRandomness: aux))
        let bip340Sign = pairedMicroseconds(iterations: n, operation: { _ in
            if (try? key.signature(for: message, auxiliaryRandomness: aux)) != nil { sink &+= 1 }
        }, baseline: rawSignOnce)
        let bip340Verify = pairedMicroseconds(iterations: n, operation: { _ in
            if let signature, publicKey.isValidSignature(signature, for: message) { sink &+= 1 }
        }, baseline: rawVerifyOnce)

        // --- EOTS ---
        let chainID = Data("bench-chain".utf8)
        let r = EOTS.randomness(secretKey: key, chainID: chainID, height: 1)
        let vote1 = Data(repeating: 0, count: 8) + message
        let vote2 = Data(repeating: 0, count: 8) + Data(SHA256.hash(data: message))
        let eotsSig1 = try? EOTS.sign(privateKey: key, secretRandomness: r.secret, message: vote1)
        let eotsSig2 = try? EOTS.sign(privateKey: key, secretRandomness: r.secret, message: vote2)
        let eotsSign = pairedMicroseconds(iterations: n, operation: { _ in
            if (try? EOTS.sign(privateKey: key, secretRandomness: r.secret, message: vote1)) != nil { sink &+= 1 }
        }, baseline: rawSignOnce)
        let eotsVerify = pairedMicroseconds(iterations: n, operation: { _ in
            if let eotsSig1, EOTS.isValid(signature: eotsSig1, publicKey: publicKey, publicRandomness: r.public, message: vote1) {
                sink &+= 1
            }
        }, baseline: rawVerifyOnce)
        let eotsExtract = microsecondsPerOp(iterations: max(1, n / 4)) { _ in
            if let eotsSig1, let eotsSig2,
               (try? EOTS.extract(publicKey: publicKey, publicRandomness: r.public, message1: vote1, signature1: eotsSig1,
                                  message2: vote2, signature2: eotsSig2)) != nil {
                sink &+= 1
            }
        }
        let eotsRandomness = microsecondsPerOp(iterations: n) { i in
            sink &+= EOTS.randomness(secretKey: key, chainID: chainID, height: UInt64(i)).public.rawRepresentation.count
        }

        // --- Schnorr adaptor signatures ---
        let provider = Schnorr.PrivateKey()
        let encryptionKey = AdaptorSignature.encryptionKey(for: provider.publicKey)
        let decryptionKey = AdaptorSignature.decryptionKey(for: provider)
        let adaptor = try? AdaptorSignature.encryptedSign(
            privateKey: key, encryptionKey: encryptionKey, message: message, auxiliaryRandomness: aux)
        let encSign = microsecondsPerOp(iterations: n) { _ in
            if (try? AdaptorSignature.encryptedSign(
                privateKey: key, encryptionKey: encryptionKey, message: message, auxiliaryRandomness: aux)) != nil {
                sink &+= 1
            }
        }
        let encVerify = microsecondsPerOp(iterations: n) { _ in
            if let adaptor, adaptor.isValid(publicKey: publicKey, encryptionKey: encryptionKey, message: message) { sink &+= 1 }
        }
        let decrypt = microsecondsPerOp(iterations: n) { _ in
            if let adaptor { sink &+= adaptor.decrypted(with: decryptionKey).rawRepresentation.count }
        }

        // --- Merkle root of 10,000 leaves, beside SHA-256 of the same leaf bytes ---
        let leaves = (0..<10_000).map { i in Data(SHA256.hash(data: withUnsafeBytes(of: UInt64(i).bigEndian) { Data($0) })) }
        // A tree of m leaves hashes 2m−1 nodes (m leaves plus m−1 inner nodes): the baseline
        // hashes the same number of same-sized inputs with nothing else around it.
        let inner = leaves[0] + leaves[1]
        let merkle = pairedMicroseconds(iterations: 3, pairs: 7, operation: { _ in
            sink &+= MerkleTree.root(leaves: leaves).count
        }, baseline: { _ in
            for leaf in leaves { sink &+= SHA256.hash(data: [0] + leaf).withUnsafeBytes { Int($0[0]) } }
            for _ in 0..<(leaves.count - 1) { sink &+= SHA256.hash(data: [1] + inner).withUnsafeBytes { Int($0[0]) } }
        })

        let correct = signature.map { publicKey.isValidSignature($0, for: message) } ?? false
        progress("sink \(sink), self-check \(correct ? "ok" : "FAILED")")

        let ratios: [String: Double] = [
            "bip340_sign_vs_raw_sign": rounded(bip340Sign.ratio),
            "bip340_verify_vs_raw_verify": rounded(bip340Verify.ratio),
            "eots_sign_vs_raw_sign": rounded(eotsSign.ratio),
            "eots_verify_vs_raw_verify": rounded(eotsVerify.ratio),
            "merkle_root_10000_vs_sha256_of_same_nodes": rounded(merkle.ratio),
        ]
        let goals: [String: Any] = [
            "bip340_verify_within_1.10x_raw_verify": ratios["bip340_verify_vs_raw_verify", default: 99] <= 1.10,
            "eots_verify_within_1.10x_raw_verify": ratios["eots_verify_vs_raw_verify", default: 99] <= 1.10,
            "eots_sign_within_1.15x_raw_sign": ratios["eots_sign_vs_raw_sign", default: 99] <= 1.15,
        ]
        return [
            "suite": "crypto",
            "unit": "microseconds_per_operation",
            "method": "operation and baseline timed in alternating batches; figures are medians, ratios the median of per-pair ratios",
            "iterations": n,
            "self_check_ok": correct,
            "baseline": [
                "raw_secp256k1_schnorrsig_sign32": rounded(bip340Sign.baseline),
                "raw_secp256k1_schnorrsig_verify": rounded(bip340Verify.baseline),
                "sha256_of_merkle_nodes_10000_leaves": rounded(merkle.baseline),
            ],
            "ishtar": [
                "bip340_sign": rounded(bip340Sign.operation),
                "bip340_verify": rounded(bip340Verify.operation),
                "eots_randomness_derivation": rounded(eotsRandomness),
                "eots_sign": rounded(eotsSign.operation),
                "eots_verify": rounded(eotsVerify.operation),
                "eots_extract": rounded(eotsExtract),
                "adaptor_encrypted_sign": rounded(encSign),
                "adaptor_encrypted_verify": rounded(encVerify),
                "adaptor_decrypt": rounded(decrypt),
                "merkle_root_10000_leaves": rounded(merkle.operation),
            ],
            "ratios": ratios,
            // Each goal pair with the baseline measured in its own alternating batches.
            "pairs": [
                "bip340_sign": pair(bip340Sign, baselineName: "raw_sign"),
                "bip340_verify": pair(bip340Verify, baselineName: "raw_verify"),
                "eots_sign": pair(eotsSign, baselineName: "raw_sign"),
                "eots_verify": pair(eotsVerify, baselineName: "raw_verify"),
                "merkle_root_10000_leaves": pair(merkle, baselineName: "sha256_same_nodes"),
            ],
            "goals_met": goals,
        ]
    }
}

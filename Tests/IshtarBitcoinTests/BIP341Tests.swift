import Foundation
import IshtarBitcoin
import IshtarCrypto
import IshtarTestSupport
import Testing

/// A script tree as the BIP-341 vectors write it: a leaf object or a two-element array.
indirect enum VectorTree: Decodable, Sendable {
    case leaf(id: Int, script: String, leafVersion: UInt8)
    case branch(VectorTree, VectorTree)

    private enum Keys: String, CodingKey { case id, script, leafVersion }

    init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            let left = try array.decode(VectorTree.self)
            let right = try array.decode(VectorTree.self)
            self = .branch(left, right)
        } else {
            let object = try decoder.container(keyedBy: Keys.self)
            self = .leaf(
                id: try object.decode(Int.self, forKey: .id), script: try object.decode(String.self, forKey: .script),
                leafVersion: try object.decode(UInt8.self, forKey: .leafVersion))
        }
    }

    func tapTree() throws -> TapTree {
        switch self {
        case let .leaf(_, script, version):
            return .leaf(try TapLeaf(script: Script(bytes: hex(script)), version: version))
        case let .branch(left, right):
            return .branch(try left.tapTree(), try right.tapTree())
        }
    }

    /// Leaves with their ids, depth first.
    var leafIDs: [(id: Int, script: String, version: UInt8)] {
        switch self {
        case let .leaf(id, script, version): return [(id, script, version)]
        case let .branch(left, right): return left.leafIDs + right.leafIDs
        }
    }
}

struct BIP341Vectors: Decodable, Sendable {
    struct ScriptPubKeyCase: Decodable, Sendable {
        struct Given: Decodable, Sendable {
            let internalPubkey: String
            let scriptTree: VectorTree?
        }
        struct Intermediary: Decodable, Sendable {
            let leafHashes: [String]?
            let merkleRoot: String?
            let tweak: String
            let tweakedPubkey: String
        }
        struct Expected: Decodable, Sendable {
            let scriptPubKey: String
            let bip350Address: String
            let scriptPathControlBlocks: [String]?
        }
        let given: Given
        let intermediary: Intermediary
        let expected: Expected
    }

    struct KeyPathSpending: Decodable, Sendable {
        struct Given: Decodable, Sendable {
            struct Utxo: Decodable, Sendable {
                let scriptPubKey: String
                let amountSats: Int64
            }
            let rawUnsignedTx: String
            let utxosSpent: [Utxo]
        }
        struct Intermediary: Decodable, Sendable {
            let hashAmounts: String
            let hashOutputs: String
            let hashPrevouts: String
            let hashScriptPubkeys: String
            let hashSequences: String
        }
        struct InputSpending: Decodable, Sendable {
            struct Given: Decodable, Sendable {
                let txinIndex: Int
                let internalPrivkey: String
                let merkleRoot: String?
                let hashType: UInt8
            }
            struct Intermediary: Decodable, Sendable {
                let internalPubkey: String
                let tweak: String
                let tweakedPrivkey: String
                let sigMsg: String
                let sigHash: String
            }
            struct Expected: Decodable, Sendable {
                let witness: [String]
            }
            let given: Given
            let intermediary: Intermediary
            let expected: Expected
        }
        struct Auxiliary: Decodable, Sendable {
            let fullySignedTx: String
        }
        let given: Given
        let intermediary: Intermediary
        let inputSpending: [InputSpending]
        let auxiliary: Auxiliary
    }

    let scriptPubKey: [ScriptPubKeyCase]
    let keyPathSpending: [KeyPathSpending]

    static let loaded = Fixtures.json("bip341-wallet-test-vectors.json", as: BIP341Vectors.self)
}

private func tapTweak(internalKey: Data, merkleRoot: Data?) -> Data {
    TaggedHash.hash(tag: "TapTweak", data: internalKey + (merkleRoot ?? Data()))
}

@Suite("BIP-341 wallet vectors")
struct BIP341Tests {
    @Test func vectorsLoad() throws {
        let vectors = try #require(BIP341Vectors.loaded)
        #expect(vectors.scriptPubKey.count == 7)
        #expect(vectors.keyPathSpending.count == 1)
        #expect(vectors.keyPathSpending.first?.inputSpending.count == 7)
    }

    @Test(arguments: BIP341Vectors.loaded?.scriptPubKey ?? [])
    func scriptPubKey(_ vector: BIP341Vectors.ScriptPubKeyCase) throws {
        let internalKey = try Schnorr.PublicKey(rawRepresentation: hex(vector.given.internalPubkey))
        let tree = try vector.given.scriptTree?.tapTree()
        let output = try TaprootOutput(internalKey: internalKey, tree: tree)

        #expect(output.merkleRoot?.hexString == vector.intermediary.merkleRoot)
        #expect(tapTweak(internalKey: internalKey.rawRepresentation, merkleRoot: output.merkleRoot).hexString
            == vector.intermediary.tweak)
        #expect(output.outputKey.rawRepresentation.hexString == vector.intermediary.tweakedPubkey)
        #expect(output.scriptPubKey.bytes.hexString == vector.expected.scriptPubKey)
        #expect(output.scriptPubKey.type == .p2tr(outputKey: output.outputKey.rawRepresentation))
        #expect(output.address(network: .mainnet).encoded == vector.expected.bip350Address)
        #expect(try SegwitAddress(vector.expected.bip350Address).scriptPubKey == output.scriptPubKey)

        guard let tree, let vectorTree = vector.given.scriptTree else {
            #expect(vector.intermediary.leafHashes == nil)
            return
        }
        // The vectors list leaf hashes and control blocks by leaf id; ids follow depth-first order.
        let leaves = vectorTree.leafIDs.sorted { $0.id < $1.id }
        let expectedHashes = try #require(vector.intermediary.leafHashes)
        let expectedBlocks = try #require(vector.expected.scriptPathControlBlocks)
        #expect(leaves.count == expectedHashes.count)
        for (index, entry) in leaves.enumerated() {
            let leaf = try TapLeaf(script: Script(bytes: hex(entry.script)), version: entry.version)
            #expect(leaf.hash.hexString == expectedHashes[index])
            let controlBlock = try output.controlBlock(for: leaf)
            #expect(controlBlock.serialized.hexString == expectedBlocks[index])
            let parsed = try ControlBlock(serialized: hex(expectedBlocks[index]))
            #expect(parsed == controlBlock)
            #expect(parsed.merkleRoot(for: leaf.script) == tree.merkleRoot)
            #expect(parsed.verify(script: leaf.script, outputKey: output.outputKey))
            #expect(!parsed.verify(script: Script([.op(.return)]), outputKey: output.outputKey))
            let witness = try output.scriptPathWitness(leaf: leaf, stack: [Data([1])])
            #expect(witness == [Data([1]), leaf.script.bytes, controlBlock.serialized])
        }
    }

    @Test func keyPathSpending() throws {
        let vectors = try #require(BIP341Vectors.loaded)
        let spending = try #require(vectors.keyPathSpending.first)
        let unsigned = try Transaction(serialized: hex(spending.given.rawUnsignedTx))
        #expect(unsigned.serialized().hexString == spending.given.rawUnsignedTx)
        let prevouts = try spending.given.utxosSpent.map {
            TxOut(value: try Amount(sats: $0.amountSats), scriptPubKey: Script(bytes: hex($0.scriptPubKey)))
        }
        let sighasher = try TaprootSighasher(transaction: unsigned, prevouts: prevouts)
        #expect(sighasher.shaAmounts.hexString == spending.intermediary.hashAmounts)
        #expect(sighasher.shaOutputs.hexString == spending.intermediary.hashOutputs)
        #expect(sighasher.shaPrevouts.hexString == spending.intermediary.hashPrevouts)
        #expect(sighasher.shaScriptPubKeys.hexString == spending.intermediary.hashScriptPubkeys)
        #expect(sighasher.shaSequences.hexString == spending.intermediary.hashSequences)

        let signed = try Transaction(serialized: hex(spending.auxiliary.fullySignedTx))
        #expect(signed.serialized().hexString == spending.auxiliary.fullySignedTx)
        // Only the P2PKH input's scriptSig and the witnesses differ between the two.
        #expect(signed.outputs == unsigned.outputs)
        #expect(signed.inputs.map(\.previousOutput) == unsigned.inputs.map(\.previousOutput))

        for input in spending.inputSpending {
            let index = input.given.txinIndex
            let hashType = SighashType(rawValue: input.given.hashType)
            let merkleRoot = input.given.merkleRoot.map(hex)
            let privateKey = try Schnorr.PrivateKey(rawRepresentation: hex(input.given.internalPrivkey))
            #expect(privateKey.publicKey.rawRepresentation.hexString == input.intermediary.internalPubkey)
            #expect(tapTweak(internalKey: privateKey.publicKey.rawRepresentation, merkleRoot: merkleRoot).hexString
                == input.intermediary.tweak)
            #expect(try privateKey.tapTweaked(merkleRoot: merkleRoot).rawRepresentation.hexString
                == input.intermediary.tweakedPrivkey)

            let message = try sighasher.signatureMessage(inputIndex: index, hashType: hashType)
            #expect(message.hexString == input.intermediary.sigMsg)
            let sighash = try sighasher.signatureHash(inputIndex: index, hashType: hashType)
            #expect(sighash.hexString == input.intermediary.sigHash)

            let witness = try sighasher.keyPathWitness(
                inputIndex: index, internalKey: privateKey, merkleRoot: merkleRoot, hashType: hashType,
                auxiliaryRandomness: Data(count: 32))
            #expect(witness.map(\.hexString) == input.expected.witness)
            #expect(signed.inputs[index].witness == witness)

            // The signature verifies against the spent output's key.
            guard case .p2tr(let outputKeyBytes) = prevouts[index].scriptPubKey.type else {
                Issue.record("input \(index) does not spend a taproot output")
                continue
            }
            let outputKey = try Schnorr.PublicKey(rawRepresentation: outputKeyBytes)
            let signature = try Schnorr.Signature(rawRepresentation: witness[0].prefix(64))
            #expect(outputKey.isValidSignature(signature, for: sighash))
        }
    }

    @Test func sighashErrors() throws {
        let vectors = try #require(BIP341Vectors.loaded)
        let spending = try #require(vectors.keyPathSpending.first)
        let unsigned = try Transaction(serialized: hex(spending.given.rawUnsignedTx))
        let prevouts = try spending.given.utxosSpent.map {
            TxOut(value: try Amount(sats: $0.amountSats), scriptPubKey: Script(bytes: hex($0.scriptPubKey)))
        }
        #expect(throws: SighashError.prevoutsCountMismatch(provided: 8, inputCount: 9)) {
            try TaprootSighasher(transaction: unsigned, prevouts: Array(prevouts.dropLast()))
        }
        let sighasher = try TaprootSighasher(transaction: unsigned, prevouts: prevouts)
        #expect(throws: SighashError.singleWithoutMatchingOutput(index: 2, outputCount: 2)) {
            try sighasher.signatureHash(inputIndex: 2, hashType: .single)
        }
        #expect(throws: SighashError.singleWithoutMatchingOutput(index: 3, outputCount: 2)) {
            try sighasher.signatureHash(inputIndex: 3, hashType: .singleAnyoneCanPay)
        }
        #expect(throws: SighashError.invalidHashType(0x04)) {
            try sighasher.signatureHash(inputIndex: 0, hashType: SighashType(rawValue: 0x04))
        }
        #expect(throws: SighashError.invalidHashType(0x80)) {
            try sighasher.signatureHash(inputIndex: 0, hashType: SighashType(rawValue: 0x80))
        }
        #expect(throws: SighashError.inputIndexOutOfRange(index: 9, inputCount: 9)) {
            try sighasher.signatureHash(inputIndex: 9, hashType: .default)
        }
        #expect(throws: SighashError.invalidAnnex) {
            try sighasher.signatureHash(inputIndex: 0, hashType: .default, annex: Data([0x51]))
        }
        #expect(throws: SighashError.invalidLeafHashLength(31)) {
            try sighasher.signatureHash(inputIndex: 0, hashType: .default, leafHash: Data(count: 31))
        }
        // An annex and a script path change the hash; ANYONECANPAY variants differ from plain ones.
        let base = try sighasher.signatureHash(inputIndex: 0, hashType: .default)
        #expect(try sighasher.signatureHash(inputIndex: 0, hashType: .default, annex: Data([0x50])) != base)
        #expect(try sighasher.signatureHash(inputIndex: 0, hashType: .default, leafHash: Data(count: 32)) != base)
        #expect(try sighasher.signatureHash(inputIndex: 0, hashType: .all) != base)
    }

    @Test func scriptPathSignAndVerify() throws {
        // A staking-like output: unspendable internal key, two leaves at depth 2 and one at depth 1.
        let keys = (0..<3).map { _ in Schnorr.PrivateKey() }
        let timelock = Script([.push(keys[0].publicKey.rawRepresentation), .op(.checkSigVerify), .number(1000), .op(.checkSequenceVerify)])
        let unbonding = try Script([.push(keys[0].publicKey.rawRepresentation), .op(.checkSigVerify)])
            + Script.multisig(keys: [keys[1].publicKey, keys[2].publicKey], threshold: 2, last: true)
        let slashing = try Script([.push(keys[0].publicKey.rawRepresentation), .op(.checkSigVerify)])
            + Script.multisig(keys: [keys[1].publicKey], threshold: 1, last: true)
        let tree = TapTree.branch(.branch(.leaf(timelock), .leaf(unbonding)), .leaf(slashing))
        let output = try TaprootOutput(internalKey: Taproot.unspendableInternalKey, tree: tree)
        #expect(tree.leaves.count == 3)
        #expect(tree.depth == 2)
        #expect(tree.leafPaths().map(\.path.count) == [2, 2, 1])

        let funding = Transaction(
            inputs: [TxIn(previousOutput: OutPoint(txid: .zero, index: 0))],
            outputs: [TxOut(value: .sats(100_000), scriptPubKey: output.scriptPubKey)])
        let spend = Transaction(
            inputs: [TxIn(previousOutput: OutPoint(txid: funding.txid, index: 0))],
            outputs: [TxOut(value: .sats(99_000), scriptPubKey: .p2tr(outputKey: keys[0].publicKey))])
        let sighasher = try TaprootSighasher(transaction: spend, prevouts: [funding.outputs[0]])
        let leaf = TapLeaf(script: slashing)
        let signature = try sighasher.scriptPathSignature(inputIndex: 0, key: keys[0], leaf: leaf)
        #expect(signature.count == 64)
        let sighash = try sighasher.signatureHash(inputIndex: 0, hashType: .default, leafHash: leaf.hash)
        #expect(keys[0].publicKey.isValidSignature(try Schnorr.Signature(rawRepresentation: signature), for: sighash))
        let withType = try sighasher.scriptPathSignature(inputIndex: 0, key: keys[0], leaf: leaf, hashType: .all)
        #expect(withType.count == 65 && withType.last == 0x01)

        let controlBlock = try output.controlBlock(for: leaf)
        #expect(controlBlock.path.count == 1)
        #expect(controlBlock.verify(script: slashing, outputKey: output.outputKey))
        #expect(!controlBlock.verify(script: timelock, outputKey: output.outputKey))
        #expect(throws: TaprootError.leafNotInTree) { try output.controlBlock(for: TapLeaf(script: Script([.op(.op1)]))) }
    }

    @Test func controlBlockRejections() throws {
        #expect(throws: TaprootError.invalidControlBlockLength(32)) { try ControlBlock(serialized: Data(count: 32)) }
        #expect(throws: TaprootError.invalidControlBlockLength(34)) { try ControlBlock(serialized: Data(count: 34)) }
        #expect(throws: TaprootError.invalidControlBlockLength(33 + 32 * 129)) {
            try ControlBlock(serialized: Data(count: 33 + 32 * 129))
        }
        // x = 0 is not on the curve (0³ + 7 is not a square mod p).
        #expect(throws: TaprootError.invalidInternalKey) { try ControlBlock(serialized: Data([0xc0]) + Data(count: 32)) }
        #expect(throws: TaprootError.invalidLeafVersion(0xc1)) { try TapLeaf(script: Script(), version: 0xc1) }
        #expect(throws: TaprootError.invalidLeafVersion(0x50)) { try TapLeaf(script: Script(), version: 0x50) }
    }

    @Test func unspendableKeyMatchesProtocol() {
        #expect(Taproot.unspendableInternalKey.rawRepresentation.hexString
            == "50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0")
    }
}

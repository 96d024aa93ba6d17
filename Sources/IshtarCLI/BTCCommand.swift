import ArgumentParser
import Foundation
import IshtarBitcoin
import IshtarCrypto

/// `ishtar btc …`: everyday Bitcoin inspection: transactions, addresses, PSBTs.
struct BTCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "btc",
        abstract: "Decode Bitcoin transactions and PSBTs; derive addresses from output scripts.",
        subcommands: [DecodeTx.self, Address.self, DecodePSBT.self])

    struct NetworkOption: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("mainnet, testnet, signet or regtest (for addresses).", valueName: "network"),
                transform: BTCActions.parseNetwork)
        var network: Network = .mainnet
    }

    struct DecodeTx: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "decode-tx",
            abstract: "Decode a raw transaction (hex): ids, sizes, inputs and outputs.")

        @Argument(help: ArgumentHelp("The serialized transaction, hex.", valueName: "hex"))
        var hex: String
        @OptionGroup var network: NetworkOption
        @OptionGroup var format: OutputOptions

        func run() throws {
            format.emit(try BTCActions.decodeTransaction(hex: hex, network: network.network))
        }
    }

    struct Address: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The address an output script (scriptPubKey) pays to.",
            discussion: "Segwit scripts give bech32/bech32m addresses, P2PKH and P2SH give base58check ones.")

        @Option(name: .long, help: ArgumentHelp("The output script, hex.", valueName: "hex"))
        var pkscript: String
        @OptionGroup var network: NetworkOption
        @OptionGroup var format: OutputOptions

        func run() throws {
            format.emit(try BTCActions.address(pkScriptHex: pkscript, network: network.network))
        }
    }

    struct DecodePSBT: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "decode-psbt",
            abstract: "Summarize a PSBT (base64): inputs with their taproot fields and signatures, outputs, fee.")

        @Argument(help: ArgumentHelp("The PSBT, base64.", valueName: "base64"))
        var psbt: String
        @OptionGroup var network: NetworkOption
        @OptionGroup var format: OutputOptions

        func run() throws {
            format.emit(try BTCActions.decodePSBT(base64: psbt, network: network.network))
        }
    }
}

// MARK: - Outputs

/// One input of `btc decode-tx`.
public struct DecodedInput: Codable, Equatable, Sendable {
    public var outpoint: String
    public var sequence: UInt32
    public var scriptSig: String
    public var witness: [String]
}

/// One output of `btc decode-tx`.
public struct DecodedOutput: Codable, Equatable, Sendable {
    public var index: Int
    public var valueSats: Int64
    public var value: String
    public var scriptType: String
    public var address: String?
    public var asm: String
    public var scriptPubKey: String
    public var opReturnData: String?
}

/// `btc decode-tx` output.
public struct DecodedTransactionOutput: CommandOutput, Equatable {
    public var txid: String
    public var wtxid: String
    public var version: UInt32
    public var locktime: UInt32
    public var size: Int
    public var vsize: Int
    public var weight: Int
    public var inputs: [DecodedInput]
    public var outputs: [DecodedOutput]

    var text: String {
        var lines = [
            "txid:     \(txid)", "wtxid:    \(wtxid)", "version:  \(version)", "locktime: \(locktime)",
            "size:     \(size) bytes, vsize \(vsize) vB, weight \(weight) WU", "inputs:   \(inputs.count)",
        ]
        for (i, input) in inputs.enumerated() {
            lines.append("  [\(i)] \(input.outpoint) sequence 0x\(String(input.sequence, radix: 16))")
            if !input.scriptSig.isEmpty { lines.append("      scriptSig \(input.scriptSig)") }
            for item in input.witness { lines.append("      witness \(item.isEmpty ? "<empty>" : item)") }
        }
        lines.append("outputs:  \(outputs.count)")
        for output in outputs {
            lines.append("  [\(output.index)] \(output.value) BTC \(output.scriptType)\(output.address.map { " " + $0 } ?? "")")
            lines.append("      \(output.asm)")
            if let data = output.opReturnData { lines.append("      OP_RETURN data \(data)") }
        }
        return lines.joined(separator: "\n")
    }
}

/// `btc address` output.
public struct AddressOutput: CommandOutput, Equatable {
    public var address: String
    public var network: String
    public var scriptType: String
    var text: String { address }
}

/// One input of `btc decode-psbt`.
public struct PSBTInputSummary: Codable, Equatable, Sendable {
    public var outpoint: String
    public var utxoValueSats: Int64?
    public var utxoScriptType: String?
    public var utxoAddress: String?
    public var taprootFields: [String]
    public var hasKeySignature: Bool
    public var scriptSignatureCount: Int
    public var isFinal: Bool
    public var unknownPairs: Int
}

/// One output of `btc decode-psbt`.
public struct PSBTOutputSummary: Codable, Equatable, Sendable {
    public var valueSats: Int64
    public var scriptType: String
    public var address: String?
    public var taprootFields: [String]
}

/// `btc decode-psbt` output.
public struct PSBTSummaryOutput: CommandOutput, Equatable {
    public var txid: String
    public var inputs: [PSBTInputSummary]
    public var outputs: [PSBTOutputSummary]
    public var feeSats: Int64?
    public var xpubs: Int
    public var unknownGlobalPairs: Int

    var text: String {
        var lines = ["txid: \(txid)", "inputs: \(inputs.count)"]
        for (i, input) in inputs.enumerated() {
            let utxo = input.utxoValueSats.map { "\($0) sat \(input.utxoScriptType ?? "")" } ?? "UTXO unknown"
            lines.append("  [\(i)] \(input.outpoint) \(utxo)")
            if !input.taprootFields.isEmpty { lines.append("      taproot: \(input.taprootFields.joined(separator: ", "))") }
            let sigs = input.isFinal ? "final witness" :
                "key-path signature: \(input.hasKeySignature ? "yes" : "no"), script-path signatures: \(input.scriptSignatureCount)"
            lines.append("      \(sigs)")
        }
        lines.append("outputs: \(outputs.count)")
        for (i, output) in outputs.enumerated() {
            lines.append("  [\(i)] \(output.valueSats) sat \(output.scriptType)\(output.address.map { " " + $0 } ?? "")")
            if !output.taprootFields.isEmpty { lines.append("      taproot: \(output.taprootFields.joined(separator: ", "))") }
        }
        lines.append("fee: " + (feeSats.map { "\($0) sat" } ?? "unknown (not every UTXO is in the PSBT)"))
        return lines.joined(separator: "\n")
    }
}

// MARK: - Actions

/// The work behind `ishtar btc`, callable from tests. Bad input throws `CLIError.badInput` with
/// one line naming the command and what is wrong.
public enum BTCActions {
    static func parseNetwork(_ text: String) throws -> Network {
        guard let network = Network(rawValue: text.lowercased()) else {
            throw ValidationError("--network: expected mainnet, testnet, signet or regtest, got '\(text)'")
        }
        return network
    }

    private static func hexBytes(_ text: String, command: String, what: String) throws -> Data {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let body = trimmed.hasPrefix("0x") ? String(trimmed.dropFirst(2)) : trimmed
        guard let data = try? Data(hex: body, field: what) else {
            throw CLIError.badInput("\(command): \(what) is not valid hex")
        }
        return data
    }

    /// "truncated at byte 41 (reading input 0 outpoint txid)" and the like.
    static func describe(_ error: BitcoinDecodingError) -> String {
        switch error {
        case .truncated(let field, let offset, _, _): "truncated at byte \(offset) (reading \(field))"
        case .nonMinimalCompactSize(let field, let offset): "non-minimal CompactSize at byte \(offset) (\(field))"
        case .countExceedsInput(let field, let offset, let value):
            "\(field) \(value) at byte \(offset) exceeds the remaining input"
        case .trailingBytes(let offset, let count): "\(count) trailing bytes at byte \(offset)"
        case .unknownSegwitFlag(let offset, let flag): "unknown segwit flag 0x\(String(flag, radix: 16)) at byte \(offset)"
        case .noInputs(let offset): "no inputs (at byte \(offset))"
        case .superfluousWitness(let offset): "segwit marker but every witness is empty (at byte \(offset))"
        case .invalidAmount(let offset, let sats): "invalid amount \(sats) at byte \(offset)"
        case .invalidLength(let field, let expected, let actual): "\(field) has \(actual) bytes, expected \(expected)"
        case .invalidHex(let field): "\(field) is not valid hex"
        }
    }

    static func scriptTypeName(_ script: Script) -> String {
        switch script.type {
        case .p2pkh: "p2pkh"
        case .p2sh: "p2sh"
        case .p2wpkh: "p2wpkh"
        case .p2wsh: "p2wsh"
        case .p2tr: "p2tr"
        case .witnessUnknown(let version, _): "witness_v\(version)_unknown"
        case .opReturn: "op_return"
        case .unknown: "nonstandard"
        }
    }

    /// The address of `script` on `network`, or nil when the script has none.
    static func addressString(_ script: Script, network: Network) -> String? {
        switch script.type {
        case .p2pkh(let hash): Base58.check(Data([network == .mainnet ? 0x00 : 0x6f]) + hash)
        case .p2sh(let hash): Base58.check(Data([network == .mainnet ? 0x05 : 0xc4]) + hash)
        case .p2wpkh, .p2wsh, .p2tr, .witnessUnknown:
            (try? SegwitAddress(scriptPubKey: script, network: network))?.encoded
        case .opReturn, .unknown: nil
        }
    }

    public static func decodeTransaction(hex: String, network: Network) throws -> DecodedTransactionOutput {
        let bytes = try hexBytes(hex, command: "decode-tx", what: "transaction")
        let tx: Transaction
        do { tx = try Transaction(serialized: bytes) } catch {
            throw CLIError.badInput("decode-tx: \(describe(error))")
        }
        let inputs = tx.inputs.map { input in
            DecodedInput(
                outpoint: input.previousOutput.description, sequence: input.sequence,
                scriptSig: input.scriptSig.bytes.hexString, witness: input.witness.map(\.hexString))
        }
        let outputs = tx.outputs.enumerated().map { index, output in
            var data: String?
            if case .opReturn(let payload) = output.scriptPubKey.type { data = payload.hexString }
            return DecodedOutput(
                index: index, valueSats: output.value.sats, value: output.value.description,
                scriptType: scriptTypeName(output.scriptPubKey), address: addressString(output.scriptPubKey, network: network),
                asm: output.scriptPubKey.asm, scriptPubKey: output.scriptPubKey.bytes.hexString, opReturnData: data)
        }
        return DecodedTransactionOutput(
            txid: tx.txid.displayHex, wtxid: tx.wtxid.displayHex, version: tx.version, locktime: tx.lockTime,
            size: tx.totalSize, vsize: tx.virtualSize, weight: tx.weight, inputs: inputs, outputs: outputs)
    }

    public static func address(pkScriptHex: String, network: Network) throws -> AddressOutput {
        let script = Script(bytes: try hexBytes(pkScriptHex, command: "address", what: "--pkscript"))
        guard let address = addressString(script, network: network) else {
            let type = scriptTypeName(script)
            throw CLIError.badInput("address: a \(type) script has no address")
        }
        return AddressOutput(address: address, network: network.rawValue, scriptType: scriptTypeName(script))
    }

    public static func decodePSBT(base64: String, network: Network) throws -> PSBTSummaryOutput {
        let psbt: PSBT
        do { psbt = try PSBT(base64: base64) } catch {
            throw CLIError.badInput("decode-psbt: \(error.description)")
        }
        let spent = psbt.spentOutputs
        let known: Set<UInt8> = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0a, 0x0b, 0x0c, 0x0d,
                                 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
        let inputs = psbt.inputs.enumerated().map { index, input in
            var fields = [String]()
            if input.tapKeySignature != nil { fields.append("tap_key_sig") }
            if !input.tapScriptSignatures.isEmpty { fields.append("tap_script_sig×\(input.tapScriptSignatures.count)") }
            if !input.tapLeafScripts.isEmpty { fields.append("tap_leaf_script×\(input.tapLeafScripts.count)") }
            if !input.tapBIP32Derivations.isEmpty { fields.append("tap_bip32_derivation×\(input.tapBIP32Derivations.count)") }
            if input.tapInternalKey != nil { fields.append("tap_internal_key") }
            if input.tapMerkleRoot != nil { fields.append("tap_merkle_root") }
            let utxo = spent[index]
            return PSBTInputSummary(
                outpoint: psbt.unsignedTransaction.inputs[index].previousOutput.description,
                utxoValueSats: utxo?.value.sats, utxoScriptType: utxo.map { scriptTypeName($0.scriptPubKey) },
                utxoAddress: utxo.flatMap { addressString($0.scriptPubKey, network: network) },
                taprootFields: fields, hasKeySignature: input.tapKeySignature != nil,
                scriptSignatureCount: input.tapScriptSignatures.count,
                isFinal: input.finalScriptWitness != nil || input.finalScriptSig != nil,
                unknownPairs: input.entries.filter { !known.contains($0.key.first ?? 0xff) }.count)
        }
        let outputs = psbt.outputs.enumerated().map { index, output in
            let txOut = psbt.unsignedTransaction.outputs[index]
            var fields = [String]()
            if output.tapInternalKey != nil { fields.append("tap_internal_key") }
            if let tree = output.tapTree { fields.append("tap_tree(\(tree.count) leaves)") }
            if !output.tapBIP32Derivations.isEmpty { fields.append("tap_bip32_derivation×\(output.tapBIP32Derivations.count)") }
            return PSBTOutputSummary(
                valueSats: txOut.value.sats, scriptType: scriptTypeName(txOut.scriptPubKey),
                address: addressString(txOut.scriptPubKey, network: network), taprootFields: fields)
        }
        return PSBTSummaryOutput(
            txid: psbt.unsignedTransaction.txid.displayHex, inputs: inputs, outputs: outputs,
            feeSats: psbt.fee?.sats, xpubs: psbt.global.xpubs.count, unknownGlobalPairs: psbt.global.unknown.count)
    }
}

/// Base58Check, for the legacy P2PKH and P2SH addresses `btc address` and `decode-tx` print.
enum Base58 {
    private static let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")

    /// `payload ‖ first 4 bytes of hash256(payload)`, in base58.
    static func check(_ payload: Data) -> String {
        let bytes = [UInt8](payload + BitcoinHash.hash256(payload).prefix(4))
        var digits = [UInt8]()  // base-58 digits, least significant first
        for byte in bytes {
            var carry = Int(byte)
            for i in digits.indices {
                carry += Int(digits[i]) << 8
                digits[i] = UInt8(carry % 58)
                carry /= 58
            }
            while carry > 0 {
                digits.append(UInt8(carry % 58))
                carry /= 58
            }
        }
        let zeros = bytes.prefix { $0 == 0 }.count
        return String(repeating: "1", count: zeros) + String(digits.reversed().map { alphabet[Int($0)] })
    }
}

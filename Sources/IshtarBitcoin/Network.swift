import Foundation

/// The Bitcoin networks Ishtar can anchor to.
public enum Network: String, Sendable, Hashable, CaseIterable, Codable {
    /// Bitcoin mainnet.
    case mainnet
    /// testnet3.
    case testnet
    /// The default signet.
    case signet
    /// A local regression-test network.
    case regtest

    /// The bech32 human-readable part of segwit addresses (BIP-173). Testnet and signet share `tb`.
    public var bech32HRP: String {
        switch self {
        case .mainnet: return "bc"
        case .testnet, .signet: return "tb"
        case .regtest: return "bcrt"
        }
    }

    /// The networks whose addresses use `hrp` (lowercase); testnet and signet share `tb`.
    public static func networks(forHRP hrp: String) -> [Network] {
        allCases.filter { $0.bech32HRP == hrp }
    }

    /// The difficulty rules of this network.
    public var powParameters: PowParameters {
        switch self {
        case .mainnet: return .mainnet
        case .testnet: return .testnet
        case .signet: return .signet
        case .regtest: return .regtest
        }
    }

    /// The heights from which BIP-34, BIP-66 and BIP-65 are buried in Bitcoin Core's chain
    /// parameters (`consensus.BIP34Height`, `BIP66Height`, `BIP65Height`).
    public var buriedVersionHeights: (bip34: UInt64, bip66: UInt64, bip65: UInt64) {
        switch self {
        case .mainnet: return (227_931, 363_725, 388_381)
        case .testnet: return (21_111, 330_776, 581_885)
        case .signet, .regtest: return (1, 1, 1)
        }
    }

    /// The lowest block version a header at `height` may carry: Bitcoin Core's
    /// `ContextualCheckBlockHeader` refuses `bad-version` below 2, 3 and 4 once BIP-34, BIP-66
    /// and BIP-65 are active (the version is signed: versions with the top bit set are below).
    public func minimumBlockVersion(atHeight height: UInt64) -> Int32 {
        let h = buriedVersionHeights
        if height >= h.bip65 { return 4 }
        if height >= h.bip66 { return 3 }
        if height >= h.bip34 { return 2 }
        return 1
    }

    /// The genesis block header.
    public var genesisHeader: BlockHeader {
        let merkleRoot = Hash256(unchecked: Data(genesisMerkleRootInternalOrder))
        switch self {
        case .mainnet:
            return BlockHeader(
                version: 1, previousBlockHash: .zero, merkleRoot: merkleRoot,
                time: 1_231_006_505, bits: 0x1d00_ffff, nonce: 2_083_236_893)
        case .testnet:
            return BlockHeader(
                version: 1, previousBlockHash: .zero, merkleRoot: merkleRoot,
                time: 1_296_688_602, bits: 0x1d00_ffff, nonce: 414_098_458)
        case .signet:
            return BlockHeader(
                version: 1, previousBlockHash: .zero, merkleRoot: merkleRoot,
                time: 1_598_918_400, bits: 0x1e03_77ae, nonce: 52_613_770)
        case .regtest:
            return BlockHeader(
                version: 1, previousBlockHash: .zero, merkleRoot: merkleRoot,
                time: 1_296_688_602, bits: 0x207f_ffff, nonce: 2)
        }
    }
}

/// Every genesis block holds the same single coinbase ("The Times 03/Jan/2009 …"),
/// so all four share this Merkle root (displayed as 4a5e1e4b…deda33b).
private let genesisMerkleRootInternalOrder: [UInt8] = [
    0x3b, 0xa3, 0xed, 0xfd, 0x7a, 0x7b, 0x12, 0xb2, 0x7a, 0xc7, 0x2c, 0x3e, 0x67, 0x76, 0x8f, 0x61,
    0x7f, 0xc8, 0x1b, 0xc3, 0x88, 0x8a, 0x51, 0x32, 0x3a, 0x9f, 0xb8, 0xaa, 0x4b, 0x1e, 0x5e, 0x4a,
]

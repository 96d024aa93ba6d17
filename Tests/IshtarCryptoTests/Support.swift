import Foundation
import IshtarCrypto
import IshtarTestSupport

/// Hex that the test itself wrote; a typo should fail loudly as a thrown error.
func hex(_ string: String) throws -> Data {
    try Data(hex: string, field: "test constant")
}

/// Key material drawn from the seeded stream, so failures reproduce.
extension SplitMix64 {
    /// A valid private key derived from the stream.
    mutating func privateKey() throws -> Schnorr.PrivateKey {
        while true {
            if let key = try? Schnorr.PrivateKey(rawRepresentation: bytes(32)) { return key }
        }
    }
}


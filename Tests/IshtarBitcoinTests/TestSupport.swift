import Foundation
import IshtarBitcoin
import IshtarCrypto
import IshtarTestSupport

/// Hex to bytes for test literals; an invalid literal is a bug in the test, reported as empty data
/// so the comparison that uses it fails visibly.
func hex(_ string: String) -> Data {
    (try? Data(hex: string)) ?? Data()
}

extension Amount {
    /// A literal amount for tests; out-of-range literals are a test bug and become zero.
    static func sats(_ value: Int64) -> Amount { (try? Amount(sats: value)) ?? .zero }
}

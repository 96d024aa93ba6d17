import Foundation
import IshtarCrypto
import IshtarTestSupport

/// The API tests use the shared real-chain backend from IshtarTestSupport.
typealias ChainBackend = ChainTestBackend

func apiTestKey(_ label: String) -> Schnorr.PrivateKey { chainTestKey(label) }

func apiLabelTx(_ key: Schnorr.PrivateKey, nonce: UInt64, label: String = "hello") throws -> Data {
    try chainTestLabelTx(key, nonce: nonce, label: label)
}

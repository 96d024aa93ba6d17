import Foundation
import IshtarCrypto
import Testing

@testable import IshtarNode

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A peer that speaks the wire protocol by hand over a blocking loopback socket, so a test
/// can say what a real ``P2PNetwork`` never would (another node's key, a stale proof).
final class RawPeer {
    private let fd: Int32

    init(port: Int) throws {
        // Generous: no test waits for this timeout, and under a full parallel run the
        // server's answer can take a while to be scheduled.
        fd = try connectLoopback(port: port, receiveTimeoutSeconds: 30)
    }

    deinit { close(fd) }

    /// Sends `message` as one frame (`BE32 length ‖ type ‖ body`).
    func write(_ message: WireMessage) throws {
        let body = message.encoded()
        var frame = withUnsafeBytes(of: UInt32(body.count).bigEndian) { Data($0) }
        frame.append(body)
        try frame.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var off = 0
            while off < raw.count {
                let n = send(fd, base + off, raw.count - off, Int32(MSG_NOSIGNAL))
                guard n > 0 else { throw LoopbackSocketError("send failed") }
                off += n
            }
        }
    }

    /// The next frame, decoded; nil when the other side closed the connection.
    func receive() throws -> WireMessage? {
        guard let header = try read(4) else { return nil }
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        guard let body = try read(length) else { return nil }
        return try WireMessage.decode(body)
    }

    /// Whether the other side closed the connection (reads until EOF, skipping frames).
    func isClosedByPeer() throws -> Bool {
        while true {
            guard try receive() != nil else { return true }
        }
    }

    private func read(_ count: Int) throws -> Data? {
        var out = Data()
        var buf = [UInt8](repeating: 0, count: max(1, min(count, 65536)))
        while out.count < count {
            let n = recv(fd, &buf, min(buf.count, count - out.count), 0)
            if n == 0 { return nil }
            guard n > 0 else { throw LoopbackSocketError("recv failed or timed out (errno \(errno))") }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }
}


/// The P2P handshake on a real listening ``P2PNetwork``: a peer is admitted only as the key
/// it proves it holds, for this chain, with a proof over this connection's challenge.
@Suite(.serialized) struct HandshakeTests {
    static let chainID = "ishtar-handshake"

    func server() async throws -> (P2PNetwork, RecordingDelegate, port: Int, key: Schnorr.PrivateKey) {
        let port = freeBasePort()
        let key = Schnorr.PrivateKey()
        let delegate = RecordingDelegate()
        let network = P2PNetwork(chainID: Self.chainID, nodeKey: key, config: P2PConfig(listen: "127.0.0.1:\(port)"),
                                 logger: quietLogger("server"))
        network.setDelegate(delegate)
        try await network.start()
        return (network, delegate, port, key)
    }

    /// Reads the server's hello, sends ours claiming `claimed`, and returns the server's
    /// challenge (after checking the server's own proof over our challenge).
    func open(_ peer: RawPeer, claiming claimed: Data, serverKey: Schnorr.PrivateKey, chainID: String = chainID) throws -> Data? {
        guard case .hello(let chain, let serverID, let serverChallenge)? = try peer.receive() else {
            Issue.record("the server did not open with hello")
            return nil
        }
        #expect(chain == Self.chainID && serverID == serverKey.publicKey.rawRepresentation)
        let ours = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        try peer.write(.hello(chainID: chainID, nodeKey: claimed, challenge: ours))
        guard case .helloProof(let proof)? = try peer.receive() else { return nil }
        // The server proves its own key over *our* challenge.
        let digest = WireMessage.handshakeDigest(peerChallenge: ours, chainID: Self.chainID, nodeKey: serverID)
        #expect(serverKey.publicKey.isValidSignature(try Schnorr.Signature(rawRepresentation: proof), for: digest))
        return serverChallenge
    }

    func proof(_ key: Schnorr.PrivateKey, over challenge: Data) throws -> Data {
        try key.signature(for: WireMessage.handshakeDigest(peerChallenge: challenge, chainID: Self.chainID,
                                                          nodeKey: key.publicKey.rawRepresentation)).rawRepresentation
    }

    @Test(.timeLimit(.minutes(2))) func aPeerProvingItsKeyIsAdmittedAsThatKey() async throws {
        let (network, delegate, port, serverKey) = try await server()
        defer { Task { await network.stop() } }
        let me = Schnorr.PrivateKey()
        let peer = try RawPeer(port: port)
        let challenge = try #require(try open(peer, claiming: me.publicKey.rawRepresentation, serverKey: serverKey))
        try peer.write(.helloProof(signature: try proof(me, over: challenge)))
        #expect(await eventually(10) { delegate.connections.count == 1 })
        #expect(network.peerCount == 1)
    }

    @Test(.timeLimit(.minutes(2))) func aPeerClaimingAKeyItDoesNotHoldIsRefused() async throws {
        let (network, delegate, port, serverKey) = try await server()
        defer { Task { await network.stop() } }
        let victim = Schnorr.PrivateKey(), me = Schnorr.PrivateKey()
        let peer = try RawPeer(port: port)
        let challenge = try #require(try open(peer, claiming: victim.publicKey.rawRepresentation, serverKey: serverKey))
        // Its own key's proof, presented for the victim's.
        try peer.write(.helloProof(signature: try proof(me, over: challenge)))
        #expect(try peer.isClosedByPeer())
        #expect(delegate.connections.isEmpty && network.peerCount == 0)
    }

    @Test(.timeLimit(.minutes(2))) func aProofFromAnotherConnectionIsRefused() async throws {
        let (network, delegate, port, serverKey) = try await server()
        defer { Task { await network.stop() } }
        let me = Schnorr.PrivateKey()
        // A proof recorded on one connection (made over that connection's challenge)…
        let first = try RawPeer(port: port)
        let oldChallenge = try #require(try open(first, claiming: me.publicKey.rawRepresentation, serverKey: serverKey))
        let recorded = try proof(me, over: oldChallenge)
        // …replayed on another: the server's challenge is fresh, so it proves nothing there.
        let second = try RawPeer(port: port)
        let newChallenge = try #require(try open(second, claiming: me.publicKey.rawRepresentation, serverKey: serverKey))
        #expect(newChallenge != oldChallenge)
        try second.write(.helloProof(signature: recorded))
        #expect(try second.isClosedByPeer())
        #expect(delegate.connections.isEmpty)
    }

    @Test(.timeLimit(.minutes(2))) func anotherChainOrAnyOtherFirstFrameIsRefusedBeforeAProof() async throws {
        let (network, delegate, port, serverKey) = try await server()
        defer { Task { await network.stop() } }
        let me = Schnorr.PrivateKey()
        let other = try RawPeer(port: port)
        guard case .hello? = try other.receive() else { Issue.record("no hello"); return }
        try other.write(.hello(chainID: "another-chain", nodeKey: me.publicKey.rawRepresentation, challenge: Data(count: 32)))
        // Closed without the server's proof: nothing of its key is signed for another chain.
        #expect(try other.receive() == nil)

        let eager = try RawPeer(port: port)
        guard case .hello? = try eager.receive() else { Issue.record("no hello"); return }
        try eager.write(.status(height: 1))
        #expect(try eager.isClosedByPeer())

        let mirror = try RawPeer(port: port)
        guard case .hello? = try mirror.receive() else { Issue.record("no hello"); return }
        try mirror.write(.hello(chainID: Self.chainID, nodeKey: serverKey.publicKey.rawRepresentation, challenge: Data(count: 32)))
        #expect(try mirror.receive() == nil, "a peer claiming the server's own key is refused")
        #expect(delegate.connections.isEmpty)
    }
}

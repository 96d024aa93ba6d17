import Foundation
import IshtarCrypto
import Logging
import Metrics
import NIOCore
import NIOPosix
import Synchronization

/// `millis` in nanoseconds, saturating: a configured wait too long to count in nanoseconds
/// waits "forever" (~584 years) instead of trapping or wrapping to a short one.
func nanoseconds(millis: UInt64) -> UInt64 {
    let (ns, overflow) = millis.multipliedReportingOverflow(by: 1_000_000)
    return overflow ? .max : ns
}

/// Identifies one TCP connection (a peer may briefly have two after simultaneous dials).
public typealias ConnectionID = UInt64

/// Splits the byte stream into `BE32 length ‖ payload` frames; a length above the limit
/// (or zero) is a protocol violation that closes the connection.
final class FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxFrameBytes: Int

    init(maxFrameBytes: Int) { self.maxFrameBytes = maxFrameBytes }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard length > 0, Int(length) <= maxFrameBytes else { throw WireError.frameTooLarge(Int(length)) }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let frame = buffer.readSlice(length: Int(length)) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }
}

/// Bytes one connection has received and its reader not yet taken, with a limit, and when
/// it last received a frame (read on the event loop, so a busy node still sees its peers
/// talking).
final class QueuedBytes: Sendable {
    let limit: Int
    private let value = Atomic<Int>(0)
    private let lastReadNanos = Atomic<UInt64>(DispatchTime.now().uptimeNanoseconds)
    init(limit: Int) { self.limit = limit }
    /// Nanoseconds since the last frame arrived.
    var silentNanos: UInt64 { DispatchTime.now().uptimeNanoseconds &- lastReadNanos.load(ordering: .relaxed) }
    /// Adds `n`; false (and nothing added) when that would pass the limit.
    func add(_ n: Int) -> Bool {
        lastReadNanos.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        let now = value.add(n, ordering: .relaxed).newValue
        guard now <= limit else {
            value.subtract(n, ordering: .relaxed)
            return false
        }
        return true
    }
    func take(_ n: Int) { value.subtract(n, ordering: .relaxed) }
}

/// Hands decoded frames to an `AsyncStream` consumed by one task per connection, which
/// keeps a peer's messages in order; closes the channel on any pipeline error.
///
/// The stream is bounded (``P2PNetwork/inboundQueueLimit`` frames, see
/// ``P2PNetwork/makeInboundStream(limit:)``): a peer that sends faster than the node consumes
/// would otherwise grow this process's memory without limit. When a frame does not fit the
/// peer is disconnected (not silently dropped: losing one consensus message in the middle of
/// a stream is worse than a reconnect, after which gossip re-sends the current state), and
/// the overflow is logged and counted (`ishtar_p2p_inbound_overflows_total`).
final class FrameForwarder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let continuation: AsyncStream<Data>.Continuation
    let onOverflow: @Sendable () -> Void
    /// Bytes queued and not yet taken by the connection's reader, shared with it.
    let queued: QueuedBytes
    private var overflowed = false

    init(continuation: AsyncStream<Data>.Continuation, queued: QueuedBytes = QueuedBytes(limit: .max),
         onOverflow: @escaping @Sendable () -> Void = {}) {
        self.continuation = continuation
        self.queued = queued
        self.onOverflow = onOverflow
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !overflowed else { return }
        var buf = unwrapInboundIn(data)
        guard let bytes = buf.readBytes(length: buf.readableBytes) else { return }
        // Frames are counted, and so are their bytes: 20,000 frames of 8 MiB would be 160 GiB.
        var overflow = !queued.add(bytes.count)
        if !overflow, case .dropped = continuation.yield(Data(bytes)) { overflow = true }
        if overflow {
            overflowed = true
            onOverflow()
            continuation.finish()
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish()
        context.close(promise: nil)
    }
}

/// Receives authenticated peer messages (the node service).
public protocol P2PDelegate: AnyObject, Sendable {
    func peerConnected(_ connection: ConnectionID, nodeID: Data) async
    func received(_ message: WireMessage, from connection: ConnectionID) async
    func peerDisconnected(_ connection: ConnectionID) async
}

/// TCP peer-to-peer transport on SwiftNIO.
///
/// Every connection starts with a mutual handshake: both sides send
/// ``WireMessage/hello(chainID:nodeKey:challenge:)`` with a fresh random challenge, then
/// ``WireMessage/helloProof(signature:)``, a BIP-340 signature by the node key over the
/// *peer's* challenge, the chain id and the own key. A wrong chain id, a bad proof, a
/// self-connection, a node id other than the one configured for that address, a timeout
/// or any non-handshake frame before it completes closes the connection. Afterwards an
/// oversized frame closes it, and misbehaviour costs score (``penalize(_:points:reason:)``):
/// an undecodable frame here, badly signed consensus messages or transactions reported by
/// the node; at ``disconnectScore`` the peer is disconnected and its node id refused at the
/// handshake for `misbehaviour_ban_ms`. Inbound connections are limited in all and per IP
/// address. Each connection's inbound queue is bounded (``inboundQueueLimit``); overflowing
/// it disconnects the peer.
///
/// Sending is synchronous and thread-safe (NIO channels accept writes from any thread), so
/// the node service never suspends between executing two consensus actions.
public final class P2PNetwork: Sendable {
    struct Peer {
        let channel: any Channel
        let nodeID: Data
        let outbound: Bool
        /// Starts at ``P2PNetwork/initialScore``; misbehaviour subtracts (see ``P2PNetwork/penalize(_:points:reason:)``).
        var score: Int = P2PNetwork.initialScore
        /// Its received bytes and when it last sent a frame (see ``P2PNetwork/disconnectIdle(after:)``).
        let queued: QueuedBytes
    }

    /// A fresh connection's score.
    public static let initialScore = 100
    /// A peer whose score falls to this or below is disconnected.
    public static let disconnectScore = 0
    /// Default bound of each connection's queue of received, not yet handled frames.
    public static let defaultInboundQueueLimit = 20_000
    /// A connection whose unsent bytes pass this is not reading: it is disconnected rather
    /// than buffered for (catch-up blocks, gossip) without bound.
    public static let outboundHighWaterMark = 64 << 20
    /// Most received bytes of one connection waiting for the node (at least 4 frames).
    var inboundByteLimit: Int { max(64 << 20, 4 * config.maxFrameBytes) }
    /// Score cost of a frame that does not decode.
    public static let undecodableFramePenalty = 50

    struct State {
        var nextID: ConnectionID = 1
        var peers: [ConnectionID: Peer] = [:]
        var listening: (any Channel)?
        /// Dial loops and live connections, so ``stop()`` can cancel them; a connection's
        /// entry goes when it ends (kept forever, every stranger that ever connected would
        /// cost memory for the life of the process).
        var tasks: [Int: Task<Void, Never>] = [:]
        var nextTask = 0
        /// Connections that ended before their entry was made (removed on insertion).
        var endedTasks: Set<Int> = []
        /// Inbound connections open (handshaking or established).
        var inbound = 0
        /// The same, per remote IP address (entries at zero are removed).
        var inboundPerIP: [String: Int] = [:]
        /// Node id → uptime nanoseconds until which its handshakes are refused.
        var bans: [Data: UInt64] = [:]
        var stopped = false
    }

    /// Most node ids banned at once: ids cost nothing to make, so the list must not grow
    /// without bound; when it is full the ban ending soonest makes room.
    public static let maxBans = 10_000

    public let chainID: String
    public let nodeKey: Schnorr.PrivateKey
    public let nodeID: Data
    let config: P2PConfig
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    /// Most frames of one connection waiting for the node; more disconnects the peer.
    public let inboundQueueLimit: Int
    private let state = Mutex(State())
    private let delegateBox = Mutex<(any P2PDelegate)?>(nil)
    private let overflowCounter = Counter(label: NodeMetricName.inboundOverflows)
    private let misbehaviourCounter = Counter(label: NodeMetricName.misbehavingPeers)
    private let refusedCounter = Counter(label: NodeMetricName.inboundRefused)
    private let bannedCounter = Counter(label: NodeMetricName.bannedRefusals)
    private let overflows = Atomic<Int>(0)
    private let misbehaviourDisconnects = Atomic<Int>(0)
    private let refusedInbound = Atomic<Int>(0)
    private let refusedBanned = Atomic<Int>(0)

    public init(chainID: String, nodeKey: Schnorr.PrivateKey, config: P2PConfig, logger: Logger,
                inboundQueueLimit: Int = P2PNetwork.defaultInboundQueueLimit) {
        self.inboundQueueLimit = max(1, inboundQueueLimit)
        self.chainID = chainID
        self.nodeKey = nodeKey
        self.nodeID = nodeKey.publicKey.rawRepresentation
        self.config = config
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.logger = logger
    }

    public func setDelegate(_ d: any P2PDelegate) { delegateBox.withLock { $0 = d } }
    var delegate: (any P2PDelegate)? { delegateBox.withLock { $0 } }

    /// Distinct authenticated peers.
    public var peerCount: Int { state.withLock { Set($0.peers.values.map(\.nodeID)).count } }

    /// Binds the listener and starts dialing the persistent peers.
    public func start() async throws(NodeError) {
        guard let listen = HostPort(config.listen) else { throw .network("bad p2p listen address \(config.listen)") }
        let maxFrame = config.maxFrameBytes
        let limit = inboundQueueLimit
        let byteLimit = inboundByteLimit
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: Self.outboundHighWaterMark / 2, high: Self.outboundHighWaterMark))
            .childChannelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let (stream, cont) = AsyncStream<Data>.makeStream(bufferingPolicy: .bufferingOldest(limit))
                    let queued = QueuedBytes(limit: byteLimit)
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrame)))
                    try channel.pipeline.syncOperations.addHandler(FrameForwarder(continuation: cont, queued: queued) { [weak self] in
                        self?.inboundOverflowed(channel)
                    })
                    self?.launch(channel: channel, frames: stream, queued: queued, outbound: false, expected: nil)
                }
            }
        do {
            let ch = try await bootstrap.bind(host: listen.host, port: listen.port).get()
            state.withLock { $0.listening = ch }
        } catch {
            throw .network("cannot listen on \(config.listen): \(error)")
        }
        logger.info("p2p listening", metadata: ["address": "\(config.listen)", "node_id": "\(nodeID.hexEncoded)"])
        for text in config.persistentPeers {
            guard let peer = PeerAddress(text) else {
                logger.warning("ignoring malformed persistent peer", metadata: ["peer": "\(text)"])
                continue
            }
            track { [weak self] in await self?.dialLoop(peer) }
        }
    }

    /// Runs `work` as a task ``stop()`` cancels; its entry goes when it ends.
    private func track(_ work: @escaping @Sendable () async -> Void) {
        let id = state.withLock { s -> Int in
            s.nextTask += 1
            return s.nextTask
        }
        let task = Task<Void, Never> { [weak self] in
            await work()
            self?.state.withLock { s in
                if s.tasks.removeValue(forKey: id) == nil { s.endedTasks.insert(id) }
            }
        }
        state.withLock { s in
            if s.endedTasks.remove(id) == nil { s.tasks[id] = task }
        }
    }

    /// Closes every connection and the listener.
    public func stop() async {
        let (peers, listener, tasks) = state.withLock { s in
            s.stopped = true
            defer { s.peers = [:]; s.tasks = [:] }
            return (Array(s.peers.values), s.listening, s.tasks)
        }
        tasks.values.forEach { $0.cancel() }
        for p in peers { try? await p.channel.close() }
        try? await listener?.close()
        try? await group.shutdownGracefully()
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    /// Keeps one connection to `peer`, redialing with exponential backoff (250 ms doubling
    /// up to `max_dial_backoff_ms`) whenever it drops.
    private func dialLoop(_ peer: PeerAddress) async {
        var backoff: UInt64 = 250
        let maxFrame = config.maxFrameBytes
        while !Task.isCancelled, !isStopped {
            if let id = peer.nodeID, state.withLock({ $0.peers.values.contains { $0.nodeID == id } }) {
                // Already connected (e.g. the peer dialed us): check again later.
                try? await Task.sleep(nanoseconds: 500_000_000)
                backoff = 250
                continue
            }
            let (stream, cont) = AsyncStream<Data>.makeStream(bufferingPolicy: .bufferingOldest(inboundQueueLimit))
            let queued = QueuedBytes(limit: inboundByteLimit)
            let bootstrap = ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.writeBufferWaterMark, value: .init(low: Self.outboundHighWaterMark / 2, high: Self.outboundHighWaterMark))
                .connectTimeout(.seconds(2))
                .channelInitializer { [weak self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrame)))
                        try channel.pipeline.syncOperations.addHandler(FrameForwarder(continuation: cont, queued: queued) { [weak self] in
                            self?.inboundOverflowed(channel)
                        })
                    }
                }
            do {
                let channel = try await bootstrap.connect(host: peer.address.host, port: peer.address.port).get()
                // The backoff starts over only after a handshake: a peer that accepts and then
                // refuses us (another chain, inbound full) must not be redialed 4 times a second.
                if await run(channel: channel, remote: "\(peer.address)", frames: stream, queued: queued, outbound: true,
                             expected: peer.nodeID) {
                    backoff = 250
                }
            } catch {
                cont.finish()
                logger.debug("dial failed", metadata: ["peer": "\(peer.address)", "error": "\(error)"])
            }
            try? await Task.sleep(nanoseconds: nanoseconds(millis: backoff))
            let (doubled, overflow) = backoff.multipliedReportingOverflow(by: 2)
            backoff = min(overflow ? .max : doubled, max(250, config.maxDialBackoffMillis))
        }
    }

    private func launch(channel: any Channel, frames: AsyncStream<Data>, queued: QueuedBytes, outbound: Bool, expected: Data?) {
        // Read now, while the channel is fresh: a peer that hangs up during the handshake
        // has no remote address left by the time it is rejected, and that is the peer an
        // operator wants to see in the log.
        let remote = channel.remoteAddress.map { "\($0)" } ?? "unknown"
        if !outbound {
            let limit = config.maxInboundPeers, perIP = config.maxInboundPeersPerIP
            let ip = channel.remoteAddress?.ipAddress ?? "unknown"
            let refusal = state.withLock { s -> String? in
                guard s.inbound < limit else { return "max_inbound_peers (\(limit)) open" }
                guard s.inboundPerIP[ip, default: 0] < perIP else { return "max_inbound_peers_per_ip (\(perIP)) open from \(ip)" }
                s.inbound += 1
                s.inboundPerIP[ip, default: 0] += 1
                return nil
            }
            if let refusal {
                // Before any handshake work: a flood of connections costs an accept and a close.
                refusedInbound.add(1, ordering: .relaxed)
                refusedCounter.increment()
                logger.debug("inbound connection refused", metadata: ["remote": "\(remote)", "reason": "\(refusal)"])
                channel.close(promise: nil)
                return
            }
            track { [weak self] in
                _ = await self?.run(channel: channel, remote: remote, frames: frames, queued: queued, outbound: false, expected: expected)
                self?.state.withLock { s in
                    s.inbound -= 1
                    let left = s.inboundPerIP[ip, default: 1] - 1
                    s.inboundPerIP[ip] = left > 0 ? left : nil
                }
            }
            return
        }
        track { [weak self] in
            _ = await self?.run(channel: channel, remote: remote, frames: frames, queued: queued, outbound: outbound, expected: expected)
        }
    }

    /// Inbound connections closed on accept because `max_inbound_peers` were open, or
    /// `max_inbound_peers_per_ip` from the same address.
    public var refusedInboundCount: Int { refusedInbound.load(ordering: .relaxed) }
    /// Handshakes refused because the peer's node id is banned for misbehaviour.
    public var refusedBannedCount: Int { refusedBanned.load(ordering: .relaxed) }

    /// Whether `nodeID` is banned now (see ``P2PConfig/misbehaviourBanMillis``).
    public func isBanned(_ nodeID: Data) -> Bool { banRemainingMillis(nodeID) != nil }

    /// Milliseconds left of `nodeID`'s ban, nil when it is not banned.
    func banRemainingMillis(_ nodeID: Data) -> UInt64? {
        let now = DispatchTime.now().uptimeNanoseconds
        return state.withLock { s -> UInt64? in
            guard let until = s.bans[nodeID] else { return nil }
            guard until > now else {
                s.bans[nodeID] = nil
                return nil
            }
            return (until - now) / 1_000_000
        }
    }

    /// Refuses `nodeID`'s handshakes for `misbehaviour_ban_ms` from now.
    private func ban(_ nodeID: Data) {
        let millis = config.misbehaviourBanMillis
        guard millis > 0 else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let (until, overflow) = now.addingReportingOverflow(nanoseconds(millis: millis))
        state.withLock { s in
            if s.bans[nodeID] == nil, s.bans.count >= Self.maxBans {
                s.bans = s.bans.filter { $0.value > now }
                if s.bans.count >= Self.maxBans, let soonest = s.bans.min(by: { $0.value < $1.value }) {
                    s.bans[soonest.key] = nil
                }
            }
            s.bans[nodeID] = overflow ? .max : until
        }
    }

    /// Dial loops and connections still running (tests: ended ones are not kept).
    var trackedTaskCount: Int { state.withLock { $0.tasks.count } }

    /// Handshake, then delivers every frame in order until the connection closes. Returns
    /// whether the handshake completed.
    @discardableResult
    private func run(channel: any Channel, remote: String, frames: AsyncStream<Data>, queued: QueuedBytes, outbound: Bool,
                     expected: Data?) async -> Bool {
        var it = frames.makeAsyncIterator()
        func next() async -> Data? {
            guard let frame = await it.next() else { return nil }
            queued.take(frame.count)
            return frame
        }
        // An accepted channel becomes active right after its initializer; do not write before.
        for _ in 0..<100 where !channel.isActive { try? await Task.sleep(nanoseconds: 10_000_000) }
        let challenge = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        write(.hello(chainID: chainID, nodeKey: nodeID, challenge: challenge), to: channel)
        func reject(_ reason: String) async -> Bool {
            logger.warning("peer rejected", metadata: ["remote": "\(remote)", "reason": "\(reason)"])
            try? await channel.close()
            return false
        }
        // A peer that does not complete the handshake in time is dropped.
        let timeout = Task {
            try? await Task.sleep(nanoseconds: 5_000_000_000)
            if !Task.isCancelled { try? await channel.close() }
        }
        defer { timeout.cancel() }
        guard let first = await next() else { return await reject("closed during handshake") }
        guard case .hello(let peerChain, let peerKey, let peerChallenge)? = try? WireMessage.decode(first) else {
            return await reject("expected hello")
        }
        guard peerChain == chainID else { return await reject("chain id \(peerChain) is not \(chainID)") }
        guard peerKey != nodeID else { return await reject("connected to self") }
        if let expected, expected != peerKey { return await reject("node id \(peerKey.hexEncoded) is not the configured \(expected.hexEncoded)") }
        // Before signing anything for it: a banned peer costs this node one decode.
        if let left = banRemainingMillis(peerKey) {
            refusedBanned.add(1, ordering: .relaxed)
            bannedCounter.increment()
            return await reject("node id \(peerKey.hexEncoded.prefix(16)) is banned for misbehaviour for another \(left) ms")
        }
        do {
            let sig = try nodeKey.signature(for: WireMessage.handshakeDigest(peerChallenge: peerChallenge, chainID: chainID, nodeKey: nodeID))
            write(.helloProof(signature: sig.rawRepresentation), to: channel)
        } catch {
            return await reject("signing the handshake failed: \(error)")
        }
        guard let second = await next() else { return await reject("closed during handshake") }
        guard case .helloProof(let proof)? = try? WireMessage.decode(second),
            let key = try? Schnorr.PublicKey(rawRepresentation: peerKey),
            let sig = try? Schnorr.Signature(rawRepresentation: proof),
            key.isValidSignature(sig, for: WireMessage.handshakeDigest(peerChallenge: challenge, chainID: chainID, nodeKey: peerKey))
        else { return await reject("bad handshake proof") }
        timeout.cancel()

        let id = state.withLock { s -> ConnectionID in
            let id = s.nextID
            s.nextID += 1
            s.peers[id] = Peer(channel: channel, nodeID: peerKey, outbound: outbound, queued: queued)
            return id
        }
        logger.info("peer connected", metadata: ["peer": "\(peerKey.hexEncoded.prefix(16))", "remote": "\(remote)", "outbound": "\(outbound)"])
        let delegate = self.delegate
        await delegate?.peerConnected(id, nodeID: peerKey)
        while let frame = await next() {
            // A connection closed for misbehaviour (or overflow) still has frames queued:
            // none of them is handed on.
            guard channel.isActive, state.withLock({ $0.peers[id] != nil }) else { break }
            let message: WireMessage
            do { message = try WireMessage.decode(frame) } catch {
                // Frames are length-delimited, so one bad frame does not desynchronize the
                // stream: it costs score, and a peer that keeps sending them is dropped.
                logger.warning("bad frame from peer", metadata: ["peer": "\(peerKey.hexEncoded.prefix(16))", "error": "\(error)"])
                if penalize(id, points: Self.undecodableFramePenalty, reason: "undecodable frame: \(error)") { break }
                continue
            }
            if case .hello = message { break }
            if case .helloProof = message { break }
            await delegate?.received(message, from: id)
        }
        _ = state.withLock { $0.peers.removeValue(forKey: id) }
        try? await channel.close()
        logger.info("peer disconnected", metadata: ["peer": "\(peerKey.hexEncoded.prefix(16))"])
        await delegate?.peerDisconnected(id)
        return true
    }

    private func write(_ message: WireMessage, to channel: any Channel) {
        let payload = message.encoded()
        var buf = channel.allocator.buffer(capacity: payload.count + 4)
        buf.writeInteger(UInt32(payload.count))
        buf.writeBytes(payload)
        // Past the high-water mark the peer is not reading what it is sent: close it
        // (it may reconnect) instead of buffering without bound.
        guard channel.isWritable || !channel.isActive else {
            let peer = state.withLock { s in s.peers.values.first { $0.channel === channel }?.nodeID }
            logger.warning("peer does not read what it is sent; disconnecting", metadata: [
                "peer": "\(peer?.hexEncoded.prefix(16) ?? "handshaking")", "unsent_limit_bytes": "\(Self.outboundHighWaterMark)"])
            channel.close(promise: nil)
            return
        }
        channel.writeAndFlush(buf, promise: nil)
    }

    /// Sends to every connected peer (one connection per node id).
    public func broadcast(_ message: WireMessage) {
        let channels = state.withLock { s in Self.onePerNode(s.peers).map(\.value.channel) }
        for c in channels { write(message, to: c) }
    }

    /// The connections ``broadcast(_:)`` sends to: one per node id, the oldest.
    public func peerConnections() -> [ConnectionID] {
        state.withLock { s in Self.onePerNode(s.peers).map(\.key) }
    }

    private static func onePerNode(_ peers: [ConnectionID: Peer]) -> [(key: ConnectionID, value: Peer)] {
        var seen = Set<Data>()
        return peers.sorted { $0.key < $1.key }.filter { seen.insert($0.value.nodeID).inserted }
    }

    /// Sends arbitrary frame payload bytes (tests of how peers treat malformed frames).
    func sendRawFrame(_ payload: Data, to connection: ConnectionID) {
        guard let c = state.withLock({ $0.peers[connection]?.channel }) else { return }
        var buf = c.allocator.buffer(capacity: payload.count + 4)
        buf.writeInteger(UInt32(payload.count))
        buf.writeBytes(payload)
        c.writeAndFlush(buf, promise: nil)
    }

    /// Sends to one connection (dropped if it is gone).
    public func send(_ message: WireMessage, to connection: ConnectionID) {
        guard let c = state.withLock({ $0.peers[connection]?.channel }) else { return }
        write(message, to: c)
    }

    /// A connection's queue overflowed (called on its event loop; the forwarder closes it).
    private func inboundOverflowed(_ channel: any Channel) {
        overflows.add(1, ordering: .relaxed)
        overflowCounter.increment()
        let peer = state.withLock { s in s.peers.values.first { $0.channel === channel }?.nodeID }
        logger.warning("peer's inbound queue is full; disconnecting", metadata: [
            "peer": "\(peer?.hexEncoded.prefix(16) ?? "handshaking")", "limit": "\(inboundQueueLimit)",
        ])
    }

    /// How many connections were closed because their inbound queue overflowed.
    public var inboundOverflowCount: Int { overflows.load(ordering: .relaxed) }
    /// How many connections were closed because their score fell to ``disconnectScore``.
    public var misbehaviourDisconnectCount: Int { misbehaviourDisconnects.load(ordering: .relaxed) }

    /// The node id of a connection (nil when it is gone).
    public func nodeID(of connection: ConnectionID) -> Data? { state.withLock { $0.peers[connection]?.nodeID } }

    /// The current score of a connection (nil when it is gone).
    public func score(of connection: ConnectionID) -> Int? { state.withLock { $0.peers[connection]?.score } }

    /// Lowers a connection's score for provable misbehaviour (an undecodable or badly signed
    /// message); at ``disconnectScore`` or below the peer is disconnected, logged and
    /// counted (`ishtar_p2p_misbehaving_peers_total`). Returns whether it was disconnected.
    @discardableResult
    public func penalize(_ connection: ConnectionID, points: Int, reason: String) -> Bool {
        let result = state.withLock { s -> (channel: any Channel, nodeID: Data, score: Int)? in
            guard var p = s.peers[connection] else { return nil }
            p.score -= max(0, points)
            s.peers[connection] = p
            return (p.channel, p.nodeID, p.score)
        }
        guard let result else { return false }
        logger.debug("peer penalized", metadata: [
            "peer": "\(result.nodeID.hexEncoded.prefix(16))", "reason": "\(reason)", "score": "\(result.score)",
        ])
        guard result.score <= Self.disconnectScore else { return false }
        // Removed here so a second penalty in flight does not count it twice.
        guard state.withLock({ $0.peers.removeValue(forKey: connection) }) != nil else { return false }
        misbehaviourDisconnects.add(1, ordering: .relaxed)
        misbehaviourCounter.increment()
        ban(result.nodeID)
        logger.warning("disconnecting misbehaving peer", metadata: [
            "peer": "\(result.nodeID.hexEncoded.prefix(16))", "reason": "\(reason)", "score": "\(result.score)",
            "banned_ms": "\(config.misbehaviourBanMillis)",
        ])
        result.channel.close(promise: nil)
        return true
    }

    /// Closes every connection that sent nothing for `after` — honest peers send their
    /// status every gossip tick, so a silent one is dead or only holding a slot (inbound
    /// slots are limited). Returns how many were closed.
    @discardableResult
    public func disconnectIdle(after: Duration) -> Int {
        let limit = UInt64(max(0, after.components.seconds)) * 1_000_000_000
        let idle = state.withLock { s -> [(ConnectionID, Peer)] in
            let found = s.peers.filter { $0.value.queued.silentNanos > limit }.map { ($0.key, $0.value) }
            for (id, _) in found { s.peers.removeValue(forKey: id) }
            return found
        }
        for (_, peer) in idle {
            logger.warning("disconnecting silent peer", metadata: [
                "peer": "\(peer.nodeID.hexEncoded.prefix(16))", "silent_for": "\(after)"])
            peer.channel.close(promise: nil)
        }
        return idle.count
    }

    /// Closes a misbehaving peer's connection.
    public func disconnect(_ connection: ConnectionID, reason: String) {
        guard let c = state.withLock({ $0.peers[connection]?.channel }) else { return }
        logger.warning("disconnecting peer", metadata: ["reason": "\(reason)"])
        c.close(promise: nil)
    }
}

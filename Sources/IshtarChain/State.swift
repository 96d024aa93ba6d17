import Foundation
import IshtarStore

/// Pending writes layered over the committed state (or over another overlay).
///
/// The application keeps one overlay per block; each transaction and each block hook runs
/// in a child overlay that is merged into the block's only if it succeeds, so a rejected
/// transaction leaves no trace. Reads see the newest write at any level, then the store.
final class Overlay {
    /// `nil` value = deleted.
    private(set) var writes: [Data: Data?] = [:]
    private let parent: Overlay?
    private let base: any KeyValueReader
    private let columnFamily: String

    /// An overlay directly over `columnFamily` of `base`.
    init(base: any KeyValueReader, columnFamily: String) {
        self.parent = nil
        self.base = base
        self.columnFamily = columnFamily
    }

    /// A child overlay over `parent`.
    init(parent: Overlay) {
        self.parent = parent
        self.base = parent.base
        self.columnFamily = parent.columnFamily
    }

    /// Values read from the store by this root overlay (`nil` = absent). The store does not
    /// change while an overlay over it is in use (it is written only at commit, from the
    /// block's overlay, after which new overlays are made), so repeated reads of the same key
    /// within a block or check state — a provider, a commitment, an active set per vote —
    /// are answered from memory.
    private var reads: [Data: Data?] = [:]

    func get(_ key: Data) throws(ChainError) -> Data? {
        if let w = writes[key] { return w }
        if let parent { return try parent.get(key) }
        if let cached = reads[key] { return cached }
        let value = try storeCall { try base.get(key, in: columnFamily) }
        reads[key] = .some(value)
        return value
    }

    func set(_ key: Data, _ value: Data) { writes[key] = .some(value) }

    func delete(_ key: Data) { writes[key] = .some(nil) }

    /// Every live pair in `range`, ascending by key, reflecting all layers. Cost is the
    /// store range plus a pass over each layer's writes.
    func scan(_ range: KeyRange) throws(ChainError) -> [KeyValue] {
        var merged: [Data: Data] = [:]
        let stored = try storeCall { try base.scan(columnFamily, range, direction: .forward).collect() }
        for kv in stored { merged[kv.key] = kv.value }
        var layers: [Overlay] = []
        var node: Overlay? = self
        while let n = node {
            layers.append(n)
            node = n.parent
        }
        for layer in layers.reversed() {
            for (k, v) in layer.writes where range.contains(k) {
                if let v { merged[k] = v } else { merged.removeValue(forKey: k) }
            }
        }
        return merged.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { (key: $0.key, value: $0.value) }
    }

    /// Moves this overlay's writes into its parent.
    func mergeIntoParent() {
        guard let parent else { return }
        for (k, v) in writes { parent.writes[k] = v }
        writes.removeAll()
    }

    /// The writes, ascending by key (deterministic order for hashing and batching).
    func sortedWrites() -> [(key: Data, value: Data?)] {
        writes.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { (key: $0.key, value: $0.value) }
    }
}

/// One module's slice of the state: keys are relative to the module's prefix
/// (`"<module>/"`), so a module cannot address another module's keys by accident.
/// Reads see every earlier write of the same block (and transaction); writes become
/// durable only when the block commits, and vanish if the transaction is rejected.
public struct ModuleStore {
    /// The module whose slice this is.
    public let module: String
    let prefix: Data
    let overlay: Overlay

    init(module: String, overlay: Overlay) {
        self.module = module
        self.prefix = Data((module + "/").utf8)
        self.overlay = overlay
    }

    /// The value at `key`, or `nil`.
    public func get(_ key: Data) throws(ExecutionError) -> Data? {
        do {
            return try overlay.get(prefix + key)
        } catch {
            throw .fatal(error)
        }
    }

    /// Sets `key` to `value`.
    public func set(_ key: Data, _ value: Data) { overlay.set(prefix + key, value) }

    /// Removes `key` (no effect if absent).
    public func delete(_ key: Data) { overlay.delete(prefix + key) }

    /// Whether `key` has a value.
    public func contains(_ key: Data) throws(ExecutionError) -> Bool { try get(key) != nil }

    /// Every pair whose key starts with `keyPrefix`, ascending (keys relative to the
    /// module). Materialized: fine for the sizes modules iterate today.
    public func scan(prefix keyPrefix: Data = Data()) throws(ExecutionError) -> [KeyValue] {
        let full = prefix + keyPrefix
        do {
            return try overlay.scan(.prefix(full)).map { (key: Data($0.key.dropFirst(prefix.count)), value: $0.value) }
        } catch {
            throw .fatal(error)
        }
    }

    /// Decodes the value at `key`; an undecodable stored value is `.fatal(.corruptState)`.
    public func read<T: BinaryCodable>(_ type: T.Type, at key: Data) throws(ExecutionError) -> T? {
        guard let raw = try get(key) else { return nil }
        do {
            return try T(decoding: raw)
        } catch {
            throw .fatal(.corruptState("\(module)/\(key.hexString): \(error)"))
        }
    }

    /// Stores the canonical encoding of `value` at `key`.
    public func write(_ value: some BinaryCodable, at key: Data) { set(key, value.encoded) }
}

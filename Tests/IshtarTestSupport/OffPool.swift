import Foundation

/// Runs blocking work (a synchronous HTTP call, a semaphore wait, an scrypt unlock) on a
/// thread of its own and awaits its result. The cooperative pool has one thread per core —
/// two on the CI machines — and the tests share it with in-process nodes and API servers, so
/// a test that blocks a pool thread for seconds can starve a server another test is calling.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Polls `condition` every 100 ms until it holds or `seconds` pass, sleeping between polls
/// without holding a pool thread (see ``offPool(_:)``). `condition` should be quick.
public func waitUntil(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 100_000_000)
    }
    return condition()
}

/// Sleeps `seconds` without holding a pool thread.
public func pause(_ seconds: Double) async {
    try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1_000_000_000))
}

import CCurl
import Dispatch
import Foundation
import Synchronization

/// One-time, process-wide libcurl initialisation. `curl_global_init` is not
/// thread-safe; a `static let` initialiser runs exactly once (swift_once).
enum CurlGlobal {
    static let initResult: CURLcode = curl_global_init(Int(CURL_GLOBAL_ALL))

    static func ensureInitialized() throws(BitcoinRPCError) {
        let code = initResult
        guard code == CURLE_OK else {
            throw .configuration("curl_global_init failed: \(String(cString: curl_easy_strerror(code)))")
        }
    }
}

// CURLAUTH_BASIC is a `((unsigned long)1)<<0` macro, which Swift does not import.
private let curlAuthBasic = 1  // CURLAUTH_BASIC

/// Response body collector handed to curl's write callback as an `Unmanaged`
/// context pointer. Only touched by the thread running `curl_easy_perform`.
private final class ResponseBuffer {
    var data: [UInt8] = []
    let limit: Int
    var overflowed = false
    init(limit: Int) { self.limit = limit }
}

/// curl `CURLOPT_WRITEFUNCTION`: appends to the `ResponseBuffer` passed as
/// `CURLOPT_WRITEDATA`; returning less than `size * nmemb` aborts the transfer
/// (CURLE_WRITE_ERROR), which is how the size limit is enforced.
private func curlWriteCallback(
    _ ptr: UnsafeMutablePointer<CChar>?, _ size: Int, _ nmemb: Int, _ userdata: UnsafeMutableRawPointer?
) -> Int {
    guard let userdata else { return 0 }
    let buffer = Unmanaged<ResponseBuffer>.fromOpaque(userdata).takeUnretainedValue()
    let (count, overflow) = size.multipliedReportingOverflow(by: nmemb)
    guard !overflow else { return 0 }
    if count == 0 { return 0 }
    guard let ptr, buffer.data.count + count <= buffer.limit else {
        buffer.overflowed = true
        return 0
    }
    ptr.withMemoryRebound(to: UInt8.self, capacity: count) { p in
        buffer.data.append(contentsOf: UnsafeBufferPointer(start: p, count: count))
    }
    return count
}

/// The raw outcome of one HTTP exchange.
struct HTTPResponse: Sendable {
    var status: Int
    var body: [UInt8]
}

/// Credentials for one request (already resolved from a cookie file if needed).
struct BasicAuth: Sendable, Equatable {
    var user: String
    var password: String
}

/// A libcurl easy handle with the options that never change set once, so that
/// the TCP connection is kept alive and reused across requests.
///
/// `@unchecked Sendable`: a curl easy handle must never be used by two threads
/// at once. `CurlTransport` guarantees that: a handle lives in the transport's
/// idle pool (guarded by a `Mutex`) or is checked out by exactly one request,
/// which uses it on a single Dispatch worker thread and then returns it to the
/// pool. Nothing else ever sees the handle.
final class CurlEasyHandle: @unchecked Sendable {
    private let handle: UnsafeMutableRawPointer
    private let headers: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>

    init(url: String, connectTimeoutMs: Int, totalTimeoutMs: Int) throws(BitcoinRPCError) {
        try CurlGlobal.ensureInitialized()
        guard let h = curl_easy_init() else { throw .configuration("curl_easy_init failed") }
        let errors = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errors.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var list = curl_slist_append(nil, "Content-Type: application/json")
        // Large POST bodies: don't wait for "100 Continue" (bitcoind doesn't send it).
        list = curl_slist_append(list, "Expect:")

        var ok = true
        ok = ok && ishtar_curl_setopt_string(h, CURLOPT_URL, url) == CURLE_OK
        ok = ok && ishtar_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1) == CURLE_OK
        ok = ok && ishtar_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMs) == CURLE_OK
        ok = ok && ishtar_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, totalTimeoutMs) == CURLE_OK
        ok = ok && ishtar_curl_setopt_long(h, CURLOPT_POST, 1) == CURLE_OK
        ok = ok && ishtar_curl_setopt_long(h, CURLOPT_HTTPAUTH, curlAuthBasic) == CURLE_OK
        ok = ok && ishtar_curl_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1) == CURLE_OK
        ok = ok && ishtar_curl_setopt_long(h, CURLOPT_TCP_NODELAY, 1) == CURLE_OK
        ok = ok && ishtar_curl_setopt_slist(h, CURLOPT_HTTPHEADER, list) == CURLE_OK
        ok = ok && ishtar_curl_setopt_pointer(h, CURLOPT_ERRORBUFFER, errors) == CURLE_OK
        ok = ok && ishtar_curl_setopt_write_function(h, curlWriteCallback) == CURLE_OK
        // Never follow redirects (they would resend the credentials elsewhere).
        ok = ok && ishtar_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0) == CURLE_OK
        guard ok else {
            // Stored properties are not set yet, so deinit won't run: clean up here.
            curl_easy_cleanup(h)
            curl_slist_free_all(list)
            errors.deallocate()
            throw .configuration("curl_easy_setopt failed (invalid URL or unsupported option?)")
        }
        handle = h
        headers = list
        errorBuffer = errors
    }

    deinit {
        curl_easy_cleanup(handle)
        curl_slist_free_all(headers)
        errorBuffer.deallocate()
    }

    /// Performs one POST. Blocking; call on a thread that may block.
    func post(body: [UInt8], auth: BasicAuth?, maxResponseBytes: Int) -> Result<HTTPResponse, BitcoinRPCError> {
        let h = handle
        errorBuffer[0] = 0
        let buffer = ResponseBuffer(limit: maxResponseBytes)
        let code: CURLcode = withExtendedLifetime(buffer) {
            _ = ishtar_curl_setopt_pointer(h, CURLOPT_WRITEDATA, Unmanaged.passUnretained(buffer).toOpaque())
            // Set per request: a cookie may have been re-read since the last one.
            // CURLOPT_USERNAME/PASSWORD (not USERPWD) so a ':' in the user is fine.
            // curl copies the strings.
            if let auth {
                _ = ishtar_curl_setopt_string(h, CURLOPT_USERNAME, auth.user)
                _ = ishtar_curl_setopt_string(h, CURLOPT_PASSWORD, auth.password)
            } else {
                // NULL resets: no Authorization header at all.
                _ = ishtar_curl_setopt_pointer(h, CURLOPT_USERNAME, nil)
                _ = ishtar_curl_setopt_pointer(h, CURLOPT_PASSWORD, nil)
            }
            return body.withUnsafeBufferPointer { buf in
                _ = ishtar_curl_setopt_large(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(buf.count))
                // POSTFIELDS is not copied: `body` outlives curl_easy_perform below.
                // (An empty body has no base address; any valid pointer will do for size 0.)
                let fields = UnsafeMutableRawPointer(mutating: buf.baseAddress) ?? UnsafeMutableRawPointer(errorBuffer)
                _ = ishtar_curl_setopt_pointer(h, CURLOPT_POSTFIELDS, fields)
                let rc = curl_easy_perform(h)
                // Don't keep a dangling pointer in the handle.
                _ = ishtar_curl_setopt_pointer(h, CURLOPT_POSTFIELDS, nil)
                _ = ishtar_curl_setopt_pointer(h, CURLOPT_WRITEDATA, nil)
                return rc
            }
        }
        if code != CURLE_OK {
            let detail = String(cString: errorBuffer)
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            return .failure(Self.mapError(code: code, message: message, overflowed: buffer.overflowed, limit: maxResponseBytes))
        }
        var status = 0
        _ = ishtar_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return .success(HTTPResponse(status: status, body: buffer.data))
    }

    static func mapError(code: CURLcode, message: String, overflowed: Bool, limit: Int) -> BitcoinRPCError {
        switch code {
        case CURLE_WRITE_ERROR where overflowed:
            return .responseTooLarge(limit: limit)
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout(message: message)
        case CURLE_WEIRD_SERVER_REPLY, CURLE_PARTIAL_FILE, CURLE_UNSUPPORTED_PROTOCOL, CURLE_BAD_CONTENT_ENCODING:
            // The server answered, but not with (complete) HTTP: a garbage or truncated
            // reply. Not a connectivity problem, so not retried.
            return .malformedResponse(field: "http", reason: message)
        case CURLE_URL_MALFORMAT:
            return .configuration("invalid URL: \(message)")
        default:
            return .transport(code: Int(code.rawValue), message: message)
        }
    }
}

/// Runs HTTP POSTs on a small pool of kept-alive curl handles. Blocking
/// `curl_easy_perform` calls run on a private concurrent Dispatch queue, never on
/// the Swift concurrency cooperative pool. (A queue created with a label targets
/// the *overcommitting* root queue, so a blocked transfer gets its own thread; the
/// width-limited `DispatchQueue.global()` could starve with only 2 cores.)
final class CurlTransport: Sendable {
    private let queue = DispatchQueue(label: "ishtar.bitcoin-rpc.curl", attributes: .concurrent)
    private let url: String
    private let connectTimeoutMs: Int
    private let totalTimeoutMs: Int
    private let maxIdle: Int
    private let idle: Mutex<[CurlEasyHandle]>

    init(url: String, connectTimeout: Duration, requestTimeout: Duration, maxIdleConnections: Int) {
        self.url = url
        self.connectTimeoutMs = max(1, Self.milliseconds(connectTimeout))
        self.totalTimeoutMs = max(1, Self.milliseconds(requestTimeout))
        self.maxIdle = max(1, maxIdleConnections)
        self.idle = Mutex([])
    }

    private static func milliseconds(_ d: Duration) -> Int {
        let (s, atto) = d.components
        let ms = s.multipliedReportingOverflow(by: 1000)
        if ms.overflow { return Int.max / 2 }
        return Int(clamping: ms.partialValue + atto / 1_000_000_000_000_000)
    }

    private func checkout() throws(BitcoinRPCError) -> CurlEasyHandle {
        if let h = idle.withLock({ $0.popLast() }) { return h }
        return try CurlEasyHandle(url: url, connectTimeoutMs: connectTimeoutMs, totalTimeoutMs: totalTimeoutMs)
    }

    private func checkin(_ handle: CurlEasyHandle, reusable: Bool) {
        guard reusable else { return }  // dropped → deinit → curl_easy_cleanup
        let extra: CurlEasyHandle? = idle.withLock { pool in
            if pool.count < maxIdle {
                pool.append(handle)
                return nil
            }
            return handle
        }
        _ = extra  // released outside the lock
    }

    /// POSTs `body` and returns the HTTP response (any status) or a transport error.
    func post(body: [UInt8], auth: BasicAuth?, maxResponseBytes: Int) async -> Result<HTTPResponse, BitcoinRPCError> {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPResponse, BitcoinRPCError>, Never>) in
            queue.async {
                let handle: CurlEasyHandle
                do throws(BitcoinRPCError) {
                    handle = try self.checkout()
                } catch {
                    continuation.resume(returning: .failure(error))
                    return
                }
                let result = handle.post(body: body, auth: auth, maxResponseBytes: maxResponseBytes)
                // After a failed transfer the connection state is unknown: start afresh.
                let reusable: Bool
                if case .success = result { reusable = true } else { reusable = false }
                self.checkin(handle, reusable: reusable)
                continuation.resume(returning: result)
            }
        }
    }
}

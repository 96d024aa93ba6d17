import Foundation
import Hummingbird
import Logging
import NIOCore

/// An API failure: an HTTP status plus the JSON body `{"error": {"code", "message"}}`.
/// Handlers throw it; ``JSONErrorMiddleware`` also turns every other error (Hummingbird's
/// own 404/405/413, a backend failure) into one, so no response is ever HTML or empty.
public struct APIError: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// The JSON body.
    public var body: APIErrorBody
    /// Extra headers (e.g. `WWW-Authenticate` on a 401).
    public var headers: HTTPFields

    /// An error with a machine code and a human message.
    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String,
                codespace: String? = nil, queryCode: UInt32? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.body = APIErrorBody(error: .init(code: code, message: message, codespace: codespace, queryCode: queryCode))
        self.headers = headers
    }

    /// `status code: message`.
    public var description: String { "\(status.code) \(body.error.code): \(body.error.message)" }

    /// The JSON response.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        jsonResponse()
    }

    func jsonResponse() -> Response {
        // Encoding two strings cannot fail; the fallback keeps the contract if it ever did.
        let data = (try? APIJSON.encode(body)) ?? Data(#"{"error":{"code":"internal_error","message":"encoding failed"}}"#.utf8)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Converts every error escaping a handler into a JSON ``APIError`` response. It wraps
/// the router's not-found responder too, so an unknown route answers JSON 404.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.jsonResponse()
        } catch let error as HTTPError {
            return Self.map(error, request: request).jsonResponse()
        } catch is NIOTooManyBytesError {
            return APIError(.contentTooLarge, "body_too_large", "request body exceeds the size limit").jsonResponse()
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            // The details (storage errors, paths) are for the operator's log, not the client.
            return APIError(.internalServerError, "internal_error", "internal error; the node's log has the details").jsonResponse()
        }
    }

    static func map(_ error: HTTPError, request: Request) -> APIError {
        let code: String
        let message: String
        switch error.status {
        case .notFound:
            code = "route_not_found"
            message = "no route for \(request.method.rawValue) \(request.uri.path)"
        case .methodNotAllowed:
            code = "method_not_allowed"
            message = "\(request.method.rawValue) is not allowed on \(request.uri.path)"
        case .contentTooLarge:
            code = "body_too_large"
            message = error.body ?? "request body exceeds the size limit"
        case .badRequest:
            code = "bad_request"
            message = error.body ?? "bad request"
        default:
            code = "http_\(error.status.code)"
            message = error.body ?? error.status.reasonPhrase
        }
        return APIError(error.status, code, message, headers: error.headers)
    }
}

/// Logs one line per request: method, path, status and duration (debug for normal
/// answers, warning for server errors). Outermost, so it sees the final status.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let level: Logger.Level

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            // JSONErrorMiddleware sits inside and never throws; this is for safety only.
            log(request, context: context, status: 500, start: start)
            throw error
        }
        log(request, context: context, status: Int(response.status.code), start: start)
        return response
    }

    private func log(_ request: Request, context: Context, status: Int, start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.log(
            level: status >= 500 ? .warning : level, "http request",
            metadata: [
                "method": .string(request.method.rawValue), "path": .string(request.uri.path),
                "status": .stringConvertible(status), "duration_ms": .string(String(format: "%.3f", ms)),
            ])
    }
}

import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Per-connection limits that keep a client from holding the server's descriptors without sending:
/// - the connection counts against the `ConnectionBudget` (and may be evicted while it waits for a head);
/// - the first request head must be complete within `headerTimeout` of connecting;
/// - while a request body is being read, the client must send at least `minBodyRate` bytes a second, measured
///   over windows of `rateWindow` and only over the time the server was actually waiting for its bytes (a
///   server that is slow to read does not count against the client);
/// - a response sent before its request's body was read ends the connection (with `Connection: close` and a
///   lingering close) unless the rest is small and comes at once, rather than reading a large body only to
///   drop it;
/// - a request the HTTP parser refuses gets the JSON error body every other error has.
///
/// Sits in each connection's pipeline after HTTP decoding, before Hummingbird's handlers.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    struct Settings: Sendable {
        /// Longest time from connecting to a complete first request head.
        var headerTimeout: TimeAmount
        /// Slowest request body accepted, in bytes per second; 0 turns the check off.
        var minBodyRate: Int
        /// The window the body rate is measured over.
        var rateWindow: TimeAmount = .seconds(20)
    }

    /// How long a connection closed after an early answer may still send before it is cut.
    static let lingering: TimeAmount = .seconds(2)
    /// The most of an unread body read and dropped to keep a connection after an early answer.
    static let maxDrainBytes = 256 << 10

    /// A lingering close: a FIN after the answer, so the client reads the answer even while it is still sending
    /// (closing at once would reset the connection, which can discard the answer), then the connection after a
    /// short grace whatever the client does.
    static func closeLingering(_ channel: any Channel) {
        channel.close(mode: .output, promise: nil)
        channel.eventLoop.scheduleTask(in: lingering) { channel.close(promise: nil) }
    }

    private let budget: ConnectionBudget
    private let settings: Settings
    private let logger: Logger

    private var id: Int?
    /// Requests whose head arrived, requests read to their end, and responses sent. With pipelining a later
    /// request may be arriving while an earlier one is answered, so each response is matched to its request.
    private var headsReceived = 0
    private var requestsEnded = 0
    private var responsesSent = 0
    /// The response being sent asked to close the connection.
    private var closeAfterResponse = false
    /// The latest request's stated length and the body bytes of it seen so far.
    private var statedLength: Int?
    private var bodyBytes = 0
    /// After an early answer: the rest of a small body is read and dropped, so the connection can serve the
    /// next request; past `maxDrainBytes` or `lingering` it is closed.
    private var drainTimer: Scheduled<Void>?
    private var drainedBytes = 0
    private var isIdle: Bool { headsReceived == responsesSent }
    private var isReadingBody: Bool { headsReceived > requestsEnded }
    private var headerTimer: Scheduled<Void>?
    private var rateTimer: RepeatedTask?
    /// Body bytes in the current window, and how long the server waited on the client in it.
    private var windowBytes = 0
    private var windowWait: TimeAmount = .zero
    private var readOutstandingSince: NIODeadline?

    init(budget: ConnectionBudget, settings: Settings, logger: Logger) {
        self.budget = budget
        self.settings = settings
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        switch budget.open(channel) {
        case .refused:
            logger.debug("connection refused: every connection is busy", metadata: ["max_connections": "\(budget.maxConnections)"])
            context.close(promise: nil)
        case .admitted(let id, let evicted):
            self.id = id
            if let evicted {
                logger.debug("connection budget full: closed the oldest connection waiting for a request")
                evicted.close(promise: nil)
            }
            channel.closeFuture.whenComplete { [budget] _ in budget.closed(id) }
            startHeaderTimer(context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopTimers()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimers()
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            headerTimer?.cancel()
            headerTimer = nil
            if let id, isIdle { budget.busy(id) }
            headsReceived += 1
            if case .head(let request) = unwrapInboundIn(data) {
                statedLength = request.headerFields[.contentLength].flatMap { Int($0) }
            }
            bodyBytes = 0
            startRateTimer(context)
        case .body(let buffer):
            windowBytes += buffer.readableBytes
            bodyBytes += buffer.readableBytes
            if drainTimer != nil {
                drainedBytes += buffer.readableBytes
                if drainedBytes > Self.maxDrainBytes { stopDraining(); Self.closeLingering(context.channel) }
            }
        case .end:
            requestsEnded += 1
            stopRateTimer()
            stopDraining()
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let since = readOutstandingSince {
            windowWait = windowWait + (NIODeadline.now() - since)
            readOutstandingSince = nil
        }
        context.fireChannelReadComplete()
    }

    /// A read asked of the socket: from now until data comes, the server is waiting on the client.
    func read(context: ChannelHandlerContext) {
        if readOutstandingSince == nil { readOutstandingSince = .now() }
        context.read()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Between requests, a parse error is a request that never was: answer it in the API's own format.
        if let parserError = error as? HTTPParserError, isIdle, !isReadingBody, context.channel.isActive {
            let tooLarge = parserError == .headerOverflow
            let status: HTTPResponse.Status = tooLarge ? .init(code: 431, reasonPhrase: "Request Header Fields Too Large") : .badRequest
            let body = APIError.body(
                code: tooLarge ? "request_header_too_large" : "bad_request",
                message: tooLarge ? "the request's headers are too large" : "the request is not valid HTTP/1.1")
            var fields = HTTPFields()
            fields[.contentType] = "application/json; charset=utf-8"
            fields[.contentLength] = String(body.count)
            fields[.connection] = "close"
            context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
            context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
            return
        }
        context.fireErrorCaught(error)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var response):
            if response.headerFields[.connection]?.lowercased() == "close" { closeAfterResponse = true }
            // Answered before its body was read (a refusal, most likely). A small rest is read and dropped so
            // the connection stays usable; a large or unknown one is not read at all: the client is told the
            // connection closes, and it does.
            let bodyUnread = requestsEnded <= responsesSent
            let rest = statedLength.map { $0 - bodyBytes } ?? Int.max
            if bodyUnread, rest > Self.maxDrainBytes, !closeAfterResponse {
                closeAfterResponse = true
                response.headerFields[.connection] = "close"
                context.write(wrapOutboundOut(.head(response)), promise: promise)
            } else {
                context.write(data, promise: promise)
            }
        case .body:
            context.write(data, promise: promise)
        case .end:
            responsesSent += 1
            let answeredEarly = requestsEnded < responsesSent
            let closing = closeAfterResponse
            closeAfterResponse = false
            if answeredEarly { stopRateTimer() }
            if closing {
                let channel = context.channel
                context.writeAndFlush(data).whenComplete { result in
                    promise?.completeWith(result)
                    Self.closeLingering(channel)
                }
            } else {
                context.write(data, promise: promise)
                if answeredEarly {
                    // The small rest of the body must come soon, or the connection goes.
                    drainedBytes = 0
                    let channel = context.channel
                    drainTimer = context.eventLoop.scheduleTask(in: Self.lingering) { Self.closeLingering(channel) }
                }
                // Waiting for the next request: the idle timeout applies, and the budget may evict it.
                if isIdle, let id { budget.idle(id, context.channel) }
            }
        }
    }

    // MARK: Timers

    private func startHeaderTimer(_ context: ChannelHandlerContext) {
        let channel = context.channel
        let logger = self.logger
        let timeout = settings.headerTimeout
        headerTimer = context.eventLoop.scheduleTask(in: timeout) {
            logger.debug("connection closed: no complete request head in time", metadata: ["seconds": "\(timeout.nanoseconds / 1_000_000_000)"])
            channel.close(promise: nil)
        }
    }

    private func startRateTimer(_ context: ChannelHandlerContext) {
        guard settings.minBodyRate > 0 else { return }
        stopRateTimer()
        windowBytes = 0
        windowWait = .zero
        if readOutstandingSince != nil { readOutstandingSince = .now() }
        let window = settings.rateWindow
        let this = NIOLoopBound(self, eventLoop: context.eventLoop)
        let channel = context.channel
        rateTimer = context.eventLoop.scheduleRepeatedTask(initialDelay: window, delay: window) { _ in
            this.value.checkRate(channel: channel)
        }
    }

    /// Closes the connection when, over the last window, the server waited on the client for at least half of
    /// it and got fewer bytes than the minimum rate over that waiting time.
    private func checkRate(channel: any Channel) {
        guard isReadingBody else { return }
        var waited = windowWait
        let now = NIODeadline.now()
        if let since = readOutstandingSince {
            waited = waited + (now - since)
            readOutstandingSince = now
        }
        let waitedSeconds = Double(waited.nanoseconds) / 1e9
        let windowSeconds = Double(settings.rateWindow.nanoseconds) / 1e9
        if waitedSeconds >= windowSeconds / 2, Double(windowBytes) < Double(settings.minBodyRate) * waitedSeconds {
            logger.warning("connection closed: request body slower than the minimum rate", metadata: [
                "bytes": "\(windowBytes)", "seconds": "\(Int(waitedSeconds))", "min_bytes_per_second": "\(settings.minBodyRate)",
            ])
            stopRateTimer()
            channel.close(promise: nil)
            return
        }
        windowBytes = 0
        windowWait = .zero
    }

    private func stopRateTimer() {
        rateTimer?.cancel()
        rateTimer = nil
    }

    private func stopDraining() {
        drainTimer?.cancel()
        drainTimer = nil
    }

    private func stopTimers() {
        headerTimer?.cancel()
        headerTimer = nil
        stopRateTimer()
        stopDraining()
    }
}

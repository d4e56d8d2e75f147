import AsyncHTTPClient
import Foundation

/// The HTTP client for a URL that `CallbackPolicy` checked (webhook deliveries, `audio_url` downloads): full
/// certificate verification, no redirects followed by the library (the caller decides, against the policy), no
/// proxy, no decompression, a failed connect reported at once, and, for a host given by name, every connection
/// pinned to the address checked (no second lookup for DNS rebinding to answer differently). One client per
/// request: the address override is the client's, and such requests are few. Shut it down after use.
enum PinnedHTTPClient {
    /// `address` nil: the URL's host is a literal address, connected to as it is.
    static func make(for target: CallbackURL, pinnedTo address: IPAddress?, connectMilliseconds: Int64, readMilliseconds: Int64) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            certificateVerification: .fullVerification,
            redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(connectMilliseconds), read: .milliseconds(readMilliseconds)),
            connectionPool: .seconds(1),
            proxy: nil,
            ignoreUncleanSSLShutdown: false,
            decompression: .disabled,
            backgroundActivityLogger: nil)
        // A failed connect fails the request at once (the next address may be tried) instead of being retried on
        // the same address until the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        // Keyed by the host both as checked and as the client library reads it from the URL, so no spelling
        // escapes the override.
        if let address {
            configuration.dnsOverride[target.host] = address.description
            if let spelled = target.url.host { configuration.dnsOverride[spelled] = address.description }
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}

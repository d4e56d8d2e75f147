import AsyncHTTPClient
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Errors that mean a connection to one address was never made, so the request never left: the delivery may
/// go on to the host's next address without any risk of the receiver getting the payload twice. Anything after
/// the connection (a reset mid-request, a read timeout, a TLS failure) is not one of them.
enum ConnectionFailure {
    /// `errno`s of a TCP connect that did not happen.
    private static let connectErrnos: Set<CInt> = [
        ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, ENETDOWN, EHOSTDOWN, EADDRNOTAVAIL,
    ]

    /// A short description when `error` is a failed connection, nil for any other error.
    static func describe(_ error: any Error) -> String? {
        switch error {
        case let error as HTTPClientError where error == .connectTimeout:
            return "connection timed out"
        case ChannelError.connectTimeout:
            return "connection timed out"
        case let error as IOError where connectErrnos.contains(error.errnoCode):
            return String(cString: strerror(error.errnoCode)).lowercased()
        default:
            return nil
        }
    }
}

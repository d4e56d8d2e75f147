import Foundation
public import PostgresNIO

/// A `postgres://user:password@host:port/database?sslmode=…` URL (also `postgresql://`), read into the
/// configurations of postgres-nio's pool and of a single connection (the LISTEN connection).
///
/// `sslmode` follows libpq's names: `disable`; `prefer` (the default) and `require` encrypt without checking
/// the server's certificate, as libpq does; `verify-ca` checks that a trusted authority signed it and
/// `verify-full` also that it names the host. `sslrootcert`, also as in libpq, is a PEM file of the authorities
/// to trust (a private CA); given one, `prefer` and `require` check the chain too, like `verify-ca`. Without it,
/// or with `sslrootcert=system`, the system's trusted roots are used (and `system` demands `verify-full`).
public struct PostgresURL: Sendable, CustomStringConvertible {
    public enum SSLMode: String, Sendable { case disable, prefer, require, verifyCA = "verify-ca", verifyFull = "verify-full" }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String?
    public var sslMode: SSLMode
    /// The `sslrootcert` parameter as written: a PEM file, or `system`.
    public let rootCertificatePath: String?
    /// The certificates read from `sslrootcert` (read once, at start); nil for the system's roots.
    private var rootCertificates: [NIOSSLCertificate]?

    /// True for the schemes this type reads; anything else is not a PostgreSQL URL.
    public static func isPostgres(_ text: String) -> Bool {
        let lowered = text.lowercased()
        return lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://")
    }

    public init(_ text: String) throws {
        guard Self.isPostgres(text), let components = URLComponents(string: text) else {
            throw ConfigurationError(description: "'\(Self.redacted(text))' is not a postgres://user:password@host:port/database URL")
        }
        guard let host = components.host, !host.isEmpty else {
            throw ConfigurationError(description: "the database URL '\(Self.redacted(text))' names no host")
        }
        self.host = host
        port = components.port ?? 5432
        username = components.user ?? "postgres"
        password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? nil : path
        let parameters = components.queryItems ?? []
        let rootCertificate = parameters.first { $0.name == "sslrootcert" }?.value.flatMap { $0.isEmpty ? nil : $0 }
        let mode = parameters.first { $0.name == "sslmode" }?.value ?? (rootCertificate == "system" ? "verify-full" : "prefer")
        guard let parsed = SSLMode(rawValue: mode) else {
            throw ConfigurationError(description: "sslmode=\(mode) in the database URL is not one of disable, prefer, require, verify-ca, verify-full")
        }
        sslMode = parsed
        rootCertificatePath = rootCertificate
        if rootCertificate == "system" {
            guard sslMode == .verifyFull else {
                throw ConfigurationError(description: "sslmode=\(mode) in the database URL is too weak for sslrootcert=system (use verify-full)")
            }
        } else if let rootCertificate, sslMode != .disable {
            rootCertificates = try Self.readCertificates(rootCertificate)
        }
    }

    /// The certificate authorities of `sslrootcert`, or a configuration error saying why there are none.
    private static func readCertificates(_ path: String) throws -> [NIOSSLCertificate] {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ConfigurationError(description: "sslrootcert=\(path) in the database URL: no readable file there")
        }
        guard let certificates = try? NIOSSLCertificate.fromPEMFile(path), !certificates.isEmpty else {
            throw ConfigurationError(description: "sslrootcert=\(path) in the database URL: not a PEM file of certificates")
        }
        return certificates
    }

    /// The URL without its password, for logs and error messages.
    public var description: String {
        "postgres://\(username)@\(host):\(port)/\(database ?? "")?sslmode=\(sslMode.rawValue)"
            + (rootCertificatePath.map { "&sslrootcert=\($0)" } ?? "")
    }

    static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? "postgres://…"
    }

    private var tlsConfiguration: TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = rootCertificates.map { .certificates($0) } ?? .default
        switch sslMode {
        case .disable, .prefer, .require:
            configuration.certificateVerification = rootCertificates == nil ? .none : .noHostnameVerification
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: configuration.certificateVerification = .fullVerification
        }
        return configuration
    }

    public func clientConfiguration(maximumConnections: Int = 20) -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(tlsConfiguration)
        case .require, .verifyCA, .verifyFull: tls = .require(tlsConfiguration)
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.maximumConnections = maximumConnections
        return configuration
    }

    public func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch sslMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: tlsConfiguration))
        case .require, .verifyCA, .verifyFull: tls = .require(try NIOSSLContext(configuration: tlsConfiguration))
        }
        return PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
    }
}

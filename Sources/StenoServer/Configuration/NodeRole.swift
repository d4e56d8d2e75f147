import Foundation

/// What one `steno serve` process runs. Any number of each share one PostgreSQL database.
public enum NodeRole: String, Sendable, CaseIterable {
    /// The HTTP API and the workers (the only sensible role with SQLite).
    case all
    /// The HTTP API and the cleaner; no transcription.
    case api
    /// Workers and the cleaner; over HTTP only `/healthz`, `/readyz` and `/metrics` (and the documents).
    case worker

    public var servesAPI: Bool { self != .worker }
    public var runsWorkers: Bool { self != .api }
}

/// The identity of one running process.
public enum StenoNode {
    /// A fresh id per process: the host name (which machine) and a random part (which run of it), so a restarted
    /// node never takes its predecessor's leases for its own. It prefixes every lease owner.
    public static func newID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "steno"
        return host + "-" + SystemRandom.token().prefix(8)
    }
}

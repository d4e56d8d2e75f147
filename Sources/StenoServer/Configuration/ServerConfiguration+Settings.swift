import Foundation
import Logging

/// A setting that could not be read, named by its environment variable.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
}

extension ServerConfiguration {
    /// Every setting, by its environment variable; `steno serve` maps each flag onto the same name.
    public static let variables = [
        "STENO_HOST", "STENO_PORT", "STENO_DATA_DIR", "STENO_MODEL", "STENO_WORKERS", "STENO_THREADS",
        "STENO_RETENTION", "STENO_RETRIEVAL_GRACE", "STENO_MAX_UPLOAD_BYTES", "STENO_MAX_AUDIO_SECONDS",
        "STENO_MAX_QUEUED_JOBS", "STENO_MAX_ATTEMPTS", "STENO_LEASE", "STENO_SHUTDOWN_GRACE",
        "STENO_CLEANUP_INTERVAL", "STENO_MIN_FREE_DISK", "STENO_LOG_LEVEL", "STENO_FFMPEG",
        "STENO_DECODER_TIMEOUT", "STENO_DECODER_CPU", "STENO_DECODER_MEMORY",
        "STENO_DATABASE_URL", "STENO_ROLE", "STENO_DATABASE_TIMEOUT", "STENO_POLL_INTERVAL",
        "STENO_WEBHOOK_SECRET", "STENO_WEBHOOK_ALLOW", "STENO_WEBHOOK_TIMEOUT", "STENO_WEBHOOK_MAX_ATTEMPTS",
        "STENO_WEBHOOK_BACKOFF", "STENO_PUBLIC_URL",
    ] + accessVariables

    /// `--data-dir/STENO_DATA_DIR` for `STENO_DATA_DIR`: both ways of giving a setting, for error messages.
    static func describe(_ variable: String) -> String {
        "--" + variable.dropFirst("STENO_".count).lowercased().replacingOccurrences(of: "_", with: "-") + "/" + variable
    }

    /// `STENO_*` names that are no setting of the server (a typo, most likely), for a warning at start-up.
    /// `STENO_URL` and `STENO_API_KEY` belong to the client commands.
    public static func unknownVariables(in settings: [String: String]) -> [String] {
        settings.keys.filter { $0.hasPrefix("STENO_") && !variables.contains($0) && !["STENO_URL", "STENO_API_KEY"].contains($0) }.sorted()
    }

    /// The defaults, overridden by `settings` (variable name → text, as in the environment). Durations take
    /// `90`, `90s`, `10m`, `24h`, `1h30m`; sizes take bytes or `K`/`M`/`G`. Empty values count as unset.
    public init(settings: [String: String]) throws {
        self.init()
        let settings = settings.filter { !$0.value.isEmpty }
        func integer(_ name: String) throws -> Int? {
            guard let text = settings[name] else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw ConfigurationError(description: "\(Self.describe(name))=\(text) is not a whole number")
            }
            return value
        }
        func seconds(_ name: String) throws -> Double? {
            guard let text = settings[name] else { return nil }
            guard let value = ValueParser.seconds(text) else {
                throw ConfigurationError(description: "\(Self.describe(name))=\(text) is not a duration (like 90, 90s, 10m, 24h)")
            }
            return value
        }
        func bytes(_ name: String) throws -> Int64? {
            guard let text = settings[name] else { return nil }
            guard let value = ValueParser.bytes(text) else {
                throw ConfigurationError(description: "\(Self.describe(name))=\(text) is not a size (like 1048576, 500M, 1G)")
            }
            return value
        }

        if let host = settings["STENO_HOST"] { self.host = host }
        if let port = try integer("STENO_PORT") { self.port = port }
        if let path = settings["STENO_DATA_DIR"] { dataDirectory = URL(fileURLWithPath: path) }
        if let path = settings["STENO_MODEL"] { modelDirectory = URL(fileURLWithPath: path) }
        if let workers = try integer("STENO_WORKERS") { self.workers = workers }
        if let threads = try integer("STENO_THREADS") { self.threads = threads }
        if let retention = try seconds("STENO_RETENTION") { self.retention = retention }
        if let grace = try seconds("STENO_RETRIEVAL_GRACE") { retrievalGrace = grace }
        if let limit = try bytes("STENO_MAX_UPLOAD_BYTES") { maxUploadBytes = limit }
        if let limit = try seconds("STENO_MAX_AUDIO_SECONDS") { maxAudioSeconds = limit }
        if let limit = try integer("STENO_MAX_QUEUED_JOBS") { maxQueuedJobs = limit }
        if let attempts = try integer("STENO_MAX_ATTEMPTS") { maxAttempts = attempts }
        if let lease = try seconds("STENO_LEASE") {
            leaseDuration = lease
            // Several heartbeats per lease, so one late beat under load does not lose the job.
            heartbeatInterval = min(heartbeatInterval, max(0.05, lease / 4))
        }
        if let grace = try seconds("STENO_SHUTDOWN_GRACE") { shutdownGrace = grace }
        if let interval = try seconds("STENO_CLEANUP_INTERVAL") { cleanupInterval = interval }
        if let floor = try bytes("STENO_MIN_FREE_DISK") { minFreeDiskBytes = floor }
        if let level = settings["STENO_LOG_LEVEL"] {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw ConfigurationError(description: "--log-level/STENO_LOG_LEVEL=\(level) is not one of trace, debug, info, notice, warning, error, critical")
            }
            logLevel = parsed
        }
        if let ffmpeg = settings["STENO_FFMPEG"] { ffmpegPath = ffmpeg }
        if let timeout = try seconds("STENO_DECODER_TIMEOUT") { decoderTimeout = timeout }
        if let cpu = try seconds("STENO_DECODER_CPU") { decoderCPUSeconds = Int(cpu.rounded(.up)) }
        if let memory = try bytes("STENO_DECODER_MEMORY") { decoderMemoryBytes = memory }
        if let url = settings["STENO_DATABASE_URL"] {
            guard PostgresURL.isPostgres(url) else {
                throw ConfigurationError(description: "--database/STENO_DATABASE_URL must be a postgres:// URL (leave it unset for SQLite in the data directory)")
            }
            _ = try PostgresURL(url)
            databaseURL = url
        }
        if let role = settings["STENO_ROLE"] {
            guard let parsed = NodeRole(rawValue: role.lowercased()) else {
                throw ConfigurationError(description: "--role/STENO_ROLE=\(role) is not one of all, api, worker")
            }
            self.role = parsed
        }
        if let timeout = try seconds("STENO_DATABASE_TIMEOUT") { databaseTimeout = timeout }
        if let interval = try seconds("STENO_POLL_INTERVAL") { pollInterval = max(0.01, interval) }
        try readAccessSettings(settings)
        try readWebhookSettings(settings, seconds: seconds, integer: integer)

        // Port 0 asks the kernel for a free port; the server logs the one it got ("listening on http://…").
        guard (0...65535).contains(port) else { throw ConfigurationError(description: "port \(port) is out of range") }
        guard workers >= 1 else { throw ConfigurationError(description: "workers must be at least 1") }
        if let threads, threads < 1 { throw ConfigurationError(description: "threads must be at least 1") }
        guard maxAttempts >= 1 else { throw ConfigurationError(description: "max attempts must be at least 1") }
        guard retention >= 1 else { throw ConfigurationError(description: "retention must be at least 1 s") }
        if maxRetention < retention { maxRetention = retention }
        guard leaseDuration >= 1 else { throw ConfigurationError(description: "lease must be at least 1 s") }
        guard decoderTimeout > 0 else { throw ConfigurationError(description: "decoder timeout must be more than 0 s") }
        if let cpu = decoderCPUSeconds, cpu < 1 { throw ConfigurationError(description: "decoder CPU time must be at least 1 s") }
        // ffmpeg maps about 400 MB of libraries before it reads a byte: less would fail every job.
        guard decoderMemoryBytes >= 64 << 20 else { throw ConfigurationError(description: "decoder memory must be at least 64M") }
        guard role == .all || databaseURL != nil else {
            throw ConfigurationError(description: "--role \(role.rawValue) needs a shared database: set --database/STENO_DATABASE_URL to a postgres:// URL")
        }
        guard databaseTimeout > 0 else { throw ConfigurationError(description: "database timeout must be more than 0") }
        guard maxUploadBytes >= 1 else { throw ConfigurationError(description: "max upload bytes must be at least 1") }
    }
}

import ArgumentParser
import Foundation
import Logging
import StenoServer

/// `steno serve`: the HTTP API and the workers in one process. Every option is also an environment variable
/// (`STENO_` + the option's name in capitals); a flag wins over the variable, which wins over the default.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the transcription service (API, workers and cleaner, or one role of several nodes).")

    @Option(help: "Address to listen on. [STENO_HOST, default 127.0.0.1]") var host: String?
    @Option(help: "Port to listen on; 0 picks a free one and logs it. [STENO_PORT, default 8080]") var port: String?
    @Option(help: "Directory for the database, uploads and results. [STENO_DATA_DIR, default ./data]") var dataDir: String?
    @Option(help: "Model directory. [STENO_MODEL, default ./models/tiny.en]") var model: String?
    @Option(help: "Concurrent transcriptions. [STENO_WORKERS, default 1]") var workers: String?
    @Option(help: "Engine threads per transcription. [STENO_THREADS, default: the engine's choice]") var threads: String?
    @Option(help: "Time from creation to deletion of a job, e.g. 24h. [STENO_RETENTION, default 24h]") var retention: String?
    @Option(help: "Time from first retrieval to deletion of a result; 0 = at once. [STENO_RETRIEVAL_GRACE, default 5m]") var retrievalGrace: String?
    @Option(help: "Largest upload, e.g. 1G or 500M. [STENO_MAX_UPLOAD_BYTES, default 1G]") var maxUploadBytes: String?
    @Option(help: "Longest recording, e.g. 4h. [STENO_MAX_AUDIO_SECONDS, default 4h]") var maxAudioSeconds: String?
    @Option(help: "Pending jobs beyond which uploads get 503. [STENO_MAX_QUEUED_JOBS, default 1000]") var maxQueuedJobs: String?
    @Option(help: "Attempts per job. [STENO_MAX_ATTEMPTS, default 3]") var maxAttempts: String?
    @Option(help: "Worker lease, renewed by heartbeats. [STENO_LEASE, default 60s]") var lease: String?
    @Option(help: "Time given to running jobs on SIGTERM. [STENO_SHUTDOWN_GRACE, default 30s]") var shutdownGrace: String?
    @Option(help: "Time between cleaner passes. [STENO_CLEANUP_INTERVAL, default 30s]") var cleanupInterval: String?
    @Option(help: "Free disk space below which /readyz fails. [STENO_MIN_FREE_DISK, default 512M]") var minFreeDisk: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical. [STENO_LOG_LEVEL, default info]") var logLevel: String?
    @Option(help: "Wall-clock limit of one ffmpeg run. [STENO_DECODER_TIMEOUT, default 5m]") var decoderTimeout: String?
    @Option(help: "CPU-time limit of one ffmpeg run. [STENO_DECODER_CPU, default: the decoder timeout]") var decoderCpu: String?
    @Option(help: "Memory (address space) limit of one ffmpeg run, e.g. 1536M. [STENO_DECODER_MEMORY, default 1536M]") var decoderMemory: String?
    @Option(help: "postgres://user:password@host:port/database shared by several nodes. [STENO_DATABASE_URL, default: SQLite in the data directory]") var database: String?
    @Option(help: "all (API and workers), api (API and cleaner) or worker (workers and cleaner). [STENO_ROLE, default all]") var role: String?
    @Option(help: "Longest wait for the database before the API answers 503. [STENO_DATABASE_TIMEOUT, default 10s]") var databaseTimeout: String?
    @Option(help: "How often idle workers look for jobs no notification announced. [STENO_POLL_INTERVAL, default 1s]") var pollInterval: String?
    @Option(help: "File of API keys, one 'tenant key' or 'tenant sha256:<hex>' per line. [STENO_API_KEYS_FILE; also STENO_API_KEYS=tenant=key,...; none = open mode]") var apiKeysFile: String?
    @Flag(help: "Allow a non-loopback --host without API keys. [STENO_OPEN=true]") var open = false
    @Option(help: "Pending plus processing jobs per API key; 0 = no limit. [STENO_MAX_JOBS_PER_KEY, default 0]") var maxJobsPerKey: String?
    @Option(help: "Requests per API key, e.g. 20/s or 600/m; off = no limit. [STENO_RATE_LIMIT, default off]") var rateLimit: String?
    @Option(help: "Close connections silent this long (slow headers, stalled bodies, idle keep-alive). [STENO_IDLE_TIMEOUT, default 60s]") var idleTimeout: String?
    @Option(help: "Cut off an upload whose body stops this long. [STENO_UPLOAD_STALL_TIMEOUT, default 30s]") var uploadStallTimeout: String?
    @Option(help: "Open connections at most; past it the oldest connection waiting for a request is closed. [STENO_MAX_CONNECTIONS, default 3/4 of the open-file limit]") var maxConnections: String?
    @Option(help: "Time a new connection has to send its request head. [STENO_HEADER_TIMEOUT, default 10s]") var headerTimeout: String?
    @Option(help: "Slowest request body accepted, bytes per second (over 20 s); 0 = off. [STENO_MIN_UPLOAD_RATE, default 1K]") var minUploadRate: String?
    @Option(help: "Webhook signing secret (prefer the variable: flags show in ps). [STENO_WEBHOOK_SECRET, default: random, kept in <data-dir>/webhook-secret]") var webhookSecret: String?
    @Option(help: "Private hosts and CIDR blocks callbacks may reach, comma-separated. [STENO_WEBHOOK_ALLOW, default none]") var webhookAllow: String?
    @Option(help: "Deadline of one webhook attempt. [STENO_WEBHOOK_TIMEOUT, default 10s]") var webhookTimeout: String?
    @Option(help: "Attempts per webhook. [STENO_WEBHOOK_MAX_ATTEMPTS, default 8]") var webhookMaxAttempts: String?
    @Option(help: "First webhook retry delay, doubling. [STENO_WEBHOOK_BACKOFF, default 5s]") var webhookBackoff: String?
    @Option(help: "Base URL clients reach this server at, for webhooks' result_url. [STENO_PUBLIC_URL, default: relative]") var publicURL: String?

    /// The flags, by the name of the environment variable each one overrides.
    var flags: [String: String?] {
        [
            "STENO_HOST": host, "STENO_PORT": port, "STENO_DATA_DIR": dataDir, "STENO_MODEL": model,
            "STENO_WORKERS": workers, "STENO_THREADS": threads, "STENO_RETENTION": retention,
            "STENO_RETRIEVAL_GRACE": retrievalGrace, "STENO_MAX_UPLOAD_BYTES": maxUploadBytes,
            "STENO_MAX_AUDIO_SECONDS": maxAudioSeconds, "STENO_MAX_QUEUED_JOBS": maxQueuedJobs,
            "STENO_MAX_ATTEMPTS": maxAttempts, "STENO_LEASE": lease, "STENO_SHUTDOWN_GRACE": shutdownGrace,
            "STENO_CLEANUP_INTERVAL": cleanupInterval, "STENO_MIN_FREE_DISK": minFreeDisk, "STENO_LOG_LEVEL": logLevel,
            "STENO_DECODER_TIMEOUT": decoderTimeout, "STENO_DECODER_CPU": decoderCpu, "STENO_DECODER_MEMORY": decoderMemory,
            "STENO_DATABASE_URL": database, "STENO_ROLE": role, "STENO_DATABASE_TIMEOUT": databaseTimeout,
            "STENO_POLL_INTERVAL": pollInterval,
            "STENO_API_KEYS_FILE": apiKeysFile, "STENO_OPEN": open ? "true" : nil, "STENO_MAX_JOBS_PER_KEY": maxJobsPerKey,
            "STENO_RATE_LIMIT": rateLimit, "STENO_IDLE_TIMEOUT": idleTimeout, "STENO_UPLOAD_STALL_TIMEOUT": uploadStallTimeout,
            "STENO_MAX_CONNECTIONS": maxConnections, "STENO_HEADER_TIMEOUT": headerTimeout, "STENO_MIN_UPLOAD_RATE": minUploadRate,
            "STENO_WEBHOOK_SECRET": webhookSecret, "STENO_WEBHOOK_ALLOW": webhookAllow, "STENO_WEBHOOK_TIMEOUT": webhookTimeout,
            "STENO_WEBHOOK_MAX_ATTEMPTS": webhookMaxAttempts, "STENO_WEBHOOK_BACKOFF": webhookBackoff, "STENO_PUBLIC_URL": publicURL,
        ]
    }

    func run() async throws {
        // Connections, uploads, the database and decoder pipes all need descriptors: take what the system allows.
        DescriptorLimit.raiseSoftLimit()
        var settings = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("STENO_") }
        for case let (name, value?) in flags { settings[name] = value }
        let configuration: ServerConfiguration
        do {
            configuration = try ServerConfiguration(settings: settings)
            // Before the model loads: a refused exposure should not take seconds to say so.
            try configuration.checkExposure()
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        // Every line passes through the redaction point: no key, secret or authorization header reaches the log.
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = configuration.logLevel
            return RedactingLogHandler(handler)
        }
        var logger = Logger(label: "steno")
        logger.logLevel = configuration.logLevel
        for name in ServerConfiguration.unknownVariables(in: settings) {
            logger.warning("ignoring unknown setting \(name)")
        }
        logger.info(configuration.role.runsWorkers ? "loading model" : "reading the model's languages (an API node does not load the weights)",
                    metadata: ["model": "\(configuration.modelDirectory.path)"])
        let transcriber = try WhisperTranscriber(configuration: configuration)
        let service = try buildApplication(configuration: configuration, transcriber: transcriber, logger: logger)
        let storage = try configuration.databaseURL.map { try PostgresURL($0).description } ?? configuration.dataDirectory.path
        logger.notice("steno starting", metadata: [
            "address": "\(configuration.host):\(configuration.port)", "role": "\(configuration.role.rawValue)",
            "node": "\(service.nodeID)", "storage": "\(storage)",
        ])
        try await service.app.runService()
    }
}

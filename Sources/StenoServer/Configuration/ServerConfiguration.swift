public import Foundation
public import Logging

/// Everything `steno serve` can be told, with its defaults. `SettingsTable` reads the command line and the
/// `STENO_*` environment variables into it (and documents each field there); tests build it directly. Each
/// service takes a small settings struct of its own built from it, not the whole configuration.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Holds `steno.sqlite`, `audio/`, `results/` and `tmp/`.
    public var dataDirectory = URL(fileURLWithPath: "data")
    /// The models served, by name (`--model tiny.en=models/tiny.en,base=models/whisper-base`).
    public var models = [ModelSource(directory: URL(fileURLWithPath: "models/tiny.en"))]
    /// The model of jobs that name none (and of the OpenAI name `whisper-1`); nil: the first of `models`.
    public var defaultModel: String?
    /// Bytes of model weights kept loaded at once; the least recently used idle model is unloaded to make room.
    /// Nil: no bound (every model asked for stays loaded).
    public var modelMemoryBytes: Int64?
    /// Silero VAD weights (installed by the setup next to the Whisper model).
    public var vadModel = URL(fileURLWithPath: "models/silero-vad/silero_vad.safetensors")
    public var speakerModel = URL(fileURLWithPath: "models/speaker-encoder/ge2e.safetensors")
    /// Concurrent transcriptions.
    public var workers = 1
    /// Engine threads per transcription; nil lets the engine choose.
    public var threads: Int?
    /// Default time from creation to deletion of a job and its files.
    public var retention: TimeInterval = 24 * 3600
    /// Longest per-job `delete_after_seconds` accepted.
    public var maxRetention: TimeInterval = 30 * 24 * 3600
    /// Time between the first retrieval of a result and the deletion of its files (0 = at once).
    public var retrievalGrace: TimeInterval = 300
    public var maxUploadBytes: Int64 = 1 << 30
    /// Longer recordings fail with `audio_too_long`.
    public var maxAudioSeconds: Double = 4 * 3600
    /// Pending jobs beyond which uploads get `503 queue_full`.
    public var maxQueuedJobs = 1000
    /// Transient failures are retried up to this many attempts in all.
    public var maxAttempts = 3
    /// First retry delay; doubles with each attempt, with jitter.
    public var retryBackoff: TimeInterval = 5
    /// A worker's claim on a job lasts this long unless renewed by its heartbeat.
    public var leaseDuration: TimeInterval = 60
    public var heartbeatInterval: TimeInterval = 5
    /// How often an idle worker looks for work when no upload (or, with PostgreSQL, no notification) wakes it;
    /// also how soon an idle node rescues a job whose lease expired.
    public var pollInterval: TimeInterval = 1
    public var cleanupInterval: TimeInterval = 30
    /// On SIGTERM, running transcriptions get this long to finish before they are released.
    public var shutdownGrace: TimeInterval = 30
    /// `/readyz` fails below this much free space in the data directory.
    public var minFreeDiskBytes: Int64 = 512 << 20
    public var ffmpegPath = "ffmpeg"
    /// Wall-clock limit of one ffmpeg/ffprobe run; past it the job fails with `decoder_timeout`.
    public var decoderTimeout: TimeInterval = 300
    /// CPU-time limit of one ffmpeg/ffprobe run (nil = the wall-clock limit); past it `decoder_limit_exceeded`.
    public var decoderCPUSeconds: Int?
    /// Address-space limit of one ffmpeg/ffprobe run; past it `decoder_limit_exceeded`.
    public var decoderMemoryBytes: Int64 = 1536 << 20
    public var logLevel: Logger.Level = .info
    /// `postgres://user:password@host:port/database`: jobs and blobs in PostgreSQL, shared by every node on it.
    /// Nil: SQLite and files in the data directory (one node).
    public var databaseURL: String?
    /// What this process runs; `api` and `worker` need a PostgreSQL `databaseURL`.
    public var role: NodeRole = .all
    /// Longest wait for one database statement before the API answers 503 (PostgreSQL).
    public var databaseTimeout: TimeInterval = 10
    /// API keys by tenant; none means open mode (one anonymous tenant, loopback only unless `allowOpen`).
    public var apiKeys = APIKeyRing()
    /// Run without keys on a non-loopback address (`--open`).
    public var allowOpen = false
    /// Per-tenant bound on pending plus processing jobs (`429 too_many_jobs`); nil for none.
    public var maxJobsPerKey: Int?
    /// Per-tenant request rate (`429 rate_limited`); nil for none.
    public var rateLimit: RateLimit?
    /// A connection that sends nothing for this long is closed: a request head that never completes, a body
    /// that stops, or an idle keep-alive connection.
    public var idleTimeout: TimeInterval = 60
    /// An upload body that stops for this long fails `408 upload_stalled` and its file is removed.
    public var uploadStallTimeout: TimeInterval = 30
    /// Open connections at most; past it the oldest connection still waiting for a request is closed. Nil: three
    /// quarters of the open-file limit (`DescriptorLimit.defaultMaxConnections`).
    public var maxConnections: Int?
    /// A new connection must send a complete request head within this time.
    public var headerTimeout: TimeInterval = 10
    /// Slowest request body accepted, in bytes per second (measured over 20 s of waiting on the client); 0 = off.
    public var minUploadRate: Int64 = 1024
    /// Webhook signing secret; unset, a single node keeps a random one in `<data>/webhook-secret`.
    public var webhookSecret: String?
    /// Host names and address blocks that callbacks may reach although private (loopback, RFC 1918, …).
    public var webhookAllow: [String] = []
    /// Deadline of one webhook attempt.
    public var webhookTimeout: TimeInterval = 10
    /// Attempts per webhook before it is given up.
    public var webhookMaxAttempts = 8
    /// First webhook retry delay; doubles with each attempt, with jitter.
    public var webhookBackoff: TimeInterval = 5
    /// How often the webhook dispatcher looks for due deliveries when no job finishing here wakes it.
    public var webhookPollInterval: TimeInterval = 1
    /// Host names and address blocks an `audio_url` may be fetched from although private.
    public var audioURLAllow: [String] = []
    /// Longest download of an `audio_url`, retries included.
    public var audioURLTimeout: TimeInterval = 600
    /// Longest time an OpenAI-style request (`/v1/audio/…`) waits for its job before `504` (the job goes on).
    public var openAIWait: TimeInterval = 600
    /// The base URL clients reach this server at (for `result_url` in webhooks); relative URLs when unset.
    public var publicURL: String?

    public init() {}

    /// One model, served under its folder's name (the common case, and what most tests set).
    public var modelDirectory: URL {
        get { models.first(where: { $0.name == defaultModel })?.directory ?? models[0].directory }
        set { models = [ModelSource(directory: newValue)]; defaultModel = nil }
    }

    package var sqlitePath: URL { dataDirectory.appendingPathComponent("steno.sqlite") }
}

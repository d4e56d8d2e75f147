import Foundation
import Logging

/// Every setting of `steno serve`, declared once. The command's flags and help, the environment variables, the
/// checks with messages that name the setting, and the configuration table of docs/configuration.md (`steno
/// settings --markdown`, checked by a test) all come from this list. A new setting is one entry here and a
/// field of `ServerConfiguration`; services take their own small settings structs built from it.
enum SettingsTable {
    static let all: [Setting] = server + storage + jobs + decoder + cluster + access + connections + webhooks

    static let server: [Setting] = [
        .text("host", \.host, help: "address to listen on (`0.0.0.0` for every interface)"),
        .integer("port", \.port, range: 0...65535, help: "port; `0` takes a free one and logs `listening on http://…`"),
        Setting("model", valueName: "<models>", defaultText: "./models/tiny.en", defaultIsValue: true,
                help: "models served, comma-separated: `name=directory` pairs, or directories named by their folder; a folder of model folders serves each (jobs choose with `model`)") { configuration, text in
            configuration.models = try ModelSource.parseList(text)
        },
        Setting("default-model", valueName: "<name>", defaultText: "the first model",
                help: "model of jobs that name none, and of the OpenAI name `whisper-1`") { configuration, text in
            configuration.defaultModel = text.trimmingCharacters(in: .whitespaces)
        },
        Setting("model-memory", valueName: "<size>", defaultText: "no limit",
                help: "weights kept loaded at once (a model counts twice its `model.bin`); the least recently used idle model is unloaded to make room") { configuration, text in
            guard let value = ValueParser.bytes(text), value > 0 else { throw Setting.Problem("is not a size (like 500M, 1G)") }
            configuration.modelMemoryBytes = value
        },
        .path("vad-model", \.vadModel, help: "Silero VAD tensor file, for voice-activity detection (jobs' `vad`, on by default)"),
        .path("speaker-model", \.speakerModel, help: "GE2E speaker-encoder tensor file, for jobs' `speaker_labels`"),
        .integer("workers", \.workers, range: 1...Int.max, help: "concurrent transcriptions"),
        .optionalInteger("threads", \.threads, range: 1...Int.max, defaultText: "the engine's choice",
                         help: "engine threads per transcription"),
        .choice("log-level", \.logLevel, help: "how much to log, from `trace` to `critical`"),
    ]

    static let storage: [Setting] = [
        .path("data-dir", \.dataDirectory, help: "`steno.sqlite`, `audio/`, `results/`, `tmp/`"),
        .bytes("min-free-disk", \.minFreeDiskBytes, help: "`/readyz` fails below this free space"),
    ]

    static let jobs: [Setting] = [
        .duration("retention", \.retention, minimum: 1,
                  help: "time from creation to deletion of a job (per job: `delete_after_seconds`, up to 30 days)"),
        .duration("retrieval-grace", \.retrievalGrace, help: "time from first retrieval to deletion of the result; `0` = at once"),
        .bytes("max-upload-bytes", \.maxUploadBytes, minimum: 1, help: "larger uploads get `413`"),
        .duration("max-audio-seconds", \.maxAudioSeconds, minimum: 1, help: "longer recordings fail with `audio_too_long`"),
        .duration("openai-wait", \.openAIWait, minimum: 1,
                  help: "longest wait of an OpenAI-style request (`/v1/audio/…`) for its transcription; past it `504` with the job's id (the job goes on)"),
        .integer("max-queued-jobs", \.maxQueuedJobs, range: 1...Int.max,
                 help: "pending jobs beyond which uploads get `503` (checked before the body is read, and again in the insert's transaction, so it holds across all nodes even for uploads arriving together)"),
        .integer("max-attempts", \.maxAttempts, range: 1...Int.max, help: "attempts per job (transient failures, crashes)"),
        Setting("lease", valueName: "<duration>", defaultText: ValueFormat.duration(ServerConfiguration().leaseDuration), defaultIsValue: true,
                help: "a worker's claim on a job, renewed by heartbeats (several per lease)") { configuration, text in
            configuration.leaseDuration = try Setting.parseDuration(text, minimum: 1, aboveMinimum: false)
            // Several heartbeats per lease, so one late beat under load does not lose the job.
            configuration.heartbeatInterval = min(configuration.heartbeatInterval, max(0.05, configuration.leaseDuration / 4))
        },
        .duration("shutdown-grace", \.shutdownGrace, help: "on SIGTERM, time for running jobs to finish before they are released"),
        .duration("cleanup-interval", \.cleanupInterval, aboveMinimum: true, help: "time between cleaner passes"),
        Setting("poll-interval", valueName: "<duration>", defaultText: ValueFormat.duration(ServerConfiguration().pollInterval), defaultIsValue: true,
                help: "how often idle workers look for jobs nothing announced (expired leases, retries); at least 10ms") { configuration, text in
            configuration.pollInterval = max(0.01, try Setting.parseDuration(text, minimum: 0, aboveMinimum: false))
        },
    ]

    static let decoder: [Setting] = [
        .text("ffmpeg", \.ffmpegPath, help: "the ffmpeg binary (ffprobe is looked for beside it)"),
        .duration("decoder-timeout", \.decoderTimeout, aboveMinimum: true, help: "wall-clock limit of one ffmpeg run (`decoder_timeout`)"),
        Setting("decoder-cpu", valueName: "<duration>", defaultText: "the decoder timeout",
                help: "CPU-time limit of one ffmpeg run (`decoder_limit_exceeded`)") { configuration, text in
            configuration.decoderCPUSeconds = Int(try Setting.parseDuration(text, minimum: 1, aboveMinimum: false).rounded(.up))
        },
        // ffmpeg maps about 400 MB of libraries before it reads a byte: less than 64M would fail every job.
        .bytes("decoder-memory", \.decoderMemoryBytes, minimum: 64 << 20,
               help: "address-space limit of one ffmpeg run (`decoder_limit_exceeded`)"),
    ]

    static let cluster: [Setting] = [
        Setting("database", variable: "STENO_DATABASE_URL", valueName: "<url>", defaultText: "SQLite in the data directory",
                help: "`postgres://user:password@host:port/db?sslmode=…&sslrootcert=…`: jobs and blobs in PostgreSQL, for several nodes (see deployment.md)") { configuration, text in
            guard PostgresURL.isPostgres(text) else {
                throw Setting.Problem("must be a postgres:// URL (leave it unset for SQLite in the data directory)")
            }
            _ = try PostgresURL(text)
            configuration.databaseURL = text
        },
        .choice("role", \.role, help: "`all`, `api` (API + cleaner) or `worker` (workers + cleaner); `api`/`worker` need `--database`"),
        .duration("database-timeout", \.databaseTimeout, aboveMinimum: true,
                  help: "longest wait for PostgreSQL before the API answers `503 database_unavailable`"),
    ]

    static let access: [Setting] = [
        Setting("api-keys-file", valueName: "<path>", defaultText: "none (open mode)",
                help: "API keys, one `tenant key` or `tenant sha256:<hex>` per line (see API keys and tenants below)") { configuration, path in
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw Setting.Problem("cannot be read") }
            try configuration.apiKeys.add(fileText: text, source: path)
        },
        Setting("api-keys", valueName: "<tenant=key,…>", defaultText: "none",
                help: "more keys, `tenant=key,tenant=key` (prefer the variable: flags show in `ps`)") { configuration, list in
            try configuration.apiKeys.add(list: list, source: "STENO_API_KEYS")
        },
        .flag("open", \.allowOpen, help: "allow a non-loopback `--host` without keys"),
        .optionalInteger("max-jobs-per-key", \.maxJobsPerKey, range: 1...Int.max, zeroIsNone: true, defaultText: "0 (none)",
                         help: "pending + processing jobs per tenant; more get `429 too_many_jobs`"),
        Setting("rate-limit", valueName: "<n/s|n/m|n/h>", defaultText: "off",
                help: "requests per tenant, e.g. `20/s`, `600/m`; more get `429 rate_limited`; `off` = none") { configuration, text in
            if ["0", "off", "none"].contains(text.lowercased()) {
                configuration.rateLimit = nil
            } else {
                guard let limit = RateLimit(parsing: text) else { throw Setting.Problem("is not a rate like 20/s, 600/m or 5000/h") }
                configuration.rateLimit = limit
            }
        },
    ]

    static let connections: [Setting] = [
        .duration("idle-timeout", \.idleTimeout, aboveMinimum: true,
                  help: "close a connection that sends nothing this long (slow headers, stalled bodies, idle keep-alive)"),
        .duration("upload-stall-timeout", \.uploadStallTimeout, aboveMinimum: true,
                  help: "an upload body that stops this long gets `408 upload_stalled`, its file removed"),
        .optionalInteger("max-connections", \.maxConnections, range: 1...Int.max, defaultText: "3/4 of the open-file limit",
                         help: "open connections at most; past it a new connection closes the oldest one still waiting for a request (else it is closed itself)"),
        .duration("header-timeout", \.headerTimeout, aboveMinimum: true,
                  help: "a new connection must send a complete request head within this time"),
        Setting("min-upload-rate", valueName: "<size>", defaultText: ValueFormat.bytes(ServerConfiguration().minUploadRate), defaultIsValue: true,
                help: "slowest request body, bytes per second over 20 s of waiting on the client; slower connections are closed; `0` = off") { configuration, text in
            let rate = text.lowercased().hasSuffix("/s") ? String(text.dropLast(2)) : text
            guard let value = ValueParser.bytes(rate) else { throw Setting.Problem("is not a rate in bytes per second (like 1K, 512, 0 for none)") }
            configuration.minUploadRate = value
        },
    ]

    static let webhooks: [Setting] = [
        Setting("webhook-secret", valueName: "<text>", defaultText: "random, in `<data-dir>/webhook-secret`",
                help: "webhook signing secret, at least 16 bytes (prefer the variable: flags show in `ps`)") { configuration, secret in
            guard secret.utf8.count >= 16 else { throw Setting.Problem("must be at least 16 bytes") }
            configuration.webhookSecret = secret
        },
        .allowlist("audio-url-allow", \.audioURLAllow,
                   help: "private hosts and CIDR blocks an `audio_url` may be fetched from, comma-separated (public addresses need no entry)"),
        .duration("audio-url-timeout", \.audioURLTimeout, minimum: 1,
                  help: "longest download of an `audio_url`, retries included (`download_timeout`); no byte for `--upload-stall-timeout` is too slow too"),
        .allowlist("webhook-allow", \.webhookAllow, help: "private hosts and CIDR blocks callbacks may reach, comma-separated"),
        .duration("webhook-timeout", \.webhookTimeout, aboveMinimum: true, help: "deadline of one webhook attempt"),
        .integer("webhook-max-attempts", \.webhookMaxAttempts, range: 1...Int.max, help: "attempts per webhook"),
        .duration("webhook-backoff", \.webhookBackoff, help: "first webhook retry delay (doubles, ±25 % jitter)"),
        Setting("public-url", valueName: "<url>", defaultText: "none (relative URLs)",
                help: "base URL of this server, for webhooks' `result_url`") { configuration, url in
            guard let parsed = URLComponents(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""),
                  parsed.host?.isEmpty == false else {
                throw Setting.Problem("is not an http(s) URL")
            }
            configuration.publicURL = url
        },
    ]

    /// The setting of a flag name (without dashes).
    static func setting(flag name: String) -> Setting? { all.first { $0.name == name } }

    // MARK: - Renderings

    /// The settings as `steno serve --help` lists them: the usage, then the help wrapped under it (short lines,
    /// which the argument parser leaves as they are).
    static var helpText: String {
        all.map { setting in
            let usage = "  " + setting.flag + (setting.valueName.map { " " + $0 } ?? "")
            let help = "\(plain(setting.help)) [\(setting.variable), default \(plain(setting.defaultText))]"
            return ([usage] + wrap(help, width: 72).map { "      " + $0 }).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    private static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        return line.isEmpty ? lines : lines + [line]
    }

    /// The markdown table of docs/configuration.md.
    static var markdown: String {
        var lines = ["| flag | variable | default | meaning |", "|---|---|---|---|"]
        for setting in all {
            let usage = "`" + setting.flag + (setting.valueName.map { " " + $0 } ?? "") + "`"
            let shownDefault = setting.defaultIsValue ? "`\(setting.defaultText)`" : setting.defaultText
            lines.append("| \(usage) | `\(setting.variable)` | \(shownDefault) | \(setting.help) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Markdown's backticks, dropped for the terminal.
    private static func plain(_ text: String) -> String { text.replacingOccurrences(of: "`", with: "") }
}

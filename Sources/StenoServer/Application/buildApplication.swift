import Foundation
public import Hummingbird
public import Logging
import OpenAPIHummingbird

/// The parts of a built server, for the command that runs it and for the tests that drive it.
public struct StenoService: Sendable {
    public let app: Application<RouterResponder<BasicRequestContext>>
    public let store: any JobStore
    public let blobs: BlobStore
    public let workers: WorkerPool
    public let cleaner: Cleaner
    public let metrics: StenoMetrics
    public let webhooks: WebhookDispatcher
}

/// The composition root: the store, the files, the workers, the cleaner and the HTTP routes, wired from one
/// configuration. `steno serve` and the tests both build the server here.
public func buildApplication(
    configuration: ServerConfiguration,
    transcriber: any Transcriber,
    clock: any WallClock = SystemClock(),
    metrics: StenoMetrics = StenoMetrics(),
    logger: Logger? = nil
) throws -> StenoService {
    var logger = logger ?? Logger(label: "steno")
    if logger.logLevel > configuration.logLevel || logger.logLevel < configuration.logLevel { logger.logLevel = configuration.logLevel }

    try configuration.checkExposure()
    logAccess(configuration, logger: logger)
    let blobs = try BlobStore(root: configuration.dataDirectory)
    let store = try SQLiteJobStore(path: configuration.databaseURL)
    let workers = WorkerPool(
        store: store, blobs: blobs, transcriber: transcriber, clock: clock, metrics: metrics,
        settings: .init(configuration), logger: logger)
    let cleaner = Cleaner(store: store, blobs: blobs, clock: clock, interval: configuration.cleanupInterval, logger: logger)
    let callbacks = try CallbackPolicy(allowlist: configuration.webhookAllow)
    let webhooks = WebhookDispatcher(
        store: store, policy: callbacks,
        signer: WebhookSigner(secret: try WebhookSigner.secret(configured: configuration.webhookSecret, dataDirectory: configuration.dataDirectory)),
        clock: clock, metrics: metrics, settings: .init(configuration), wake: workers.finished, logger: logger)

    let router = Router()
    router.middlewares.add(HTTPMetricsMiddleware(metrics: metrics))
    router.middlewares.add(JSONErrorMiddleware(logger: logger))
    router.middlewares.add(AuthMiddleware(keys: configuration.apiKeys, rateLimiter: configuration.rateLimit.map(RateLimiter.init)))
    UploadController(
        store: store, blobs: blobs, clock: clock, metrics: metrics, wake: workers.wake,
        supportedLanguages: transcriber.supportedLanguages, maxUploadBytes: configuration.maxUploadBytes,
        maxQueuedJobs: configuration.maxQueuedJobs, retention: configuration.retention,
        maxRetention: configuration.maxRetention, maxAttempts: configuration.maxAttempts,
        jobLimiter: configuration.maxJobsPerKey.map(TenantJobLimiter.init), stallTimeout: configuration.uploadStallTimeout,
        logger: logger, callbacks: callbacks
    ).addRoutes(to: router)
    try OperationsRoutes(store: store, metrics: metrics).addRoutes(to: router)
    let api = JobsAPI(
        store: store, blobs: blobs, clock: clock, metrics: metrics, retrievalGrace: configuration.retrievalGrace,
        minFreeDiskBytes: configuration.minFreeDiskBytes, logger: logger, webhooks: store, jobFinished: workers.finished)
    try api.registerHandlers(
        on: router, configuration: APIJSON.runtimeConfiguration, middlewares: [OpenAPIErrorMiddleware(logger: logger)])

    // Services start in this order and stop in reverse, after the HTTP server (which Hummingbird adds last):
    // on SIGTERM the server stops accepting first, then the cleaner, then the workers finish or release jobs,
    // then the webhook dispatcher finishes its attempts in flight (what is left is delivered after the restart).
    // The idle timeout closes connections that send nothing: a request head that never completes, a stopped
    // body, an idle keep-alive connection (a response being computed does not count as idle).
    let app = Application(
        router: router,
        server: .http1(configuration: .init(idleTimeout: .milliseconds(Int64(configuration.idleTimeout * 1000)))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "steno"),
        services: [webhooks, workers, cleaner],
        logger: logger)
    return StenoService(app: app, store: store, blobs: blobs, workers: workers, cleaner: cleaner, metrics: metrics, webhooks: webhooks)
}

/// Says at start who can use the server: the number of keys (never the keys), or that it runs open.
private func logAccess(_ configuration: ServerConfiguration, logger: Logger) {
    let limits: Logger.Metadata = [
        "max_jobs_per_key": "\(configuration.maxJobsPerKey.map(String.init) ?? "none")",
        "rate_limit": "\(configuration.rateLimit?.description ?? "none")",
    ]
    if !configuration.apiKeys.isEmpty {
        logger.info("API keys required", metadata: limits.merging([
            "keys": "\(configuration.apiKeys.count)", "tenants": "\(configuration.apiKeys.tenants.count)",
        ]) { $1 })
    } else if ServerConfiguration.isLoopback(configuration.host) {
        logger.notice("open mode: no API keys are configured, so every client is one anonymous tenant and the server listens on loopback only; give --api-keys-file to serve others", metadata: limits)
    } else {
        logger.warning("open mode on a non-loopback address (--open): no API keys, anyone who reaches \(configuration.host) can read and delete every job", metadata: limits)
    }
}

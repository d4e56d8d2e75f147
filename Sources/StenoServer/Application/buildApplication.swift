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
    UploadController(
        store: store, blobs: blobs, clock: clock, metrics: metrics, wake: workers.wake,
        supportedLanguages: transcriber.supportedLanguages, maxUploadBytes: configuration.maxUploadBytes,
        maxQueuedJobs: configuration.maxQueuedJobs, retention: configuration.retention,
        maxRetention: configuration.maxRetention, maxAttempts: configuration.maxAttempts, callbacks: callbacks
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
    let app = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "steno"),
        services: [webhooks, workers, cleaner],
        logger: logger)
    return StenoService(app: app, store: store, blobs: blobs, workers: workers, cleaner: cleaner, metrics: metrics, webhooks: webhooks)
}

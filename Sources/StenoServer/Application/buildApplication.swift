import Foundation
public import Hummingbird
public import Logging
import NIOCore
import OpenAPIHummingbird
import ServiceLifecycle

/// The parts of a built server, for the command that runs it and for the tests that drive it.
public struct StenoService: Sendable {
    public let app: Application<RouterResponder<BasicRequestContext>>
    public let store: any JobStore
    public let blobs: any BlobStore
    /// The job lifecycle over `store` and `blobs`.
    package let jobs: JobService
    public let workers: WorkerPool
    public let cleaner: Cleaner
    public let metrics: StenoMetrics
    /// This process's fresh random id: the prefix of every lease it takes.
    public let nodeID: String
    /// The PostgreSQL pool when the configuration names a database; nil with SQLite.
    public let database: PostgresDatabase?
    public let webhooks: WebhookDispatcher
}

/// The composition root: the store, the files, the workers, the cleaner and the HTTP routes, wired from one
/// configuration. `steno serve` and the tests both build the server here.
///
/// Without a database URL: SQLite and files in the data directory, one node. With a `postgres://` URL: jobs and
/// blobs in PostgreSQL, shared by any number of nodes, each running what its role says; workers LISTEN for new
/// jobs so a submit on any node wakes them.
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
    let nodeID = StenoNode.newID()
    logger[metadataKey: "node"] = "\(nodeID)"

    // Storage. Services start in list order and stop in reverse: the database first, so it stops last.
    let store: any WebhookStore
    let blobs: any BlobStore
    let ready: StartGate
    var services: [any Service] = []
    var database: PostgresDatabase?
    if let text = configuration.databaseURL {
        let url = try PostgresURL(text)
        let timeout = Duration.milliseconds(Int64(configuration.databaseTimeout * 1000))
        let postgres = PostgresDatabase(url: url, timeout: timeout, logger: logger)
        store = postgres.jobs
        blobs = try PostgresBlobStore(
            client: postgres.client, scratch: configuration.dataDirectory.appendingPathComponent("tmp", isDirectory: true),
            timeout: timeout, logger: logger)
        ready = postgres.ready
        services.append(postgres)
        database = postgres
    } else {
        store = try SQLiteJobStore(path: configuration.sqlitePath)
        blobs = try FileBlobStore(root: configuration.dataDirectory)
        ready = StartGate(open: true)
    }

    // The job lifecycle, and who listens to it: metrics count, idle workers wake for a new job, the webhook
    // dispatcher wakes for a finished one.
    let events = JobEvents()
    let jobs = JobService(store: store, blobs: blobs, clock: clock, events: events, settings: .init(configuration))
    let workers = WorkerPool(
        jobs: jobs, transcriber: transcriber, metrics: metrics,
        settings: .init(configuration), nodeID: nodeID, ready: ready, logger: logger)
    let cleaner = Cleaner(jobs: jobs, interval: configuration.cleanupInterval, ready: ready, logger: logger)
    let jobFinished = WakeSignal()
    events.subscribe { [wake = workers.wake] event in
        switch event {
        case .accepted:
            metrics.accepted()
            wake.signal()
        case .finished(_, let state):
            metrics.finished(state)
            jobFinished.signal()
        }
    }
    var callbacks = try CallbackPolicy(allowlist: configuration.webhookAllow)
    let secret = try WebhookSigner.secret(
        configured: configuration.webhookSecret, dataDirectory: configuration.dataDirectory,
        sharedDatabase: configuration.databaseURL != nil)
    if let secret { LogRedaction.register(secret: secret) }
    let webhooks = WebhookDispatcher(
        store: store, policy: callbacks, signer: WebhookSigner(secret: secret ?? ""),
        clock: clock, metrics: metrics, settings: .init(configuration), wake: jobFinished, ready: ready, logger: logger)
    if secret != nil {
        // Every node delivers webhooks (each delivery is claimed under a lease, so one node sends it).
        services.append(webhooks)
    } else {
        // Nodes on a shared database would each sign with a secret of their own: without the shared one this
        // node neither takes callbacks nor sends them.
        callbacks.unavailable = "this server takes no callbacks: nodes sharing a database need --webhook-secret/STENO_WEBHOOK_SECRET"
        logger.warning("webhooks are off on this node: with a shared database give every node the same --webhook-secret/STENO_WEBHOOK_SECRET")
    }
    if configuration.role.runsWorkers {
        services.append(workers)
        if let database {
            services.append(JobNotificationListener(url: database.url, wake: workers.wake, logger: logger))
        }
    }
    // Every node cleans: each change is made once whichever node gets there first.
    services.append(cleaner)

    let router = Router()
    router.middlewares.add(HTTPMetricsMiddleware(metrics: metrics))
    router.middlewares.add(ErrorDialectMiddleware())
    router.middlewares.add(JSONErrorMiddleware(logger: logger))
    router.middlewares.add(AuthMiddleware(keys: configuration.apiKeys, rateLimiter: rateLimiter(configuration, database, logger)))
    if configuration.role.servesAPI {
        let uploads = UploadController(
            jobs: jobs,
            settings: .init(maxUploadBytes: configuration.maxUploadBytes, stallTimeout: configuration.uploadStallTimeout,
                            models: transcriber.models),
            logger: logger, callbacks: callbacks)
        uploads.addRoutes(to: router)
        OpenAIRoutes(
            uploads: uploads, models: transcriber.models, settings: .init(wait: configuration.openAIWait), live: workers.live, logger: logger)
            .addRoutes(to: router)
    } else {
        router.middlewares.add(WorkerNodeMiddleware(role: configuration.role))
    }
    let operations = try OperationsRoutes(jobs: jobs, metrics: metrics)
    operations.addRoutes(to: router)
    try WebRoutes(openAPIDocument: operations.document).addRoutes(to: router)
    let api = JobsAPI(
        jobs: jobs, minFreeDiskBytes: configuration.minFreeDiskBytes, logger: logger, webhooks: store, transcriber: transcriber)
    // A worker node answers the health checks of the document, not the job operations.
    let transport = OperationFilter(base: router, role: configuration.role)
    try api.registerHandlers(
        on: transport, configuration: APIJSON.runtimeConfiguration, middlewares: [OpenAPIErrorMiddleware(logger: logger)])

    // Hummingbird adds the HTTP server last: on SIGTERM it stops accepting first, then the cleaner, then the
    // workers finish or release their jobs, then the webhook dispatcher finishes its attempts in flight (what is
    // left is delivered after the restart), then the database pool closes.
    // The idle timeout closes connections that send nothing: a request head that never completes, a stopped
    // body, an idle keep-alive connection (a response being computed does not count as idle).
    // Every connection counts against one budget and must send its head in time and its body at a minimum rate
    // (ConnectionGuard): no client holds descriptors without sending.
    // Connections, uploads, the database and decoder pipes all need descriptors: take what the system allows.
    let descriptorLimit = DescriptorLimit.raiseSoftLimit()
    let budget = ConnectionBudget(maxConnections: configuration.maxConnections
        ?? DescriptorLimit.defaultMaxConnections(forLimit: descriptorLimit))
    let connectionLogger = logger
    let guardSettings = ConnectionGuard.Settings(
        headerTimeout: .milliseconds(Int64(configuration.headerTimeout * 1000)), minBodyRate: Int(configuration.minUploadRate))
    var app = Application(
        router: router,
        server: .http1(configuration: .init(
            additionalChannelHandlers: [ConnectionGuard(budget: budget, settings: guardSettings, logger: connectionLogger)],
            idleTimeout: .milliseconds(Int64(configuration.idleTimeout * 1000)))),
        // A deep accept queue: under a connection flood a real client's SYN waits its turn instead of being
        // dropped and retried a second later (the kernel caps it at net.core.somaxconn).
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "steno", backlog: 4096),
        services: services,
        onServerRunning: { [logger] channel in
            // The address actually bound (port 0 resolves here): scripts and tests that start a server on a
            // free port read it from this line.
            let port = channel.localAddress?.port ?? configuration.port
            let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
            logger.notice("listening on http://\(host):\(port)")
        },
        logger: logger)
    // Listen once the schema is there (at once with SQLite).
    app.beforeServerStarts { _ = await ready.waitUnlessShuttingDown() }
    return StenoService(
        app: app, store: store, blobs: blobs, jobs: jobs, workers: workers, cleaner: cleaner, metrics: metrics, nodeID: nodeID,
        database: database, webhooks: webhooks)
}

/// The request budgets: in the database when nodes share one (a tenant's rate holds across all of them), else
/// in this process.
private func rateLimiter(_ configuration: ServerConfiguration, _ database: PostgresDatabase?, _ logger: Logger) -> (any RateLimiter)? {
    guard let limit = configuration.rateLimit else { return nil }
    guard let database else { return InMemoryRateLimiter(limit: limit) }
    return PostgresRateLimiter(
        limit: limit, client: database.client,
        timeout: .milliseconds(Int64(configuration.databaseTimeout * 1000)), logger: logger)
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

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PostgresNIO
import StenoServer
import Testing

/// Several real `steno serve` processes (release build, real engine) on one real PostgreSQL: the distributed
/// mode end to end. `make test` builds the `steno` binary first.
@Suite(.requiresPostgres, .postgresServer, .serialized) struct ClusterTests {
    private var server: PostgresTestServer {
        get throws { try #require(PostgresTestServer.current, "the suite's .postgresServer trait starts it") }
    }

    /// An API node, an `all` node and a worker node. Two dozen recordings go in through both API nodes; the
    /// worker node is SIGKILLed while it holds a job. Every job completes exactly once (the killed one on its
    /// second attempt, on the other node, after its lease expired), each result is read through the API node
    /// that did not take the upload, and with a retrieval grace of 0 no blob is left afterwards.
    @Test func threeNodesShareTheQueueAndSurviveAKilledWorker() async throws {
        let clips = try ShortClips.all()
        try await server.withNamedDatabase { url, clients in
            let database = clients[0]
            let api = try ServeProcess.node(role: "api", database: url)
            let both = try ServeProcess.node(role: "all", database: url)
            let worker = try ServeProcess.node(role: "worker", database: url)
            defer { for node in [api, both, worker] { node.kill() } }
            for node in [api, both, worker] { try await node.waitUntilHealthy() }
            let workerID = try #require(worker.nodeID)
            #expect(workerID != both.nodeID)

            // A worker node serves health and metrics, not jobs.
            #expect(try await LiveHTTP.get(worker.base.appendingPathComponent("readyz")).status == 200)
            #expect(try await LiveHTTP.get(worker.base.appendingPathComponent("metrics")).status == 200)
            let refused = try await LiveHTTP.get(worker.base.appendingPathComponent("transcribe"))
            #expect(refused.status == 404)

            var jobs: [(id: String, clip: ShortClips.Clip, via: ServeProcess)] = []
            for index in 0..<24 {
                let clip = clips[index % clips.count]
                let node = index.isMultiple(of: 2) ? api : both
                let (status, body) = try await LiveHTTP.upload(clip.file, to: node.base)
                #expect(status == 202)
                let id = try TestJSON.decoder.decode(Components.Schemas.JobCreated.self, from: body).jobId
                jobs.append((id, clip, node))
            }

            // Kill the worker node while it holds a job.
            var victim: String?
            try await database.waitUntil(timeout: 120, "the worker node holds a job") {
                let rows = try await database.query("SELECT id, lease_owner FROM steno_jobs WHERE state = 'processing'").collect()
                for row in rows {
                    let (id, owner) = try row.decode((UUID, String?).self)
                    if owner?.hasPrefix(workerID + "-") == true { victim = id.uuidString.lowercased() }
                }
                return victim != nil
            }
            worker.kill()
            let killed = try #require(victim)

            try await database.waitUntil(timeout: 400, "every job completed") {
                try await database.count("SELECT count(*) FROM steno_jobs WHERE state NOT IN ('completed', 'failed', 'cancelled')") == 0
            }
            let rows = try await database.query("SELECT id, state, attempts FROM steno_jobs").collect()
                .map { try $0.decode((UUID, String, Int).self) }
            #expect(rows.count == jobs.count, "no job lost, none duplicated")
            #expect(rows.allSatisfy { $0.1 == "completed" }, "\(rows.filter { $0.1 != "completed" })")
            for (id, _, attempts) in rows {
                let expected = id.uuidString.lowercased() == killed ? 2 : 1
                #expect(attempts == expected, "job \(id): \(attempts) attempts")
            }
            // One result per job: the killed attempt wrote none, and nothing ran twice.
            #expect(try await database.count("SELECT count(*) FROM steno_blobs WHERE name LIKE 'results/%'") == jobs.count)
            #expect(try await database.count("SELECT count(*) FROM steno_blobs WHERE name LIKE 'audio/%'") == jobs.count)

            // Each result through the API node that did not take the upload.
            for job in jobs {
                let other = job.via === api ? both : api
                let (status, body) = try await LiveHTTP.get(other.base.appendingPathComponent("transcribe/\(job.id)"))
                #expect(status == 200)
                let text = try TestJSON.decoder.decode(Components.Schemas.JobStatus.self, from: body).result?.text ?? ""
                #expect(ShortClips.recall(text, reference: job.clip.reference) >= 0.6, "\(job.clip.file.lastPathComponent): \(text)")
            }
            // Retrieval grace 0: every blob went with its retrieval, and the ids answer 410 on both nodes.
            #expect(try await database.count("SELECT count(*) FROM steno_blobs") == 0)
            #expect(try await database.count("SELECT count(*) FROM steno_blob_chunks") == 0)
            #expect(try await LiveHTTP.get(api.base.appendingPathComponent("transcribe/\(jobs[1].id)")).status == 410)
            #expect(try await LiveHTTP.get(both.base.appendingPathComponent("transcribe/\(jobs[0].id)")).status == 410)
            for node in [api, both] { #expect(node.process.isRunning) }
        }
    }

    /// An API node and a worker node that polls only once a minute, so every prompt start proves a notification.
    /// PostgreSQL is stopped while jobs wait and one runs: the API answers 503 `database_unavailable` (and
    /// `/healthz` still 200) without crashing; once it is back, both nodes reconnect by themselves, the running
    /// job's outcome is written, no accepted job is lost, and a new submit wakes the worker at once again.
    @Test func aDatabaseRestartLosesNoAcceptedJob() async throws {
        let clips = try ShortClips.all()
        let server = try server
        try await server.withNamedDatabase { url, clients in
            let database = clients[0]
            let api = try ServeProcess.node(role: "api", database: url)
            let worker = try ServeProcess.node(role: "worker", database: url, extra: ["STENO_POLL_INTERVAL": "60s"])
            defer { for node in [api, worker] { node.kill() } }
            for node in [api, worker] { try await node.waitUntilHealthy() }

            /// Submits to the idle worker and returns the seconds from acceptance to start.
            func startLatency(_ clip: ShortClips.Clip) async throws -> Double {
                let (status, body) = try await LiveHTTP.upload(clip.file, to: api.base)
                #expect(status == 202)
                let id = try #require(UUID(uuidString: try TestJSON.decoder.decode(Components.Schemas.JobCreated.self, from: body).jobId))
                try await database.waitUntil(timeout: 30, "job \(id) started") {
                    try await database.count("SELECT count(*) FROM steno_jobs WHERE id = \(id) AND started_at IS NOT NULL") == 1
                }
                let (created, started) = try await database.query("SELECT created_at, started_at FROM steno_jobs WHERE id = \(id)")
                    .collect().first!.decode((Date, Date).self)
                return started.timeIntervalSince(created)
            }
            let before = try await startLatency(clips[4])
            #expect(before < 2, "LISTEN/NOTIFY woke the worker in \(before) s")

            var accepted = 1
            for clip in clips.prefix(6) {
                #expect(try await LiveHTTP.upload(clip.file, to: api.base).status == 202)
                accepted += 1
            }
            try await database.waitUntil(timeout: 60, "a job is running") {
                try await database.count("SELECT count(*) FROM steno_jobs WHERE state = 'processing'") == 1
            }

            try await server.stopForRestart()
            let down = try await LiveHTTP.get(api.base.appendingPathComponent("transcribe"))
            #expect(down.status == 503)
            #expect(LiveHTTP.errorCode(down.body) == "database_unavailable")
            let upload = try await LiveHTTP.upload(clips[0].file, to: api.base)
            #expect(upload.status == 503)
            #expect(LiveHTTP.errorCode(upload.body) == "database_unavailable")
            #expect(try await LiveHTTP.get(api.base.appendingPathComponent("healthz")).status == 200)
            #expect(try await LiveHTTP.get(api.base.appendingPathComponent("readyz")).status == 503)
            #expect(try await LiveHTTP.get(worker.base.appendingPathComponent("readyz")).status == 503)
            try await Task.sleep(for: .seconds(2))
            #expect(api.process.isRunning && worker.process.isRunning)
            try await server.startAgain()

            // The API node reconnects by itself: a submit is accepted again within seconds.
            var afterRestart = 0
            for _ in 0..<100 where afterRestart == 0 {
                if try await LiveHTTP.upload(clips[1].file, to: api.base).status == 202 { afterRestart = 1 } else {
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            #expect(afterRestart == 1)
            accepted += afterRestart

            try await database.waitUntil(timeout: 300, "every accepted job completed") {
                try await database.count("SELECT count(*) FROM steno_jobs WHERE state = 'completed'") == accepted
            }
            #expect(try await database.count("SELECT count(*) FROM steno_jobs") == accepted)
            // The worker's LISTEN connection came back too: an idle worker starts a new job at once.
            let after = try await startLatency(clips[6])
            #expect(after < 2, "after the restart LISTEN/NOTIFY woke the worker in \(after) s")
            print("cluster: submit-to-start on an idle worker node polling every 60 s: \(Int(before * 1000)) ms before, \(Int(after * 1000)) ms after the database restart")
            #expect(api.process.isRunning && worker.process.isRunning)
            #expect(worker.logText.contains("listening for new jobs"))
        }
    }
}

import Foundation
import StenoServer
import Testing

/// Reading keys, limits and timeouts from settings, and the key ring's matching.
@Suite struct AccessConfigurationTests {
    let alice = "steno_alice-key-0123456789abcdefghij"

    @Test func keysFromFileAndEnvironment() throws {
        let directory = try TemporaryDirectory()
        let file = directory.url.appendingPathComponent("keys")
        let bob = APIKeyRing.generateKey()
        try """
            # Steno keys
            alice \(alice)

            \(APIKeyRing.fileLine(tenant: "bob", key: bob))
            """.write(to: file, atomically: true, encoding: .utf8)
        let carol = APIKeyRing.generateKey()
        let configuration = try ServerConfiguration(settings: [
            "STENO_API_KEYS_FILE": file.path, "STENO_API_KEYS": "carol=\(carol), bob=\(APIKeyRing.generateKey())",
        ])
        let keys = configuration.apiKeys
        #expect(keys.count == 4)
        #expect(keys.tenants == ["alice", "bob", "carol"])
        #expect(keys.tenant(forKey: alice) == "alice")
        #expect(keys.tenant(forKey: bob) == "bob")
        #expect(keys.tenant(forKey: carol) == "carol")
        #expect(keys.tenant(forKey: alice + "x") == nil)
        #expect(keys.tenant(forKey: "") == nil)
        #expect(bob.hasPrefix("steno_") && bob.count == 49 && bob != APIKeyRing.generateKey())
    }

    @Test(arguments: [
        "alice",                                    // one field
        "alice short",                              // too short to be a key
        "al ice \(String(repeating: "k", count: 30))", // three fields
        "alice sha256:1234",                        // not 64 hex digits
        "alice sha256:" + String(repeating: "g", count: 64),
        "al/ice \(String(repeating: "k", count: 30))", // not a tenant name
    ])
    func malformedKeyLinesAreRefused(_ line: String) throws {
        var ring = APIKeyRing()
        #expect(throws: ConfigurationError.self) { try ring.add(fileText: "# ok\n" + line, source: "keys") }
        #expect(ring.isEmpty)
    }

    @Test func aKeyListedTwiceIsRefused() throws {
        var ring = APIKeyRing()
        try ring.add(tenant: "alice", key: alice)
        #expect(throws: ConfigurationError.self) { try ring.add(fileText: APIKeyRing.fileLine(tenant: "mallory", key: alice), source: "keys") }
        #expect(ring.tenant(forKey: alice) == "alice")
        #expect(ring.count == 1)
    }

    @Test func limitsAndTimeouts() throws {
        let configuration = try ServerConfiguration(settings: [
            "STENO_MAX_JOBS_PER_KEY": "5", "STENO_RATE_LIMIT": "600/m", "STENO_IDLE_TIMEOUT": "2m",
            "STENO_UPLOAD_STALL_TIMEOUT": "10s", "STENO_OPEN": "true",
        ])
        #expect(configuration.maxJobsPerKey == 5)
        #expect(configuration.rateLimit == RateLimit(requests: 600, period: 60))
        #expect(configuration.idleTimeout == 120)
        #expect(configuration.uploadStallTimeout == 10)
        #expect(configuration.allowOpen)
        let defaults = try ServerConfiguration(settings: ["STENO_MAX_JOBS_PER_KEY": "0", "STENO_RATE_LIMIT": "off"])
        #expect(defaults.maxJobsPerKey == nil && defaults.rateLimit == nil && !defaults.allowOpen && defaults.apiKeys.isEmpty)
        #expect(RateLimit(parsing: "20/s") == RateLimit(requests: 20, period: 1))
        #expect(RateLimit(parsing: "5000/h") == RateLimit(requests: 5000, period: 3600))
        for bad in [["STENO_RATE_LIMIT": "20"], ["STENO_RATE_LIMIT": "0/s"], ["STENO_RATE_LIMIT": "20/d"],
                    ["STENO_MAX_JOBS_PER_KEY": "-1"], ["STENO_IDLE_TIMEOUT": "0"], ["STENO_OPEN": "maybe"],
                    ["STENO_API_KEYS": "alice"], ["STENO_API_KEYS_FILE": "/nonexistent/keys"]] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try ServerConfiguration(settings: bad) }
        }
        #expect(ServerConfiguration.unknownVariables(in: ["STENO_API_KEY": "x", "STENO_RATE_LIMT": "1/s"]) == ["STENO_RATE_LIMT"])
    }
}

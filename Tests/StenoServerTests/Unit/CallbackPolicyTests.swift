import Foundation
import StenoServer
import Testing

@Suite struct CallbackPolicyTests {
    @Test(arguments: [
        ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("10.0.0.1", "private"), ("172.31.255.255", "private"),
        ("192.168.0.10", "private"), ("169.254.169.254", "link-local"), ("100.127.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"), ("239.1.2.3", "multicast"), ("255.255.255.255", "reserved"),
        ("::1", "loopback"), ("::", "unspecified"), ("fd12:3456::1", "private"), ("fc00::1", "private"),
        ("fe80::abcd", "link-local"), ("ff02::1", "multicast"), ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"), ("64:ff9b::7f00:1", "loopback"),
        // Translation forms a hostile client tried: local-use NAT64, IPv4-translated, 6to4 of a private address.
        ("64:ff9b:1::7f00:1", "NAT64 local-use"), ("::ffff:0:127.0.0.1", "loopback"), ("::ffff:0:a00:1", "private"),
        ("2002:7f00:1::1", "loopback"), ("2002:c0a8:101::1", "private"), ("2001:0:4136:e378::1", "Teredo"),
        ("100::1", "discard-only"), ("2001:db8::1", "documentation"),
    ])
    func blocksInwardAddresses(_ address: String, _ kind: String) throws {
        #expect(CallbackPolicy().blockedKind(try #require(IPAddress(address))) == kind)
    }

    @Test(arguments: ["8.8.8.8", "172.32.0.1", "100.128.0.1", "192.169.0.1", "2606:4700::1111", "::ffff:1.1.1.1",
                      "64:ff9b::808:808", "2002:808:808::1"])
    func allowsPublicAddresses(_ address: String) throws {
        #expect(CallbackPolicy().blockedKind(try #require(IPAddress(address))) == nil)
    }

    @Test func allowlistOpensBlocksAndHosts() async throws {
        let policy = try CallbackPolicy(allowlist: ["10.0.0.0/8", "::1", "localhost"])
        #expect(policy.blockedKind(IPAddress("10.9.9.9")!) == nil)
        #expect(policy.blockedKind(IPAddress("::ffff:10.9.9.9")!) == nil)
        #expect(policy.blockedKind(IPAddress("::1")!) == nil)
        #expect(policy.blockedKind(IPAddress("127.0.0.1")!) == "loopback")
        #expect(policy.blockedKind(IPAddress("192.168.1.1")!) == "private")
        // A host name on the list passes whatever it resolves to.
        _ = try await policy.check("http://LOCALHOST:8080/hook")
        await #expect(throws: CallbackRefusal.self) { try await CallbackPolicy().check("http://localhost:8080/hook") }
        #expect(throws: CallbackRefusal.self) { try CallbackPolicy(allowlist: ["10.0.0.0/33"]) }
        #expect(throws: CallbackRefusal.self) { try CallbackPolicy(allowlist: ["not a host"]) }
    }

    @Test func networksMatchByPrefix() throws {
        let network = try #require(IPNetwork("172.16.0.0/12"))
        #expect(network.contains(IPAddress("172.16.0.0")!))
        #expect(network.contains(IPAddress("172.31.255.255")!))
        #expect(!network.contains(IPAddress("172.32.0.0")!))
        #expect(!network.contains(IPAddress("::ffff:172.16.0.1")!), "families never match")
        #expect(IPNetwork("0.0.0.0/0")!.contains(IPAddress("203.0.113.7")!))
        #expect(IPNetwork("2001:db8::/32")!.contains(IPAddress("2001:db8:ffff::1")!))
        #expect(IPAddress("::ffff:10.0.0.1")?.unmapped == IPAddress("10.0.0.1"))
    }

    @Test func settingsParseAndRefuseBadValues() throws {
        let configuration = try ServerConfiguration(settings: [
            "STENO_WEBHOOK_ALLOW": "127.0.0.1, 10.0.0.0/8 hooks.internal", "STENO_WEBHOOK_SECRET": "0123456789abcdef0123",
            "STENO_WEBHOOK_TIMEOUT": "3s", "STENO_WEBHOOK_MAX_ATTEMPTS": "4", "STENO_WEBHOOK_BACKOFF": "500ms",
            "STENO_PUBLIC_URL": "https://steno.example.com",
        ])
        #expect(configuration.webhookAllow == ["127.0.0.1", "10.0.0.0/8", "hooks.internal"])
        #expect(configuration.webhookSecret == "0123456789abcdef0123")
        #expect(configuration.webhookTimeout == 3)
        #expect(configuration.webhookMaxAttempts == 4)
        #expect(configuration.webhookBackoff == 0.5)
        #expect(configuration.publicURL == "https://steno.example.com")
        #expect(throws: ConfigurationError.self) { try ServerConfiguration(settings: ["STENO_WEBHOOK_ALLOW": "10.0.0.0/40"]) }
        #expect(throws: ConfigurationError.self) { try ServerConfiguration(settings: ["STENO_WEBHOOK_SECRET": "short"]) }
        #expect(throws: ConfigurationError.self) { try ServerConfiguration(settings: ["STENO_PUBLIC_URL": "steno.local"]) }
    }

    @Test func secretIsMadeOnceAndKept() throws {
        let directory = try TemporaryDirectory()
        let first = try #require(try WebhookSigner.secret(configured: nil, dataDirectory: directory.url))
        #expect(first.count == 64)
        // Nodes sharing a database cannot each make one.
        #expect(try WebhookSigner.secret(configured: nil, dataDirectory: directory.url, sharedDatabase: true) == nil)
        #expect(try WebhookSigner.secret(configured: nil, dataDirectory: directory.url) == first)
        #expect(try WebhookSigner.secret(configured: "given-secret-123456", dataDirectory: directory.url) == "given-secret-123456")
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.url.appendingPathComponent("webhook-secret").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }
}

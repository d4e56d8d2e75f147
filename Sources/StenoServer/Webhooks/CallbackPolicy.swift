package import Foundation
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Why a callback URL is refused. `isTransient` marks what may pass later (the name did not resolve), as opposed
/// to what never will (a private address, a bad scheme).
package struct CallbackRefusal: Error, Sendable, CustomStringConvertible {
    package var reason: String
    package var isTransient = false
    /// The host resolved, to an address that may not be called (as opposed to a URL or name that is wrong).
    package var isBlockedAddress = false

    package var description: String { reason }
}

/// A callback URL taken apart, once it passed the syntax checks.
package struct CallbackURL: Sendable {
    package var url: URL
    /// Lowercased, without IPv6 brackets.
    package var host: String
    package var port: Int
    package var isHTTPS: Bool
}

/// Which callback URLs Steno will call (against server-side request forgery): http or https, no credentials in
/// the URL, and a host whose every address is public. Loopback, private (RFC 1918, fc00::/7), link-local
/// (169.254/16 with the cloud metadata address, fe80::/10), carrier-grade NAT, unspecified, multicast and
/// reserved addresses are refused unless the allowlist names the host or a block holding the address. The
/// address is checked at submission and again before every attempt, and the attempt connects to the address
/// checked (no second lookup that DNS rebinding could answer differently).
package struct CallbackPolicy: Sendable {
    package static let maxURLBytes = 2048

    /// Host names (exact, case-insensitive) whose addresses are all allowed.
    package private(set) var allowedHosts: Set<String> = []
    package private(set) var allowedNetworks: [IPNetwork] = []
    /// How long a lookup may take.
    package var resolveTimeout: Duration = .seconds(5)
    /// Answers lookups instead of the system resolver (tests use it to give names addresses of their choosing).
    package var resolver: (@Sendable (_ host: String) -> [IPAddress])?
    /// Set when this server takes no callbacks at all (no signing secret), with the reason clients are told.
    package var unavailable: String?
    /// What the URL is, as refusals name it ("the callback URL …", "the audio URL …").
    package var subject = "callback"

    /// Blocks never called without the allowlist, with the name given in refusals. First match wins.
    static let blocked: [(IPNetwork, String)] = [
        ("0.0.0.0/8", "unspecified"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"), ("192.168.0.0/16", "private"), ("198.18.0.0/15", "reserved"),
        ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("::/96", "IPv4-compatible"), ("fc00::/7", "private"),
        ("fe80::/10", "link-local"), ("fec0::/10", "site-local"), ("ff00::/8", "multicast"),
        // Translation prefixes whose targets are chosen by a local translator (RFC 8215), discard-only (RFC
        // 6666), Teredo (its client address is obfuscated, so it cannot be checked) and documentation.
        ("64:ff9b:1::/48", "NAT64 local-use"), ("100::/64", "discard-only"), ("2001::/32", "Teredo"),
        ("2001:db8::/32", "documentation"),
    ].map { (IPNetwork($0.0)!, $0.1) }

    package init() {}

    /// `entries` are host names and CIDR blocks or addresses (`127.0.0.1`, `10.0.0.0/8`, `::1`, `hooks.internal`).
    package init(allowlist entries: [String]) throws {
        for entry in entries.map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            if let network = IPNetwork(entry) {
                allowedNetworks.append(network)
            } else if entry.contains("/") || entry.contains(":") || entry.contains(where: \.isWhitespace) {
                throw CallbackRefusal(reason: "'\(entry)' is neither a host name nor an address block")
            } else {
                allowedHosts.insert(Self.normalised(entry))
            }
        }
    }

    /// The entries of an allowlist as `STENO_WEBHOOK_ALLOW` writes it: separated by commas or spaces.
    package static func entries(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
    }

    // MARK: - Checks

    /// The syntax checks; no lookup.
    package func parse(_ text: String) throws -> CallbackURL {
        guard text.utf8.count <= Self.maxURLBytes else {
            throw CallbackRefusal(reason: "the \(subject) URL is longer than \(Self.maxURLBytes) bytes")
        }
        guard !text.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7f }),
              let components = URLComponents(string: text), let url = components.url else {
            throw CallbackRefusal(reason: "the \(subject) URL is not a valid URL")
        }
        let scheme = components.scheme?.lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw CallbackRefusal(reason: "the \(subject) URL must use http or https")
        }
        guard components.user == nil, components.password == nil else {
            throw CallbackRefusal(reason: "the \(subject) URL must not carry credentials" + (subject == "callback" ? "; send them in the callback header" : ""))
        }
        guard let rawHost = components.host, !rawHost.isEmpty else {
            throw CallbackRefusal(reason: "the \(subject) URL has no host")
        }
        let host = Self.normalised(rawHost)
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else { throw CallbackRefusal(reason: "the \(subject) URL's port is out of range") }
        return CallbackURL(url: url, host: host, port: port, isHTTPS: scheme == "https")
    }

    /// The addresses the URL's host has now, every one of them allowed; throws when any is not (a name with
    /// one private address among public ones is refused: the caller cannot choose which one is used).
    package func allowedAddresses(for callback: CallbackURL) async throws -> [IPAddress] {
        let addresses: [IPAddress]
        if let literal = IPAddress(callback.host) {
            addresses = [literal]
        } else {
            addresses = try await resolve(callback.host, port: callback.port)
        }
        if allowedHosts.contains(callback.host) { return addresses }
        for address in addresses {
            if let kind = blockedKind(address) {
                throw CallbackRefusal(
                    reason: "the \(subject) host \(callback.host) resolves to a \(kind) address (\(address)), which is not allowed",
                    isBlockedAddress: true)
            }
        }
        return addresses
    }

    /// Parses and checks a URL the way submission does.
    package func check(_ text: String) async throws -> CallbackURL {
        let callback = try parse(text)
        _ = try await allowedAddresses(for: callback)
        return callback
    }

    /// The kind of a refused address, or nil when it may be called.
    package func blockedKind(_ address: IPAddress) -> String? {
        let plain = address.unmapped
        if allowedNetworks.contains(where: { $0.contains(address) || $0.contains(plain) }) { return nil }
        return Self.blocked.first { $0.0.contains(plain) }?.1
    }

    // MARK: - Lookup

    private func resolve(_ host: String, port: Int) async throws -> [IPAddress] {
        if let resolver {
            let addresses = resolver(host)
            guard !addresses.isEmpty else { throw CallbackRefusal(reason: "the \(subject) host \(host) does not resolve") }
            return addresses
        }
        let outcome: Result<[IPAddress], CallbackRefusal>? = await withTaskGroup(of: Result<[IPAddress], CallbackRefusal>?.self) { group in
            group.addTask {
                do {
                    // getaddrinfo blocks: it runs on NIO's thread pool, never on the cooperative pool.
                    return try await NIOThreadPool.singleton.runIfActive { Self.lookUp(host, port: port, subject: subject) }
                } catch {
                    return .failure(CallbackRefusal(reason: "the \(subject) host \(host) could not be looked up", isTransient: true))
                }
            }
            group.addTask { [resolveTimeout] in
                try? await Task.sleep(for: resolveTimeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let outcome else {
            throw CallbackRefusal(reason: "the \(subject) host \(host) did not resolve in time", isTransient: true)
        }
        return try outcome.get()
    }

    private static func lookUp(_ host: String, port: Int, subject: String) -> Result<[IPAddress], CallbackRefusal> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            // A name that does not exist will not exist at the next attempt either; a failing resolver may recover.
            let permanent = status == EAI_NONAME
            return .failure(CallbackRefusal(
                reason: "the \(subject) host \(host) does not resolve (\(String(cString: gai_strerror(status))))",
                isTransient: !permanent))
        }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            if let socketAddress = current.pointee.ai_addr {
                switch Int32(socketAddress.pointee.sa_family) {
                case AF_INET:
                    socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        var value = pointer.pointee.sin_addr
                        if let address = IPAddress(bytes: withUnsafeBytes(of: &value) { Array($0) }) { addresses.append(address) }
                    }
                case AF_INET6:
                    socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        var value = pointer.pointee.sin6_addr
                        if let address = IPAddress(bytes: withUnsafeBytes(of: &value) { Array($0) }) { addresses.append(address) }
                    }
                default:
                    break
                }
            }
            entry = current.pointee.ai_next
        }
        var seen = Set<IPAddress>()
        addresses = addresses.filter { seen.insert($0).inserted }
        guard !addresses.isEmpty else {
            return .failure(CallbackRefusal(reason: "the \(subject) host \(host) has no address", isTransient: true))
        }
        return .success(addresses)
    }

    private static func normalised(_ host: String) -> String {
        var host = host.lowercased()
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.hasSuffix(".") { host.removeLast() }
        return host
    }
}

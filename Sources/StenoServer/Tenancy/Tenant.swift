/// Tenants are the holders of API keys: each job belongs to the tenant whose key created it, and no other
/// tenant can see it. A tenant is a name from the keys file; open mode (no keys) has one anonymous tenant.
public enum Tenant {
    /// The tenant of open mode, and of jobs created before keys were configured. No key maps to it (tenant names
    /// are never empty), so once keys are configured those jobs are visible to no one and expire.
    public static let anonymous = ""

    /// The tenant of the request being handled, set by `AuthMiddleware` around the route. The generated handlers
    /// get only their typed input, so they read it from here. Unset means anonymous, which in keyed mode owns
    /// nothing: a route that somehow escaped the middleware sees no one's jobs.
    @TaskLocal public static var current: String = anonymous

    /// Names that may appear in a keys file: letters, digits, `.`, `_`, `-`, 1 to 64 characters.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }
    }
}

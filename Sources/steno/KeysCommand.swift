import ArgumentParser
import StenoServer

/// `steno keys generate NAME`: makes a new API key for a tenant.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage API keys.", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new random API key for a tenant, and the line that adds it to a keys file.",
            discussion: """
                The key is shown once: give it to the client (STENO_API_KEY or --api-key). The keys file line holds \
                only its SHA-256 digest, so the server never stores the key itself.
                """)

        @Argument(help: "Tenant name: letters, digits, '.', '_', '-' (at most 64).") var name: String

        func validate() throws {
            guard Tenant.isValidName(name) else { throw ValidationError("'\(name)' is not a tenant name (letters, digits, '.', '_', '-'; at most 64)") }
        }

        func run() {
            let key = APIKeyRing.generateKey()
            print("key:  \(key)")
            print("line: \(APIKeyRing.fileLine(tenant: name, key: key))")
        }
    }
}

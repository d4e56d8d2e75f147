import Foundation

/// A throwaway certificate authority made with the `openssl` command (Debian's `openssl` package, which
/// `scripts/setup.sh` installs): its certificate in `<name>-ca.crt`, and the server certificates it signs.
struct TestCertificateAuthority {
    let directory: URL
    private let name: String

    var certificate: URL { directory.appendingPathComponent("\(name)-ca.crt") }
    private var key: URL { directory.appendingPathComponent("\(name)-ca.key") }

    /// A new authority (an EC P-256 key, valid two days) whose files are named after `name` in `directory`.
    init(_ name: String, in directory: URL) throws {
        self.name = name
        self.directory = directory
        try Self.openssl(in: directory, [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key.path, "-out", certificate.path, "-days", "2", "-subj", "/CN=Steno test CA \(name)",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
    }

    /// A server certificate and its key, signed by this authority, valid for exactly the `subjectAltName`
    /// entries given (`DNS:localhost`, `IP:127.0.0.1`): (certificate path, key path).
    func issueServerCertificate(_ file: String, names: [String]) throws -> (certificate: URL, key: URL) {
        let certificate = directory.appendingPathComponent("\(file).crt")
        let key = directory.appendingPathComponent("\(file).key")
        let request = directory.appendingPathComponent("\(file).csr")
        let extensions = directory.appendingPathComponent("\(file).ext")
        try Data("""
            subjectAltName = \(names.joined(separator: ","))
            basicConstraints = critical,CA:FALSE
            keyUsage = critical,digitalSignature
            extendedKeyUsage = serverAuth

            """.utf8).write(to: extensions)
        try Self.openssl(in: directory, [
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key.path, "-out", request.path, "-subj", "/CN=\(file)",
        ])
        try Self.openssl(in: directory, [
            "x509", "-req", "-in", request.path, "-CA", self.certificate.path, "-CAkey", self.key.path,
            "-set_serial", String(UInt32.random(in: 1...UInt32.max)), "-days", "2",
            "-extfile", extensions.path, "-out", certificate.path,
        ])
        return (certificate, key)
    }

    private static func openssl(in directory: URL, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.currentDirectoryURL = directory
        let errors = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "openssl \(arguments.prefix(1).joined()) failed (status \(process.terminationStatus); "
                + "is Debian's openssl package installed? scripts/setup.sh installs it): \(String(decoding: output, as: UTF8.self))")
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }
}

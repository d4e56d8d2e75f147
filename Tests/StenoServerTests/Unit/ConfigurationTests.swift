import Foundation
import StenoServer
import Testing

@Suite struct ConfigurationTests {
    @Test func durationsAndSizes() {
        #expect(ValueParser.seconds("90") == 90)
        #expect(ValueParser.seconds("90s") == 90)
        #expect(ValueParser.seconds("10m") == 600)
        #expect(ValueParser.seconds("24h") == 86400)
        #expect(ValueParser.seconds("1h30m") == 5400)
        #expect(ValueParser.seconds("500ms") == 0.5)
        #expect(ValueParser.seconds("0") == 0)
        #expect(ValueParser.seconds("ten") == nil)
        #expect(ValueParser.seconds("5x") == nil)
        #expect(ValueParser.seconds("1h30") == nil)
        #expect(ValueParser.seconds("-5") == nil)
        #expect(ValueParser.bytes("1048576") == 1_048_576)
        #expect(ValueParser.bytes("512K") == Int64(524_288))
        #expect(ValueParser.bytes("100MB") == Int64(104_857_600))
        #expect(ValueParser.bytes("2GiB") == Int64(2_147_483_648))
        #expect(ValueParser.bytes("lots") == nil)
    }

    @Test func defaults() throws {
        let configuration = try ServerConfiguration(settings: [:])
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8080)
        #expect(configuration.dataDirectory.lastPathComponent == "data")
        #expect(configuration.modelDirectory.path.hasSuffix("models/tiny.en"))
        #expect(configuration.workers == 1)
        #expect(configuration.retention == 86400)
        #expect(configuration.retrievalGrace == 300)
        #expect(configuration.maxUploadBytes == 1 << 30)
    }

    @Test func settingsOverrideDefaults() throws {
        let configuration = try ServerConfiguration(settings: [
            "STENO_HOST": "0.0.0.0", "STENO_PORT": "9000", "STENO_DATA_DIR": "/srv/steno", "STENO_WORKERS": "2",
            "STENO_THREADS": "4", "STENO_RETENTION": "2h", "STENO_RETRIEVAL_GRACE": "0", "STENO_MAX_UPLOAD_BYTES": "200M",
            "STENO_MAX_AUDIO_SECONDS": "1h", "STENO_LEASE": "20s", "STENO_LOG_LEVEL": "debug", "STENO_URL": "http://x",
        ])
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.port == 9000)
        #expect(configuration.dataDirectory.path == "/srv/steno")
        #expect(configuration.workers == 2)
        #expect(configuration.threads == 4)
        #expect(configuration.retention == 7200)
        #expect(configuration.retrievalGrace == 0)
        #expect(configuration.maxUploadBytes == 200 << 20)
        #expect(configuration.maxAudioSeconds == 3600)
        #expect(configuration.leaseDuration == 20)
        #expect(configuration.heartbeatInterval == 5)
        #expect(configuration.logLevel == .debug)
    }

    @Test func typosAreReported() {
        #expect(ServerConfiguration.unknownVariables(in: ["STENO_WORKRES": "2", "STENO_PORT": "1", "STENO_URL": "x", "HOME": "/"]) == ["STENO_WORKRES"])
    }

    @Test(arguments: [
        ["STENO_PORT": "http"], ["STENO_PORT": "70000"], ["STENO_PORT": "-1"], ["STENO_WORKERS": "0"], ["STENO_RETENTION": "a day"],
        ["STENO_MAX_UPLOAD_BYTES": "big"], ["STENO_LOG_LEVEL": "loud"], ["STENO_THREADS": "0"],
    ])
    func badSettingsAreRefused(_ settings: [String: String]) {
        #expect(throws: ConfigurationError.self) { try ServerConfiguration(settings: settings) }
    }
}

import Foundation

/// Locations the engine-IO tests share: the installed model and Debian's recorded speech.
enum IOTestSupport {
    /// The repository root, found from this file's location (Engine/Tests/StenoEngineTests/…).
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The default tiny.en model, installed by `scripts/setup.sh`; `STENO_TEST_MODEL` overrides it.
    static let tinyEnModel: URL = {
        if let path = ProcessInfo.processInfo.environment["STENO_TEST_MODEL"] {
            return URL(fileURLWithPath: path)
        }
        return repositoryRoot.appendingPathComponent("models/tiny.en")
    }()

    /// Recorded speech from Debian's pocketsphinx-testdata (16 kHz mono 16-bit WAV).
    static let pocketsphinxData = URL(fileURLWithPath: "/usr/share/pocketsphinx/test/data")
    static let librivoxRecording = pocketsphinxData
        .appendingPathComponent("librivox/sense_and_sensibility_01_austen_64kb-0870.wav")
    static let cardsRecording = pocketsphinxData.appendingPathComponent("cards/001.wav")
}

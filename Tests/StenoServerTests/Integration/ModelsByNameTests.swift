import Foundation
import Hummingbird
import HummingbirdTesting
import StenoEngine
import StenoServer
import Testing

/// Two real models served at once (tiny.en and the multilingual base, installed by `make test-models`): jobs
/// go to the model they name, the upload checks are those of that model, and a memory budget that holds one
/// model at a time still completes jobs on both.
@Suite(.serialized) struct ModelsByNameTests {
    static let base = Repository.root.appendingPathComponent("models/whisper-base")
    /// An Asterisk prompt in Spanish and its transcript (Debian's asterisk-core-sounds-es).
    static let spanish = URL(fileURLWithPath: "/usr/share/asterisk/sounds/es/agent-incorrect.wav")
    static let spanishReference = "Clave incorrecta. Por favor, ingrese su numero de agente seguido por la tecla de numero"

    @Test func jobsGoToTheModelTheyName() async throws {
        let directory = try TemporaryDirectory()
        var configuration = ServerConfiguration.testing(dataDirectory: directory.url)
        configuration.models = [ModelSource(name: "tiny.en", directory: Fixtures.model), ModelSource(name: "base", directory: Self.base)]
        configuration.vadModel = Fixtures.vadModel
        // tiny.en counts about 150 MB, base about 290 MB: room for one of them at a time.
        configuration.modelMemoryBytes = 350 << 20
        let transcriber = try WhisperTranscriber(configuration: configuration)
        #expect(transcriber.loadedModels == ["tiny.en"])
        let service = try buildApplication(configuration: configuration, transcriber: transcriber)
        try await service.app.test(.live) { client in
            let readiness = try TestJSON.decode(Components.Schemas.Readiness.self, try await client.execute(uri: "/readyz", method: .get).body)
            #expect(readiness.models.map(\.name) == ["tiny.en", "base"])
            #expect(readiness.models.map(\._default) == [true, false])
            #expect(readiness.models.map(\.multilingual) == [false, true])

            // Refused at upload, with the chosen model's name: an unknown model, a language or task it lacks.
            let unknown = try await client.upload(MultipartForm(file: Data("x".utf8), fields: ["model": "large-v3"]))
            #expect(unknown.status == .unprocessableContent)
            #expect(try client.errorCode(unknown) == "model_not_found")
            #expect(String(buffer: unknown.body).contains("tiny.en, base"))
            let spanishOnEnglish = try await client.upload(MultipartForm(file: Data("x".utf8), fields: ["language": "es"]))
            #expect(try client.errorCode(spanishOnEnglish) == "unsupported_language")
            let translateOnEnglish = try await client.upload(MultipartForm(file: Data("x".utf8), fields: ["model": "tiny.en", "task": "translate"]))
            #expect(try client.errorCode(translateOnEnglish) == "unsupported_task")
            #expect(String(buffer: translateOnEnglish.body).contains("base"), "the message names the multilingual model")

            let english = try await client.submit(try Data(contentsOf: Fixtures.recording("0920")))
            let spanish = try await client.submit(try Data(contentsOf: Self.spanish), fields: ["model": "base", "language": "es"])
            for id in [english, spanish] {
                let job = try await client.wait(for: id, in: [.completed, .failed], store: service.store, timeout: 300)
                #expect(job.state == .completed, "\(job.errorCode ?? "") \(job.errorMessage ?? "")")
            }
            let englishStatus = try await client.status(english)
            #expect(englishStatus.options.model == "tiny.en")
            #expect(Fixtures.recall(englishStatus.result?.text ?? "", reference: try Fixtures.reference("0920")) >= 0.8)
            let spanishStatus = try await client.status(spanish)
            #expect(spanishStatus.options.model == "base")
            #expect(spanishStatus.result?.language == "es")
            let recall = Fixtures.recall(Self.unaccented(spanishStatus.result?.text ?? ""), reference: Self.spanishReference)
            #expect(recall >= 0.7, "\(spanishStatus.result?.text ?? "")")
            // The budget held: only the model used last stays loaded.
            #expect(transcriber.loadedModels == ["base"])
        }
    }

    static func unaccented(_ text: String) -> String {
        text.folding(options: .diacriticInsensitive, locale: Locale(identifier: "en"))
    }
}

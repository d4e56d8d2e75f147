import Foundation
import StenoEngine
import Testing

/// Hand-built WAV files for the cases encoders rarely produce.
@Suite struct WAVReaderTests {
    /// A WAV file: `fmt ` chunk (PCM tag, channels, rate, bits), optional extra chunks, then `data`.
    private func wav(
        tag: UInt16 = 1, channels: UInt16 = 1, rate: UInt32 = 16000, bits: UInt16 = 16,
        extraChunks: [(String, [UInt8])] = [], dataSize: UInt32? = nil, payload: [UInt8]
    ) -> Data {
        var body = Data("WAVE".utf8)
        func chunk(_ id: String, _ bytes: [UInt8], size: UInt32? = nil) {
            body += Data(id.utf8)
            body += le(size ?? UInt32(bytes.count))
            body += bytes
            if bytes.count % 2 == 1 { body.append(0) }
        }
        var fmt = Data()
        fmt += le(tag); fmt += le(channels); fmt += le(rate)
        fmt += le(rate * UInt32(channels) * UInt32(bits / 8)); fmt += le(channels * bits / 8); fmt += le(bits)
        chunk("fmt ", [UInt8](fmt))
        for (id, bytes) in extraChunks { chunk(id, bytes) }
        chunk("data", payload, size: dataSize)
        return Data("RIFF".utf8) + le(UInt32(body.count)) + body
    }

    private func le<T: FixedWidthInteger>(_ value: T) -> Data {
        withUnsafeBytes(of: value.littleEndian) { Data($0) }
    }

    private let pcm: [UInt8] = [0x00, 0x40, 0x00, 0xC0, 0xFF, 0x7F, 0x00, 0x80]   // 0.5, -0.5, max, min

    @Test func readsSixteenBitMono() throws {
        let samples = try #require(WAVReader.readSamples(from: wav(payload: pcm)))
        #expect(samples == [0.5, -0.5, 32767.0 / 32768, -1])
    }

    @Test func skipsOddSizedChunksAndReadsStreamedSizes() throws {
        let withList = wav(extraChunks: [("LIST", [1, 2, 3])], payload: pcm)
        #expect(WAVReader.readSamples(from: withList)?.count == 4)
        let streamed = wav(dataSize: 0xFFFF_FFFF, payload: pcm)
        #expect(WAVReader.readSamples(from: streamed)?.count == 4)
    }

    @Test func mixesStereoLikeFFmpeg() throws {
        let samples = try #require(WAVReader.readSamples(from: wav(channels: 2, payload: pcm)))
        let gain = Float(0.5.squareRoot())
        #expect(samples == [0.5 * gain + -0.5 * gain, 32767.0 / 32768 * gain + -1 * gain])
    }

    @Test func readsFloat() throws {
        let values: [Float] = [0.25, -1, 0.125]
        let payload = values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
        #expect(WAVReader.readSamples(from: wav(tag: 3, bits: 32, payload: payload)) == values)
    }

    @Test func leavesOtherFilesToFFmpeg() {
        #expect(WAVReader.readSamples(from: wav(rate: 44100, payload: pcm)) == nil)
        #expect(WAVReader.readSamples(from: wav(bits: 8, payload: pcm)) == nil)
        #expect(WAVReader.readSamples(from: wav(channels: 3, payload: pcm + pcm + pcm)) == nil)
        #expect(WAVReader.readSamples(from: wav(tag: 2, payload: pcm)) == nil)          // ADPCM
        #expect(WAVReader.readSamples(from: Data("ID3 not a wav at all".utf8)) == nil)
        #expect(WAVReader.readSamples(from: wav(payload: pcm).prefix(30)) == nil)       // cut in the header
    }
}

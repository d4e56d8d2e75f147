package import Foundation

/// Reads plain PCM WAV files that are already at Whisper's sample rate, so the common case needs no ffmpeg.
/// Handles 16-bit integer and 32-bit float samples (also in WAVE_FORMAT_EXTENSIBLE files), mono or stereo;
/// stereo is downmixed as ffmpeg does it, (left + right) · √½, so both paths give the same samples. Other
/// rates, sample formats and channel layouts are left to ffmpeg, whose downmix depends on the layout.
package enum WAVReader {
    /// What a read found.
    package enum Reading: Equatable {
        /// 16 kHz mono samples in [-1, 1].
        case samples([Float])
        /// More frames than the caller allows (nothing was converted).
        case tooLong
        /// Not a WAV this reader handles (another rate or sample format, compressed, malformed): use ffmpeg.
        case notPlainWAV
    }

    /// 16 kHz mono samples in [-1, 1], or nil when the file is not a WAV this reader handles (another rate or
    /// sample format, compressed, malformed) and should go through ffmpeg instead.
    package static func readSamples(from data: Data, sampleRate: Int = WhisperAudio.sampleRate) -> [Float]? {
        if case .samples(let samples) = readSamples(from: data, sampleRate: sampleRate, maxFrames: nil) { return samples }
        return nil
    }

    /// As `readSamples(from:sampleRate:)`, refusing files of more than `maxFrames` frames before converting any.
    package static func readSamples(from data: Data, sampleRate: Int, maxFrames: Int?) -> Reading {
        guard data.count >= 12, ascii(data, 0, 4) == "RIFF", ascii(data, 8, 4) == "WAVE" else { return .notPlainWAV }
        var format: (tag: Int, channels: Int, rate: Int, bits: Int, mask: UInt32)?
        var offset = 12
        while offset + 8 <= data.count {
            let id = ascii(data, offset, 4)
            let size = Int(uint32(data, offset + 4))
            let body = offset + 8
            if id == "fmt " {
                guard size >= 16, body + size <= data.count else { return .notPlainWAV }
                var tag = Int(uint16(data, body))
                var mask: UInt32 = 0
                // WAVE_FORMAT_EXTENSIBLE: a speaker mask, and the real format in the sub-format GUID's first bytes.
                if tag == 0xFFFE, size >= 26 {
                    mask = uint32(data, body + 20)
                    tag = Int(uint16(data, body + 24))
                }
                format = (tag, Int(uint16(data, body + 2)), Int(uint32(data, body + 4)), Int(uint16(data, body + 14)), mask)
            } else if id == "data" {
                // Mono (no mask or front centre) or stereo (no mask or front left + right).
                guard let format, format.rate == sampleRate,
                      (format.channels == 1 && (format.mask == 0 || format.mask == 0x4))
                        || (format.channels == 2 && (format.mask == 0 || format.mask == 0x3))
                else { return .notPlainWAV }
                // Streamed WAVs (ffmpeg writing to a pipe) leave the size as 0 or 0xFFFFFFFF: read to the end.
                let end = size == 0 || size == 0xFFFF_FFFF ? data.count : min(data.count, body + size)
                let bytes: Int
                switch (format.tag, format.bits) {
                case (1, 16): bytes = 2
                case (3, 32): bytes = 4
                default: return .notPlainWAV
                }
                if let maxFrames, (end - body) / (format.channels * bytes) > maxFrames { return .tooLong }
                return .samples(bytes == 2
                    ? mixed(data, body..<end, channels: format.channels, bytes: 2) { raw in
                        Float(Int16(bitPattern: UInt16(truncatingIfNeeded: raw))) / 32768
                    }
                    : mixed(data, body..<end, channels: format.channels, bytes: 4) { raw in Float(bitPattern: raw) })
            }
            offset = body + size + (size & 1)    // chunks are padded to an even length
        }
        return .notPlainWAV
    }

    /// Decodes interleaved little-endian samples; two channels are mixed as ffmpeg mixes stereo to mono.
    private static func mixed(
        _ data: Data, _ range: Range<Int>, channels: Int, bytes: Int, sample: (UInt32) -> Float
    ) -> [Float] {
        let frameBytes = channels * bytes
        let frames = range.count / frameBytes
        var result = [Float](repeating: 0, count: frames)
        let gain: Float = channels == 1 ? 1 : Float(0.5.squareRoot())
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + range.lowerBound
            for frame in 0..<frames {
                var sum: Float = 0
                for channel in 0..<channels {
                    let p = base + frame * frameBytes + channel * bytes
                    let value = bytes == 2
                        ? UInt32(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
                        : UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))
                    sum += sample(value) * gain
                }
                result[frame] = sum
            }
        }
        return result
    }

    private static func ascii(_ data: Data, _ offset: Int, _ count: Int) -> String {
        let start = data.startIndex + offset
        return String(decoding: data[start..<(start + count)], as: UTF8.self)
    }

    private static func uint16(_ data: Data, _ offset: Int) -> UInt16 {
        let start = data.startIndex + offset
        return UInt16(data[start]) | UInt16(data[start + 1]) << 8
    }

    private static func uint32(_ data: Data, _ offset: Int) -> UInt32 {
        let start = data.startIndex + offset
        return (0..<4).reduce(0) { $0 | UInt32(data[start + $1]) << (8 * $1) }
    }
}

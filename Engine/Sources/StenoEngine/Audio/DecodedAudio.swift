#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import CStenoSystem

/// Decoded 16 kHz mono samples, held either on the heap or in a file-backed mapping of a spool file that has
/// no name (it is unlinked as soon as it is created, so nothing is left behind by a crash). Hours of audio then
/// cost page cache, which the kernel can reclaim, rather than resident memory.
public final class DecodedAudio: @unchecked Sendable {
    /// Number of samples.
    public let count: Int
    private let storage: Storage

    private enum Storage {
        case memory([Float])
        case mapped(UnsafeRawPointer, bytes: Int)
    }

    public init(samples: [Float]) {
        count = samples.count
        storage = .memory(samples)
    }

    /// Maps `count` floats of the open file `descriptor` read-only. The caller keeps ownership of the descriptor
    /// (the mapping outlives its closing).
    init(mapping descriptor: Int32, count: Int) throws {
        self.count = count
        let bytes = count * MemoryLayout<Float>.stride
        guard count > 0 else {
            storage = .memory([])
            return
        }
        guard let address = mmap(nil, bytes, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw EngineError.decoderUnavailable("the decoded audio could not be mapped (\(String(cString: strerror(errno))))")
        }
        // Read front to back once for the features, then only by window.
        madvise(address, bytes, MADV_SEQUENTIAL)
        storage = .mapped(UnsafeRawPointer(address), bytes: bytes)
    }

    deinit {
        if case let .mapped(address, bytes) = storage {
            munmap(UnsafeMutableRawPointer(mutating: address), bytes)
        }
    }

    /// Seconds of audio at `AudioDecoder.sampleRate`.
    public var duration: Double { Double(count) / Double(AudioDecoder.sampleRate) }

    /// Calls `body` with the samples, without copying them.
    public func withSamples<Result>(_ body: (UnsafeBufferPointer<Float>) throws -> Result) rethrows -> Result {
        switch storage {
        case .memory(let samples):
            return try samples.withUnsafeBufferPointer(body)
        case .mapped(let address, _):
            return try body(UnsafeBufferPointer(start: address.assumingMemoryBound(to: Float.self), count: count))
        }
    }

    /// A copy of the samples as an array.
    public var samples: [Float] { withSamples { Array($0) } }
}

/// Collects ffmpeg's little-endian float32 output into an unnamed spool file, refusing more than `limitSeconds`.
struct SampleSpool {
    let descriptor: Int32
    let maxSamples: Int?
    /// The limit as the caller gave it, for the error.
    let limitSeconds: Double?
    private(set) var bytes = 0

    /// A spool file in `directory`, unlinked at once.
    init(directory: URL, limitSeconds: Double?, channels: Int = 1) throws {
        // The directory is made on first use (a server's scratch directory may not exist yet).
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var template = Array(directory.appendingPathComponent("steno-decoded-XXXXXX").path.utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { steno_make_temporary_file($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw EngineError.decoderUnavailable("no spool file for the decoded audio (\(String(cString: strerror(errno))))")
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        self.descriptor = descriptor
        self.limitSeconds = limitSeconds
        maxSamples = limitSeconds.map { Int(($0 * Double(AudioDecoder.sampleRate)).rounded(.up)) * channels }
    }

    var samples: Int { bytes / MemoryLayout<Float>.stride }

    /// Appends a chunk; throws `EngineError.audioTooLong` as soon as the limit is passed, so the caller stops
    /// the decoder there, whatever the container claimed.
    mutating func append(_ chunk: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < chunk.count {
            let written = write(descriptor, chunk.baseAddress! + offset, chunk.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw EngineError.decoderUnavailable("the decoded audio could not be spooled (\(String(cString: strerror(errno))))")
            }
            offset += written
        }
        bytes += chunk.count
        if let maxSamples, let limitSeconds, samples > maxSamples {
            throw EngineError.audioTooLong(limitSeconds: limitSeconds)
        }
    }

    /// The whole samples written so far, mapped; a trailing partial sample (ffmpeg cut off) is dropped.
    func mapped() throws -> DecodedAudio {
        try DecodedAudio(mapping: descriptor, count: samples)
    }

    func closeFile() { close(descriptor) }
}

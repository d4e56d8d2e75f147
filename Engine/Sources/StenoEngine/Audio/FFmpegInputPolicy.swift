import Foundation

/// Keeps ffmpeg and ffprobe to the one file they are given, and keeps server paths out of error messages.
///
/// Only the `file` protocol may open input, and only demuxers that read a single self-contained file may
/// parse it: playlist and reference formats (HLS, DASH, concat, IMF, SDP…) are refused, since an uploaded
/// "audio" file that is really a playlist would otherwise make ffmpeg read other files on the server.
enum FFmpegInputPolicy {
    /// Demuxers that open further resources named inside the file, or read devices or file sequences.
    static let refusedDemuxers: Set<String> = [
        "hls", "applehttp", "dash", "concat", "imf", "sdp", "rtp", "rtsp", "image2", "image2pipe", "lavfi",
        "webm_dash_manifest", "avisynth", "vapoursynth", "libcdio", "libdc1394", "iec61883", "alsa", "jack", "oss",
        "pulse", "openal", "fbdev", "kmsgrab", "x11grab", "video4linux2", "v4l2", "dshow", "avfoundation",
    ]

    /// Used when ffmpeg cannot list its demuxers: the usual audio and video containers.
    static let fallbackDemuxers = [
        "wav", "w64", "mp3", "ogg", "flac", "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "aac",
        "ac3", "eac3", "dts", "amr", "amrnb", "amrwb", "aiff", "caf", "au", "avi", "asf", "mpeg", "mpegts", "flv",
        "wv", "ape", "tta", "truehd", "mlp", "voc", "rm", "nut", "wtv", "mxf", "gsm", "loas", "s16le", "nistsphere",
        "sox", "xwma", "mpc", "mpc8", "shn", "tak", "oma", "dsf", "qcp", "sln",
    ]

    private final class Cache: @unchecked Sendable {
        let lock = NSLock()
        var whitelists: [String: String] = [:]
    }
    private static let cache = Cache()

    /// The `-format_whitelist` value for this ffmpeg: every demuxer it has except the refused ones. Asked of
    /// ffmpeg once per executable (waiting at most `timeout` seconds).
    static func formatWhitelist(ffmpeg: URL, timeout: Double) -> String {
        cache.lock.lock()
        if let known = cache.whitelists[ffmpeg.path] {
            cache.lock.unlock()
            return known
        }
        cache.lock.unlock()
        var listing: [UInt8] = []
        let outcome = try? Subprocess.run(
            executable: ffmpeg, arguments: ["-hide_banner", "-demuxers"], timeout: min(timeout, 10)
        ) { listing.append(contentsOf: $0) }
        var names = demuxerNames(in: String(decoding: listing, as: UTF8.self))
        if outcome?.status != 0 || names.isEmpty { names = fallbackDemuxers }
        let whitelist = names.filter { !refusedDemuxers.contains($0) }.joined(separator: ",")
        // A run that could not start (no descriptors left, say) says nothing about this ffmpeg: ask again next time.
        guard outcome != nil else { return whitelist }
        cache.lock.lock()
        cache.whitelists[ffmpeg.path] = whitelist
        cache.lock.unlock()
        return whitelist
    }

    /// Demuxer names from `ffmpeg -demuxers` (lines like ` D  mov,mp4,m4a  QuickTime / MOV` after a `--`).
    static func demuxerNames(in listing: String) -> [String] {
        var names: [String] = []
        var inTable = false
        for line in listing.split(separator: "\n") {
            if line.trimmingCharacters(in: .whitespaces) == "--" { inTable = true; continue }
            guard inTable else { continue }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, fields[0].contains("D") else { continue }
            names += fields[1].split(separator: ",").map(String.init)
        }
        return names
    }

    /// Arguments that make ffmpeg or ffprobe read `file` under this policy, ending with the input itself.
    static func inputArguments(for file: URL, ffmpeg: URL, timeout: Double) -> [String] {
        ["-protocol_whitelist", "file", "-format_whitelist", formatWhitelist(ffmpeg: ffmpeg, timeout: timeout),
         "-i", "file:" + file.path]
    }

    /// The first line ffmpeg printed to standard error, fit for a client: the input's path is replaced by
    /// "input" and the memory addresses in `[mp3 @ 0x…]` prefixes are removed.
    static func clientMessage(standardError: String, file: URL) -> String? {
        guard let first = standardError.split(whereSeparator: \.isNewline)
            .map({ $0.trimmingCharacters(in: .whitespaces) })
            .first(where: { !$0.isEmpty })
        else { return nil }
        if first.contains("matches no streams") { return "the file has no audio stream" }
        var message = first
            .replacingOccurrences(of: "file:" + file.path, with: "input")
            .replacingOccurrences(of: file.path, with: "input")
        message = message.replacing(#/ @ 0x[0-9a-fA-F]+/#, with: "")
        // Anything still looking like an absolute path (a file named inside the input, say) goes too.
        message = message.replacing(#/(^|[\s'"(])/[^\s'"():]+/#) { match in "\(match.output.1)<path>" }
        return message
    }
}

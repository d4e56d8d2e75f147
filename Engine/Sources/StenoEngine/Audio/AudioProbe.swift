/// What ffprobe says about a file before it is decoded.
public struct AudioProbe: Sendable, Hashable, Codable {
    /// Duration in seconds, when the container states one.
    public var duration: Double?
    /// ffmpeg's name for the container, e.g. `wav`, `mp3`, `ogg`, `mov,mp4,m4a,3gp,3g2,mj2`.
    public var formatName: String
    /// Whether the file has at least one audio stream.
    public var hasAudio: Bool
    /// Channels of the first audio stream, when ffprobe states them.
    public var channels: Int?

    public init(duration: Double?, formatName: String, hasAudio: Bool, channels: Int? = nil) {
        self.duration = duration
        self.formatName = formatName
        self.hasAudio = hasAudio
        self.channels = channels
    }
}

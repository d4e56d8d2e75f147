/// Whisper's fixed audio geometry: every model of the family takes 16 kHz mono cut into 30 s windows of mel
/// frames 10 ms apart, which the encoder halves. Named once here; the rest of the engine reads these.
public enum WhisperAudio {
    /// Samples per second of the audio the models take.
    public static let sampleRate = 16000
    /// Samples between two mel frames (10 ms).
    public static let hopLength = 160
    /// Mel frames per second.
    public static let framesPerSecond = Double(sampleRate) / Double(hopLength)
    /// Mel frames in one 30 s window, the encoder's input.
    public static let windowFrames = 3000
    /// Mel frames per encoder position (the encoder's stride-2 convolution).
    public static let framesPerEncoderPosition = 2
}

/// Decoding choices faster-whisper makes by default and Steno does not expose as options.
enum DecodingDefaults {
    /// Samples drawn per window when decoding at a temperature above zero; the most likely one is kept
    /// (faster-whisper's `best_of`).
    static let bestOf = 5
}

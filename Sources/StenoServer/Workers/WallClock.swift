public import Foundation

/// The time used for every job timestamp, lease and deadline. Tests inject a clock they move by hand, so
/// retention and expiry are tested without waiting.
public protocol WallClock: Sendable {
    func now() -> Date
}

public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

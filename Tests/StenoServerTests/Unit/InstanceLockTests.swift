import Foundation
import StenoServer
import Testing

/// flock locks belong to open file descriptions, so two locks opened in one process behave like two servers.
@Suite struct InstanceLockTests {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("steno-lock-\(UUID().uuidString).lock")

    @Test func onlyAServerWithNoOtherAliveIsSole() throws {
        defer { try? FileManager.default.removeItem(at: path) }
        var first: InstanceLock? = InstanceLock(path: path)
        #expect(first?.isSoleInstance == true)
        first?.share()

        var second: InstanceLock? = InstanceLock(path: path)
        #expect(second?.isSoleInstance == false, "a server is running: the newcomer must not reset its jobs")
        second?.share()

        first = nil
        #expect(InstanceLock(path: path).isSoleInstance == false, "the second server still runs")
        second = nil
        #expect(InstanceLock(path: path).isSoleInstance == true, "the servers are gone (or were killed)")
        _ = (first, second)
    }
}

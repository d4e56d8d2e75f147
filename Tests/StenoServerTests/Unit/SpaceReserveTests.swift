import Foundation
import StenoServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The space a worker keeps back to hand a job back on a full disk: really allocated, given back once, taken
/// again only when the disk has room. (Its use on a full disk is `scripts/faults/disk-full.sh`.)
@Suite struct SpaceReserveTests {
    @Test func theReserveHoldsItsBlocksAndIsGivenBackOnce() throws {
        let directory = try TemporaryDirectory()
        let reserve = SpaceReserve(path: directory.url.appendingPathComponent("space-reserve"), bytes: 1 << 20)
        #expect(!reserve.isHeld)
        #expect(reserve.replenish())
        #expect(reserve.isHeld)
        var info = stat()
        #expect(stat(reserve.path.path, &info) == 0)
        #expect(Int64(info.st_blocks) * 512 >= 1 << 20, "the blocks are allocated, not a sparse file")
        #expect(reserve.replenish(), "taking it again while held changes nothing")

        #expect(reserve.release())
        #expect(!FileManager.default.fileExists(atPath: reserve.path.path))
        #expect(!reserve.release(), "nothing left to give")
        #expect(reserve.replenish())
        #expect(FileManager.default.fileExists(atPath: reserve.path.path))
    }

    @Test func aDiskWithoutRoomForFourTimesTheReserveDoesNotGetIt() throws {
        let directory = try TemporaryDirectory()
        let free = try #require(
            (try FileManager.default.attributesOfFileSystem(forPath: directory.url.path)[.systemFreeSize] as? NSNumber)?.int64Value)
        let reserve = SpaceReserve(path: directory.url.appendingPathComponent("space-reserve"), bytes: free / 3)
        #expect(!reserve.replenish())
        #expect(!reserve.isHeld)
        #expect(!FileManager.default.fileExists(atPath: reserve.path.path))
    }
}

import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The server's connection budget: how many connections may be open at once, shared by every connection of
/// one listener. Past the budget a new connection closes the oldest one that is still waiting for a request
/// head (a client that connected and sent nothing, or too little, or an idle keep-alive connection), so a
/// flood of half-open connections cannot lock out a real client; when every connection is busy with a request,
/// the newcomer is the one closed. Either way the process stays below its descriptor limit, which it needs for
/// its database, uploads and decoder processes.
final class ConnectionBudget: Sendable {
    let maxConnections: Int
    private let state = Mutex(State())

    fileprivate struct State {
        var nextID = 0
        var open = 0
        /// Connections waiting for a request head, by id, with the order they started waiting in.
        var waiting: [Int: any Channel] = [:]
        /// Ids in the order they started waiting; ids no longer in `waiting` are skipped (removed lazily).
        var waitingOrder: [Int] = []
        var orderStart = 0
        /// Connections chosen for eviction whose close has not been seen yet (already counted out).
        var evictedIDs: Set<Int> = []
        var evicted = 0
        var refused = 0
    }

    init(maxConnections: Int) {
        self.maxConnections = max(1, maxConnections)
    }

    /// What a new connection should do.
    enum Admission {
        /// Serve it (the channel to close first, if the budget was full).
        case admitted(id: Int, evict: (any Channel)?)
        /// Close it at once: every connection is busy with a request.
        case refused
    }

    /// Counts a new connection in, waiting for its first request head.
    func open(_ channel: any Channel) -> Admission {
        state.withLock { state in
            var victim: (any Channel)?
            if state.open >= maxConnections {
                guard let oldest = state.popOldestWaiting() else {
                    state.refused += 1
                    return .refused
                }
                victim = oldest.channel
                state.evictedIDs.insert(oldest.id)
                state.evicted += 1
                // The victim's close comes later; its place is taken now.
                state.open -= 1
            }
            state.open += 1
            let id = state.nextID
            state.nextID += 1
            state.startWaiting(id, channel)
            return .admitted(id: id, evict: victim)
        }
    }

    /// The connection's request head arrived: it is busy until its response is sent.
    func busy(_ id: Int) {
        state.withLock { _ = $0.waiting.removeValue(forKey: id) }
    }

    /// The connection sent its response and waits for another request.
    func idle(_ id: Int, _ channel: any Channel) {
        state.withLock { $0.startWaiting(id, channel) }
    }

    /// The connection closed (evicted ones were counted out when they were chosen).
    func closed(_ id: Int) {
        state.withLock { state in
            state.waiting.removeValue(forKey: id)
            if state.evictedIDs.remove(id) == nil { state.open -= 1 }
        }
    }

    /// Open connections, and how many were evicted or refused since start (for tests and metrics).
    var counts: (open: Int, evicted: Int, refused: Int) {
        state.withLock { ($0.open, $0.evicted, $0.refused) }
    }
}

extension ConnectionBudget.State {
    mutating func startWaiting(_ id: Int, _ channel: any Channel) {
        waiting[id] = channel
        waitingOrder.append(id)
        compactOrder()
    }

    mutating func popOldestWaiting() -> (id: Int, channel: any Channel)? {
        while orderStart < waitingOrder.count {
            let id = waitingOrder[orderStart]
            orderStart += 1
            if let channel = waiting.removeValue(forKey: id) { return (id, channel) }
        }
        return nil
    }

    /// Drops the consumed front of the order list once it is most of the list (amortised constant time).
    private mutating func compactOrder() {
        if orderStart > 1024, orderStart * 2 > waitingOrder.count {
            waitingOrder.removeFirst(orderStart)
            orderStart = 0
        }
        // Ids that left `waiting` (busy, closed) stay in the list until passed; keep it from growing without end.
        if waitingOrder.count - orderStart > 4 * max(waiting.count, 1024) {
            waitingOrder = waitingOrder[orderStart...].filter { waiting[$0] != nil }
            orderStart = 0
        }
    }
}

/// The process's open-file limit.
public enum DescriptorLimit {
    /// Raises the soft limit to the hard one (allowed without privileges) and returns the soft limit in force.
    @discardableResult
    public static func raiseSoftLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur >= UInt64(Int32.max) ? 1 << 20 : Int(limit.rlim_cur)
    }

    /// The default connection budget for a descriptor limit: three quarters of it, the rest kept for the
    /// database, uploads being written, decoder pipes and the model.
    public static func defaultMaxConnections(forLimit limit: Int) -> Int {
        max(16, min(limit * 3 / 4, 1 << 16))
    }
}

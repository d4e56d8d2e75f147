/// Groups voice prints by speaker: average-linkage agglomerative clustering on cosine distance, cut where the
/// closest two groups are farther apart than `threshold` (or at the speaker count the caller knows), then a few
/// rounds of reassigning every print to its nearest group centre, which undoes the early merges a greedy
/// hierarchy gets wrong.
///
/// The hierarchy is built with the nearest-neighbour chain (average linkage is reducible, so the chain finds
/// the same merges as the textbook algorithm) in O(n²) time and one n×n matrix.
public struct SpeakerClustering: Sendable {
    /// Cosine distance (1 − similarity) above which two groups stay apart when the count is not given.
    public var threshold: Double
    /// Rounds of nearest-centre reassignment after the cut.
    public var refinementRounds = 5

    public init(threshold: Double) {
        self.threshold = threshold
    }

    /// A cluster index per embedding (0-based, numbered by first appearance). `count` forces the number of
    /// clusters; otherwise the threshold decides, kept within `minimum…maximum`.
    public func cluster(_ embeddings: [[Float]], count: Int? = nil, minimum: Int = 1, maximum: Int = .max) -> [Int] {
        let n = embeddings.count
        guard n > 1 else { return [Int](repeating: 0, count: n) }
        let merges = Self.dendrogram(embeddings)
        // Replay the merges from the closest up until the cut.
        var parent = Array(0..<n)
        func root(_ i: Int) -> Int {
            var i = i
            while parent[i] != i { parent[i] = parent[parent[i]]; i = parent[i] }
            return i
        }
        var clusters = n
        let target = count.map { min(max(1, $0), n) }
        let lowest = max(1, min(minimum, n)), highest = max(lowest, min(maximum, n))
        for merge in merges {
            if let target {
                if clusters <= target { break }
            } else if clusters <= lowest || (merge.distance > threshold && clusters <= highest) {
                break
            }
            parent[root(merge.a)] = root(merge.b)
            clusters -= 1
        }
        var labels = (0..<n).map { root($0) }
        labels = refine(embeddings, labels: labels)
        return Self.numberedByFirstAppearance(labels)
    }

    /// k-means steps on the sphere from the hierarchy's clusters: centres are the normalised means, every
    /// print moves to its most similar centre. A cluster left empty disappears.
    private func refine(_ embeddings: [[Float]], labels start: [Int]) -> [Int] {
        var labels = start
        for _ in 0..<refinementRounds {
            let groups = Set(labels).sorted()
            let centres = groups.map { group in Self.centre(of: embeddings.indices.filter { labels[$0] == group }.map { embeddings[$0] }) }
            let next = embeddings.map { e in groups[centres.indices.max { Self.dot(e, centres[$0]) < Self.dot(e, centres[$1]) }!] }
            if next == labels { break }
            labels = next
        }
        return labels
    }

    static func centre(of vectors: [[Float]]) -> [Float] {
        var sum = [Float](repeating: 0, count: vectors.first?.count ?? 0)
        for v in vectors { for i in sum.indices { sum[i] += v[i] } }
        return SpeakerEncoder.normalised(sum)
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Float {
        var sum: Float = 0
        for i in a.indices { sum += a[i] * b[i] }
        return sum
    }

    static func numberedByFirstAppearance(_ labels: [Int]) -> [Int] {
        var numbers: [Int: Int] = [:]
        return labels.map { label in
            if let number = numbers[label] { return number }
            numbers[label] = numbers.count
            return numbers.count - 1
        }
    }

    struct Merge {
        let a: Int, b: Int
        let distance: Double
    }

    /// Every merge of the average-linkage hierarchy, closest first. `a` and `b` are members of the two groups.
    static func dendrogram(_ embeddings: [[Float]]) -> [Merge] {
        let n = embeddings.count
        var distance = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in (i + 1)..<n {
                let d = 1 - Double(dot(embeddings[i], embeddings[j]))
                distance[i * n + j] = d
                distance[j * n + i] = d
            }
        }
        var size = [Int](repeating: 1, count: n)
        var active = [Bool](repeating: true, count: n)
        var remaining = n
        var chain: [Int] = []
        var merges: [Merge] = []
        merges.reserveCapacity(n - 1)
        while remaining > 1 {
            if chain.isEmpty { chain.append(active.firstIndex(of: true)!) }
            let a = chain[chain.count - 1]
            let previous = chain.count >= 2 ? chain[chain.count - 2] : -1
            // The nearest active group to a; on a tie the previous link of the chain, so the chain ends.
            var nearest = previous, best = previous >= 0 ? distance[a * n + previous] : .infinity
            for k in 0..<n where active[k] && k != a {
                let d = distance[a * n + k]
                if d < best { best = d; nearest = k }
            }
            if nearest == previous {
                chain.removeLast(2)
                merges.append(Merge(a: a, b: previous, distance: best))
                // The merged group lives on at index `previous`; Lance–Williams update for average linkage.
                let sa = Double(size[a]), sb = Double(size[previous])
                for k in 0..<n where active[k] && k != a && k != previous {
                    let d = (sa * distance[a * n + k] + sb * distance[previous * n + k]) / (sa + sb)
                    distance[previous * n + k] = d
                    distance[k * n + previous] = d
                }
                size[previous] += size[a]
                active[a] = false
                remaining -= 1
            } else {
                chain.append(nearest)
            }
        }
        // Stable: merges at equal distance keep the order they were found in.
        return merges.enumerated().sorted { ($0.element.distance, $0.offset) < ($1.element.distance, $1.offset) }.map(\.element)
    }
}

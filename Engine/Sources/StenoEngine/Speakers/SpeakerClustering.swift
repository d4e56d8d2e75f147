/// Groups voice prints by speaker with spectral clustering: a graph linking every print to its most similar
/// others, the number of speakers read from the largest gap between the smallest eigenvalues of its normalised
/// Laplacian (or the count the caller knows), k-means on the matching eigenvectors, then a few rounds of
/// reassigning every print to its nearest group centre in voice-print space.
///
/// Why not a similarity threshold: GE2E prints of two different voices can be more alike (cosine 0.88 between
/// the centres of pyannote's sample speakers) than the windows of one voice are to each other, so any single cut
/// merges some pairs of voices and splits some single ones. The eigengap looks at the structure of the whole
/// graph instead; tuned on the diarization benchmark's recordings, it finds the count of all of them.
///
/// Too few prints for a graph (under `fewestForGraph`) fall back to average-linkage agglomerative clustering cut
/// at `threshold`, the nearest-neighbour chain in O(n²).
public struct SpeakerClustering: Sendable {
    /// Cosine distance (1 − similarity) above which two groups stay apart, for the few-prints fallback.
    public var threshold: Double = 0.35
    /// Each print links to this share of the others (its most similar ones), and at least `fewestNeighbours`.
    /// Below about 0.18 of them the graph splits single voices; above 0.3 it merges distinct ones.
    public var neighbourShare = 0.22
    public var fewestNeighbours = 5
    /// Under this many prints the eigengap means little: the agglomerative fallback decides.
    public var fewestForGraph = 12
    /// At most this many prints enter the graph (an n×n matrix of doubles); from longer recordings an even
    /// sample does, and the others join the nearest centre.
    public var largestGraph = 1_500
    /// The most speakers the eigengap considers when the caller gives no maximum.
    public var largestAutomaticCount = 16
    /// Groups whose centres are more alike than this are taken for one voice and merged (different voices
    /// measured up to 0.88; halves of one voice well above).
    public var sameVoiceSimilarity: Float = 0.93
    /// Rounds of nearest-centre reassignment at the end.
    public var refinementRounds = 5

    public init() {}

    /// A cluster index per embedding (0-based, numbered by first appearance). `count` forces the number of
    /// clusters; otherwise the eigengap decides, kept within `minimum…maximum`.
    public func cluster(_ embeddings: [[Float]], count: Int? = nil, minimum: Int = 1, maximum: Int = .max) -> [Int] {
        let n = embeddings.count
        guard n > 1 else { return [Int](repeating: 0, count: n) }
        let lowest = max(1, min(minimum, n)), highest = max(lowest, min(maximum, n))
        let target = count.map { min(max(1, $0), n) }
        var labels: [Int]
        if n < fewestForGraph {
            labels = agglomerative(embeddings, count: target, lowest: lowest, highest: highest)
        } else {
            // The graph's prints: all, or an even sample of a long recording.
            let stride = (n + largestGraph - 1) / largestGraph
            let chosen = Swift.stride(from: 0, to: n, by: stride).map { embeddings[$0] }
            let groups = spectral(chosen, count: target, lowest: min(lowest, chosen.count), highest: min(highest, chosen.count))
            if stride == 1 {
                labels = groups
            } else {
                let centres = Set(groups).sorted().map { group in Self.centre(of: chosen.indices.filter { groups[$0] == group }.map { chosen[$0] }) }
                labels = embeddings.map { Self.nearest($0, among: centres) }
            }
        }
        labels = refine(embeddings, labels: labels)
        if target == nil { labels = mergingOneVoice(embeddings, labels: labels, lowest: lowest) }
        return Self.numberedByFirstAppearance(labels)
    }

    /// Spectral clustering of `prints` (see the type's comment): a cluster index per print.
    func spectral(_ prints: [[Float]], count: Int?, lowest: Int, highest: Int) -> [Int] {
        let n = prints.count
        // Affinity: each print's `neighbours` most similar others (negative similarities count as none),
        // symmetrised by averaging. One n×n matrix, which becomes the Laplacian in place.
        let neighbours = min(n - 1, max(fewestNeighbours, Int((neighbourShare * Double(n)).rounded())))
        var graph = [Double](repeating: 0, count: n * n)
        var row = [Double](repeating: 0, count: n)
        for i in 0..<n {
            for j in 0..<n { row[j] = j == i ? -.infinity : Double(Self.dot(prints[i], prints[j])) }
            for j in row.indices.sorted(by: { row[$0] > row[$1] }).prefix(neighbours) { graph[i * n + j] = max(0, row[j]) }
        }
        for i in 0..<n {
            for j in (i + 1)..<n {
                let a = (graph[i * n + j] + graph[j * n + i]) / 2
                graph[i * n + j] = a
                graph[j * n + i] = a
            }
        }
        // Normalised Laplacian I − D^-½ A D^-½.
        let scale = (0..<n).map { i in
            let degree = graph[(i * n)..<((i + 1) * n)].reduce(0, +)
            return degree > 0 ? 1 / degree.squareRoot() : 0
        }
        for i in 0..<n { for j in 0..<n { graph[i * n + j] = (i == j ? 1 : 0) - scale[i] * graph[i * n + j] * scale[j] } }

        let considered = min(n - 1, count ?? max(lowest, min(highest, largestAutomaticCount)))
        guard considered >= 1, let eigen = SymmetricEigen.smallest(considered + 1, of: &graph, size: n) else {
            return agglomerative(prints, count: count, lowest: lowest, highest: highest)
        }
        var k = count ?? lowest
        if count == nil, lowest <= considered {
            // The widest gap λ(k+1) − λ(k) (0-based: values[k] − values[k − 1]) for k within the bounds.
            var widest = -Double.infinity
            for candidate in lowest...considered {
                let gap = eigen.values[candidate] - eigen.values[candidate - 1]
                if gap > widest { widest = gap; k = candidate }
            }
        }
        guard k > 1 else { return [Int](repeating: 0, count: n) }
        // Each print's row of the first k eigenvectors, scaled to unit length, grouped by k-means.
        let columns = considered + 1
        let rows: [[Double]] = (0..<n).map { i in
            let row = (0..<k).map { eigen.vectors[i * columns + $0] }
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return norm > 0 ? row.map { $0 / norm } : row
        }
        return Self.kMeans(rows, k: k)
    }

    /// Lloyd's k-means from a deterministic farthest-first start (the point farthest from the mean, then each
    /// time the point farthest from the centres chosen): the same input always gives the same groups.
    static func kMeans(_ points: [[Double]], k: Int, rounds: Int = 100) -> [Int] {
        func distance(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
        let dimension = points[0].count
        let mean = (0..<dimension).map { d in points.reduce(0) { $0 + $1[d] } / Double(points.count) }
        var centres = [points[points.indices.max { distance(points[$0], mean) < distance(points[$1], mean) }!]]
        var closest = points.map { distance($0, centres[0]) }
        while centres.count < k {
            let next = closest.indices.max { closest[$0] < closest[$1] }!
            centres.append(points[next])
            for i in points.indices { closest[i] = min(closest[i], distance(points[i], points[next])) }
        }
        var labels = [Int](repeating: -1, count: points.count)
        for _ in 0..<rounds {
            let next = points.map { p in centres.indices.min { distance(p, centres[$0]) < distance(p, centres[$1]) }! }
            if next == labels { break }
            labels = next
            for c in 0..<k {
                let members = points.indices.filter { labels[$0] == c }
                guard !members.isEmpty else { continue }
                centres[c] = (0..<dimension).map { d in members.reduce(0) { $0 + points[$1][d] } / Double(members.count) }
            }
        }
        return labels
    }

    /// The few-prints fallback: the average-linkage hierarchy replayed from the closest merge up to the cut.
    func agglomerative(_ embeddings: [[Float]], count target: Int?, lowest: Int, highest: Int) -> [Int] {
        let n = embeddings.count
        var parent = Array(0..<n)
        func root(_ i: Int) -> Int {
            var i = i
            while parent[i] != i { parent[i] = parent[parent[i]]; i = parent[i] }
            return i
        }
        var clusters = n
        for merge in Self.dendrogram(embeddings) {
            if let target {
                if clusters <= target { break }
            } else if clusters <= lowest || (merge.distance > threshold && clusters <= highest) {
                break
            }
            parent[root(merge.a)] = root(merge.b)
            clusters -= 1
        }
        return (0..<n).map { root($0) }
    }

    /// Merges, closest first, groups whose centres are as alike as one voice's (above `sameVoiceSimilarity`),
    /// never below `lowest` groups.
    func mergingOneVoice(_ embeddings: [[Float]], labels start: [Int], lowest: Int) -> [Int] {
        var labels = start
        while true {
            let groups = Set(labels).sorted()
            guard groups.count > lowest else { return labels }
            let centres = groups.map { group in Self.centre(of: embeddings.indices.filter { labels[$0] == group }.map { embeddings[$0] }) }
            var best: (a: Int, b: Int, similarity: Float)?
            for a in groups.indices { for b in (a + 1)..<groups.count {
                let s = Self.dot(centres[a], centres[b])
                if s > sameVoiceSimilarity, s > (best?.similarity ?? -.infinity) { best = (a, b, s) }
            } }
            guard let best else { return labels }
            labels = labels.map { $0 == groups[best.b] ? groups[best.a] : $0 }
        }
    }

    /// k-means steps on the sphere from the given clusters: centres are the normalised means, every print moves
    /// to its most similar centre. A cluster left empty disappears.
    private func refine(_ embeddings: [[Float]], labels start: [Int]) -> [Int] {
        var labels = start
        for _ in 0..<refinementRounds {
            let groups = Set(labels).sorted()
            let centres = groups.map { group in Self.centre(of: embeddings.indices.filter { labels[$0] == group }.map { embeddings[$0] }) }
            let next = embeddings.map { groups[Self.nearest($0, among: centres)] }
            if next == labels { break }
            labels = next
        }
        return labels
    }

    /// The index of the centre most similar to `print`.
    static func nearest(_ print: [Float], among centres: [[Float]]) -> Int {
        centres.indices.max { dot(print, centres[$0]) < dot(print, centres[$1]) }!
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

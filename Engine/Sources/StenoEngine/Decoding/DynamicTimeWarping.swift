/// Monotonic alignment of text tokens to audio frames: the cheapest path through a cost matrix
/// [tokens × frames] moving down, right or diagonally. Returns the (token, frame) index pairs of the path.
package func dynamicTimeWarping(cost: [Float], rows: Int, columns: Int) -> (rows: [Int], columns: [Int]) {
    guard rows > 0, columns > 0 else { return ([], []) }
    let width = columns + 1
    var total = [Float](repeating: .infinity, count: (rows + 1) * width)
    var trace = [UInt8](repeating: 0, count: (rows + 1) * width)
    total[0] = 0
    for j in 1...columns {
        for i in 1...rows {
            let diagonal = total[(i - 1) * width + (j - 1)]
            let up = total[(i - 1) * width + j]
            let left = total[i * width + (j - 1)]
            let best: Float
            let move: UInt8
            if diagonal <= up && diagonal <= left {
                best = diagonal; move = 0
            } else if up <= left {
                best = up; move = 1
            } else {
                best = left; move = 2
            }
            total[i * width + j] = cost[(i - 1) * columns + (j - 1)] + best
            trace[i * width + j] = move
        }
    }
    for j in 0...columns { trace[j] = 2 }
    for i in 0...rows { trace[i * width] = 1 }
    var i = rows, j = columns
    var pathRows: [Int] = [], pathColumns: [Int] = []
    while i > 0 || j > 0 {
        pathRows.append(i - 1)
        pathColumns.append(j - 1)
        switch trace[i * width + j] {
        case 0: i -= 1; j -= 1
        case 1: i -= 1
        default: j -= 1
        }
    }
    return (pathRows.reversed(), pathColumns.reversed())
}

/// Median filter of width `width` along each row, with reflected edges.
package func medianFilterRows(_ x: inout [Float], rows: Int, columns: Int, width: Int) {
    guard width > 1, columns > width / 2 else { return }
    let half = width / 2
    var window = [Float](repeating: 0, count: width)
    var row = [Float](repeating: 0, count: columns)
    for r in 0..<rows {
        for c in 0..<columns { row[c] = x[r * columns + c] }
        for c in 0..<columns {
            for k in 0..<width {
                var index = c + k - half
                if index < 0 { index = -index }
                if index >= columns { index = 2 * (columns - 1) - index }
                window[k] = row[index]
            }
            window.sort()
            x[r * columns + c] = window[half]
        }
    }
}

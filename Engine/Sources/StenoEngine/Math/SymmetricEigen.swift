import COpenBLAS

/// The smallest eigenvalues of a real symmetric matrix and their eigenvectors, through LAPACK's `dsyevr`
/// (the relatively robust representations algorithm, which computes only the eigenpairs asked for).
enum SymmetricEigen {
    /// The `count` smallest eigenvalues of the n×n symmetric `matrix` (row-major; only one triangle is read;
    /// the buffer is overwritten), ascending, and their unit eigenvectors as the columns of an n×count
    /// row-major matrix. Nil when LAPACK reports a failure.
    static func smallest(_ count: Int, of matrix: inout [Double], size n: Int) -> (values: [Double], vectors: [Double])? {
        precondition(matrix.count == n * n && (1...n).contains(count))
        var order = Int32(n), leading = Int32(n), vectorLeading = Int32(n), lower = Int32(1), upper = Int32(count), found: Int32 = 0, info: Int32 = 0
        var below = 0.0, above = 0.0, tolerance = 0.0  // (bounds unused with range "I"); tolerance 0: LAPACK's own (machine precision scaled)
        var values = [Double](repeating: 0, count: n)
        // LAPACK is column-major: the eigenvectors come back as `count` columns of length n.
        var columns = [Double](repeating: 0, count: n * count)
        var support = [Int32](repeating: 0, count: 2 * n)
        var jobz = Int8(UInt8(ascii: "V")), range = Int8(UInt8(ascii: "I")), uplo = Int8(UInt8(ascii: "U"))

        func solve(_ work: inout [Double], _ workCount: Int32, _ integers: inout [Int32], _ integerCount: Int32) {
            var lwork = workCount, liwork = integerCount
            dsyevr_(&jobz, &range, &uplo, &order, &matrix, &leading, &below, &above, &lower, &upper, &tolerance, &found,
                    &values, &columns, &vectorLeading, &support, &work, &lwork, &integers, &liwork, &info, 1, 1, 1)
        }
        // A workspace query first, then the solve.
        var workSize = [Double](repeating: 0, count: 1), integerSize = [Int32](repeating: 0, count: 1)
        solve(&workSize, -1, &integerSize, -1)
        guard info == 0 else { return nil }
        var work = [Double](repeating: 0, count: max(1, Int(workSize[0]))), integers = [Int32](repeating: 0, count: max(1, Int(integerSize[0])))
        solve(&work, Int32(work.count), &integers, Int32(integers.count))
        guard info == 0, Int(found) == count else { return nil }

        var vectors = [Double](repeating: 0, count: n * count)
        for column in 0..<count {
            for row in 0..<n { vectors[row * count + column] = columns[column * n + row] }
        }
        return (Array(values.prefix(count)), vectors)
    }
}

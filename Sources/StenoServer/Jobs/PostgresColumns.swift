import PostgresNIO

/// One row of the store's tables, read by column name. Both row decoders (jobs, webhook deliveries) read their
/// columns this way; a value the store's own schema should never hold is reported as `corruptRow`.
struct PostgresColumns {
    private let cells: PostgresRandomAccessRow
    private let table: String

    init(_ row: PostgresRow, table: String) {
        cells = row.makeRandomAccess()
        self.table = table
    }

    /// The column decoded as `T` (an optional type for a nullable column).
    func callAsFunction<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        try cells[column].decode(T.self)
    }

    /// A text column holding one of `E`'s raw values.
    func enumeration<E: RawRepresentable>(_ column: String, as type: E.Type = E.self) throws -> E where E.RawValue == String {
        guard let value = E(rawValue: try self(column, as: String.self)) else {
            throw PostgresJobStoreError.corruptRow(column: "\(table).\(column)")
        }
        return value
    }

    /// A nullable text column holding one of `E`'s raw values, or NULL.
    func enumeration<E: RawRepresentable>(_ column: String, as type: E?.Type) throws -> E? where E.RawValue == String {
        guard try self(column, as: String?.self) != nil else { return nil }
        return try enumeration(column, as: E.self)
    }
}

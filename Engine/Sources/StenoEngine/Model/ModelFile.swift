package import Foundation
import CStenoKernels

/// Element types of a CTranslate2 `model.bin` variable, by their on-disk id.
enum ModelDType: UInt8, Sendable {
    case float32 = 0, int8 = 1, int16 = 2, int32 = 3, float16 = 4, bfloat16 = 5

    var byteWidth: Int {
        switch self {
        case .int8: 1
        case .int16, .float16, .bfloat16: 2
        case .float32, .int32: 4
        }
    }
}

/// One variable of `model.bin`: its shape, element type and where its bytes are in the file.
struct ModelVariable: Sendable {
    let name: String
    let shape: [Int]
    let dtype: ModelDType
    /// Byte range of the raw, row-major little-endian data inside the file.
    let byteRange: Range<Int>

    var elementCount: Int { shape.reduce(1, *) }
}

/// A parsed CTranslate2 `model.bin` (binary version ≤ 6): the variable index plus the file's bytes (memory-mapped,
/// so loading only touches what is converted). The layout is CTranslate2's (`src/models/model.cc`, `load_model`).
package struct ModelFile: Sendable {
    static let maximumBinaryVersion: UInt32 = 6

    let path: String
    package let binaryVersion: UInt32
    let specName: String
    let specRevision: UInt32
    private let data: Data
    private let variables: [String: ModelVariable]
    private let aliases: [String: String]

    /// Parses the file at `url`. Every malformed input is an `EngineError.invalidModel` naming the file and
    /// the problem; nothing in the file can make the parser read out of bounds.
    package init(url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw EngineError.invalidModel(file: url.lastPathComponent, problem: "cannot be read (\(Self.reason(error)))")
        }
        try self.init(data: data, fileName: url.lastPathComponent)
    }

    package init(data: Data, fileName: String) throws {
        self.path = fileName
        self.data = data
        var reader = ByteReader(data: data, fileName: fileName)
        binaryVersion = try reader.u32("binary version")
        guard binaryVersion <= Self.maximumBinaryVersion, binaryVersion >= 1 else {
            throw EngineError.invalidModel(
                file: fileName, problem: "unsupported binary version \(binaryVersion) (this reader supports 1–\(Self.maximumBinaryVersion))")
        }
        if binaryVersion >= 2 {
            specName = try reader.string("spec name")
            specRevision = try reader.u32("spec revision")
        } else {
            specName = ""
            specRevision = 1
        }
        let count = try reader.u32("variable count")
        var variables: [String: ModelVariable] = [:]
        for index in 0..<Int(count) {
            let name = try reader.string("name of variable \(index)")
            let rank = Int(try reader.u8("rank of \(name)"))
            var shape: [Int] = []
            for _ in 0..<rank { shape.append(Int(try reader.u32("shape of \(name)"))) }
            let dtypeID: UInt8
            if binaryVersion >= 4 {
                dtypeID = try reader.u8("type of \(name)")
            } else {
                // Versions 1–3 stored the item size instead of the type: 4 bytes = float32, 1 = int8, 2 = int16.
                let itemSize = try reader.u8("item size of \(name)")
                dtypeID = itemSize == 1 ? 1 : itemSize == 2 ? 2 : 0
            }
            guard let dtype = ModelDType(rawValue: dtypeID) else {
                throw EngineError.invalidModel(file: fileName, problem: "variable \(name) has unknown type id \(dtypeID)")
            }
            let byteCount = Int(try reader.u32("size of \(name)"))
            let elements = shape.reduce(1, *)
            guard elements * dtype.byteWidth == byteCount else {
                throw EngineError.invalidModel(
                    file: fileName,
                    problem: "variable \(name) declares \(byteCount) bytes but its shape \(shape) of \(dtype) needs \(elements * dtype.byteWidth)")
            }
            let range = try reader.skip(byteCount, what: "data of \(name)")
            variables[name] = ModelVariable(name: name, shape: shape, dtype: dtype, byteRange: range)
        }
        var aliases: [String: String] = [:]
        if binaryVersion >= 3 {
            let aliasCount = try reader.u32("alias count")
            for _ in 0..<Int(aliasCount) {
                let alias = try reader.string("alias name")
                let target = try reader.string("alias target")
                aliases[alias] = target
            }
        }
        self.variables = variables
        self.aliases = aliases
    }

    /// The variable called `name`, following aliases.
    func variable(_ name: String) -> ModelVariable? {
        if let variable = variables[name] { return variable }
        if let target = aliases[name] { return variables[target] }
        // `<alias>_scale` of an aliased int8 weight is the target's scale.
        if name.hasSuffix("_scale"), let target = aliases[String(name.dropLast(6))] { return variables[target + "_scale"] }
        return nil
    }

    package var variableNames: [String] { Array(variables.keys) }

    func require(_ name: String) throws -> ModelVariable {
        guard let variable = variable(name) else {
            throw EngineError.invalidModel(file: path, problem: "missing variable \(name)")
        }
        return variable
    }

    /// The variable as float32 values, converting float16/bfloat16 and de-quantizing int8 (real = q / scale,
    /// one scale per output row) and int16.
    package func floats(_ name: String, shape expected: [Int]? = nil) throws -> [Float] {
        let variable = try require(name)
        if let expected, expected != variable.shape {
            throw EngineError.invalidModel(file: path, problem: "variable \(name) has shape \(variable.shape), expected \(expected)")
        }
        let count = variable.elementCount
        var out = [Float](repeating: 0, count: count)
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.baseAddress!.advanced(by: variable.byteRange.lowerBound)
            out.withUnsafeMutableBufferPointer { dst in
                switch variable.dtype {
                case .float32:
                    for i in 0..<count { dst[i] = Float(bitPattern: base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian) }
                case .float16:
                    for i in 0..<count {
                        dst[i] = Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian))
                    }
                case .bfloat16:
                    for i in 0..<count {
                        let bits = UInt32(base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian) << 16
                        dst[i] = Float(bitPattern: bits)
                    }
                case .int8:
                    for i in 0..<count { dst[i] = Float(base.load(fromByteOffset: i, as: Int8.self)) }
                case .int16:
                    for i in 0..<count { dst[i] = Float(base.loadUnaligned(fromByteOffset: i * 2, as: Int16.self).littleEndian) }
                case .int32:
                    for i in 0..<count { dst[i] = Float(base.loadUnaligned(fromByteOffset: i * 4, as: Int32.self).littleEndian) }
                }
            }
        }
        if variable.dtype == .int8 || variable.dtype == .int16 {
            guard let scaleVariable = self.variable(name + "_scale") else {
                // Integer scalars (booleans, head counts) carry no scale; quantized weights must.
                if variable.shape.count >= 2 {
                    throw EngineError.invalidModel(file: path, problem: "quantized variable \(name) has no \(name)_scale")
                }
                return out
            }
            let scales = try floats(scaleVariable.name)
            let rows = variable.shape.first ?? 1
            guard scales.count == rows || scales.count == 1 else {
                throw EngineError.invalidModel(file: path, problem: "\(name)_scale has \(scales.count) values for \(rows) rows")
            }
            let rowSize = count / max(rows, 1)
            for row in 0..<rows {
                let scale = scales.count == 1 ? scales[0] : scales[row]
                guard scale != 0 else { continue }
                let inverse = 1 / scale
                for i in row * rowSize..<(row + 1) * rowSize { out[i] *= inverse }
            }
        }
        return out
    }

    /// The variable as float16 bit patterns: copied as is when stored as float16, converted otherwise.
    func halves(_ name: String, shape expected: [Int]? = nil) throws -> [UInt16] {
        let variable = try require(name)
        if variable.dtype == .float16, expected == nil || expected! == variable.shape {
            var out = [UInt16](repeating: 0, count: variable.elementCount)
            data.withUnsafeBytes { raw in
                let base = raw.baseAddress!.advanced(by: variable.byteRange.lowerBound)
                for i in 0..<out.count { out[i] = base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian }
            }
            return out
        }
        let values = try floats(name, shape: expected)
        var out = [UInt16](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in steno_f32_to_f16(src.baseAddress!, dst.baseAddress!, src.count) }
        }
        return out
    }

    /// An integer scalar such as `encoder/num_heads`, or nil when absent.
    func integerScalar(_ name: String) throws -> Int? {
        guard variable(name) != nil else { return nil }
        let values = try floats(name)
        guard values.count == 1 else {
            throw EngineError.invalidModel(file: path, problem: "variable \(name) should be a scalar")
        }
        return Int(values[0])
    }

    private static func reason(_ error: any Error) -> String {
        (error as NSError).localizedDescription
    }
}

/// Bounds-checked little-endian reads over the file's bytes.
private struct ByteReader {
    let data: Data
    let fileName: String
    var offset = 0

    init(data: Data, fileName: String) {
        self.data = data
        self.fileName = fileName
    }

    private func truncated(_ what: String) -> EngineError {
        .invalidModel(file: fileName, problem: "truncated: the file ends inside the \(what) (at byte \(offset) of \(data.count))")
    }

    mutating func skip(_ count: Int, what: String) throws -> Range<Int> {
        guard count >= 0, offset + count <= data.count else { throw truncated(what) }
        defer { offset += count }
        return offset..<(offset + count)
    }

    mutating func u8(_ what: String) throws -> UInt8 {
        let range = try skip(1, what: what)
        return data[data.startIndex + range.lowerBound]
    }

    mutating func u16(_ what: String) throws -> UInt16 {
        let range = try skip(2, what: what)
        return data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: range.lowerBound, as: UInt16.self).littleEndian }
    }

    mutating func u32(_ what: String) throws -> UInt32 {
        let range = try skip(4, what: what)
        return data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: range.lowerBound, as: UInt32.self).littleEndian }
    }

    /// A u16 length (including the trailing NUL) followed by UTF-8 bytes and the NUL.
    mutating func string(_ what: String) throws -> String {
        let length = Int(try u16(what))
        guard length >= 1 else {
            throw EngineError.invalidModel(file: fileName, problem: "empty string for the \(what) at byte \(offset)")
        }
        let range = try skip(length, what: what)
        let bytes = data[(data.startIndex + range.lowerBound)..<(data.startIndex + range.upperBound - 1)]
        guard let string = String(bytes: bytes, encoding: .utf8) else {
            throw EngineError.invalidModel(file: fileName, problem: "the \(what) at byte \(range.lowerBound) is not UTF-8")
        }
        return string
    }
}

import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// What the parser has seen so far. Filled by one task, then handed to the request's task when that one ends.
final class ReceivedForm: @unchecked Sendable {
    /// The last value of each field.
    var fields: [String: String] = [:]
    /// Every value of each field, in order (array fields come as repeated `name[]` parts).
    var repeatedFields: [String: [String]] = [:]
    var sawFile = false
    var fileComplete = false
    var fileBytes: Int64 = 0
    /// The first reason to refuse the form, raised by the reading loop.
    var failure: (any Error)?

    private var partHeaders: [String: String] = [:]
    private var partName: String?
    private var partIsFile = false
    private var fieldBytes: [UInt8] = []
    private var fieldCount = 0
    private var totalFieldBytes = 0

    func header(name: String, value: String) {
        guard partHeaders.count < FormLimits.maxPartHeaders else {
            failure = FormLimits.tooLarge("a part has more than \(FormLimits.maxPartHeaders) headers")
            return
        }
        partHeaders[name.lowercased()] = value
    }

    func body(_ buffer: inout ByteBuffer, descriptor: Int32) {
        if partName == nil { startPart() }
        if partIsFile {
            buffer.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        let code = errno
                        if code == EINTR { continue }
                        failure = StorageFailure(code: code)
                        return
                    }
                    offset += written
                }
            }
            fileBytes += Int64(buffer.readableBytes)
        } else if fieldBytes.count + buffer.readableBytes > FormLimits.maxFieldBytes {
            failure = APIError(.unprocessableContent, code: "invalid_option", message: "form field '\(partName ?? "")' is too long")
        } else if totalFieldBytes + buffer.readableBytes > FormLimits.maxTotalFieldBytes {
            failure = FormLimits.tooLarge("the form's fields exceed \(FormLimits.maxTotalFieldBytes) bytes together")
        } else {
            fieldBytes.append(contentsOf: buffer.readableBytesView)
            totalFieldBytes += buffer.readableBytes
        }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
    }

    func partComplete() {
        if partName == nil { startPart() }
        if partIsFile {
            fileComplete = true
        } else if let name = partName {
            let value = String(decoding: fieldBytes, as: UTF8.self)
            fields[name] = value
            repeatedFields[name, default: []].append(value)
        }
        partHeaders = [:]
        partName = nil
        partIsFile = false
        fieldBytes = []
    }

    /// Headers are complete when the first body bytes (or the end of the part) arrive.
    private func startPart() {
        let disposition = partHeaders["content-disposition"] ?? ""
        partName = Self.parameter("name", in: disposition) ?? ""
        if partName == "file" {
            if sawFile {
                failure = APIError(.badRequest, code: "invalid_request", message: "the form has more than one 'file' field")
            }
            sawFile = true
            partIsFile = true
        } else {
            fieldCount += 1
            if fieldCount > FormLimits.maxFields {
                failure = FormLimits.tooLarge("the form has more than \(FormLimits.maxFields) fields")
            }
        }
    }

    private static func parameter(_ key: String, in header: String) -> String? {
        for piece in header.split(separator: ";") {
            let pair = piece.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == key {
                return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
        }
        return nil
    }
}

/// Bounds on what of a form is kept in memory (everything but the file, which streams to disk). Each is far
/// above what a real client sends; past one the upload is refused at once with `413 form_too_large`.
enum FormLimits {
    /// Non-file fields in one form.
    static let maxFields = 64
    /// Bytes of one field.
    static let maxFieldBytes = 64 << 10
    /// Bytes of all fields together.
    static let maxTotalFieldBytes = 256 << 10
    /// Bytes of one part's headers (and of the preamble before the first part).
    static let maxPartHeaderBytes = 16 << 10
    /// Headers of one part.
    static let maxPartHeaders = 16
    /// Bytes given to the multipart parser at once.
    static let parserSliceBytes = 4 << 10

    static func tooLarge(_ message: String) -> APIError {
        APIError(.contentTooLarge, code: "form_too_large", message: message)
    }
}

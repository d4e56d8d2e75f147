import Foundation
import HTTPTypes

extension UploadController {
    /// Header names a client may not set on its callbacks: framing, routing and Steno's own.
    static let reservedCallbackHeaders: Set<String> = [
        "host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
        "trailer", "expect", "proxy-authorization", "proxy-connection", "user-agent",
    ]

    /// The `callback_url`, `callback_header_name` and `callback_header_value` fields as a webhook, or nil without
    /// a URL. The URL must pass the callback policy now (its host is looked up); the header is one field of the
    /// client's own (a token for the receiver, say), both parts or neither.
    func webhook(_ fields: [String: String]) async throws -> WebhookRequest? {
        let name = fields["callback_header_name"]?.trimmingCharacters(in: .whitespaces) ?? ""
        let value = fields["callback_header_value"] ?? ""
        guard let url = fields["callback_url"]?.trimmingCharacters(in: .whitespaces), !url.isEmpty else {
            if !name.isEmpty || !value.isEmpty {
                throw APIError(.badRequest, code: "invalid_callback_header", message: "a callback header needs a callback_url")
            }
            return nil
        }
        if let reason = callbacks.unavailable {
            throw APIError(.badRequest, code: "webhooks_unavailable", message: reason)
        }
        do {
            _ = try await callbacks.check(url)
        } catch let refusal as CallbackRefusal {
            throw APIError(.badRequest, code: "invalid_callback_url", message: refusal.reason)
        }
        guard !name.isEmpty || !value.isEmpty else { return WebhookRequest(url: url) }
        guard !name.isEmpty, !value.isEmpty else {
            throw APIError(.badRequest, code: "invalid_callback_header",
                           message: "give both callback_header_name and callback_header_value, or neither")
        }
        let lowered = name.lowercased()
        guard HTTPField.Name(name) != nil, name.utf8.count <= 256,
              !Self.reservedCallbackHeaders.contains(lowered), !lowered.hasPrefix("steno-"), !lowered.hasPrefix("content-") else {
            throw APIError(.badRequest, code: "invalid_callback_header",
                           message: "callback_header_name must be a valid HTTP header name other than Host, Content-*, Steno-* and other framing headers")
        }
        guard value.utf8.count <= 4096, HTTPField.isValidValue(value),
              !value.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" }) else {
            throw APIError(.badRequest, code: "invalid_callback_header",
                           message: "callback_header_value must be at most 4096 bytes without control characters")
        }
        return WebhookRequest(url: url, headerName: name, headerValue: value)
    }
}

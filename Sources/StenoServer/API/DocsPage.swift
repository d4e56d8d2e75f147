import Foundation

/// `/docs`: the OpenAPI document as a self-contained HTML page (no scripts, no CDN): each operation with its
/// summary and description, each schema with its properties, then the whole document. Built once at start-up
/// by reading the YAML's fixed layout (the document is ours, so its indentation is known).
enum DocsPage {
    static func render(yaml: String) -> String {
        let lines = yaml.components(separatedBy: "\n")
        var operations: [(method: String, path: String, summary: String, description: String)] = []
        var schemas: [(name: String, properties: [String])] = []
        var section = ""
        var path = ""
        var index = 0
        while index < lines.count {
            let line = lines[index]
            if !line.hasPrefix(" "), line.hasSuffix(":") { section = String(line.dropLast()) }
            if line.hasPrefix("  schemas:") { section = "schemas" }
            if section == "paths", line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if section == "paths", let method = Self.key(line, indent: 4), ["get", "post", "put", "delete", "patch"].contains(method) {
                var summary = ""
                var description = ""
                var inner = index + 1
                while inner < lines.count, Self.indent(of: lines[inner]) > 4 || lines[inner].isEmpty {
                    let text = lines[inner].trimmingCharacters(in: .whitespaces)
                    if Self.indent(of: lines[inner]) == 6, text.hasPrefix("summary:") {
                        summary = String(text.dropFirst("summary:".count)).trimmingCharacters(in: .whitespaces)
                    }
                    if Self.indent(of: lines[inner]) == 6, text.hasPrefix("description:") {
                        var body: [String] = []
                        var more = inner + 1
                        while more < lines.count, Self.indent(of: lines[more]) >= 8 {
                            body.append(lines[more].trimmingCharacters(in: .whitespaces))
                            more += 1
                        }
                        let inline = String(text.dropFirst("description:".count)).trimmingCharacters(in: .whitespaces)
                        description = inline == "|" ? body.joined(separator: " ") : inline
                    }
                    inner += 1
                }
                operations.append((method.uppercased(), path, summary, description))
            } else if section == "schemas", let name = Self.key(line, indent: 4) {
                var properties: [String] = []
                var inner = index + 1
                var inProperties = false
                while inner < lines.count, Self.indent(of: lines[inner]) > 4 || lines[inner].isEmpty {
                    if Self.key(lines[inner], indent: 6) == "properties" { inProperties = true }
                    else if Self.indent(of: lines[inner]) == 6 { inProperties = false }
                    if inProperties, let property = Self.key(lines[inner], indent: 8) { properties.append(property) }
                    inner += 1
                }
                schemas.append((name, properties))
            }
            index += 1
        }

        var html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Steno API</title>
        <style>
        body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
        code,pre{font-family:ui-monospace,monospace}pre{background:#f5f5f5;padding:1rem;overflow:auto;font-size:13px}
        .op{border-left:4px solid #999;padding:.2rem .8rem;margin:.8rem 0}.m{font-weight:bold;display:inline-block;width:4.5rem}
        .GET{border-color:#2a7}.POST{border-color:#27c}.DELETE{border-color:#c33}
        </style></head><body>
        <h1>Steno API</h1>
        <p>The contract is the OpenAPI document at <a href="/openapi.yaml">/openapi.yaml</a>. Errors are
        <code>{"error": {"code", "message"}}</code> with stable codes.</p>
        <h2>Operations</h2>

        """
        for operation in operations {
            html += "<div class=\"op \(operation.method)\"><span class=\"m\">\(operation.method)</span><code>\(escape(operation.path))</code>"
            html += " — \(escape(operation.summary))"
            if !operation.description.isEmpty { html += "<br><small>\(escape(operation.description))</small>" }
            html += "</div>\n"
        }
        html += "<h2>Schemas</h2>\n<ul>\n"
        for schema in schemas {
            html += "<li><code>\(escape(schema.name))</code>"
            if !schema.properties.isEmpty { html += ": " + schema.properties.map { "<code>\(escape($0))</code>" }.joined(separator: ", ") }
            html += "</li>\n"
        }
        html += "</ul>\n<h2>Document</h2>\n<pre>\(escape(yaml))</pre>\n</body></html>\n"
        return html
    }

    private static func indent(of line: String) -> Int { line.prefix { $0 == " " }.count }

    /// The key of a `key:` line at exactly this indentation.
    private static func key(_ line: String, indent: Int) -> String? {
        guard Self.indent(of: line) == indent else { return nil }
        let text = line.dropFirst(indent)
        guard let colon = text.firstIndex(of: ":"), !text.hasPrefix("-"), !text.hasPrefix("#") else { return nil }
        let key = text[..<colon]
        guard !key.isEmpty, !key.contains(" ") else { return nil }
        return String(key).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

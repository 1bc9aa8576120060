import Foundation
@testable import KBServer
import XCTest

/// The OpenAPI document: the served text is docs/openapi.json, and it lists every route.
final class OpenAPITests: XCTestCase {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/openapi.json")

    func testServedDocumentIsTheRepositoryFile() throws {
        let text = try String(contentsOf: Self.file, encoding: .utf8)
        XCTAssertEqual(OpenAPIDocument.json + "\n", text, "docs/openapi.json and Sources/KBServer/OpenAPI.swift differ: edit both")
    }

    func testDocumentListsEveryRouteAndMethod() throws {
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any])
        XCTAssertEqual(doc["openapi"] as? String, "3.0.3")
        let paths = try XCTUnwrap(doc["paths"] as? [String: [String: Any]])
        XCTAssertEqual(Set(paths.keys), Set(Routes.table.map(\.path)))
        for (path, methods) in Routes.table {
            XCTAssertEqual(Set(paths[path]?.keys ?? [:].keys), Set(methods.map { $0.rawValue.lowercased() }), path)
            for (method, operation) in paths[path] ?? [:] {
                let responses = try XCTUnwrap((operation as? [String: Any])?["responses"] as? [String: Any], "\(method) \(path)")
                XCTAssertNotNil(responses["200"], "\(method) \(path)")
                XCTAssertNotNil(responses["403"], "\(method) \(path)")
                XCTAssertNotNil(responses["405"], "\(method) \(path)")
                if path != "/healthz" { XCTAssertNotNil(responses["401"], "\(method) \(path)") }
            }
        }
        // Every $ref resolves.
        let text = OpenAPIDocument.json
        let refs = text.components(separatedBy: "\"$ref\": \"#/").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        XCTAssertFalse(refs.isEmpty)
        for ref in refs {
            var node: Any? = doc
            for part in ref.split(separator: "/") { node = (node as? [String: Any])?[String(part)] }
            XCTAssertNotNil(node, ref)
        }
    }
}

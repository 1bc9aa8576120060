import Foundation
public final class WordPieceTokenizer: Sendable {
    public let maxLength: Int
    public var vocabularySize: Int { 30522 }
    public init(modelDirectory: URL, maxLength: Int) throws { self.maxLength = maxLength }
    public func encode(_ text: String) -> TokenizedText { TokenizedText(ids: [101, 102], fullLength: 2) }
}
public struct TokenizedText: Sendable, Equatable { public var ids: [Int32]; public var fullLength: Int }

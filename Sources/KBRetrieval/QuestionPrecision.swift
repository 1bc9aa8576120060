import KBEmbed
import KBFormat

/// The precision questions are embedded in, for indexes that recorded theirs
/// (`ModelDescriptor.precision`, format-spec.md §8.3).
///
/// A question is embedded the way the index was unless the caller asks otherwise: vectors of
/// both precisions are comparable, but a question embedded the index's way scores as the
/// index was measured. Several indexes served together share one model, so they share one
/// precision: the first index's (the others are listed in `differing`).
public struct QuestionPrecision: Sendable, Equatable {
    /// An index whose recorded precision is not the one questions are embedded in.
    public struct Differing: Sendable, Equatable {
        /// The index's name as served ("" for a lone index of `query` or `eval`).
        public var index: String
        /// What it recorded: "f32" for no `precision` key, else the key's value (possibly one
        /// this kbindex does not know, when the caller asked for a precision).
        public var recorded: String

        public init(index: String, recorded: String) {
            self.index = index
            self.recorded = recorded
        }
    }

    /// What questions are embedded in.
    public var precision: Precision
    /// Whether the caller chose it (`--precision`) rather than the indexes.
    public var asked: Bool
    /// The indexes that recorded another precision, in the order given.
    public var differing: [Differing]

    public init(precision: Precision, asked: Bool, differing: [Differing]) {
        self.precision = precision
        self.asked = asked
        self.differing = differing
    }

    /// What a recorded `precision` key reads as, for messages: "f32" when absent.
    public static func recorded(_ model: ModelDescriptor) -> String { model.precision ?? Precision.f32.rawValue }

    /// Chooses the precision for questions to `indexes` (name, the model its manifest
    /// records; at least one): `asked` when given, else the first index's.
    ///
    /// Throws `RetrievalError.unknownPrecision` when `asked` is nil and an index recorded a
    /// precision this kbindex does not know (an index written by a newer kbindex): which
    /// arithmetic its questions want cannot be known, so the caller must choose. O(indexes).
    public static func choose(asked: Precision?, indexes: [(name: String, model: ModelDescriptor)]) throws -> QuestionPrecision {
        if asked == nil, let unknown = indexes.first(where: { Precision(recorded: $0.model.precision) == nil }) {
            throw RetrievalError.unknownPrecision(index: unknown.name, value: recorded(unknown.model))
        }
        let precision = asked ?? indexes.first.flatMap { Precision(recorded: $0.model.precision) } ?? .default
        let differing = indexes.filter { recorded($0.model) != precision.rawValue }.map { Differing(index: $0.name, recorded: recorded($0.model)) }
        return QuestionPrecision(precision: precision, asked: asked != nil, differing: differing)
    }
}

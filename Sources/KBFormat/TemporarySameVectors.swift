// Temporary (lead's tree only): replaced by helper "format"'s implementation at merge.
extension ModelDescriptor {
    public func sameVectors(as other: ModelDescriptor) -> Bool {
        incompatibility(with: other) == nil && precision == other.precision && documentPrompt == other.documentPrompt
    }
}

import Foundation
import KBCore
import KBEmbed
import KBFormat
import KBRetrieval
import KBSearch

/// `build`'s side of a checkpoint (format-spec.md §13.6): finding the one an interrupted
/// build left, and continuing or discarding it, with a note on stderr for each decision.
enum BuildCheckpointing {
    /// The checkpoint in `dir`, or nil; a damaged one is removed with a note (its segments
    /// become unreferenced files, which the build's commit removes). One that cannot be read
    /// (permissions, I/O, a newer kbindex's) stops the build with a `CLIError` that says what
    /// to do, rather than throwing its saved work away.
    static func found(in dir: URL) throws -> BuildCheckpoint? {
        do {
            return try BuildCheckpoint.read(from: dir)
        } catch let e as CheckpointError where !e.isDamage {
            throw CLIError("\(e): fix it and build again to continue the interrupted build, or remove it to start over")
        } catch {
            note("\(error): discarding it; this build starts over")
            BuildCheckpoint.remove(in: dir)
            return nil
        }
    }

    /// What a build with `descriptor` does with `checkpoint`: continue it (`aside`: its
    /// segments that passed their checks; `rebuild`: it was a rebuild, which goes on as one)
    /// or discard it (another model or precision, or `--rebuild` over an update's checkpoint).
    /// A discarded checkpoint's files are removed when `indexed`, the committed manifest,
    /// says which files to keep. Reads every aside segment once (checksums).
    static func resume(_ checkpoint: BuildCheckpoint?, in dir: URL, descriptor: ModelDescriptor, rebuild: Bool,
                       indexed: Manifest?) -> (aside: IndexDirectory?, rebuild: Bool) {
        guard let cp = checkpoint else { return (nil, false) }
        let saved = "the \(Format.counted(cp.chunks, "chunk")) an interrupted build saved aside"
        func discard(_ why: String) -> (aside: IndexDirectory?, rebuild: Bool) {
            note("discarding \(saved): \(why)")
            BuildCheckpoint.remove(in: dir)
            if let indexed { IndexFiles.removeUnreferenced(in: dir, keeping: IndexFiles.referenced(by: indexed)) }
            return (nil, false)
        }
        if !cp.model.sameVectors(as: descriptor) {
            return discard("they were embedded with \(describe(cp.model)), this build embeds with \(describe(descriptor))")
        }
        if rebuild && !cp.rebuild { return discard("they belong to an update, and --rebuild starts over") }
        FaultInjection.point("resume-opening")
        let opened = cp.open(in: dir)
        for d in opened.dropped {
            warn("\(dir.appendingPathComponent(d.file).path): \(d.reason); the interrupted build's documents in it are read and embedded again")
        }
        if opened.index == nil { BuildCheckpoint.remove(in: dir) }  // nothing of it is left to continue
        return (opened.index, cp.rebuild)
    }

    /// What `info` and `verify` say about a checkpoint a build would continue.
    static func pendingLine(_ cp: BuildCheckpoint) -> String {
        "an interrupted \(cp.rebuild ? "rebuild" : "build") has \(Format.counted(cp.chunks, "chunk")) of \(Format.counted(cp.documents, "file")) saved aside (not searched yet); 'kbindex build' of the indexed folder resumes it"
    }

    /// "f32", "int8": the precision a descriptor records (escaped and shortened when it is
    /// not one this kbindex knows).
    static func precision(of m: ModelDescriptor) -> String { Format.displayed(ModelLoading.shown(QuestionPrecision.recorded(m))) }

    /// "all-MiniLM-L6-v2 in int8", "text-embedding-3-small via openai", with the document
    /// prompt when there is one.
    static func describe(_ m: ModelDescriptor) -> String {
        let base = m.isRemote ? "\(Format.displayed(m.name)) via \(Format.displayed(m.provider ?? "?"))" : "\(Format.displayed(m.name)) in \(precision(of: m))"
        return base + (m.documentPrompt.map { " with the document prompt '\(Format.displayed($0))'" } ?? "")
    }
}

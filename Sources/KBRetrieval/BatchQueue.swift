import Dispatch
import Foundation
import KBEmbed
import KBSearch

/// Collects the questions of concurrent requests and answers them together on one serial
/// queue: one embedding call for all of them (identical texts once), then one scan per group
/// of questions that share a searcher, mode, k, paths and fusion. A lone question waits at
/// most `window`; questions that arrive while a batch runs form the next batch.
final class BatchQueue: @unchecked Sendable {
    struct Question {
        let query: SearchQuery
        let mode: SearchMode
        let filter: DocumentFilter?
    }

    /// One caller's questions and where their answers go.
    struct Job {
        /// From `newID()`: what `cancel` names.
        let id: UInt64
        let searcher: Searcher
        let questions: [Question]
        let continuation: CheckedContinuation<[SearchResult], Error>
    }

    private let embedder: any TextEmbedder
    private let window: DispatchTimeInterval
    private let maxBatch: Int
    private let threads: Int?
    private let queue = DispatchQueue(label: "kbindex.retrieval.batches")
    private let maxWaiting: Int
    private let lock = NSLock()
    private var pending: [Job] = []
    private var waitingQuestions = 0
    private var waitingWork = 0
    private var lastID: UInt64 = 0
    private var scheduled = false
    private var observer: (@Sendable (Int) -> Void)?

    /// `maxWaiting`: the most questions (and, separately, embedding calls) that may wait; more
    /// are refused with `RetrievalError.busy` rather than queued without end.
    init(embedder: any TextEmbedder, window: Duration, maxBatch: Int, maxWaiting: Int, threads: Int?) {
        self.embedder = embedder
        // Whole milliseconds and up are clamped to an hour: no overflow for any Duration.
        let (seconds, attoseconds) = window.components
        let nanoseconds = seconds >= 3600 ? 3_600_000_000_000 : max(0, seconds) * 1_000_000_000 + max(0, attoseconds) / 1_000_000_000
        self.window = .nanoseconds(Int(clamping: nanoseconds))
        self.maxBatch = maxBatch
        self.maxWaiting = max(maxBatch, maxWaiting)
        self.threads = threads
    }

    /// Questions waiting for a batch now (not those being answered).
    var waiting: Int { lock.withLock { waitingQuestions } }

    /// A fresh job id.
    func newID() -> UInt64 { lock.withLock { lastID += 1; return lastID } }

    func setObserver(_ o: @escaping @Sendable (Int) -> Void) { lock.withLock { observer = o } }

    /// Queues `job`; its continuation is resumed exactly once, with its answers or an error.
    /// The batch starts when `window` has passed since the first waiting question, or at
    /// once when `maxBatch` questions wait (a full batch gains nothing by waiting).
    /// When `maxWaiting` questions wait already, the job is refused at once (`.busy`).
    func submit(_ job: Job) {
        let (accepted, timer, full) = lock.withLock { () -> (Bool, Bool, Bool) in
            if waitingQuestions > 0 && waitingQuestions + job.questions.count > maxWaiting { return (false, false, false) }
            pending.append(job)
            waitingQuestions += job.questions.count
            let full = waitingQuestions >= maxBatch
            if scheduled || full { return (true, false, full) }
            scheduled = true
            return (true, true, false)
        }
        if !accepted {
            job.continuation.resume(throwing: RetrievalError.busy("\(maxWaiting) questions are waiting already"))
            return
        }
        if full { queue.async { self.drain() } }
        if timer {
            queue.asyncAfter(deadline: .now() + window) {
                self.lock.withLock { self.scheduled = false }
                self.drain()
            }
        }
    }

    /// Withdraws job `id` if it has not started: its continuation is resumed with
    /// `CancellationError` (the caller went away; its questions need no answer). A job that
    /// has started finishes. O(waiting jobs).
    func cancel(_ id: UInt64) {
        let job = lock.withLock { () -> Job? in
            guard let i = pending.firstIndex(where: { $0.id == id }) else { return nil }
            waitingQuestions -= pending[i].questions.count
            return pending.remove(at: i)
        }
        job?.continuation.resume(throwing: CancellationError())
    }

    /// Runs `work` on the batch queue, between batches (the embedder is used by one caller at
    /// a time). Returns false, and does not run it, when `maxWaiting` calls wait already.
    func perform(_ work: @escaping @Sendable (any TextEmbedder) -> Void) -> Bool {
        let accepted = lock.withLock { () -> Bool in
            if waitingWork >= maxWaiting { return false }
            waitingWork += 1
            return true
        }
        guard accepted else { return false }
        queue.async {
            self.lock.withLock { self.waitingWork -= 1 }
            work(self.embedder)
        }
        return true
    }

    /// Takes up to `maxBatch` questions (whole jobs, at least one) and answers them; what is
    /// left (it arrived meanwhile and has waited long enough) runs next. Nothing to take
    /// (a full batch already took it) is fine.
    private func drain() {
        let (jobs, more) = lock.withLock { () -> ([Job], Bool) in
            var taken = 0, n = 0
            while n < pending.count && (n == 0 || taken + pending[n].questions.count <= maxBatch) {
                taken += pending[n].questions.count
                n += 1
            }
            let jobs = Array(pending.prefix(n))
            pending.removeFirst(n)
            waitingQuestions -= taken
            return (jobs, !pending.isEmpty)
        }
        if more { queue.async { self.drain() } }
        guard !jobs.isEmpty else { return }
        run(jobs)
    }

    private struct GroupKey: Hashable {
        let searcher: ObjectIdentifier
        let mode: SearchMode
        let k: Int
        let paths: [String]
        /// Hybrid only: how its rankings are fused.
        let fusion: Fusion.Options?
    }

    private func run(_ jobs: [Job]) {
        let count = jobs.reduce(0) { $0 + $1.questions.count }
        lock.withLock { observer }?(count)

        // One embedding call for every question that needs a vector, identical texts once.
        var unique: [String] = [], position: [String: Int] = [:]
        for job in jobs {
            for q in job.questions where q.mode != .lexical && position[q.query.text] == nil {
                position[q.query.text] = unique.count
                unique.append(q.query.text)
            }
        }
        var vectors: [[Float]] = []
        var embedError: Error?
        if !unique.isEmpty {
            do { vectors = try embedder.embed(unique, as: .query) } catch {
                embedError = ModelIdentity.embeddingFailure(error, of: embedder)
            }
        }

        // Group questions that one scan can answer together, in order of first appearance.
        var groups: [(key: GroupKey, members: [(job: Int, question: Int)])] = []
        var groupOf: [GroupKey: Int] = [:]
        for (j, job) in jobs.enumerated() {
            for (i, q) in job.questions.enumerated() {
                let key = GroupKey(searcher: ObjectIdentifier(job.searcher), mode: q.mode, k: q.query.k, paths: q.query.paths,
                                   fusion: q.mode == .hybrid ? q.query.fusion : nil)
                if let g = groupOf[key] {
                    groups[g].members.append((j, i))
                } else {
                    groupOf[key] = groups.count
                    groups.append((key, [(j, i)]))
                }
            }
        }

        var answers = jobs.map { Array<SearchResult?>(repeating: nil, count: $0.questions.count) }
        var failures = Array<Error?>(repeating: nil, count: jobs.count)
        for (key, members) in groups {
            let first = jobs[members[0].job].questions[members[0].question]
            let searcher = jobs[members[0].job].searcher
            do {
                if key.mode != .lexical, let embedError { throw embedError }
                let texts = members.map { jobs[$0.job].questions[$0.question].query.text }
                // Every text of a non-lexical group has its vector (`answer` checks the count).
                let vecs = key.mode == .lexical ? [] : texts.compactMap { position[$0].map { vectors[$0] } }
                let ranked = try searcher.answer(texts, vectors: vecs, mode: key.mode, k: key.k, filter: first.filter,
                                                 fusion: first.query.fusion, threads: threads)
                for (m, r) in zip(members, ranked) {
                    answers[m.job][m.question] = SearchResult(index: searcher.name, generation: searcher.generation,
                                                              mode: key.mode, hits: try searcher.hits(r))
                }
            } catch {
                for m in members where failures[m.job] == nil { failures[m.job] = error }
            }
        }
        for (j, job) in jobs.enumerated() {
            if let error = failures[j] {
                job.continuation.resume(throwing: error)
            } else {
                let done = answers[j].compactMap { $0 }
                if done.count == job.questions.count {
                    job.continuation.resume(returning: done)
                } else {
                    job.continuation.resume(throwing: RetrievalError.invalidRequest("a question of the batch was not answered"))
                }
            }
        }
    }
}

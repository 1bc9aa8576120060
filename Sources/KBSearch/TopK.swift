/// A bounded collection of the k best hits: a min-heap on (score, then reverse position), so
/// the worst kept hit is at the root and a better one replaces it in O(log k).
///
/// The order is total (positions are unique), so the hits kept do not depend on the order
/// they were offered in: per-thread heaps merged in any order give the same top-k.
struct TopK {
    let k: Int
    private(set) var heap: [Hit] = []

    /// Reserves room for at most a few thousand hits up front: k comes from the command line
    /// (`-k`), and a huge k with few chunks must not allocate k slots (or trap trying).
    init(k: Int) { self.k = k; heap.reserveCapacity(Swift.min(k, 4096)) }

    /// True when `a` ranks below `b`: lower score, or equal score and later position.
    @inline(__always)
    static func worse(_ a: Hit, _ b: Hit) -> Bool {
        if a.score != b.score { return a.score < b.score }
        return (a.segment, a.chunk) > (b.segment, b.chunk)
    }

    /// The score a hit needs to be considered (ties are decided by position): −∞ until the
    /// heap holds k hits, then the worst kept score.
    var threshold: Float { heap.count < k ? -.infinity : heap[0].score }

    mutating func offer(_ h: Hit) {
        if heap.count < k {
            heap.append(h)
            siftUp(heap.count - 1)
        } else if Self.worse(heap[0], h) {
            heap[0] = h
            siftDown(0)
        }
    }

    /// Best first.
    func sorted() -> [Hit] { heap.sorted { Self.worse($1, $0) } }

    private mutating func siftUp(_ i: Int) {
        var i = i
        while i > 0 {
            let p = (i - 1) / 2
            guard Self.worse(heap[i], heap[p]) else { return }
            heap.swapAt(i, p)
            i = p
        }
    }

    private mutating func siftDown(_ i: Int) {
        var i = i
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, Self.worse(heap[l], heap[m]) { m = l }
            if r < heap.count, Self.worse(heap[r], heap[m]) { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }
}

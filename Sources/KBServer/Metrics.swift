import Foundation
import KBRetrieval
import Prometheus

/// The server's Prometheus metrics. Label values come from fixed sets (route patterns, known
/// methods, status codes, index names), never from free client text, so the number of series
/// is bounded.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let batchSizes: ValueHistogram

    static let latencyBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
    ]
    static let knownMethods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    init() {
        batchSizes = registry.makeValueHistogram(
            descriptor: .init(namespace: "kbindex", metricName: "search_batch", unitName: "size",
                              helpText: "Questions embedded and scanned together in one batch."),
            labels: [], buckets: [1, 2, 4, 8, 16, 32, 64, 128])
    }

    /// Counts one answered request. `route` is the matched route pattern ("/v1/chunks/{id}"),
    /// or "unmatched".
    func record(route: String, method: String, status: Int, duration: Duration) {
        let method = Self.knownMethods.contains(method) ? method : "OTHER"
        registry.makeCounter(
            descriptor: .init(namespace: "kbindex", subsystem: "http", metricName: "requests", unitName: "total",
                              helpText: "HTTP requests answered, by route, method and status."),
            labels: [("route", route), ("method", method), ("status", String(status))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: .init(namespace: "kbindex", subsystem: "http", metricName: "request_duration", unitName: "seconds",
                              helpText: "Time to answer an HTTP request, by route."),
            labels: [("route", route)], buckets: Self.latencyBuckets
        ).record(duration)
    }

    /// Records the size of one batch the retrieval service ran.
    func recordBatch(_ size: Int) { batchSizes.record(Double(size)) }

    /// The exposition text, with the index gauges set from `info` first.
    func exposition(_ info: ServiceInfo) -> String {
        for index in info.indexes {
            let labels = [("index", index.name)]
            registry.makeGauge(descriptor: .init(namespace: "kbindex", subsystem: "index", metricName: "generation", unitName: "",
                                                 helpText: "Generation of the served index: 1 at start, +1 at each reload."),
                               labels: labels).set(Double(index.generation))
            registry.makeGauge(descriptor: .init(namespace: "kbindex", subsystem: "index", metricName: "chunks", unitName: "",
                                                 helpText: "Chunks in the served generation of the index."),
                               labels: labels).set(Double(index.chunks))
            registry.makeGauge(descriptor: .init(namespace: "kbindex", subsystem: "index", metricName: "documents", unitName: "",
                                                 helpText: "Documents in the served generation of the index."),
                               labels: labels).set(Double(index.documents))
        }
        return registry.emitToString()
    }
}

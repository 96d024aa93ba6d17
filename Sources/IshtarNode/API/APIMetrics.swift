import Foundation
import Metrics
import Prometheus

/// The process's Prometheus registry, and the one-time swift-metrics bootstrap.
///
/// `MetricsSystem.bootstrap` may be called only once per process (a second call traps),
/// while the node, the API server and tests may each want metrics. So nothing else should
/// call `MetricsSystem.bootstrap`: call ``bootstrap()`` (idempotent, thread-safe, cheap)
/// early in `ishtar node start` — before the node records anything, since values recorded
/// before the bootstrap go to swift-metrics' no-op backend — and pass its registry to the
/// server (``makeAPIApplication(backend:configuration:logger:metricsRegistry:onServerRunning:)``
/// defaults to it). A test that wants an isolated registry passes its own
/// `PrometheusCollectorRegistry` instead and records into it directly.
public enum NodeMetrics {
    /// A `static let` initializer runs exactly once (swift_once), which is what makes the
    /// bootstrap idempotent without a lock of our own.
    private static let shared: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    /// Bootstraps swift-metrics with a Prometheus factory on first call; returns the
    /// process-wide registry every time.
    @discardableResult
    public static func bootstrap() -> PrometheusCollectorRegistry { shared }

    /// The Prometheus text exposition of `registry`, refreshing the node gauges from
    /// `status` first so a scrape is current even if nothing was recorded since the
    /// last event (the node also records them as they change, through swift-metrics).
    static func exposition(_ registry: PrometheusCollectorRegistry, status: NodeStatus) -> [UInt8] {
        // Same name, no labels and no help text as swift-metrics' factory uses, so this is
        // the very gauge the node records into, not a second one.
        func gauge(_ name: String) -> Prometheus.Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: ""))
        }
        gauge(NodeMetricName.height).set(Double(status.height))
        gauge(NodeMetricName.round).set(Double(status.round))
        gauge(NodeMetricName.peers).set(Double(status.peers))
        gauge(NodeMetricName.mempoolSize).set(Double(status.mempoolSize))
        // Absent numbers (no such module, nothing finalized yet) are left out rather than
        // reported as 0, which would read as a real height.
        if let h = status.btcLightClientHeight { gauge(NodeMetricName.btcLightClientHeight).set(Double(h)) }
        if let h = status.btcFinalizedHeight { gauge(NodeMetricName.btcFinalizedHeight).set(Double(h)) }
        if let e = status.lastFinalizedEpoch { gauge(NodeMetricName.lastFinalizedEpoch).set(Double(e)) }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

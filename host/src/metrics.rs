//! Metrics in Prometheus' text format, through the `metrics` facade and
//! its Prometheus exporter: HTTP requests by route and status with latency
//! histograms, plugin calls by plugin and outcome with latency, catalog
//! refreshes, and gauges read at scrape time (entities, search documents
//! and lag, plugins). `GET /metrics` renders them.
//!
//! The recorder is process-wide (the `metrics` macros write to one), so
//! several portals in one process (the tests) share their counters.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Seconds: from a cached card (~0.1 ms) to a plugin at its deadline.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("greenroom_refresh_duration_seconds".into()),
                    &[0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0],
                )
            })
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Another recorder (a test's) may be installed already; ours then
        // renders what it sees, which is nothing, but nothing breaks.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// One HTTP request, by method, route pattern and status.
pub fn request(method: &str, route: &str, status: u16, seconds: f64) {
    let labels = [("method", method.to_string()), ("route", route.to_string())];
    metrics::counter!(
        "greenroom_http_requests_total",
        "method" => method.to_string(),
        "route" => route.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("greenroom_http_request_duration_seconds", &labels).record(seconds);
}

/// One plugin call: `ok`, or the kind of failure.
pub fn plugin_call(plugin: &str, outcome: &'static str, seconds: f64) {
    metrics::counter!(
        "greenroom_plugin_calls_total",
        "plugin" => plugin.to_string(),
        "outcome" => outcome
    )
    .increment(1);
    metrics::histogram!(
        "greenroom_plugin_call_duration_seconds",
        "plugin" => plugin.to_string()
    )
    .record(seconds);
}

/// One location refresh.
pub fn refresh(seconds: f64, failed: bool) {
    metrics::histogram!("greenroom_refresh_duration_seconds").record(seconds);
    metrics::counter!(
        "greenroom_refreshes_total",
        "outcome" => if failed { "error" } else { "ok" }
    )
    .increment(1);
}

/// Values read when scraped.
pub fn gauges(entities: i64, documents: u64, search_lag: i64, plugins: usize, sessions: i64) {
    metrics::gauge!("greenroom_sessions_live").set(sessions as f64);
    metrics::gauge!("greenroom_catalog_entities").set(entities as f64);
    metrics::gauge!("greenroom_search_documents").set(documents as f64);
    metrics::gauge!("greenroom_search_lag_changes").set(search_lag as f64);
    metrics::gauge!("greenroom_plugins_loaded").set(plugins as f64);
}

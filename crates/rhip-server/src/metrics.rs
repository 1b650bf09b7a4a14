//! Prometheus metrics: request counts and latencies per route, audit entries
//! written, and record-count gauges refreshed by a scheduled job.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The node's metric collectors, in their own registry (no globals, so
/// several nodes can live in one test process).
pub struct Metrics {
    registry: Registry,
    /// Requests by method, route pattern and status.
    pub http_requests: IntCounterVec,
    /// Request latency by method and route pattern.
    pub http_duration: HistogramVec,
    /// Audit entries written by the API.
    pub audit_entries: IntCounter,
    /// Rows per table, refreshed on a schedule.
    pub records: IntGaugeVec,
    /// Pool connections, by state (`open`, `idle`).
    pub pool: IntGaugeVec,
    /// HL7 v2 messages answered, by channel and ACK code.
    pub hl7_messages: IntCounterVec,
    /// Open MLLP connections.
    pub mllp_connections: prometheus::IntGauge,
    /// CDA documents submitted, by outcome (`stored`, `repeated`, `refused`).
    pub documents: IntCounterVec,
    /// Per federation link, by peer and measure (`pending_changes`,
    /// `unacked_batches`, `last_sent_seq`, `last_acked_seq`, `lag_seconds`,
    /// `failures`, `parked_at_peer`).
    pub federation_links: IntGaugeVec,
    /// Changes parked here (dead letters not yet resolved).
    pub federation_dead_letters: prometheus::IntGauge,
    /// Requests refused by a rate limit, by class (`login`, `submission`).
    pub rate_limited: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every collector.
    pub fn new(region: &str) -> Result<Metrics, prometheus::Error> {
        let registry =
            Registry::new_custom(Some("rhip".into()), Some([("region".to_string(), region.to_string())].into()))?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["method", "route"],
        )?;
        let audit_entries = IntCounter::new("audit_entries_total", "Audit entries written by the API")?;
        let records = IntGaugeVec::new(Opts::new("records", "Rows stored, by table"), &["table"])?;
        let pool = IntGaugeVec::new(Opts::new("db_pool_connections", "Database pool connections"), &["state"])?;
        let hl7_messages =
            IntCounterVec::new(Opts::new("hl7_messages_total", "HL7 v2 messages answered"), &["channel", "ack"])?;
        let documents =
            IntCounterVec::new(Opts::new("documents_total", "CDA documents submitted, by outcome"), &["outcome"])?;
        let mllp_connections = prometheus::IntGauge::new("mllp_connections", "Open MLLP connections")?;
        let federation_links = IntGaugeVec::new(
            Opts::new("federation_link", "Federation link state, by peer and measure"),
            &["peer", "measure"],
        )?;
        let federation_dead_letters =
            prometheus::IntGauge::new("federation_dead_letters", "Changes parked here, not yet re-applied")?;
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limited_total", "Requests refused by a per-client rate limit, by class"),
            &["class"],
        )?;
        let build = IntGaugeVec::new(Opts::new("build_info", "Software version"), &["version"])?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(audit_entries.clone()))?;
        registry.register(Box::new(records.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        registry.register(Box::new(build))?;
        registry.register(Box::new(hl7_messages.clone()))?;
        registry.register(Box::new(mllp_connections.clone()))?;
        registry.register(Box::new(documents.clone()))?;
        registry.register(Box::new(federation_links.clone()))?;
        registry.register(Box::new(federation_dead_letters.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            audit_entries,
            records,
            pool,
            hl7_messages,
            mllp_connections,
            documents,
            federation_links,
            federation_dead_letters,
            rate_limited,
        })
    }

    /// Renders the registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "metrics encoding failed");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Stores fresh record counts in the gauges.
    pub fn set_counts(&self, counts: &rhip_store::Counts) {
        for (table, value) in [
            ("persons", counts.persons),
            ("encounters", counts.encounters),
            ("documents", counts.documents),
            ("ehr_entries", counts.ehr_entries),
            ("facilities", counts.facilities),
            ("change_log", counts.changes),
            ("audit_log", counts.audit_entries),
        ] {
            self.records.with_label_values(&[table]).set(value);
        }
    }
}

impl Metrics {
    /// Stores a fresh view of the federation links in the gauges.
    pub fn set_federation(&self, status: &rhip_api_types::FederationStatus) {
        for link in &status.links {
            for (measure, value) in [
                ("pending_changes", link.pending_changes),
                ("unacked_batches", link.unacked_batches),
                ("last_sent_seq", link.last_sent_seq),
                ("last_acked_seq", link.last_acked_seq),
                ("lag_seconds", link.lag_seconds),
                ("failures", link.failures),
                ("parked_at_peer", link.parked_at_peer),
            ] {
                self.federation_links.with_label_values(&[&link.peer, measure]).set(value);
            }
        }
        self.federation_dead_letters.set(status.dead_letters);
    }
}

//! What the operations listener's `/metrics` shows, in the OpenMetrics text format that
//! Prometheus scrapes (`prometheus-client`). One set per process: the counters describe the
//! process, like its memory. Nothing here is a secret or names a user: logins are counted by
//! outcome, never by login.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A handshake message's step and what became of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandshakeLabels {
    /// `hello` or `finish`.
    pub step: &'static str,
    /// `ok`, `refused` (hostile or invalid: penalized) or `busy` (over a budget).
    pub outcome: &'static str,
}

/// A login's outcome as the audit log records it (`ok`, `failed: wrong password`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// The audit record's outcome.
    pub outcome: String,
}

/// Which endpoint a request was.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// `handshake` or `record`.
    pub endpoint: &'static str,
}

/// A pool's connections by state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `idle` or `in_use`.
    pub state: &'static str,
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    handshakes: Family<HandshakeLabels, Counter>,
    tickets: Counter,
    logins: Family<LoginLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    /// Sessions open, read when scraped.
    pub open_sessions: Gauge,
    /// Handshakes begun and not finished, read when scraped.
    pub pending_handshakes: Gauge,
    /// Password jobs waiting for an Argon2 thread, read when scraped.
    pub argon2_queue: Gauge,
    /// The database pool's connections, read when scraped.
    pub db_pool: Family<PoolLabels, Gauge>,
}

/// The outcome texts a login's audit record may carry are the code's own, so the label's
/// values are a fixed set; this bounds them all the same, should one ever carry more.
const MAX_OUTCOME: usize = 64;

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("tresor");
        let handshakes = Family::<HandshakeLabels, Counter>::default();
        registry.register(
            "handshakes",
            "Handshake messages by step and outcome",
            handshakes.clone(),
        );
        let tickets = Counter::default();
        registry.register(
            "handshake_tickets_redeemed",
            "Handshakes finished from their ticket: the ClientHello went to another instance",
            tickets.clone(),
        );
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "logins",
            "Logins by the outcome the audit log records",
            logins.clone(),
        );
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            // 0.5 ms to about 4 s: a record on a warm session up to an Argon2 login in a queue.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0005, 2.0, 14,
            ))
        });
        registry.register(
            "request_seconds",
            "Time the server spent on a request, by endpoint",
            latency.clone(),
        );
        let open_sessions = Gauge::default();
        registry.register("open_sessions", "Sessions open", open_sessions.clone());
        let pending_handshakes = Gauge::default();
        registry.register(
            "pending_handshakes",
            "Handshakes begun and not finished",
            pending_handshakes.clone(),
        );
        let argon2_queue = Gauge::default();
        registry.register(
            "argon2_queue_depth",
            "Password checks waiting for an Argon2 thread",
            argon2_queue.clone(),
        );
        let db_pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database pool connections by state",
            db_pool.clone(),
        );
        Self {
            registry,
            handshakes,
            tickets,
            logins,
            latency,
            open_sessions,
            pending_handshakes,
            argon2_queue,
            db_pool,
        }
    }

    /// Counts a handshake message.
    pub fn handshake(&self, step: &'static str, outcome: &'static str) {
        self.handshakes
            .get_or_create(&HandshakeLabels { step, outcome })
            .inc();
    }

    /// Counts a handshake finished from its ticket.
    pub fn ticket_redeemed(&self) {
        self.tickets.inc();
    }

    /// Counts a login by its audit outcome.
    pub fn login(&self, outcome: &str) {
        let outcome: String = outcome.chars().take(MAX_OUTCOME).collect();
        self.logins.get_or_create(&LoginLabels { outcome }).inc();
    }

    /// Notes how long a request took.
    pub fn request(&self, endpoint: &'static str, took: Duration) {
        self.latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(took.as_secs_f64());
    }

    /// The text `/metrics` answers.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_come_out_in_the_text_format() {
        let m = Metrics::new();
        m.handshake("finish", "ok");
        m.handshake("finish", "ok");
        m.login("failed: wrong password");
        m.login(&"x".repeat(500));
        m.request("record", Duration::from_millis(3));
        m.open_sessions.set(7);
        let text = m.encode();
        assert!(
            text.contains("tresor_handshakes_total{step=\"finish\",outcome=\"ok\"} 2"),
            "{text}"
        );
        assert!(text.contains("tresor_logins_total{outcome=\"failed: wrong password\"} 1"));
        assert!(text.contains(&format!("outcome=\"{}\"", "x".repeat(MAX_OUTCOME))));
        assert!(!text.contains(&"x".repeat(MAX_OUTCOME + 1)));
        assert!(text.contains("tresor_request_seconds_count{endpoint=\"record\"} 1"));
        assert!(text.contains("tresor_open_sessions 7"));
        assert!(text.ends_with("# EOF\n"));
    }
}

//! The operations listener: plain HTTP on a loopback address, off unless `[operations]
//! listen` is set. `/metrics` (OpenMetrics text, [`crate::metrics`]), `/healthz` (the process
//! answers), `/readyz` (the database answers and the server is not draining: what a load
//! balancer asks before sending traffic). Nothing here takes input beyond the path, needs a
//! key, or shows a secret or a login.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::server::BankChannel;

/// What the endpoints look at.
pub struct Operations {
    channel: Arc<BankChannel>,
    draining: AtomicBool,
}

impl Operations {
    /// The operations of the bank behind `channel`.
    pub fn new(channel: Arc<BankChannel>) -> Arc<Self> {
        Arc::new(Self {
            channel,
            draining: AtomicBool::new(false),
        })
    }

    /// From now on `/readyz` says no: the server is finishing its requests before it exits.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the server is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// The endpoints.
pub fn router(ops: Arc<Operations>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(ops)
}

async fn metrics(State(ops): State<Arc<Operations>>) -> impl IntoResponse {
    let m = crate::metrics::metrics();
    if let Err(e) = ops.channel.read_gauges().await {
        tracing::warn!(error = %e, "metrics: the session count failed");
    }
    m.argon2_queue
        .set(i64::try_from(crate::passwords::queue_depth()).unwrap_or(i64::MAX));
    let (open, idle) = ops.channel.handler().store().pool_use();
    let idle = i64::try_from(idle).unwrap_or(i64::MAX);
    m.db_pool
        .get_or_create(&crate::metrics::PoolLabels { state: "idle" })
        .set(idle);
    m.db_pool
        .get_or_create(&crate::metrics::PoolLabels { state: "in_use" })
        .set(i64::from(open) - idle);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ops): State<Arc<Operations>>) -> (StatusCode, &'static str) {
    if ops.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n");
    }
    match ops.channel.handler().store().ping().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "readyz: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

/// Serves the operations endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ops: Arc<Operations>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(ops))
        .with_graceful_shutdown(shutdown)
        .await
}

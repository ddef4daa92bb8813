//! The outer HTTPS layer: rustls with TLS 1.3 only, on ring, and an accept loop that bounds
//! how long a client may take to finish TLS and send its headers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tresor_core::PrivateKey;
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::Encode as _;

use crate::proxy::{Proxies, read_proxy_v2};

/// Time allowed for the TLS handshake, and then for each request's headers.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The certificate could not be encoded.
    #[error("certificate encoding: {0}")]
    Encode(String),
}

/// A TLS 1.3-only server configuration on ring, presenting `cert` (issued by the bank CA)
/// with `key`, offering HTTP/1.1.
pub fn server_config(key: &PrivateKey, cert: &Certificate) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_der = cert.to_der().map_err(|e| TlsError::Encode(e.to_string()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert_der)], private_key_der(key))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `key` as rustls takes it.
pub fn private_key_der(key: &PrivateKey) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_pkcs8_der().to_vec()))
}

/// Serves `app` over TLS on `listener` until `shutdown` completes. Each request carries the
/// peer's address as axum's [`ConnectInfo`].
///
/// Behind load balancers (`proxies`), that is the client's address as a trusted balancer
/// gave it: from a PROXY v2 header read before TLS (a connection from a trusted balancer
/// without a valid one is closed), or from `X-Forwarded-For` (a trusted balancer's request
/// without a usable one gets 400).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    proxies: Arc<Proxies>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    // Every connection is watched: at shutdown the idle ones close at once and those with a
    // request in flight answer it first, for up to `drain`.
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (mut tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: log, breathe, go on.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        let proxies = proxies.clone();
        tokio::spawn(async move {
            let peer = if proxies.expects_proxy_v2(peer.ip()) {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_proxy_v2(&mut tcp)).await {
                    Ok(Ok(Some(client))) => client,
                    // The balancer's own connection (a health check).
                    Ok(Ok(None)) => peer,
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, error = %e, "connection from a trusted proxy refused");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "PROXY header timed out");
                        return;
                    }
                }
            } else {
                peer
            };
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
                let (app, proxies) = (app.clone(), proxies.clone());
                async move {
                    match proxies.client_of(peer, req.headers()) {
                        Ok(client) => {
                            req.extensions_mut().insert(ConnectInfo(client));
                            app.oneshot(req).await
                        }
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "request from a trusted proxy refused");
                            Ok(StatusCode::BAD_REQUEST.into_response())
                        }
                    }
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    // Closed now, so a new client is refused at once (and a balancer tries elsewhere)
    // rather than wait in the backlog of a server that will not answer it.
    drop(listener);
    let open = graceful.count();
    tracing::info!(connections = open, "draining");
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = drain.as_secs(),
            "drain time over: closing what is left"
        );
    }
    Ok(())
}

/// The address a request came from, as [`serve`] records it.
pub fn peer_of(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

//! The secure channel's HTTP endpoints (docs/PROTOCOL.md §8), kept thin: bytes in, the
//! IO-free state machine, bytes out.
//!
//! Pending handshakes and sessions live in memory, each session behind its own async lock so
//! that its records are opened, handled and answered one at a time in seq order. A message
//! that fails gets an Alert and leaves everything as it was.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tower_http::timeout::TimeoutLayer;
use tresor_core::channel::server::{
    self, ClientIdentity, PendingHandshake, Request, ServerIdentity, ServerSession, SessionParams,
};
use tresor_core::channel::wire::{self, ClientFinish, MessageType, Record};
use tresor_core::channel::{ChannelError, Mode, SessionId};
use tresor_core::pki::RevocationCheck;
use tresor_core::x509_cert::Certificate;
use zeroize::Zeroizing;

/// Path of the handshake endpoint.
pub const HANDSHAKE_PATH: &str = "/tresor/v1/handshake";
/// Path of the session endpoint.
pub const SESSION_PATH: &str = "/tresor/v1/session";
/// Time allowed for a whole request, body and handling included.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the application knows about the session a request arrived on.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session's id.
    pub id: SessionId,
    /// Authenticated with the client's key, or anonymous.
    pub mode: Mode,
    /// Who signed the handshake, for an authenticated session.
    pub client: Option<ClientIdentity>,
    /// Where the request came from (the TCP peer).
    pub peer: Option<SocketAddr>,
}

/// The application behind the channel: it gets each opened request and returns the reply
/// payload, which the channel seals.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(
        &self,
        session: &SessionInfo,
        request: Zeroizing<Vec<u8>>,
    ) -> impl Future<Output = Vec<u8>> + Send;
}

/// Limits on what the server keeps in memory.
#[derive(Debug, Clone, Copy)]
pub struct ChannelConfig {
    /// Idle timeout and record limit of each session.
    pub params: SessionParams,
    /// Handshakes waiting for ClientFinish, at most.
    pub max_pending: usize,
    /// Sessions, at most.
    pub max_sessions: usize,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            params: SessionParams::default(),
            max_pending: 10_000,
            max_sessions: 100_000,
        }
    }
}

/// The server side of the channel: identity, trust, state and the application.
pub struct Channel<H> {
    identity: ServerIdentity,
    bank_ca: Certificate,
    revocation: Arc<dyn RevocationCheck + Send + Sync>,
    config: ChannelConfig,
    pending: Mutex<HashMap<SessionId, PendingHandshake>>,
    sessions: Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<ServerSession>>>>,
    handler: H,
}

impl<H: Handler> Channel<H> {
    /// A channel that signs with `identity`, accepts client certificates from `bank_ca`
    /// unless `revocation` says otherwise, and hands requests to `handler`.
    pub fn new(
        identity: ServerIdentity,
        bank_ca: Certificate,
        revocation: Arc<dyn RevocationCheck + Send + Sync>,
        handler: H,
        config: ChannelConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            identity,
            bank_ca,
            revocation,
            config,
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            handler,
        })
    }

    /// Answers a handshake message: ServerHello or Accept, or an Alert.
    pub fn handshake(&self, body: &[u8], now: SystemTime) -> Vec<u8> {
        let result = match wire::peek_type(body) {
            Ok(MessageType::ClientHello) => self.client_hello(body, now),
            Ok(MessageType::ClientFinish) => self.client_finish(body, now),
            Ok(_) => Err(ChannelError::UnexpectedMessage("not a handshake message")),
            Err(e) => Err(e),
        };
        result.unwrap_or_else(|e| {
            tracing::info!(error = %e, "handshake refused");
            e.alert_message()
        })
    }

    fn client_hello(&self, body: &[u8], now: SystemTime) -> Result<Vec<u8>, ChannelError> {
        self.room(Self::pending_count, self.config.max_pending, now)?;
        let (pending, server_hello) = server::respond(body, &self.identity, now)?;
        lock(&self.pending).insert(pending.session_id(), pending);
        Ok(server_hello)
    }

    fn client_finish(&self, body: &[u8], now: SystemTime) -> Result<Vec<u8>, ChannelError> {
        let id = ClientFinish::decode(body)?.session_id;
        // Before any signature is checked: a full server refuses cheaply.
        self.room(Self::session_count, self.config.max_sessions, now)?;
        // Taken out, so that a second ClientFinish for this handshake finds nothing; put
        // back if this one is refused, so that a forged one cannot spoil the genuine one.
        let pending = lock(&self.pending)
            .remove(&id)
            .ok_or(ChannelError::UnknownSession)?;
        let verified = match pending.verify(body, &self.bank_ca, now) {
            Ok(v) => v,
            Err(refused) => {
                if !refused.pending.is_expired(now) {
                    lock(&self.pending).insert(id, *refused.pending);
                }
                return Err(refused.error);
            }
        };
        let (session, accept) = verified.accept(&*self.revocation, self.config.params, now)?;
        tracing::info!(
            session = ?id,
            mode = ?session.mode(),
            login = session.client().map(|c| c.login.as_str()),
            "session established"
        );
        lock(&self.sessions).insert(id, Arc::new(tokio::sync::Mutex::new(session)));
        Ok(accept)
    }

    /// `ServerBusy` if `count` is at `max` even after expired state is swept.
    fn room(
        &self,
        count: fn(&Self) -> usize,
        max: usize,
        now: SystemTime,
    ) -> Result<(), ChannelError> {
        if count(self) >= max {
            self.sweep(now);
            if count(self) >= max {
                return Err(ChannelError::ServerBusy);
            }
        }
        Ok(())
    }

    /// Answers a session record: the sealed reply, or an Alert.
    pub async fn record(&self, body: &[u8], peer: Option<SocketAddr>) -> Vec<u8> {
        match self.record_inner(body, peer).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::info!(error = %e, "record refused");
                e.alert_message()
            }
        }
    }

    async fn record_inner(
        &self,
        body: &[u8],
        peer: Option<SocketAddr>,
    ) -> Result<Vec<u8>, ChannelError> {
        let record = Record::decode(body)?;
        let id = record.session_id;
        let session = lock(&self.sessions)
            .get(&id)
            .cloned()
            .ok_or(ChannelError::UnknownSession)?;
        let mut session = session.lock().await;
        let now = SystemTime::now();
        if session.is_expired(now) {
            lock(&self.sessions).remove(&id);
            return Err(ChannelError::UnknownSession);
        }
        match session.open_record(&record, now)? {
            Request::Data(payload, slot) => {
                let info = SessionInfo {
                    id,
                    mode: session.mode(),
                    client: session.client().cloned(),
                    peer,
                };
                let reply = self.handler.handle(&info, payload).await;
                session.seal_reply(slot, &reply)
            }
            Request::Close(slot) => {
                lock(&self.sessions).remove(&id);
                tracing::info!(session = ?id, "session closed");
                Ok(session.seal_close(slot))
            }
        }
    }

    /// Forgets handshakes and sessions that have expired.
    pub fn sweep(&self, now: SystemTime) {
        lock(&self.pending).retain(|_, p| !p.is_expired(now));
        lock(&self.sessions).retain(|_, s| match s.try_lock() {
            Ok(s) => !s.is_expired(now),
            // In use right now, so not idle.
            Err(_) => true,
        });
    }

    /// Handshakes waiting for ClientFinish.
    pub fn pending_count(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Sessions in memory.
    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }
}

/// The two endpoints, with their size limits and a request timeout.
pub fn router<H: Handler>(channel: Arc<Channel<H>>) -> Router {
    Router::new()
        .route(
            HANDSHAKE_PATH,
            post(handshake::<H>).layer(DefaultBodyLimit::max(wire::MAX_HANDSHAKE_MESSAGE)),
        )
        .route(
            SESSION_PATH,
            post(record::<H>).layer(DefaultBodyLimit::max(wire::MAX_RECORD)),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(channel)
}

/// Spawns a task that sweeps expired state every `every`, for as long as `channel` lives.
pub fn spawn_sweeper<H: Handler>(channel: &Arc<Channel<H>>, every: std::time::Duration) {
    let weak = Arc::downgrade(channel);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(channel) => channel.sweep(SystemTime::now()),
                None => return,
            }
        }
    });
}

async fn handshake<H: Handler>(State(channel): State<Arc<Channel<H>>>, body: Bytes) -> Response {
    octets(channel.handshake(&body, SystemTime::now()))
}

async fn record<H: Handler>(
    State(channel): State<Arc<Channel<H>>>,
    request: axum::extract::Request,
) -> Response {
    let peer = crate::tls::peer_of(request.extensions());
    let body = match axum::body::to_bytes(request.into_body(), wire::MAX_RECORD).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    octets(channel.record(&body, peer).await)
}

fn octets(body: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        body,
    )
        .into_response()
}

/// Locks a map, going on after a panic elsewhere: the maps hold no invariant a panic could
/// break halfway.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

//! The secure channel's HTTP endpoints (docs/PROTOCOL.md §8), kept thin: bytes in, the
//! IO-free state machine, bytes out.
//!
//! Pending handshakes live in memory: the two handshake requests of a client go to one
//! instance within [`server::HANDSHAKE_TIMEOUT`]. Sessions live in a [`SessionStore`]: in
//! memory ([`MemorySessions`]) or in the bank's database, where any instance sharing it can
//! take the next record. Each record's seq is compare-and-set in the store before the
//! application sees it, so a record is accepted once, on one instance. A message that fails
//! gets an Alert and leaves everything as it was.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

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
use tresor_core::pki::NoRevocationList;
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::serial_number::SerialNumber;
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
/// payload, which the channel seals; and it says which client certificates are revoked.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(
        &self,
        session: &SessionInfo,
        request: Zeroizing<Vec<u8>>,
    ) -> impl Future<Output = Vec<u8>> + Send;

    /// The time, for certificate validity and session expiry: the application's clock, so
    /// that the channel and the application agree (tests move it).
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    /// Whether the bank revoked the client certificate with this serial. Asked after the
    /// client's signature verified, before its session is accepted. An error refuses the
    /// handshake (fail closed).
    fn is_revoked(
        &self,
        serial: &SerialNumber,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A storage failure; the message is for the log, never for the client.
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

/// Where established sessions live between records.
///
/// Sessions are kept as [`ServerSession::export`] bytes plus the seq and time that change
/// with every record, so that any instance can restore one. `advance` must be an atomic
/// compare-and-set on the seq: it is what makes a record acceptable only once.
pub trait SessionStore: Send + Sync + 'static {
    /// Keeps a new session.
    fn insert(
        &self,
        session: &ServerSession,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The session with this id, if it is kept.
    fn load(
        &self,
        id: SessionId,
    ) -> impl Future<Output = Result<Option<ServerSession>, StoreError>> + Send;

    /// Records that `session` accepted the record with seq `from`: its seq becomes
    /// `session.next_client_seq()` if it still is `from`. False if another request took it.
    fn advance(
        &self,
        session: &ServerSession,
        from: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets a session.
    fn remove(&self, id: SessionId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets sessions idle for longer than their timeout.
    fn sweep(&self, now: SystemTime) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sessions kept.
    fn count(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// Sessions in this process's memory: one instance, nothing survives a restart.
#[derive(Default)]
pub struct MemorySessions {
    map: Mutex<HashMap<SessionId, Kept>>,
}

struct Kept {
    state: Zeroizing<Vec<u8>>,
    next_seq: u64,
    last_activity: SystemTime,
    idle_timeout: Duration,
}

impl SessionStore for MemorySessions {
    async fn insert(&self, session: &ServerSession) -> Result<(), StoreError> {
        let kept = Kept {
            state: session.export(),
            next_seq: session.next_client_seq(),
            last_activity: session.last_activity(),
            idle_timeout: session.idle_timeout(),
        };
        lock(&self.map).insert(session.id(), kept);
        Ok(())
    }

    async fn load(&self, id: SessionId) -> Result<Option<ServerSession>, StoreError> {
        let map = lock(&self.map);
        let Some(kept) = map.get(&id) else {
            return Ok(None);
        };
        ServerSession::restore(&kept.state, kept.next_seq, kept.last_activity)
            .map(Some)
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn advance(&self, session: &ServerSession, from: u64) -> Result<bool, StoreError> {
        let mut map = lock(&self.map);
        match map.get_mut(&session.id()) {
            Some(kept) if kept.next_seq == from => {
                kept.next_seq = session.next_client_seq();
                kept.last_activity = session.last_activity();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn remove(&self, id: SessionId) -> Result<(), StoreError> {
        lock(&self.map).remove(&id);
        Ok(())
    }

    async fn sweep(&self, now: SystemTime) -> Result<(), StoreError> {
        lock(&self.map).retain(|_, k| {
            now.duration_since(k.last_activity)
                .map_or(true, |idle| idle <= k.idle_timeout)
        });
        Ok(())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(lock(&self.map).len())
    }
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
pub struct Channel<H, S = MemorySessions> {
    identity: ServerIdentity,
    bank_ca: Certificate,
    config: ChannelConfig,
    pending: Mutex<HashMap<SessionId, PendingHandshake>>,
    sessions: S,
    handler: H,
}

impl<H: Handler, S: SessionStore> Channel<H, S> {
    /// A channel that signs with `identity`, accepts client certificates from `bank_ca`
    /// unless `handler` says they are revoked, keeps sessions in `sessions`, and hands
    /// requests to `handler`.
    pub fn new(
        identity: ServerIdentity,
        bank_ca: Certificate,
        handler: H,
        sessions: S,
        config: ChannelConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            identity,
            bank_ca,
            config,
            pending: Mutex::new(HashMap::new()),
            sessions,
            handler,
        })
    }

    /// The application.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Answers a handshake message: ServerHello or Accept, or an Alert.
    pub async fn handshake(&self, body: &[u8], now: SystemTime) -> Vec<u8> {
        let result = match wire::peek_type(body) {
            Ok(MessageType::ClientHello) => self.client_hello(body, now),
            Ok(MessageType::ClientFinish) => self.client_finish(body, now).await,
            Ok(_) => Err(ChannelError::UnexpectedMessage("not a handshake message")),
            Err(e) => Err(e),
        };
        result.unwrap_or_else(|e| {
            tracing::info!(error = %e, "handshake refused");
            e.alert_message()
        })
    }

    fn client_hello(&self, body: &[u8], now: SystemTime) -> Result<Vec<u8>, ChannelError> {
        if self.pending_count() >= self.config.max_pending {
            lock(&self.pending).retain(|_, p| !p.is_expired(now));
            if self.pending_count() >= self.config.max_pending {
                return Err(ChannelError::ServerBusy);
            }
        }
        let (pending, server_hello) = server::respond(body, &self.identity, now)?;
        lock(&self.pending).insert(pending.session_id(), pending);
        Ok(server_hello)
    }

    async fn client_finish(&self, body: &[u8], now: SystemTime) -> Result<Vec<u8>, ChannelError> {
        let id = ClientFinish::decode(body)?.session_id;
        // Before any signature is checked: a full server refuses cheaply.
        if self.sessions.count().await.map_err(busy)? >= self.config.max_sessions {
            self.sessions.sweep(now).await.map_err(busy)?;
            if self.sessions.count().await.map_err(busy)? >= self.config.max_sessions {
                return Err(ChannelError::ServerBusy);
            }
        }
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
        if let Some(client) = verified.client()
            && self
                .handler
                .is_revoked(&client.serial)
                .await
                .map_err(busy)?
        {
            return Err(ChannelError::BadCertificate(
                tresor_core::pki::CertError::Revoked,
            ));
        }
        let (session, accept) = verified.accept(&NoRevocationList, self.config.params, now)?;
        self.sessions.insert(&session).await.map_err(busy)?;
        tracing::info!(
            session = ?id,
            mode = ?session.mode(),
            login = session.client().map(|c| c.login.as_str()),
            "session established"
        );
        Ok(accept)
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
        let mut session = self
            .sessions
            .load(id)
            .await
            .map_err(busy)?
            .ok_or(ChannelError::UnknownSession)?;
        let now = self.handler.now();
        if session.is_expired(now) {
            self.sessions.remove(id).await.map_err(busy)?;
            return Err(ChannelError::UnknownSession);
        }
        let from = session.next_client_seq();
        let request = session.open_record(&record, now)?;
        // The compare-and-set that makes this record acceptable once, on one instance.
        if !self.sessions.advance(&session, from).await.map_err(busy)? {
            return Err(ChannelError::BadRecord("out of sequence"));
        }
        match request {
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
                self.sessions.remove(id).await.map_err(busy)?;
                tracing::info!(session = ?id, "session closed");
                Ok(session.seal_close(slot))
            }
        }
    }

    /// Forgets handshakes and sessions that have expired.
    pub async fn sweep(&self, now: SystemTime) -> Result<(), StoreError> {
        lock(&self.pending).retain(|_, p| !p.is_expired(now));
        self.sessions.sweep(now).await
    }

    /// Handshakes waiting for ClientFinish.
    pub fn pending_count(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Sessions kept.
    pub async fn session_count(&self) -> Result<usize, StoreError> {
        self.sessions.count().await
    }
}

/// A storage failure, logged here and told to the client as "busy, try again".
fn busy(e: StoreError) -> ChannelError {
    tracing::error!(error = %e, "session storage failed");
    ChannelError::ServerBusy
}

/// The two endpoints, with their size limits and a request timeout.
pub fn router<H: Handler, S: SessionStore>(channel: Arc<Channel<H, S>>) -> Router {
    Router::new()
        .route(
            HANDSHAKE_PATH,
            post(handshake::<H, S>).layer(DefaultBodyLimit::max(wire::MAX_HANDSHAKE_MESSAGE)),
        )
        .route(
            SESSION_PATH,
            post(record::<H, S>).layer(DefaultBodyLimit::max(wire::MAX_RECORD)),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(channel)
}

/// Spawns a task that sweeps expired state every `every`, for as long as `channel` lives.
pub fn spawn_sweeper<H: Handler, S: SessionStore>(
    channel: &Arc<Channel<H, S>>,
    every: std::time::Duration,
) {
    let weak = Arc::downgrade(channel);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(channel) => {
                    if let Err(e) = channel.sweep(channel.handler.now()).await {
                        tracing::error!(error = %e, "sweep failed");
                    }
                }
                None => return,
            }
        }
    });
}

async fn handshake<H: Handler, S: SessionStore>(
    State(channel): State<Arc<Channel<H, S>>>,
    body: Bytes,
) -> Response {
    let now = channel.handler.now();
    octets(channel.handshake(&body, now).await)
}

async fn record<H: Handler, S: SessionStore>(
    State(channel): State<Arc<Channel<H, S>>>,
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

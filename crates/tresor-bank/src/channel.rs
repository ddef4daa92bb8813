//! The secure channel's HTTP endpoints (docs/PROTOCOL.md §8), kept thin: bytes in, the
//! IO-free state machine, bytes out.
//!
//! Pending handshakes live in memory: the two handshake requests of a client go to one
//! instance within [`server::HANDSHAKE_TIMEOUT`]. Each source (an IPv4 address, an IPv6 /64)
//! has a budget of pending handshakes and of sessions besides the global ones, so that one
//! source cannot fill the tables; hostile input from a source (a refused handshake, a record
//! that does not decode or authenticate) earns it penalty points like a failed login, and
//! enough points block it for a while: its handshakes are then refused before any work. Sessions live in a [`SessionStore`]: in
//! memory ([`MemorySessions`]) or in the bank's database, where any instance sharing it can
//! take the next record. Each record's seq is compare-and-set in the store before the
//! application sees it, so a record is accepted once, on one instance. A message that fails
//! gets an Alert and leaves everything as it was.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::Router;
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

use crate::generations::Generations;
use crate::storage::sessions::StoredLogin;

/// Path of the handshake endpoint.
pub const HANDSHAKE_PATH: &str = "/tresor/v1/handshake";
/// Path of the session endpoint.
pub const SESSION_PATH: &str = "/tresor/v1/session";
/// The HTTP header that carries a pending handshake, sealed by the bank, from the reply to
/// a ClientHello to the request with the ClientFinish (base64url, no padding), so that the
/// two may reach different instances (docs/PROTOCOL.md §8). Opaque to the client.
pub const TICKET_HEADER: &str = "tresor-handshake-ticket";
/// Longest ticket header read: a pending handshake's transcript holds the server's
/// certificate and signature, about a kilobyte.
const MAX_TICKET_HEADER: usize = 6 * 1024;
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
    /// The session's login, as the store read it while accepting the record (the database
    /// store does, in the same statement); `None` if the store does not keep logins. Its MAC
    /// is the application's to check.
    pub login: Option<StoredLogin>,
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is; any other as it is.
pub fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The budget and penalty key of an address: an IPv4 address (IPv4-mapped IPv6 folded to
/// it), or an IPv6 /64, which is what one subscriber is given.
pub fn source_of(ip: Option<IpAddr>) -> String {
    match ip.map(unmapped) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
        None => "unknown".to_string(),
    }
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

    /// Why the bank refuses the client certificate with this serial, if it does: revoked,
    /// or not activated yet. Asked after the client's signature verified, before its session
    /// is accepted. An error refuses the handshake (fail closed).
    fn certificate_refusal(
        &self,
        serial: &SerialNumber,
    ) -> impl Future<Output = Result<Option<tresor_core::pki::CertError>, StoreError>> + Send;

    /// One penalty point for `source`, which sent hostile input (`why`); until when it is
    /// blocked, if this point blocked it. The bank counts them with failed logins; by
    /// default nothing is counted.
    fn penalize(
        &self,
        source: &str,
        why: &'static str,
    ) -> impl Future<Output = Option<SystemTime>> + Send {
        let _ = (source, why);
        async { None }
    }

    /// The sources blocked at `now` and until when, whoever blocked them (failed logins
    /// count too), so that every instance refuses their handshakes. None by default.
    fn blocked_sources(
        &self,
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<(String, SystemTime)>, StoreError>> + Send {
        let _ = now;
        async { Ok(Vec::new()) }
    }
}

/// What [`SessionStore::advance`] found.
#[derive(Debug)]
pub enum Advanced {
    /// The record was the session's next: accepted, here and on every instance. With the
    /// session's login, if the store read it.
    Accepted(Option<StoredLogin>),
    /// Another request took this seq first, or the record is a replay.
    Taken,
    /// The session is gone, or was idle for longer than its timeout.
    Ended,
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
    /// Keeps a new session, opened from `source`; `false`, keeping nothing, if its handshake
    /// already opened a session (a ClientFinish sent again, here or to another instance).
    /// A store that hands out [`tickets`](Self::ticket) must remember a handshake as spent
    /// for as long as its ticket could be accepted, after its session has ended too.
    fn insert(
        &self,
        session: &ServerSession,
        source: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// `pending` sealed for the client to carry to its ClientFinish, so that whichever
    /// instance gets that can finish the handshake ([`Self::redeem`]); `None` if this store
    /// serves one instance, which keeps the handshake in memory anyway.
    fn ticket(&self, pending: &PendingHandshake) -> Option<Vec<u8>> {
        let _ = pending;
        None
    }

    /// The pending handshake of session `id` that [`Self::ticket`] sealed into `ticket`;
    /// `None` if the ticket is not one of this bank's for that id.
    fn redeem(&self, id: SessionId, ticket: &[u8]) -> Option<PendingHandshake> {
        let _ = (id, ticket);
        None
    }

    /// The session with this id, if it is kept, to open a record numbered `seq` at `now`.
    /// A store that cannot know the session's next seq and last activity without a round
    /// trip may restore it at `seq` and `now`, and leave [`advance`](Self::advance) to refuse
    /// the record if `seq` is not next or the session was idle too long.
    fn load(
        &self,
        id: SessionId,
        seq: u64,
        now: SystemTime,
    ) -> impl Future<Output = Result<Option<ServerSession>, StoreError>> + Send;

    /// Records that `session` accepted the record with seq `from`: its seq becomes
    /// `session.next_client_seq()`, and its last activity `session.last_activity()`, only
    /// if it still is `from` (on any instance).
    fn advance(
        &self,
        session: &ServerSession,
        from: u64,
    ) -> impl Future<Output = Result<Advanced, StoreError>> + Send;

    /// Sessions kept, and how many of them `source` opened (one query for a database).
    fn counts(
        &self,
        source: &str,
    ) -> impl Future<Output = Result<(usize, usize), StoreError>> + Send;

    /// Forgets a session.
    fn remove(&self, id: SessionId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes down whatever the store kept only in memory, at a clean stop, after the last
    /// request: the sessions then go on after a restart.
    fn release(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }

    /// Forgets sessions idle for longer than their timeout.
    fn sweep(&self, now: SystemTime) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sessions kept.
    fn count(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// Sessions in this process's memory: one instance, nothing survives a restart.
#[derive(Default)]
pub struct MemorySessions {
    map: Mutex<Kepts>,
}

/// The sessions, and how many each source opened (counted, not scanned, per handshake).
#[derive(Default)]
struct Kepts {
    sessions: HashMap<SessionId, Kept>,
    per_source: PerSource,
}

impl Kepts {
    fn remove(&mut self, id: &SessionId) {
        if let Some(kept) = self.sessions.remove(id) {
            self.per_source.forget(&kept.source);
        }
    }
}

/// How many of something each source holds; sources holding none are not kept.
#[derive(Default)]
struct PerSource(HashMap<String, usize>);

impl PerSource {
    fn get(&self, source: &str) -> usize {
        self.0.get(source).copied().unwrap_or(0)
    }

    fn add(&mut self, source: &str) {
        *self.0.entry(source.to_owned()).or_default() += 1;
    }

    fn forget(&mut self, source: &str) {
        if let Some(n) = self.0.get_mut(source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.remove(source);
            }
        }
    }
}

struct Kept {
    state: Zeroizing<Vec<u8>>,
    source: String,
    next_seq: u64,
    last_activity: SystemTime,
    idle_timeout: Duration,
}

impl SessionStore for MemorySessions {
    async fn insert(&self, session: &ServerSession, source: &str) -> Result<bool, StoreError> {
        let kept = Kept {
            state: session.export(),
            source: source.to_owned(),
            next_seq: session.next_client_seq(),
            last_activity: session.last_activity(),
            idle_timeout: session.idle_timeout(),
        };
        let mut map = lock(&self.map);
        if map.sessions.contains_key(&session.id()) {
            return Ok(false);
        }
        map.sessions.insert(session.id(), kept);
        map.per_source.add(source);
        Ok(true)
    }

    async fn load(
        &self,
        id: SessionId,
        _seq: u64,
        _now: SystemTime,
    ) -> Result<Option<ServerSession>, StoreError> {
        let map = lock(&self.map);
        let Some(kept) = map.sessions.get(&id) else {
            return Ok(None);
        };
        ServerSession::restore(&kept.state, kept.next_seq, kept.last_activity)
            .map(Some)
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn counts(&self, source: &str) -> Result<(usize, usize), StoreError> {
        let map = lock(&self.map);
        Ok((map.sessions.len(), map.per_source.get(source)))
    }

    async fn advance(&self, session: &ServerSession, from: u64) -> Result<Advanced, StoreError> {
        let mut map = lock(&self.map);
        Ok(match map.sessions.get_mut(&session.id()) {
            Some(kept) if kept.next_seq == from => {
                kept.next_seq = session.next_client_seq();
                kept.last_activity = session.last_activity();
                Advanced::Accepted(None)
            }
            Some(_) => Advanced::Taken,
            None => Advanced::Ended,
        })
    }

    async fn remove(&self, id: SessionId) -> Result<(), StoreError> {
        lock(&self.map).remove(&id);
        Ok(())
    }

    async fn sweep(&self, now: SystemTime) -> Result<(), StoreError> {
        let mut map = lock(&self.map);
        let idle: Vec<SessionId> = map
            .sessions
            .iter()
            .filter(|(_, k)| {
                now.duration_since(k.last_activity)
                    .is_ok_and(|idle| idle > k.idle_timeout)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            map.remove(&id);
        }
        Ok(())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(lock(&self.map).sessions.len())
    }
}

/// Limits on what the server keeps in memory.
#[derive(Debug, Clone, Copy)]
pub struct ChannelConfig {
    /// Idle timeout and record limit of each session.
    pub params: SessionParams,
    /// Handshakes waiting for ClientFinish, at most.
    pub max_pending: usize,
    /// Handshakes waiting for ClientFinish from one source, at most.
    pub max_pending_per_source: usize,
    /// Sessions, at most.
    pub max_sessions: usize,
    /// Sessions opened from one source, at most (a company's clients may share an address).
    pub max_sessions_per_source: usize,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            params: SessionParams::default(),
            max_pending: 10_000,
            max_pending_per_source: 64,
            max_sessions: 100_000,
            max_sessions_per_source: 2_000,
        }
    }
}

/// The server side of the channel: identity, trust, state and the application.
pub struct Channel<H, S = MemorySessions> {
    identity: ServerIdentity,
    bank_ca: Certificate,
    /// The client certificates whose signature by `bank_ca` has verified.
    verified: VerifiedCertificates,
    config: ChannelConfig,
    pending: Mutex<Pending>,
    blocked: Mutex<HashMap<String, SystemTime>>,
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
            verified: VerifiedCertificates::default(),
            config,
            pending: Mutex::new(Pending::default()),
            blocked: Mutex::new(HashMap::new()),
            sessions,
            handler,
        })
    }

    /// The application.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Sets the gauges `/metrics` reads off the channel: sessions open, handshakes pending.
    pub async fn read_gauges(&self) -> Result<(), StoreError> {
        let (open, _) = self.sessions.counts("").await?;
        let pending = lock(&self.pending).len();
        let m = crate::metrics::metrics();
        m.open_sessions.set(i64::try_from(open).unwrap_or(i64::MAX));
        m.pending_handshakes
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        Ok(())
    }

    /// Answers a handshake message from `peer`: ServerHello or Accept, or an Alert. For a
    /// client that carries no ticket (one instance, or a balancer that keeps its two
    /// requests together).
    pub async fn handshake(
        &self,
        body: &[u8],
        now: SystemTime,
        peer: Option<SocketAddr>,
    ) -> Vec<u8> {
        self.handshake_with(body, None, now, peer).await.body
    }

    /// [`Self::handshake`], with the ticket the client carried from its ServerHello to its
    /// ClientFinish, if any: its ClientFinish is then accepted on any instance of the bank.
    pub async fn handshake_with(
        &self,
        body: &[u8],
        ticket: Option<&[u8]>,
        now: SystemTime,
        peer: Option<SocketAddr>,
    ) -> HandshakeReply {
        let source = source_of(peer.map(|p| p.ip()));
        if self.is_blocked(&source, now) {
            return ChannelError::ServerBusy.alert_message().into();
        }
        let (step, result) = match wire::peek_type(body) {
            Ok(MessageType::ClientHello) => ("hello", self.client_hello(body, now, &source)),
            Ok(MessageType::ClientFinish) => (
                "finish",
                self.client_finish(body, ticket, now, &source)
                    .await
                    .map(HandshakeReply::from),
            ),
            Ok(_) => (
                "other",
                Err(Refused::Hostile(ChannelError::UnexpectedMessage(
                    "not a handshake message",
                ))),
            ),
            Err(e) => ("other", Err(Refused::Hostile(e))),
        };
        let metrics = crate::metrics::metrics();
        match result {
            Ok(reply) => {
                metrics.handshake(step, "ok");
                reply
            }
            Err(Refused::Hostile(e)) => {
                metrics.handshake(step, "refused");
                tracing::info!(error = %e, source, "handshake refused");
                self.penalize(&source, "refused handshake", now).await;
                e.alert_message().into()
            }
            Err(Refused::Busy(e)) => {
                metrics.handshake(step, "busy");
                tracing::info!(error = %e, source, "handshake refused");
                e.alert_message().into()
            }
        }
    }

    fn is_blocked(&self, source: &str, now: SystemTime) -> bool {
        lock(&self.blocked)
            .get(source)
            .is_some_and(|until| *until > now)
    }

    async fn penalize(&self, source: &str, why: &'static str, now: SystemTime) {
        if let Some(until) = self.handler.penalize(source, why).await
            && until > now
        {
            lock(&self.blocked).insert(source.to_owned(), until);
        }
    }

    fn client_hello(
        &self,
        body: &[u8],
        now: SystemTime,
        source: &str,
    ) -> Result<HandshakeReply, Refused> {
        {
            let mut pending = lock(&self.pending);
            if pending.from(source) >= self.config.max_pending_per_source {
                pending.retain(|p| !p.is_expired(now));
                if pending.from(source) >= self.config.max_pending_per_source {
                    // One source asking for more than its share is the flood itself.
                    return Err(Refused::Hostile(ChannelError::ServerBusy));
                }
            }
            if pending.len() >= self.config.max_pending {
                pending.retain(|p| !p.is_expired(now));
                if pending.len() >= self.config.max_pending {
                    return Err(Refused::Busy(ChannelError::ServerBusy));
                }
            }
        }
        let (pending, server_hello) =
            server::respond(body, &self.identity, now).map_err(Refused::Hostile)?;
        let ticket = self.sessions.ticket(&pending);
        lock(&self.pending).insert(source, pending);
        Ok(HandshakeReply {
            body: server_hello,
            ticket,
        })
    }

    async fn client_finish(
        &self,
        body: &[u8],
        ticket: Option<&[u8]>,
        now: SystemTime,
        source: &str,
    ) -> Result<Vec<u8>, Refused> {
        let id = ClientFinish::decode(body)
            .map_err(Refused::Hostile)?
            .session_id;
        // Before any signature is checked: a full server refuses cheaply.
        let stored = |e: StoreError| Refused::Busy(busy(e));
        let (mut all, mut mine) = self.sessions.counts(source).await.map_err(stored)?;
        if all >= self.config.max_sessions {
            self.sessions.sweep(now).await.map_err(stored)?;
            (all, mine) = self.sessions.counts(source).await.map_err(stored)?;
            if all >= self.config.max_sessions {
                return Err(Refused::Busy(ChannelError::ServerBusy));
            }
        }
        if mine >= self.config.max_sessions_per_source {
            return Err(Refused::Hostile(ChannelError::ServerBusy));
        }
        // Taken out, so that a second ClientFinish for this handshake finds nothing here;
        // put back if this one is refused, so that a forged one cannot spoil the genuine
        // one. Not here (its ServerHello came from another instance): from its ticket, which
        // the client still holds if this one is refused. Either way, the store's `insert`
        // refuses a handshake that already opened a session, on any instance.
        let kept = lock(&self.pending).remove(&id);
        let (owner, pending) = match kept {
            Some((owner, pending)) => (Some(owner), pending),
            None => (
                None,
                ticket
                    .and_then(|t| self.sessions.redeem(id, t))
                    .ok_or(Refused::Hostile(ChannelError::UnknownSession))?,
            ),
        };
        let verified = match pending.verify_cached(body, &self.bank_ca, now, Some(&self.verified)) {
            Ok(v) => v,
            Err(refused) => {
                if let Some(owner) = owner
                    && !refused.pending.is_expired(now)
                {
                    lock(&self.pending).insert(&owner, *refused.pending);
                }
                return Err(Refused::Hostile(refused.error));
            }
        };
        let accept = self
            .accept(verified, now, source)
            .await
            .map_err(|e| match e {
                ChannelError::ServerBusy => Refused::Busy(e),
                e => Refused::Hostile(e),
            })?;
        if owner.is_none() {
            crate::metrics::metrics().ticket_redeemed();
        }
        Ok(accept)
    }

    async fn accept(
        &self,
        verified: server::VerifiedFinish,
        now: SystemTime,
        source: &str,
    ) -> Result<Vec<u8>, ChannelError> {
        if let Some(client) = verified.client()
            && let Some(refusal) = self
                .handler
                .certificate_refusal(&client.serial)
                .await
                .map_err(busy)?
        {
            return Err(ChannelError::BadCertificate(refusal));
        }
        let (session, accept) = verified.accept(&NoRevocationList, self.config.params, now)?;
        if !self.sessions.insert(&session, source).await.map_err(busy)? {
            return Err(ChannelError::UnknownSession);
        }
        tracing::info!(
            session = ?session.id(),
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
                // A record that does not decode or authenticate is hostile input; an expired
                // session or a busy store is not the sender's doing.
                if matches!(
                    e,
                    ChannelError::Decode(_)
                        | ChannelError::BadRecord(_)
                        | ChannelError::UnexpectedMessage(_)
                ) {
                    let source = source_of(peer.map(|p| p.ip()));
                    self.penalize(&source, "refused record", self.handler.now())
                        .await;
                }
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
        let now = self.handler.now();
        let mut session = self
            .sessions
            .load(id, record.seq, now)
            .await
            .map_err(busy)?
            .ok_or(ChannelError::UnknownSession)?;
        if session.is_expired(now) {
            self.sessions.remove(id).await.map_err(busy)?;
            return Err(ChannelError::UnknownSession);
        }
        let from = session.next_client_seq();
        let request = session.open_record(&record, now)?;
        // The compare-and-set that makes this record acceptable once, on one instance.
        let login = match self.sessions.advance(&session, from).await.map_err(busy)? {
            Advanced::Accepted(login) => login,
            Advanced::Taken => return Err(ChannelError::BadRecord("out of sequence")),
            Advanced::Ended => {
                self.sessions.remove(id).await.map_err(busy)?;
                return Err(ChannelError::UnknownSession);
            }
        };
        match request {
            Request::Data(payload, slot) => {
                let info = SessionInfo {
                    id,
                    mode: session.mode(),
                    client: session.client().cloned(),
                    peer,
                    login,
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

    /// Forgets handshakes and sessions that have expired, and learns which sources are
    /// blocked now (on any instance, by failed logins too).
    pub async fn sweep(&self, now: SystemTime) -> Result<(), StoreError> {
        lock(&self.pending).retain(|p| !p.is_expired(now));
        let blocked = self.handler.blocked_sources(now).await?;
        *lock(&self.blocked) = blocked.into_iter().collect();
        self.sessions.sweep(now).await
    }

    /// At a clean stop, after the last request: the session store writes down what it kept
    /// in memory ([`SessionStore::release`]).
    pub async fn release_sessions(&self) -> Result<(), StoreError> {
        self.sessions.release().await
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

/// A reply to a handshake message, and for a ServerHello the ticket the client carries to
/// its ClientFinish ([`TICKET_HEADER`]), if the store hands them out.
#[derive(Debug)]
pub struct HandshakeReply {
    /// The channel message: ServerHello, Accept or Alert.
    pub body: Vec<u8>,
    /// The sealed pending handshake.
    pub ticket: Option<Vec<u8>>,
}

impl From<Vec<u8>> for HandshakeReply {
    fn from(body: Vec<u8>) -> Self {
        Self { body, ticket: None }
    }
}

/// Why a handshake was refused: input to hold against its source, or the server's state.
enum Refused {
    Hostile(ChannelError),
    Busy(ChannelError),
}

/// Pending handshakes, with a count per source.
#[derive(Default)]
struct Pending {
    map: HashMap<SessionId, (String, PendingHandshake)>,
    per_source: PerSource,
}

impl Pending {
    fn len(&self) -> usize {
        self.map.len()
    }

    fn from(&self, source: &str) -> usize {
        self.per_source.get(source)
    }

    fn insert(&mut self, source: &str, p: PendingHandshake) {
        if let Some((old, _)) = self.map.insert(p.session_id(), (source.to_owned(), p)) {
            self.per_source.forget(&old);
        }
        self.per_source.add(source);
    }

    fn remove(&mut self, id: &SessionId) -> Option<(String, PendingHandshake)> {
        let (source, p) = self.map.remove(id)?;
        self.per_source.forget(&source);
        Some((source, p))
    }

    fn retain(&mut self, keep: impl Fn(&PendingHandshake) -> bool) {
        let gone: Vec<SessionId> = self
            .map
            .iter()
            .filter(|(_, (_, p))| !keep(p))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.remove(&id);
        }
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
    request: axum::extract::Request,
) -> Response {
    let peer = crate::tls::peer_of(request.extensions());
    // A ticket that is too long or not base64url is no ticket; the ClientFinish then
    // finishes only where its ServerHello came from.
    let ticket = request
        .headers()
        .get(TICKET_HEADER)
        .map(HeaderValue::as_bytes)
        .filter(|t| t.len() <= MAX_TICKET_HEADER)
        .and_then(|t| data_encoding::BASE64URL_NOPAD.decode(t).ok());
    let body = match axum::body::to_bytes(request.into_body(), wire::MAX_HANDSHAKE_MESSAGE).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let now = channel.handler.now();
    let started = std::time::Instant::now();
    let reply = channel
        .handshake_with(&body, ticket.as_deref(), now, peer)
        .await;
    crate::metrics::metrics().request("handshake", started.elapsed());
    let mut response = octets(reply.body);
    if let Some(ticket) = reply.ticket
        && let Ok(value) = HeaderValue::from_str(&data_encoding::BASE64URL_NOPAD.encode(&ticket))
    {
        response.headers_mut().insert(TICKET_HEADER, value);
    }
    response
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
    let started = std::time::Instant::now();
    let reply = channel.record(&body, peer).await;
    crate::metrics::metrics().request("record", started.elapsed());
    octets(reply)
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

/// The client certificates (by [`tresor_core::pki::signature_cache_key`]) whose signature by
/// the channel's CA has verified, so that a returning client's handshake skips that ECDSA
/// verification; validity, usages, login and revocation are checked on every handshake.
/// Bounded ([`Generations`] of [`VERIFIED_GENERATION`]): a certificate in use stays, memory
/// stays under 2 × 50,000 hashes. An entry is a hash of bytes that verified, so nothing in it
/// can be wrong later.
#[derive(Debug)]
pub struct VerifiedCertificates(Generations<[u8; 32], ()>);

impl Default for VerifiedCertificates {
    fn default() -> Self {
        Self(Generations::new(VERIFIED_GENERATION))
    }
}

/// Entries per generation of [`VerifiedCertificates`].
pub const VERIFIED_GENERATION: usize = 50_000;

impl tresor_core::pki::SignatureCache for VerifiedCertificates {
    fn verified(&self, key: &[u8; 32]) -> bool {
        self.0.get(key).is_some()
    }

    fn remember(&self, key: [u8; 32]) {
        self.0.insert(key, ());
    }
}

/// Locks a map, going on after a panic elsewhere: the maps hold no invariant a panic could
/// break halfway.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

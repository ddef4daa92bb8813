//! The server's side: ClientHello in, ServerHello out and a pending handshake kept; then
//! ClientFinish checked against that pending handshake, revocation asked, and a session
//! accepted. Every check takes `&self`, so a message that fails leaves the pending handshake
//! or the session exactly as it was.

use std::time::{Duration, SystemTime};

use der::Decode as _;
use x509_cert::Certificate;
use x509_cert::serial_number::SerialNumber;
use zeroize::Zeroizing;

use super::crypto::{
    self, CLIENT_CONTEXT, DirectionKey, Ephemeral, HandshakeKeys, HandshakeSigner, SERVER_CONTEXT,
    TrafficKeys, Transcript,
};
use super::wire::{
    Accept, AcceptBody, ClientAuth, ClientFinish, ClientHello, Direction, MAX_PAYLOAD, MessageType,
    Mode, Record, RecordKind, SUITE_V1, ServerAuth, ServerHello, SessionId,
};
use super::{ChannelError, MAX_RECORDS_LIMIT};
use crate::login::Login;
use crate::pki::{self, CertError, RevocationCheck};

/// Version byte of [`ServerSession::export`]'s format.
const EXPORT_VERSION: u8 = 2;

/// Version byte of [`PendingHandshake::export`]'s format.
const PENDING_EXPORT_VERSION: u8 = 1;

/// How long the server waits for ClientFinish after sending ServerHello.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The server's certificate and the key that signs its handshakes.
pub struct ServerIdentity {
    certificate: Vec<u8>,
    signer: Box<dyn HandshakeSigner>,
}

impl ServerIdentity {
    /// The server's certificate (DER, issued by the bank CA for serverAuth) and its key.
    pub fn new(certificate: Vec<u8>, signer: Box<dyn HandshakeSigner>) -> Self {
        Self {
            certificate,
            signer,
        }
    }
}

/// What the server tells clients about their sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionParams {
    /// The session is forgotten after this long without a valid record.
    pub idle_timeout: Duration,
    /// Records per direction before a new handshake is needed.
    pub max_records: u64,
    /// The session ends this long after its handshake, however active: a stolen session
    /// does not live for ever.
    pub max_lifetime: Duration,
}

impl Default for SessionParams {
    /// Five minutes idle (the bank's figure), 2^24 records, 12 hours in all.
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            max_records: MAX_RECORDS_LIMIT,
            max_lifetime: Duration::from_secs(12 * 3600),
        }
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Answers a ClientHello: the pending handshake to keep under its session id, and the
/// ServerHello to send back.
pub fn respond(
    client_hello: &[u8],
    identity: &ServerIdentity,
    now: SystemTime,
) -> Result<(PendingHandshake, Vec<u8>), ChannelError> {
    let fresh = Fresh {
        random: crypto::random(),
        session_id: SessionId(crypto::random()),
    };
    respond_with(client_hello, identity, now, fresh, Ephemeral::generate())
}

/// [`respond`] with a fixed random, session id and ephemeral scalar: for replaying test
/// vectors only.
#[cfg(feature = "testkit")]
pub fn respond_fixed(
    client_hello: &[u8],
    identity: &ServerIdentity,
    now: SystemTime,
    random: [u8; 32],
    session_id: SessionId,
    ephemeral_scalar: &[u8; 32],
) -> Result<(PendingHandshake, Vec<u8>), ChannelError> {
    let fresh = Fresh { random, session_id };
    respond_with(
        client_hello,
        identity,
        now,
        fresh,
        Ephemeral::fixed(ephemeral_scalar)?,
    )
}

/// What each ServerHello draws fresh.
struct Fresh {
    random: [u8; 32],
    session_id: SessionId,
}

fn respond_with(
    client_hello: &[u8],
    identity: &ServerIdentity,
    now: SystemTime,
    fresh: Fresh,
    ephemeral: Ephemeral,
) -> Result<(PendingHandshake, Vec<u8>), ChannelError> {
    let hello = ClientHello::decode(client_hello)?;
    if !hello.suites.contains(&SUITE_V1) {
        return Err(ChannelError::NoCommonSuite);
    }
    let share = *ephemeral.public();
    let ecdh = ephemeral.agree(&hello.share)?;

    let mut server_hello = ServerHello {
        random: fresh.random,
        session_id: fresh.session_id,
        suite: SUITE_V1,
        share,
        encrypted_auth: Vec::new(),
    };
    let prefix = server_hello.encode_prefix();
    let mut transcript = Transcript::recording();
    transcript.add(client_hello);
    transcript.add(&prefix);
    let keys = HandshakeKeys::derive(&ecdh, &transcript.hash());
    drop(ecdh);

    transcript.add_opaque24(&identity.certificate);
    let signature = identity
        .signer
        .sign(&crypto::signed_content(SERVER_CONTEXT, &transcript.hash()))
        .map_err(ChannelError::Signer)?;
    transcript.add_opaque16(&signature);
    let finished = crypto::finished_mac(&keys.server_finished, &transcript.hash());
    transcript.add(&finished);

    let auth = ServerAuth {
        certificate: identity.certificate.clone(),
        signature,
        finished,
    };
    server_hello.encrypted_auth = keys.server.seal(0, &prefix, &auth.encode());
    let HandshakeKeys {
        client,
        client_finished,
        master,
        ..
    } = keys;
    Ok((
        PendingHandshake {
            session_id: server_hello.session_id,
            mode: hello.mode,
            transcript,
            client_key: client,
            client_finished,
            master,
            started: now,
        },
        server_hello.encode(),
    ))
}

/// A handshake between ServerHello and ClientFinish.
pub struct PendingHandshake {
    session_id: SessionId,
    mode: Mode,
    transcript: Transcript,
    client_key: DirectionKey,
    client_finished: Zeroizing<[u8; 32]>,
    master: Zeroizing<[u8; 32]>,
    started: SystemTime,
}

impl PendingHandshake {
    /// The session id the ClientFinish must name.
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// Whether [`HANDSHAKE_TIMEOUT`] has passed.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now.duration_since(self.started)
            .is_ok_and(|d| d > HANDSHAKE_TIMEOUT)
    }

    /// The pending handshake as bytes, so that whichever server instance receives the
    /// ClientFinish can check it ([`Self::restore`]). The bytes hold the client's handshake
    /// key and the master secret: seal them before they leave the server, and make sure a
    /// handshake yields one session however often its ClientFinish arrives (the caller's
    /// session store refuses an id it has seen).
    pub fn export(&self) -> Zeroizing<Vec<u8>> {
        let log = self.transcript.bytes().unwrap_or_default();
        let mut out = Zeroizing::new(Vec::with_capacity(1 + 16 + 1 + 8 + 44 + 64 + log.len()));
        out.push(PENDING_EXPORT_VERSION);
        out.extend_from_slice(&self.session_id.0);
        out.push(match self.mode {
            Mode::Anonymous => 0,
            Mode::Authenticated => 1,
        });
        let started = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        out.extend_from_slice(&started.to_be_bytes());
        self.client_key.export(&mut out);
        out.extend_from_slice(&*self.client_finished);
        out.extend_from_slice(&*self.master);
        out.extend_from_slice(log);
        out
    }

    /// The inverse of [`Self::export`].
    pub fn restore(bytes: &[u8]) -> Result<Self, ChannelError> {
        const BAD: ChannelError = ChannelError::Decode("exported pending handshake");
        let fixed = 1 + 16 + 1 + 8 + 44 + 32 + 32;
        if bytes.len() <= fixed || bytes[0] != PENDING_EXPORT_VERSION {
            return Err(BAD);
        }
        let (head, log) = bytes.split_at(fixed);
        let field = |from: usize, to: usize| &head[from..to];
        let session_id = SessionId(field(1, 17).try_into().map_err(|_| BAD)?);
        let mode = match head[17] {
            0 => Mode::Anonymous,
            1 => Mode::Authenticated,
            _ => return Err(BAD),
        };
        let millis = u64::from_be_bytes(field(18, 26).try_into().map_err(|_| BAD)?);
        let client_key = DirectionKey::import(field(26, 70).try_into().map_err(|_| BAD)?);
        let mut client_finished = Zeroizing::new([0u8; 32]);
        client_finished.copy_from_slice(field(70, 102));
        let mut master = Zeroizing::new([0u8; 32]);
        master.copy_from_slice(field(102, 134));
        Ok(Self {
            session_id,
            mode,
            transcript: Transcript::replay(log),
            client_key,
            client_finished,
            master,
            started: SystemTime::UNIX_EPOCH + Duration::from_millis(millis),
        })
    }

    /// Checks ClientFinish: decryption, the client's certificate against `bank_ca` at `now`
    /// and bound to the login it claims, its signature over this handshake and its finished
    /// MAC. Revocation is asked next, by [`VerifiedFinish::accept`], so that the caller can
    /// look it up in its database in between.
    ///
    /// The pending handshake is consumed on success, so that one handshake yields at most one
    /// session; on failure it comes back unchanged with the error, for the caller to keep.
    pub fn verify(
        self,
        client_finish: &[u8],
        bank_ca: &Certificate,
        now: SystemTime,
    ) -> Result<VerifiedFinish, FinishRefused> {
        self.verify_cached(client_finish, bank_ca, now, None)
    }

    /// [`Self::verify`], with `cache` remembering the client certificates whose signature
    /// by `bank_ca` has verified (a cache of that CA only): a client seen before costs one
    /// ECDSA verification less. Everything else about the certificate is checked as always.
    pub fn verify_cached(
        self,
        client_finish: &[u8],
        bank_ca: &Certificate,
        now: SystemTime,
        cache: Option<&dyn pki::SignatureCache>,
    ) -> Result<VerifiedFinish, FinishRefused> {
        match self.check(client_finish, bank_ca, now, cache) {
            Ok(verified) => Ok(verified),
            Err(error) => Err(FinishRefused {
                error,
                pending: Box::new(self),
            }),
        }
    }

    fn check(
        &self,
        client_finish: &[u8],
        bank_ca: &Certificate,
        now: SystemTime,
        cache: Option<&dyn pki::SignatureCache>,
    ) -> Result<VerifiedFinish, ChannelError> {
        if self.is_expired(now) {
            return Err(ChannelError::UnknownSession);
        }
        let msg = ClientFinish::decode(client_finish)?;
        if msg.session_id != self.session_id {
            return Err(ChannelError::UnknownSession);
        }
        let prefix = ClientFinish::encode_prefix(&self.session_id);
        let plain = self
            .client_key
            .open(0, &prefix, &msg.encrypted_auth)
            .ok_or(ChannelError::BadRecord("client handshake does not decrypt"))?;
        let auth = ClientAuth::decode(&plain)?;

        let mut transcript = self.transcript.clone();
        transcript.add(&prefix);
        transcript.add(&auth.encode_identity());
        let client = match self.mode {
            Mode::Anonymous => {
                if !(auth.login.is_empty()
                    && auth.certificate.is_empty()
                    && auth.signature.is_empty())
                {
                    return Err(ChannelError::IllegalParameter(
                        "identity in an anonymous handshake",
                    ));
                }
                None
            }
            Mode::Authenticated => {
                // All three present, as §6 says, before any is looked at: a missing one is
                // the message's shape, not a bad certificate or signature.
                if auth.login.is_empty() || auth.certificate.is_empty() || auth.signature.is_empty()
                {
                    return Err(ChannelError::IllegalParameter(
                        "an authenticated handshake without its login, certificate or signature",
                    ));
                }
                let login = core::str::from_utf8(&auth.login)
                    .ok()
                    .and_then(|l| Login::new(l).ok())
                    .ok_or(ChannelError::IllegalParameter("login"))?;
                let cert = Certificate::from_der(&auth.certificate).map_err(|e| {
                    ChannelError::BadCertificate(CertError::Malformed(e.to_string()))
                })?;
                let valid = pki::validate_client_certificate_cached(
                    &cert,
                    bank_ca,
                    &login,
                    now,
                    &pki::NoRevocationList,
                    cache.map(|c| (c, pki::signature_cache_key(&auth.certificate))),
                )
                .map_err(ChannelError::BadCertificate)?;
                crypto::verify_signature(
                    &cert,
                    &crypto::signed_content(CLIENT_CONTEXT, &transcript.hash()),
                    &auth.signature,
                )?;
                Some(ClientIdentity {
                    login: valid.login,
                    serial: valid.serial,
                    not_after: valid.not_after,
                    kind: valid.kind,
                })
            }
        };
        transcript.add_opaque16(&auth.signature);
        crypto::verify_finished(&self.client_finished, &transcript.hash(), &auth.finished)?;
        transcript.add(&auth.finished);
        Ok(VerifiedFinish {
            session_id: self.session_id,
            mode: self.mode,
            client,
            traffic: TrafficKeys::derive(&self.master, &transcript.hash()),
        })
    }
}

/// A ClientFinish that was refused, and the pending handshake it left as it was.
pub struct FinishRefused {
    /// Why.
    pub error: ChannelError,
    /// The pending handshake, unchanged.
    pub pending: Box<PendingHandshake>,
}

impl core::fmt::Debug for FinishRefused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FinishRefused")
            .field("error", &self.error)
            .field("session_id", &self.pending.session_id)
            .finish()
    }
}

/// Who signed an authenticated handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The login the certificate binds.
    pub login: Login,
    /// The certificate's serial number.
    pub serial: SerialNumber,
    /// When the certificate expires.
    pub not_after: SystemTime,
    /// A client's key or a bank admin's (the certificate's extended key usage).
    pub kind: pki::CertKind,
}

/// A ClientFinish that verified; revocation is all that is left to ask.
pub struct VerifiedFinish {
    session_id: SessionId,
    mode: Mode,
    client: Option<ClientIdentity>,
    traffic: TrafficKeys,
}

impl VerifiedFinish {
    /// The client's identity, `None` for an anonymous handshake.
    pub fn client(&self) -> Option<&ClientIdentity> {
        self.client.as_ref()
    }

    /// Accepts the session unless the client's certificate is revoked: the session and the
    /// Accept message to send.
    pub fn accept(
        self,
        revocation: &dyn RevocationCheck,
        params: SessionParams,
        now: SystemTime,
    ) -> Result<(ServerSession, Vec<u8>), ChannelError> {
        if let Some(client) = &self.client
            && revocation.is_revoked(&client.serial)
        {
            return Err(ChannelError::BadCertificate(CertError::Revoked));
        }
        let max_records = params.max_records.clamp(2, MAX_RECORDS_LIMIT);
        let body = AcceptBody {
            mode: self.mode,
            idle_timeout_seconds: params.idle_timeout.as_secs().max(1),
            max_records,
        };
        let aad = Record::aad(
            MessageType::Accept,
            &self.session_id,
            Direction::ServerToClient,
            0,
        );
        let accept = Accept {
            session_id: self.session_id,
            encrypted: self.traffic.server.seal(0, &aad, &body.encode()),
        }
        .encode();
        Ok((
            ServerSession {
                id: self.session_id,
                mode: self.mode,
                client: self.client,
                receive: self.traffic.client,
                send: self.traffic.server,
                next_client_seq: 0,
                last_activity: now,
                established: now,
                max_lifetime: params.max_lifetime,
                idle_timeout: Duration::from_secs(body.idle_timeout_seconds),
                max_records,
                closed: false,
            },
            accept,
        ))
    }
}

/// A request opened by [`ServerSession::open`].
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// Application data; answer it with [`ServerSession::seal_reply`].
    Data(Zeroizing<Vec<u8>>, ReplySlot),
    /// The client closes the session; answer with [`ServerSession::seal_close`].
    Close(ReplySlot),
}

/// The one sequence number a reply may use: the request's seq + 1. Not `Clone`, so each
/// accepted request gets exactly one reply sealed under its nonce.
#[derive(Debug, PartialEq, Eq)]
pub struct ReplySlot {
    seq: u64,
}

/// An established session, on the server.
pub struct ServerSession {
    id: SessionId,
    mode: Mode,
    client: Option<ClientIdentity>,
    receive: DirectionKey,
    send: DirectionKey,
    next_client_seq: u64,
    last_activity: SystemTime,
    established: SystemTime,
    max_lifetime: Duration,
    idle_timeout: Duration,
    max_records: u64,
    closed: bool,
}

impl ServerSession {
    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Authenticated or anonymous: what the application may allow.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Who signed the handshake, for an authenticated session.
    pub fn client(&self) -> Option<&ClientIdentity> {
        self.client.as_ref()
    }

    /// The seq the next client record must carry.
    pub fn next_client_seq(&self) -> u64 {
        self.next_client_seq
    }

    /// When the last valid record arrived.
    pub fn last_activity(&self) -> SystemTime {
        self.last_activity
    }

    /// How long the session may stay idle.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Whether the session was closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// When the handshake completed.
    pub fn established(&self) -> SystemTime {
        self.established
    }

    /// Whether the session is over: closed, idle for longer than its timeout, or older than
    /// its lifetime.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.closed
            || self.idle_between(self.last_activity, now)
            || now
                .duration_since(self.established)
                .is_ok_and(|age| age > self.max_lifetime)
    }

    /// Whether a record at `now` after one at `last` comes after the idle timeout: for a
    /// caller who restored the session without its last activity and learned it later.
    pub fn idle_between(&self, last: SystemTime, now: SystemTime) -> bool {
        now.duration_since(last)
            .is_ok_and(|idle| idle > self.idle_timeout)
    }

    /// The session's fixed state (id, mode, client, keys, limits) as bytes, so that another
    /// server instance can go on with it: what changes per record (the next seq, the time of
    /// the last one) is kept beside it by the caller, who must compare-and-set the seq so
    /// that each record is accepted once across instances. The bytes hold the traffic keys:
    /// store them encrypted.
    pub fn export(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(160));
        out.push(EXPORT_VERSION);
        out.extend_from_slice(&self.id.0);
        // An authenticated session's byte also says whose key signed it (1 a client's, 2 an
        // admin's), so that sessions exported before admins existed restore as clients'.
        out.push(match (self.mode, self.client.as_ref().map(|c| c.kind)) {
            (Mode::Anonymous, _) => 0,
            (Mode::Authenticated, Some(pki::CertKind::Admin)) => 2,
            (Mode::Authenticated, _) => 1,
        });
        self.receive.export(&mut out);
        self.send.export(&mut out);
        out.extend_from_slice(&self.idle_timeout.as_secs().to_be_bytes());
        out.extend_from_slice(&self.max_records.to_be_bytes());
        out.extend_from_slice(&unix_secs(self.established).to_be_bytes());
        out.extend_from_slice(&self.max_lifetime.as_secs().to_be_bytes());
        if let Some(client) = &self.client {
            let login = client.login.as_str().as_bytes();
            let serial = client.serial.as_bytes();
            let not_after = client
                .not_after
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            // A login is at most 64 bytes and a serial at most 20 (RFC 5280).
            out.push(login.len() as u8);
            out.extend_from_slice(login);
            out.push(serial.len() as u8);
            out.extend_from_slice(serial);
            out.extend_from_slice(&not_after.to_be_bytes());
        }
        out
    }

    /// The inverse of [`export`](Self::export), with the seq the next client record must
    /// carry and the time of the last valid one.
    pub fn restore(
        state: &[u8],
        next_client_seq: u64,
        last_activity: SystemTime,
    ) -> Result<Self, ChannelError> {
        const BAD: ChannelError = ChannelError::Decode("exported session state");
        let mut r = state;
        let mut take = |n: usize| -> Result<&[u8], ChannelError> {
            if r.len() < n {
                return Err(BAD);
            }
            let (head, rest) = r.split_at(n);
            r = rest;
            Ok(head)
        };
        if take(1)? != [EXPORT_VERSION] {
            return Err(BAD);
        }
        let id = SessionId(take(16)?.try_into().map_err(|_| BAD)?);
        let (mode, kind) = match take(1)?[0] {
            0 => (Mode::Anonymous, pki::CertKind::Client),
            1 => (Mode::Authenticated, pki::CertKind::Client),
            2 => (Mode::Authenticated, pki::CertKind::Admin),
            _ => return Err(BAD),
        };
        let receive = DirectionKey::import(take(44)?.try_into().map_err(|_| BAD)?);
        let send = DirectionKey::import(take(44)?.try_into().map_err(|_| BAD)?);
        let u64_of = |b: &[u8]| -> Result<u64, ChannelError> {
            Ok(u64::from_be_bytes(b.try_into().map_err(|_| BAD)?))
        };
        let idle_timeout = Duration::from_secs(u64_of(take(8)?)?);
        let max_records = u64_of(take(8)?)?;
        let established = SystemTime::UNIX_EPOCH + Duration::from_secs(u64_of(take(8)?)?);
        let max_lifetime = Duration::from_secs(u64_of(take(8)?)?);
        let client = match mode {
            Mode::Anonymous => None,
            Mode::Authenticated => {
                let n = usize::from(take(1)?[0]);
                let login = core::str::from_utf8(take(n)?)
                    .ok()
                    .and_then(|l| Login::new(l).ok())
                    .ok_or(BAD)?;
                let n = usize::from(take(1)?[0]);
                let serial = SerialNumber::new(take(n)?).map_err(|_| BAD)?;
                let not_after = SystemTime::UNIX_EPOCH + Duration::from_secs(u64_of(take(8)?)?);
                Some(ClientIdentity {
                    login,
                    serial,
                    not_after,
                    kind,
                })
            }
        };
        if !r.is_empty() {
            return Err(BAD);
        }
        Ok(Self {
            id,
            mode,
            client,
            receive,
            send,
            next_client_seq,
            last_activity,
            established,
            max_lifetime,
            idle_timeout,
            max_records,
            closed: false,
        })
    }

    /// Opens a client record. Only the next seq in order is accepted; anything that fails
    /// (decoding, session, seq, limit, authentication) leaves the session unchanged.
    pub fn open(&mut self, frame: &[u8], now: SystemTime) -> Result<Request, ChannelError> {
        if self.is_expired(now) {
            return Err(ChannelError::UnknownSession);
        }
        self.open_record(&Record::decode(frame)?, now)
    }

    /// [`open`](Self::open) for a record the caller already decoded (to find its session).
    pub fn open_record(
        &mut self,
        record: &Record,
        now: SystemTime,
    ) -> Result<Request, ChannelError> {
        if self.is_expired(now) {
            return Err(ChannelError::UnknownSession);
        }
        if record.session_id != self.id {
            return Err(ChannelError::UnknownSession);
        }
        if record.seq != self.next_client_seq {
            return Err(ChannelError::BadRecord("out of sequence"));
        }
        if record.seq + 1 >= self.max_records {
            return Err(ChannelError::TooManyRecords);
        }
        let aad = Record::aad(
            record.kind.message_type(),
            &self.id,
            Direction::ClientToServer,
            record.seq,
        );
        let plain = self
            .receive
            .open(record.seq, &aad, &record.ciphertext)
            .ok_or(ChannelError::BadRecord("does not decrypt"))?;
        if record.kind == RecordKind::Close && !plain.is_empty() {
            return Err(ChannelError::Decode("close with a payload"));
        }
        self.next_client_seq += 1;
        self.last_activity = now;
        let slot = ReplySlot {
            seq: record.seq + 1,
        };
        Ok(match record.kind {
            RecordKind::Data => Request::Data(plain, slot),
            RecordKind::Close => {
                self.closed = true;
                Request::Close(slot)
            }
        })
    }

    /// Seals the reply to a Data request, of at most [`MAX_PAYLOAD`] bytes.
    pub fn seal_reply(&self, slot: ReplySlot, payload: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(ChannelError::Decode("payload too large"));
        }
        Ok(self.seal_record(RecordKind::Data, slot, payload))
    }

    /// Seals the reply to a Close request.
    pub fn seal_close(&self, slot: ReplySlot) -> Vec<u8> {
        self.seal_record(RecordKind::Close, slot, &[])
    }

    fn seal_record(&self, kind: RecordKind, slot: ReplySlot, payload: &[u8]) -> Vec<u8> {
        let aad = Record::aad(
            kind.message_type(),
            &self.id,
            Direction::ServerToClient,
            slot.seq,
        );
        Record {
            kind,
            session_id: self.id,
            seq: slot.seq,
            ciphertext: self.send.seal(slot.seq, &aad, payload),
        }
        .encode()
    }
}

// Debug output names the session and never shows a key.
impl core::fmt::Debug for PendingHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingHandshake")
            .field("session_id", &self.session_id)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for VerifiedFinish {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VerifiedFinish")
            .field("session_id", &self.session_id)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerSession")
            .field("id", &self.id)
            .field("mode", &self.mode)
            .field("client", &self.client)
            .field("next_client_seq", &self.next_client_seq)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

//! The client's side: one state per expected message, each consumed by the step that
//! leaves it, then a session that seals requests and opens their replies.

use std::time::SystemTime;

use der::Decode as _;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::crypto::{
    self, CLIENT_CONTEXT, DirectionKey, Ephemeral, HandshakeKeys, HandshakeSigner, SERVER_CONTEXT,
    TrafficKeys, Transcript,
};
use super::wire::{
    Accept, AcceptBody, ClientAuth, ClientFinish, ClientHello, Direction, MessageType, Mode,
    Record, RecordKind, SUITE_V1, ServerAuth, ServerHello, SessionId,
};
use super::{ChannelError, MAX_RECORDS_LIMIT};
use crate::login::Login;
use crate::pki;

/// How the client proves who it is.
pub enum ClientAuthentication {
    /// It does not: only the server is authenticated (first login, recovery, OTP).
    Anonymous,
    /// With its key from the drive and the certificate the bank issued for it.
    Key {
        /// The login the certificate was issued to.
        login: Login,
        /// The certificate, DER.
        certificate: Vec<u8>,
        /// The key, or something that signs with it.
        signer: Box<dyn HandshakeSigner>,
    },
}

impl ClientAuthentication {
    fn mode(&self) -> Mode {
        match self {
            Self::Anonymous => Mode::Anonymous,
            Self::Key { .. } => Mode::Authenticated,
        }
    }
}

impl core::fmt::Debug for ClientAuthentication {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Key { login, .. } => f.debug_struct("Key").field("login", login).finish(),
        }
    }
}

/// Starts a handshake: returns the state that waits for ServerHello and the ClientHello to
/// send.
pub fn start(auth: ClientAuthentication) -> (AwaitServerHello, Vec<u8>) {
    start_with(auth, crypto::random(), Ephemeral::generate())
}

/// [`start`] with a fixed random and ephemeral scalar: for replaying test vectors only.
#[cfg(feature = "testkit")]
pub fn start_fixed(
    auth: ClientAuthentication,
    random: [u8; 32],
    ephemeral_scalar: &[u8; 32],
) -> Result<(AwaitServerHello, Vec<u8>), ChannelError> {
    Ok(start_with(
        auth,
        random,
        Ephemeral::fixed(ephemeral_scalar)?,
    ))
}

fn start_with(
    auth: ClientAuthentication,
    random: [u8; 32],
    ephemeral: Ephemeral,
) -> (AwaitServerHello, Vec<u8>) {
    let hello = ClientHello {
        random,
        mode: auth.mode(),
        suites: vec![SUITE_V1],
        share: *ephemeral.public(),
    }
    .encode();
    let mut transcript = Transcript::new();
    transcript.add(&hello);
    (
        AwaitServerHello {
            auth,
            ephemeral,
            transcript,
        },
        hello,
    )
}

/// Sent ClientHello; expecting ServerHello.
pub struct AwaitServerHello {
    auth: ClientAuthentication,
    ephemeral: Ephemeral,
    transcript: Transcript,
}

impl AwaitServerHello {
    /// Checks ServerHello against the bank CA the client trusts, and returns the state that
    /// waits for Accept with the ClientFinish to send.
    pub fn receive(
        self,
        server_hello: &[u8],
        bank_ca: &Certificate,
        now: SystemTime,
    ) -> Result<(AwaitAccept, Vec<u8>), ChannelError> {
        let Self {
            auth,
            ephemeral,
            mut transcript,
        } = self;
        let hello = ServerHello::decode(server_hello)?;
        if hello.suite != SUITE_V1 {
            return Err(ChannelError::IllegalParameter(
                "suite the client did not offer",
            ));
        }
        let ecdh = ephemeral.agree(&hello.share)?;
        let prefix = &server_hello[..ServerHello::PREFIX_LEN];
        transcript.add(prefix);
        let keys = HandshakeKeys::derive(&ecdh, &transcript.hash());
        drop(ecdh);

        let plain = keys
            .server
            .open(0, prefix, &hello.encrypted_auth)
            .ok_or(ChannelError::BadRecord("server handshake does not decrypt"))?;
        let server_auth = ServerAuth::decode(&plain)?;

        // TH2: the server signs everything so far, its certificate included.
        transcript.add_opaque24(&server_auth.certificate);
        let server_cert = Certificate::from_der(&server_auth.certificate)
            .map_err(|e| ChannelError::BadCertificate(pki::CertError::Malformed(e.to_string())))?;
        pki::validate_server_certificate(&server_cert, bank_ca, now)
            .map_err(ChannelError::BadCertificate)?;
        crypto::verify_signature(
            &server_cert,
            &crypto::signed_content(SERVER_CONTEXT, &transcript.hash()),
            &server_auth.signature,
        )?;
        transcript.add_opaque16(&server_auth.signature);
        crypto::verify_finished(
            &keys.server_finished,
            &transcript.hash(),
            &server_auth.finished,
        )?;
        transcript.add(&server_auth.finished);

        // The client's half: identity, then its signature over TH4, then its finished MAC.
        let session_id = hello.session_id;
        let finish_prefix = ClientFinish::encode_prefix(&session_id);
        let (login, certificate) = match &auth {
            ClientAuthentication::Anonymous => (Vec::new(), Vec::new()),
            ClientAuthentication::Key {
                login, certificate, ..
            } => (login.as_str().as_bytes().to_vec(), certificate.clone()),
        };
        let mut client_auth = ClientAuth {
            login,
            certificate,
            signature: Vec::new(),
            finished: [0; 32],
        };
        transcript.add(&finish_prefix);
        transcript.add(&client_auth.encode_identity());
        if let ClientAuthentication::Key { signer, .. } = &auth {
            client_auth.signature = signer
                .sign(&crypto::signed_content(CLIENT_CONTEXT, &transcript.hash()))
                .map_err(ChannelError::Signer)?;
        }
        transcript.add_opaque16(&client_auth.signature);
        client_auth.finished = crypto::finished_mac(&keys.client_finished, &transcript.hash());
        transcript.add(&client_auth.finished);

        let sealed = keys
            .client
            .seal(0, &finish_prefix, &Zeroizing::new(client_auth.encode()));
        let finish = ClientFinish {
            session_id,
            encrypted_auth: sealed,
        }
        .encode();
        let traffic = TrafficKeys::derive(&keys.master, &transcript.hash());
        Ok((
            AwaitAccept {
                mode: auth.mode(),
                session_id,
                traffic,
                server_certificate: server_cert,
            },
            finish,
        ))
    }
}

/// Sent ClientFinish; expecting Accept.
pub struct AwaitAccept {
    mode: Mode,
    session_id: SessionId,
    traffic: TrafficKeys,
    server_certificate: Certificate,
}

impl AwaitAccept {
    /// Opens Accept: the server has checked the client and the session is ready.
    pub fn receive(self, accept: &[u8]) -> Result<ClientSession, ChannelError> {
        let msg = Accept::decode(accept)?;
        if msg.session_id != self.session_id {
            return Err(ChannelError::UnknownSession);
        }
        let aad = Record::aad(
            MessageType::Accept,
            &self.session_id,
            Direction::ServerToClient,
            0,
        );
        let plain = self
            .traffic
            .server
            .open(0, &aad, &msg.encrypted)
            .ok_or(ChannelError::BadRecord("accept does not decrypt"))?;
        let body = AcceptBody::decode(&plain)?;
        if body.mode != self.mode {
            return Err(ChannelError::IllegalParameter("accepted in another mode"));
        }
        if body.max_records < 2 || body.max_records > MAX_RECORDS_LIMIT {
            return Err(ChannelError::IllegalParameter("record limit"));
        }
        if body.idle_timeout_seconds == 0 {
            return Err(ChannelError::IllegalParameter("idle timeout"));
        }
        Ok(ClientSession {
            id: self.session_id,
            mode: self.mode,
            send: self.traffic.client,
            receive: self.traffic.server,
            next_seq: 0,
            in_flight: None,
            closed: false,
            idle_timeout_seconds: body.idle_timeout_seconds,
            max_records: body.max_records,
            server_certificate: self.server_certificate,
        })
    }
}

/// A request waiting for its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    seq: u64,
    kind: RecordKind,
}

/// What the server answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A payload.
    Data(Zeroizing<Vec<u8>>),
    /// The server confirmed the close; the session is over.
    Closed,
}

/// An established session, on the client.
///
/// One request at a time: the reply to the client's record `n` is the server's record
/// `n + 1`, which ties each reply to its request.
pub struct ClientSession {
    id: SessionId,
    mode: Mode,
    send: DirectionKey,
    receive: DirectionKey,
    next_seq: u64,
    in_flight: Option<InFlight>,
    closed: bool,
    idle_timeout_seconds: u64,
    max_records: u64,
    server_certificate: Certificate,
}

impl ClientSession {
    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Whether the client signed the handshake with its key.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Seconds of inactivity after which the server forgets the session.
    pub fn idle_timeout_seconds(&self) -> u64 {
        self.idle_timeout_seconds
    }

    /// The certificate the server proved it holds the key of.
    pub fn server_certificate(&self) -> &Certificate {
        &self.server_certificate
    }

    /// The sequence number the next request will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Seals a request.
    pub fn seal(&mut self, payload: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if payload.len() > super::wire::MAX_PAYLOAD {
            return Err(ChannelError::Decode("payload too large"));
        }
        self.seal_record(RecordKind::Data, payload)
    }

    /// Seals the close request; the session is over once its reply is opened.
    pub fn seal_close(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.seal_record(RecordKind::Close, &[])
    }

    fn seal_record(&mut self, kind: RecordKind, payload: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if self.closed {
            return Err(ChannelError::UnexpectedMessage("the session is closed"));
        }
        if self.in_flight.is_some() {
            return Err(ChannelError::UnexpectedMessage(
                "a request is still waiting for its reply",
            ));
        }
        let seq = self.next_seq;
        if seq + 1 >= self.max_records {
            return Err(ChannelError::TooManyRecords);
        }
        let msg_type = kind.message_type();
        let aad = Record::aad(msg_type, &self.id, Direction::ClientToServer, seq);
        let record = Record {
            kind,
            session_id: self.id,
            seq,
            ciphertext: self.send.seal(seq, &aad, payload),
        };
        self.in_flight = Some(InFlight { seq, kind });
        Ok(record.encode())
    }

    /// Opens the reply to the request in flight. A reply that fails changes nothing, so the
    /// genuine reply can still be opened.
    pub fn open(&mut self, reply: &[u8]) -> Result<Reply, ChannelError> {
        let in_flight = self.in_flight.ok_or(ChannelError::UnexpectedMessage(
            "no request is waiting for a reply",
        ))?;
        let record = Record::decode(reply)?;
        if record.session_id != self.id {
            return Err(ChannelError::BadRecord("reply for another session"));
        }
        let expected = in_flight.seq + 1;
        if record.seq != expected {
            return Err(ChannelError::BadRecord("reply out of sequence"));
        }
        if record.kind != in_flight.kind {
            return Err(ChannelError::UnexpectedMessage("reply of another kind"));
        }
        let aad = Record::aad(
            record.kind.message_type(),
            &self.id,
            Direction::ServerToClient,
            record.seq,
        );
        let plain = self
            .receive
            .open(record.seq, &aad, &record.ciphertext)
            .ok_or(ChannelError::BadRecord("reply does not decrypt"))?;
        if record.kind == RecordKind::Close && !plain.is_empty() {
            return Err(ChannelError::Decode("close with a payload"));
        }
        self.in_flight = None;
        self.next_seq = expected;
        match record.kind {
            RecordKind::Data => Ok(Reply::Data(plain)),
            RecordKind::Close => {
                self.closed = true;
                Ok(Reply::Closed)
            }
        }
    }
}

// Debug output names the session and never shows a key.
impl core::fmt::Debug for AwaitServerHello {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AwaitServerHello")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for AwaitAccept {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AwaitAccept")
            .field("session_id", &self.session_id)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientSession")
            .field("id", &self.id)
            .field("mode", &self.mode)
            .field("next_seq", &self.next_seq)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

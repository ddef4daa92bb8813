//! The channel's messages, byte for byte as docs/PROTOCOL.md §2 gives them.
//!
//! Every decoder reads the whole input: trailing bytes, a length past the end, an unknown enum
//! value or an oversized message are refused, so that one message has exactly one encoding
//! (the transcript hashes the bytes as sent, and a second encoding would be a second
//! transcript). A well-formed Alert where another message was expected decodes as
//! [`ChannelError::PeerAlert`].

use super::{AlertCode, ChannelError};

/// The four bytes every message starts with.
pub const MAGIC: [u8; 4] = *b"TRSR";
/// The only protocol version: 1.
pub const VERSION: u16 = 1;
/// The only suite of version 1: ECDHE-P256 / HKDF-SHA256 / AES-256-GCM / ECDSA-P256-SHA256.
pub const SUITE_V1: u16 = 0x0001;
/// Largest handshake message (ClientHello, ServerHello, ClientFinish, Accept, Alert).
pub const MAX_HANDSHAKE_MESSAGE: usize = 16 * 1024;
/// Largest record (Data or Close), header and tag included.
pub const MAX_RECORD: usize = 1024 * 1024;
/// Header length: magic, version, type.
pub const HEADER_LEN: usize = 7;
/// Length of an uncompressed SEC1 P-256 point.
pub const SHARE_LEN: usize = 65;
/// Length of a random value.
pub const RANDOM_LEN: usize = 32;
/// Length of a finished MAC.
pub const FINISHED_LEN: usize = 32;
/// Length of the AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Bytes of a record before its ciphertext: header, session id, seq, u24 length.
pub const RECORD_OVERHEAD: usize = HEADER_LEN + 16 + 8 + 3;
/// Largest payload a record can carry.
pub const MAX_PAYLOAD: usize = MAX_RECORD - RECORD_OVERHEAD - TAG_LEN;

/// What a message is, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// The client's first message.
    ClientHello = 1,
    /// The server's reply, carrying its encrypted authentication.
    ServerHello = 2,
    /// The client's encrypted authentication.
    ClientFinish = 3,
    /// The server's first record: the session is ready.
    Accept = 4,
    /// An application record.
    Data = 5,
    /// The authenticated end of a session.
    Close = 6,
    /// A refusal.
    Alert = 7,
}

impl MessageType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::ClientHello,
            2 => Self::ServerHello,
            3 => Self::ClientFinish,
            4 => Self::Accept,
            5 => Self::Data,
            6 => Self::Close,
            7 => Self::Alert,
            _ => return None,
        })
    }

    /// The header of a version-1 message of this type.
    pub fn header(self) -> [u8; HEADER_LEN] {
        let v = VERSION.to_be_bytes();
        [
            MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], v[0], v[1], self as u8,
        ]
    }
}

/// Whether the client proves its identity with its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// The client signs with its key from the drive.
    Authenticated = 1,
    /// Only the server is authenticated (first login, recovery, OTP).
    Anonymous = 2,
}

impl Mode {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Authenticated),
            2 => Some(Self::Anonymous),
            _ => None,
        }
    }
}

/// A session's name, chosen at random by the server.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub [u8; 16]);

impl core::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SessionId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Reads the type of a message without decoding it, so that a transport can route it.
pub fn peek_type(bytes: &[u8]) -> Result<MessageType, ChannelError> {
    let mut r = Reader::new(bytes);
    read_header_any(&mut r)
}

// ---------------------------------------------------------------------------------------------
// Messages.

/// ClientHello (§2.1), sent in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// Fresh randomness from the client.
    pub random: [u8; RANDOM_LEN],
    /// Whether the client will authenticate.
    pub mode: Mode,
    /// The suites the client offers, in its order of preference.
    pub suites: Vec<u16>,
    /// The client's ephemeral P-256 public key, uncompressed SEC1.
    pub share: [u8; SHARE_LEN],
}

impl ClientHello {
    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(MessageType::ClientHello);
        w.bytes(&self.random);
        w.u8(self.mode as u8);
        let mut suites = Vec::with_capacity(self.suites.len() * 2);
        for s in &self.suites {
            suites.extend_from_slice(&s.to_be_bytes());
        }
        w.opaque8(&suites);
        w.bytes(&self.share);
        w.finish()
    }

    /// Decodes the message.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        let mut r = Reader::handshake(bytes)?;
        read_header(&mut r, MessageType::ClientHello)?;
        let random = r.array()?;
        let mode = Mode::from_u8(r.u8()?).ok_or(ChannelError::Decode("unknown mode"))?;
        let raw = r.opaque8()?;
        if raw.len() < 2 || raw.len() % 2 != 0 {
            return Err(ChannelError::Decode("suite list"));
        }
        let suites = raw
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let share = r.array()?;
        r.finish()?;
        Ok(Self {
            random,
            mode,
            suites,
            share,
        })
    }
}

/// ServerHello (§2.2): the clear part, then the server's authentication sealed under the
/// server handshake key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// Fresh randomness from the server.
    pub random: [u8; RANDOM_LEN],
    /// The new session's name.
    pub session_id: SessionId,
    /// The suite the server chose.
    pub suite: u16,
    /// The server's ephemeral P-256 public key, uncompressed SEC1.
    pub share: [u8; SHARE_LEN],
    /// [`ServerAuth`], sealed.
    pub encrypted_auth: Vec<u8>,
}

impl ServerHello {
    /// Length of the clear part that is hashed into TH1 and authenticated as the AAD.
    pub const PREFIX_LEN: usize = HEADER_LEN + RANDOM_LEN + 16 + 2 + SHARE_LEN;

    /// Encodes the clear part, up to and including the server's share.
    pub fn encode_prefix(&self) -> Vec<u8> {
        let mut w = Writer::new(MessageType::ServerHello);
        w.bytes(&self.random);
        w.bytes(&self.session_id.0);
        w.u16(self.suite);
        w.bytes(&self.share);
        w.finish()
    }

    /// Encodes the whole message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_prefix();
        put_opaque16(&mut out, &self.encrypted_auth);
        out
    }

    /// Decodes the message.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        let mut r = Reader::handshake(bytes)?;
        read_header(&mut r, MessageType::ServerHello)?;
        let random = r.array()?;
        let session_id = SessionId(r.array()?);
        let suite = r.u16()?;
        let share = r.array()?;
        let encrypted_auth = r.opaque16()?.to_vec();
        r.finish()?;
        Ok(Self {
            random,
            session_id,
            suite,
            share,
            encrypted_auth,
        })
    }
}

/// The server's authentication, inside ServerHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAuth {
    /// The server's certificate, DER.
    pub certificate: Vec<u8>,
    /// ECDSA P-256 SHA-256 over the server's signed content, DER.
    pub signature: Vec<u8>,
    /// The server's finished MAC.
    pub finished: [u8; FINISHED_LEN],
}

impl ServerAuth {
    /// Encodes the plaintext.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_opaque24(&mut out, &self.certificate);
        put_opaque16(&mut out, &self.signature);
        out.extend_from_slice(&self.finished);
        out
    }

    /// Decodes the plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        let mut r = Reader::new(bytes);
        let certificate = r.opaque24()?.to_vec();
        let signature = r.opaque16()?.to_vec();
        let finished = r.array()?;
        r.finish()?;
        Ok(Self {
            certificate,
            signature,
            finished,
        })
    }
}

/// ClientFinish (§2.3): the client's authentication, sealed under the client handshake key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinish {
    /// The session this finishes.
    pub session_id: SessionId,
    /// [`ClientAuth`], sealed.
    pub encrypted_auth: Vec<u8>,
}

impl ClientFinish {
    /// The clear part: header and session id, which are also the AAD.
    pub fn encode_prefix(session_id: &SessionId) -> Vec<u8> {
        let mut w = Writer::new(MessageType::ClientFinish);
        w.bytes(&session_id.0);
        w.finish()
    }

    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Self::encode_prefix(&self.session_id);
        put_opaque16(&mut out, &self.encrypted_auth);
        out
    }

    /// Decodes the message.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        let mut r = Reader::handshake(bytes)?;
        read_header(&mut r, MessageType::ClientFinish)?;
        let session_id = SessionId(r.array()?);
        let encrypted_auth = r.opaque16()?.to_vec();
        r.finish()?;
        Ok(Self {
            session_id,
            encrypted_auth,
        })
    }
}

/// The client's authentication, inside ClientFinish. Login, certificate and signature are
/// empty in anonymous mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// The login, UTF-8.
    pub login: Vec<u8>,
    /// The client's certificate, DER.
    pub certificate: Vec<u8>,
    /// ECDSA P-256 SHA-256 over the client's signed content, DER.
    pub signature: Vec<u8>,
    /// The client's finished MAC.
    pub finished: [u8; FINISHED_LEN],
}

impl ClientAuth {
    /// Encodes the plaintext.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_identity();
        put_opaque16(&mut out, &self.signature);
        out.extend_from_slice(&self.finished);
        out
    }

    /// The login and certificate as encoded, which the transcript takes before the signature.
    pub fn encode_identity(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_opaque8(&mut out, &self.login);
        put_opaque24(&mut out, &self.certificate);
        out
    }

    /// Decodes the plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        let mut r = Reader::new(bytes);
        let login = r.opaque8()?.to_vec();
        let certificate = r.opaque24()?.to_vec();
        let signature = r.opaque16()?.to_vec();
        let finished = r.array()?;
        r.finish()?;
        Ok(Self {
            login,
            certificate,
            signature,
            finished,
        })
    }
}

/// Accept (§2.4): the server's first record, sealed like one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// The session now ready.
    pub session_id: SessionId,
    /// [`AcceptBody`], sealed under the server's application key at seq 0.
    pub encrypted: Vec<u8>,
}

impl Accept {
    /// The clear part: header and session id.
    pub fn encode_prefix(session_id: &SessionId) -> Vec<u8> {
        let mut w = Writer::new(MessageType::Accept);
        w.bytes(&session_id.0);
        w.finish()
    }

    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Self::encode_prefix(&self.session_id);
        put_opaque16(&mut out, &self.encrypted);
        out
    }

    /// Decodes the message.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        let mut r = Reader::handshake(bytes)?;
        read_header(&mut r, MessageType::Accept)?;
        let session_id = SessionId(r.array()?);
        let encrypted = r.opaque16()?.to_vec();
        r.finish()?;
        Ok(Self {
            session_id,
            encrypted,
        })
    }
}

/// What Accept tells the client about its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptBody {
    /// The mode the server recorded.
    pub mode: Mode,
    /// Seconds without a valid record after which the server forgets the session.
    pub idle_timeout_seconds: u64,
    /// Records per direction after which a new handshake is needed.
    pub max_records: u64,
}

impl AcceptBody {
    /// Encoded length.
    pub const LEN: usize = 1 + 8 + 8;

    /// Encodes the plaintext.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.push(self.mode as u8);
        out.extend_from_slice(&self.idle_timeout_seconds.to_be_bytes());
        out.extend_from_slice(&self.max_records.to_be_bytes());
        out
    }

    /// Decodes the plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        let mut r = Reader::new(bytes);
        let mode = Mode::from_u8(r.u8()?).ok_or(ChannelError::Decode("unknown mode"))?;
        let idle_timeout_seconds = r.u64()?;
        let max_records = r.u64()?;
        r.finish()?;
        Ok(Self {
            mode,
            idle_timeout_seconds,
            max_records,
        })
    }
}

/// Whether a record carries data or closes the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Application data.
    Data,
    /// The end of the session; the payload is empty.
    Close,
}

impl RecordKind {
    /// The header type of a record of this kind.
    pub fn message_type(self) -> MessageType {
        match self {
            Self::Data => MessageType::Data,
            Self::Close => MessageType::Close,
        }
    }
}

/// Which way a record travels; part of its AAD, so that a record cannot be reflected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Direction {
    /// From the client: 'C'.
    ClientToServer = b'C',
    /// From the server: 'S'.
    ServerToClient = b'S',
}

/// A Data or Close record (§2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Data or Close.
    pub kind: RecordKind,
    /// The session it belongs to.
    pub session_id: SessionId,
    /// Its sequence number in its direction.
    pub seq: u64,
    /// The sealed payload with its tag.
    pub ciphertext: Vec<u8>,
}

impl Record {
    /// The AAD of a record: header, session id, direction, seq.
    pub fn aad(
        kind: MessageType,
        session_id: &SessionId,
        direction: Direction,
        seq: u64,
    ) -> Vec<u8> {
        let mut aad = Vec::with_capacity(HEADER_LEN + 16 + 1 + 8);
        aad.extend_from_slice(&kind.header());
        aad.extend_from_slice(&session_id.0);
        aad.push(direction as u8);
        aad.extend_from_slice(&seq.to_be_bytes());
        aad
    }

    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(self.kind.message_type());
        w.bytes(&self.session_id.0);
        w.u64(self.seq);
        let mut out = w.finish();
        put_opaque24(&mut out, &self.ciphertext);
        out
    }

    /// Decodes a Data or Close record.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        if bytes.len() > MAX_RECORD {
            return Err(ChannelError::Decode("record too large"));
        }
        let mut r = Reader::new(bytes);
        let kind = match read_header_any(&mut r)? {
            MessageType::Data => RecordKind::Data,
            MessageType::Close => RecordKind::Close,
            MessageType::Alert => return Err(read_alert_body(&mut r)),
            _ => return Err(ChannelError::UnexpectedMessage("expected a record")),
        };
        let session_id = SessionId(r.array()?);
        let seq = r.u64()?;
        let ciphertext = r.opaque24()?.to_vec();
        r.finish()?;
        if ciphertext.len() < TAG_LEN {
            return Err(ChannelError::Decode("record shorter than its tag"));
        }
        Ok(Self {
            kind,
            session_id,
            seq,
            ciphertext,
        })
    }
}

/// Alert (§2.6): a refusal, in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// Why.
    pub code: AlertCode,
}

impl Alert {
    /// Encodes the alert.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(MessageType::Alert);
        w.u16(self.code as u16);
        w.finish()
    }

    /// Decodes an alert.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChannelError> {
        let mut r = Reader::handshake(bytes)?;
        if read_header_any(&mut r)? != MessageType::Alert {
            return Err(ChannelError::UnexpectedMessage("expected an alert"));
        }
        match read_alert_body(&mut r) {
            ChannelError::PeerAlert(code) => Ok(Self { code }),
            other => Err(other),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding helpers.

/// Appends `bytes` with a one-byte length. Callers keep fields within their length.
pub(crate) fn put_opaque8(out: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(bytes.len() <= 0xff);
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// Appends `bytes` with a two-byte length.
pub(crate) fn put_opaque16(out: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(bytes.len() <= 0xffff);
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Appends `bytes` with a three-byte length.
pub(crate) fn put_opaque24(out: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(bytes.len() <= 0xff_ffff);
    let len = (bytes.len() as u32).to_be_bytes();
    out.extend_from_slice(&len[1..]);
    out.extend_from_slice(bytes);
}

struct Writer(Vec<u8>);

impl Writer {
    fn new(kind: MessageType) -> Self {
        let mut v = Vec::with_capacity(256);
        v.extend_from_slice(&kind.header());
        Self(v)
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn opaque8(&mut self, b: &[u8]) {
        put_opaque8(&mut self.0, b);
    }
    fn finish(self) -> Vec<u8> {
        self.0
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn handshake(buf: &'a [u8]) -> Result<Self, ChannelError> {
        if buf.len() > MAX_HANDSHAKE_MESSAGE {
            return Err(ChannelError::Decode("handshake message too large"));
        }
        Ok(Self::new(buf))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ChannelError> {
        if self.buf.len() < n {
            return Err(ChannelError::Decode("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ChannelError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ChannelError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ChannelError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ChannelError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn opaque8(&mut self) -> Result<&'a [u8], ChannelError> {
        let n = self.u8()? as usize;
        self.take(n)
    }

    fn opaque16(&mut self) -> Result<&'a [u8], ChannelError> {
        let n = self.u16()? as usize;
        self.take(n)
    }

    fn opaque24(&mut self) -> Result<&'a [u8], ChannelError> {
        let [a, b, c] = self.array()?;
        let n = u32::from_be_bytes([0, a, b, c]) as usize;
        self.take(n)
    }

    fn finish(&self) -> Result<(), ChannelError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ChannelError::Decode("trailing bytes"))
        }
    }
}

/// Reads a header of any known type. A bad magic is a decode error; any version but 1 is a
/// version error (there is nothing to negotiate down to).
fn read_header_any(r: &mut Reader<'_>) -> Result<MessageType, ChannelError> {
    if r.take(4)? != MAGIC {
        return Err(ChannelError::Decode("not a Tresor message"));
    }
    let version = r.u16()?;
    if version != VERSION {
        return Err(ChannelError::ProtocolVersion(version));
    }
    MessageType::from_u8(r.u8()?).ok_or(ChannelError::Decode("unknown message type"))
}

fn read_header(r: &mut Reader<'_>, expected: MessageType) -> Result<(), ChannelError> {
    match read_header_any(r)? {
        t if t == expected => Ok(()),
        MessageType::Alert => Err(read_alert_body(r)),
        _ => Err(ChannelError::UnexpectedMessage("wrong message type")),
    }
}

/// Reads an alert's code after its header: the peer's alert, or why it is malformed.
fn read_alert_body(r: &mut Reader<'_>) -> ChannelError {
    let code = match r.u16() {
        Ok(c) => c,
        Err(e) => return e,
    };
    if let Err(e) = r.finish() {
        return e;
    }
    match AlertCode::from_u16(code) {
        Some(code) => ChannelError::PeerAlert(code),
        None => ChannelError::Decode("unknown alert code"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> ClientHello {
        ClientHello {
            random: [7; 32],
            mode: Mode::Anonymous,
            suites: vec![SUITE_V1, 0x1234],
            share: [4; 65],
        }
    }

    #[test]
    fn client_hello_layout_matches_the_spec() {
        let bytes = hello().encode();
        assert_eq!(&bytes[..7], b"TRSR\x00\x01\x01");
        assert_eq!(&bytes[7..39], &[7; 32]);
        assert_eq!(bytes[39], 2, "mode");
        assert_eq!(&bytes[40..45], &[4, 0x00, 0x01, 0x12, 0x34], "suites");
        assert_eq!(bytes.len(), 45 + 65);
        assert_eq!(ClientHello::decode(&bytes).unwrap(), hello());
    }

    #[test]
    fn trailing_and_truncated_bytes_are_refused() {
        let mut bytes = hello().encode();
        bytes.push(0);
        assert_eq!(
            ClientHello::decode(&bytes),
            Err(ChannelError::Decode("trailing bytes"))
        );
        bytes.truncate(bytes.len() - 2);
        assert_eq!(
            ClientHello::decode(&bytes),
            Err(ChannelError::Decode("truncated"))
        );
    }

    #[test]
    fn another_version_is_a_version_error_and_an_alert_is_the_peers() {
        let mut bytes = hello().encode();
        bytes[5] = 2;
        assert_eq!(
            ClientHello::decode(&bytes),
            Err(ChannelError::ProtocolVersion(2))
        );
        let alert = Alert {
            code: AlertCode::BadCertificate,
        }
        .encode();
        assert_eq!(alert, b"TRSR\x00\x01\x07\x00\x05");
        assert_eq!(
            ServerHello::decode(&alert),
            Err(ChannelError::PeerAlert(AlertCode::BadCertificate))
        );
        assert_eq!(
            Record::decode(&alert),
            Err(ChannelError::PeerAlert(AlertCode::BadCertificate))
        );
    }

    #[test]
    fn record_layout_matches_the_spec() {
        let record = Record {
            kind: RecordKind::Close,
            session_id: SessionId([9; 16]),
            seq: 0x0102,
            ciphertext: vec![0xaa; 16],
        };
        let bytes = record.encode();
        assert_eq!(&bytes[..7], b"TRSR\x00\x01\x06");
        assert_eq!(&bytes[23..31], &[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(&bytes[31..34], &[0, 0, 16]);
        assert_eq!(bytes.len(), RECORD_OVERHEAD + 16);
        assert_eq!(Record::decode(&bytes).unwrap(), record);
        assert_eq!(
            Record::aad(
                MessageType::Close,
                &record.session_id,
                Direction::ServerToClient,
                1
            )[23..],
            [b'S', 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }
}

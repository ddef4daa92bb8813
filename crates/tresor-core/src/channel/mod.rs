//! The secure channel, version 1 (docs/PROTOCOL.md): a SIGMA-I signed Diffie-Hellman over
//! ephemeral P-256, then AES-256-GCM records, carried inside HTTPS so that everything stays
//! encrypted end to end through a TLS-terminating proxy.
//!
//! IO-free: the caller moves bytes and brings the time. The client walks
//! [`client::start`] → [`client::AwaitServerHello`] → [`client::AwaitAccept`] →
//! [`client::ClientSession`]; the server [`server::respond`] → [`server::PendingHandshake`] →
//! [`server::VerifiedFinish`] → [`server::ServerSession`]. Each state is a type that only
//! accepts the message expected next.

pub mod client;
mod crypto;
pub mod server;
pub mod wire;

pub use crypto::{HandshakeSigner, RingSigner};
pub use wire::{Mode, SessionId};

use crate::pki::CertError;

/// Records per direction per session, at most: 2^24, far inside AES-GCM's limits for one key
/// (NIST SP 800-38D; 2^32 invocations with deterministic nonces).
pub const MAX_RECORDS_LIMIT: u64 = 1 << 24;

/// Why a message was refused. Each maps to the [`AlertCode`] the server sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// Malformed: truncated, trailing bytes, unknown value, too large.
    #[error("malformed message: {0}")]
    Decode(&'static str),
    /// A version other than 1.
    #[error("unsupported protocol version {0}")]
    ProtocolVersion(u16),
    /// None of the offered suites is known.
    #[error("no cipher suite in common")]
    NoCommonSuite,
    /// A value that decodes but is not allowed: a point off the curve, a bad login.
    #[error("illegal parameter: {0}")]
    IllegalParameter(&'static str),
    /// The peer's certificate was refused.
    #[error("certificate refused: {0}")]
    BadCertificate(CertError),
    /// A signature or finished MAC does not verify.
    #[error("a handshake signature or MAC does not verify")]
    BadSignature,
    /// No such session, or it expired or was closed.
    #[error("unknown, expired or closed session")]
    UnknownSession,
    /// A record that does not decrypt, or arrives out of sequence.
    #[error("record refused: {0}")]
    BadRecord(&'static str),
    /// The session reached its record limit; a new handshake is needed.
    #[error("the session reached its record limit")]
    TooManyRecords,
    /// A message that does not fit the state.
    #[error("unexpected message: {0}")]
    UnexpectedMessage(&'static str),
    /// The server is at capacity or rate-limits this client; try again later.
    #[error("the server is busy")]
    ServerBusy,
    /// The peer refused with an alert (unauthenticated: the exchange is over, nothing more).
    #[error("the server refused: {0}")]
    PeerAlert(AlertCode),
    /// Our own key did not sign (a token pulled out, or a server key in an HSM that went
    /// away). The server answers it as busy: the fault is its own and may pass.
    #[error(transparent)]
    Signer(crate::signer::SignError),
}

impl ChannelError {
    /// The alert a server sends for this error.
    pub fn alert(&self) -> AlertCode {
        match self {
            Self::Decode(_) => AlertCode::DecodeError,
            Self::ProtocolVersion(_) => AlertCode::ProtocolVersion,
            Self::NoCommonSuite => AlertCode::NoCommonSuite,
            Self::IllegalParameter(_) => AlertCode::IllegalParameter,
            Self::BadCertificate(CertError::Expired) => AlertCode::CertificateExpired,
            Self::BadCertificate(CertError::Revoked) => AlertCode::CertificateRevoked,
            Self::BadCertificate(CertError::NotActivated) => AlertCode::CertificateNotActivated,
            Self::BadCertificate(_) => AlertCode::BadCertificate,
            Self::BadSignature => AlertCode::BadSignature,
            Self::UnknownSession => AlertCode::UnknownSession,
            Self::BadRecord(_) => AlertCode::BadRecord,
            Self::TooManyRecords => AlertCode::TooManyRecords,
            Self::UnexpectedMessage(_) => AlertCode::UnexpectedMessage,
            Self::ServerBusy | Self::Signer(_) => AlertCode::ServerBusy,
            Self::PeerAlert(code) => *code,
        }
    }

    /// The Alert message for this error.
    pub fn alert_message(&self) -> Vec<u8> {
        wire::Alert { code: self.alert() }.encode()
    }
}

/// Alert codes (docs/PROTOCOL.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
#[non_exhaustive]
pub enum AlertCode {
    /// Malformed message or record.
    DecodeError = 1,
    /// A version other than 1.
    ProtocolVersion = 2,
    /// None of the offered suites is supported.
    NoCommonSuite = 3,
    /// A share off the curve, a bad login, a wrong length.
    IllegalParameter = 4,
    /// A certificate from another CA, for another login, or for another purpose.
    BadCertificate = 5,
    /// A signature or finished MAC does not verify.
    BadSignature = 6,
    /// The session is not known, expired or closed.
    UnknownSession = 7,
    /// A record that does not decrypt or is out of sequence.
    BadRecord = 8,
    /// The record limit is reached.
    TooManyRecords = 9,
    /// A message that does not fit the state.
    UnexpectedMessage = 10,
    /// Refused by rate limiting.
    ServerBusy = 11,
    /// The client's certificate has expired.
    CertificateExpired = 12,
    /// The client's certificate was revoked by the bank.
    CertificateRevoked = 13,
    /// The client's certificate waits for the bank to activate it from its key letter.
    CertificateNotActivated = 14,
}

impl AlertCode {
    /// The code for a number, if it is one.
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::DecodeError,
            2 => Self::ProtocolVersion,
            3 => Self::NoCommonSuite,
            4 => Self::IllegalParameter,
            5 => Self::BadCertificate,
            6 => Self::BadSignature,
            7 => Self::UnknownSession,
            8 => Self::BadRecord,
            9 => Self::TooManyRecords,
            10 => Self::UnexpectedMessage,
            11 => Self::ServerBusy,
            12 => Self::CertificateExpired,
            13 => Self::CertificateRevoked,
            14 => Self::CertificateNotActivated,
            _ => return None,
        })
    }
}

impl core::fmt::Display for AlertCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::DecodeError => "decode_error",
            Self::ProtocolVersion => "protocol_version",
            Self::NoCommonSuite => "no_common_suite",
            Self::IllegalParameter => "illegal_parameter",
            Self::BadCertificate => "bad_certificate",
            Self::BadSignature => "bad_signature",
            Self::UnknownSession => "unknown_session",
            Self::BadRecord => "bad_record",
            Self::TooManyRecords => "too_many_records",
            Self::UnexpectedMessage => "unexpected_message",
            Self::ServerBusy => "server_busy",
            Self::CertificateExpired => "certificate_expired",
            Self::CertificateRevoked => "certificate_revoked",
            Self::CertificateNotActivated => "certificate_not_activated",
        })
    }
}

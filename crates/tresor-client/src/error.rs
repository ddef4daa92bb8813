//! What can go wrong in a client flow, said so that the user knows what to do, and sorted
//! into [`ErrorKind`]s that the CLI turns into exit codes and the app into screens.

use std::path::PathBuf;
use std::time::SystemTime;

use tresor_core::api::{ApiError, ErrorCode};
use tresor_core::channel::{AlertCode, ChannelError};
use tresor_core::payment::PaymentError;
use tresor_core::secret::{LoginPasswordError, PasswordPolicyError};

use crate::connection::ConnectionError;
use crate::keystore::StoreError;
use crate::settings::SettingsError;

/// A client flow failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection settings are missing or wrong.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The bank could not be reached, or the channel failed.
    #[error(transparent)]
    Connection(ConnectionError),
    /// No key for the login on that drive.
    #[error("no key file for {login} on the drive {drive}")]
    KeyNotFound {
        /// The login.
        login: String,
        /// The drive searched.
        drive: PathBuf,
    },
    /// The key password does not open the key.
    #[error("wrong key password (or the key file is damaged)")]
    WrongKeyPassword,
    /// The key file cannot be used: not a key, damaged, or not matching its certificate.
    #[error("the key on the drive cannot be used: {0}")]
    BrokenKey(String),
    /// The key has no certificate yet (first login or recovery never finished).
    #[error("the key at {0} has no certificate: finish the first login, or recover the key")]
    CertificateMissing(PathBuf),
    /// The certificate has expired (when, if the client knows).
    #[error("the certificate has expired{}", .0.map(|t| format!(" (on {})", crate::format_time(t))).unwrap_or_default())]
    CertificateExpired(Option<SystemTime>),
    /// The bank revoked the certificate.
    #[error("the bank has revoked this certificate")]
    CertificateRevoked,
    /// The drive failed, or the key folder on it.
    #[error(transparent)]
    Store(StoreError),
    /// The bank refused the login. Deliberately generic: the bank does not say which factor.
    #[error("{0}")]
    LoginFailed(String),
    /// The account is locked (said only to the key's holder).
    #[error("{0}")]
    AccountLocked(String),
    /// Too many failed logins from this address.
    #[error("{0}")]
    AddressBlocked(String),
    /// The bank refused a request after login.
    #[error("the bank refused: {0}")]
    Refused(ApiError),
    /// The session ended after being idle, or was closed: log in again.
    #[error("the session has ended after {0} seconds without activity; log in again")]
    SessionExpired(u64),
    /// A new password breaks the policy (checked here before sending).
    #[error(transparent)]
    LoginPassword(#[from] LoginPasswordError),
    /// A new key password breaks the policy.
    #[error(transparent)]
    KeyPassword(#[from] PasswordPolicyError),
    /// A payment order is invalid.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The session cannot do this (e.g. sign without the key).
    #[error("{0}")]
    NotPossible(String),
    /// The bank answered something the client did not expect.
    #[error("unexpected answer from the bank: {0}")]
    Protocol(String),
}

/// What kind of failure, for exit codes and screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The login, password or second factor was refused.
    Credentials,
    /// The account is locked, or the address blocked.
    Locked,
    /// The key or the drive: recovery may be the way out (see [`ClientError::offers_recovery`]).
    Key,
    /// The network or the channel.
    Network,
    /// The bank refused a request (rights, stage, invalid content), or the client knows it
    /// would (signing on an OTP session).
    Refused,
    /// Anything else: settings, bad input, an unexpected answer.
    Other,
}

impl ClientError {
    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::LoginFailed(_) => ErrorKind::Credentials,
            Self::AccountLocked(_) | Self::AddressBlocked(_) => ErrorKind::Locked,
            Self::KeyNotFound { .. }
            | Self::WrongKeyPassword
            | Self::BrokenKey(_)
            | Self::CertificateMissing(_)
            | Self::CertificateExpired(_)
            | Self::CertificateRevoked
            | Self::Store(_) => ErrorKind::Key,
            Self::Connection(_) | Self::SessionExpired(_) => ErrorKind::Network,
            Self::Refused(_) | Self::NotPossible(_) => ErrorKind::Refused,
            Self::Settings(_)
            | Self::LoginPassword(_)
            | Self::KeyPassword(_)
            | Self::Payment(_)
            | Self::Protocol(_) => ErrorKind::Other,
        }
    }

    /// Whether certificate recovery is the way out: a wrong key password, a missing or broken
    /// key, an expired or revoked certificate.
    pub fn offers_recovery(&self) -> bool {
        // Every key problem but the drive's own (read-only, full, removed): a new key would
        // not help there.
        self.kind() == ErrorKind::Key && !matches!(self, Self::Store(_))
    }
}

impl From<ApiError> for ClientError {
    fn from(e: ApiError) -> Self {
        match e.code {
            ErrorCode::LoginFailed => Self::LoginFailed(e.message),
            ErrorCode::AccountLocked => Self::AccountLocked(e.message),
            ErrorCode::AddressBlocked => Self::AddressBlocked(e.message),
            _ => Self::Refused(e),
        }
    }
}

impl From<ConnectionError> for ClientError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::Channel(ChannelError::PeerAlert(AlertCode::CertificateRevoked)) => {
                Self::CertificateRevoked
            }
            ConnectionError::Channel(ChannelError::PeerAlert(AlertCode::CertificateExpired)) => {
                Self::CertificateExpired(None)
            }
            e => Self::Connection(e),
        }
    }
}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        use tresor_core::keyfile::KeyFileError;
        match e {
            StoreError::KeyNotFound { login, dir } => Self::KeyNotFound {
                login,
                drive: dir
                    .parent()
                    .and_then(|p| p.parent())
                    .map_or(dir.clone(), |p| p.to_path_buf()),
            },
            StoreError::KeyFile(KeyFileError::WrongPasswordOrCorrupted) => Self::WrongKeyPassword,
            StoreError::KeyFile(KeyFileError::WeakPassword(p)) => Self::KeyPassword(p),
            StoreError::KeyFile(e) => Self::BrokenKey(e.to_string()),
            StoreError::Certificate { path, source } => Self::BrokenKey(format!(
                "the certificate at {} is unreadable: {source}",
                path.display()
            )),
            StoreError::CertificateMissing(path) => Self::CertificateMissing(path),
            e => Self::Store(e),
        }
    }
}

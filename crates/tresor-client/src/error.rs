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
use crate::token::TokenError;

impl From<TokenError> for ClientError {
    fn from(e: TokenError) -> Self {
        Self::Token(e)
    }
}

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
    /// The bank keeps the certificate but has not activated it from its key letter yet.
    #[error(
        "the bank has not activated this key yet: print the key letter (`tresor key letter`), \
         sign it and bring it to the bank"
    )]
    CertificateNotActivated,
    /// The drive failed, or the key folder on it.
    #[error(transparent)]
    Store(StoreError),
    /// The token failed, refused its PIN, or holds no key for the login.
    #[error(transparent)]
    Token(TokenError),
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
    /// The bank no longer knows the session: it ended it (its idle or absolute limit, a
    /// change of password or rights, a recovery, an admin) or forgot it. Log in again.
    #[error("the bank has ended the session; log in again")]
    SessionEnded,
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

/// What failed, one code per case the user acts on differently. The CLI's exit status and
/// the app's error codes both derive from it ([`ClientError::code`]), so the two never
/// disagree about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The connection settings are missing or wrong.
    Settings,
    /// The login was refused (which factor is not said).
    Credentials,
    /// The account is locked, or the address blocked.
    Locked,
    /// The key password does not open the key.
    WrongKeyPassword,
    /// No key for the login on the drive.
    KeyNotFound,
    /// The key file cannot be used, or has no certificate.
    BrokenKey,
    /// The certificate has expired.
    CertificateExpired,
    /// The bank revoked the certificate.
    CertificateRevoked,
    /// The certificate waits for the bank to activate it from its key letter.
    CertificateNotActivated,
    /// The drive or token failed: removed, read-only, full, a locked PIN.
    Drive,
    /// The bank cannot be reached, or the channel failed.
    Network,
    /// The session ended: log in again.
    SessionExpired,
    /// The bank refused a request, or the session cannot do it.
    Refused,
    /// A new login password breaks the policy.
    PasswordPolicy,
    /// A new key password breaks the policy.
    KeyPasswordPolicy,
    /// A payment order is invalid.
    InvalidOrder,
    /// The bank answered something the client did not expect.
    Protocol,
}

/// What kind of failure, for exit codes: a coarser grouping of [`Code`].
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

impl Code {
    /// Its kind.
    pub fn kind(self) -> ErrorKind {
        match self {
            Self::Credentials => ErrorKind::Credentials,
            Self::Locked => ErrorKind::Locked,
            Self::WrongKeyPassword
            | Self::KeyNotFound
            | Self::BrokenKey
            | Self::CertificateExpired
            | Self::CertificateRevoked
            | Self::CertificateNotActivated
            | Self::Drive => ErrorKind::Key,
            Self::Network | Self::SessionExpired => ErrorKind::Network,
            Self::Refused => ErrorKind::Refused,
            Self::Settings
            | Self::PasswordPolicy
            | Self::KeyPasswordPolicy
            | Self::InvalidOrder
            | Self::Protocol => ErrorKind::Other,
        }
    }

    /// Whether certificate recovery is the way out: every key problem but the drive's own
    /// (read-only, full, removed), which a new key would not solve.
    pub fn offers_recovery(self) -> bool {
        self.kind() == ErrorKind::Key
            && !matches!(self, Self::Drive | Self::CertificateNotActivated)
    }
}

impl ClientError {
    /// Its code.
    pub fn code(&self) -> Code {
        match self {
            Self::Settings(_) => Code::Settings,
            Self::Connection(_) => Code::Network,
            Self::KeyNotFound { .. } => Code::KeyNotFound,
            Self::WrongKeyPassword => Code::WrongKeyPassword,
            Self::BrokenKey(_) | Self::CertificateMissing(_) => Code::BrokenKey,
            Self::CertificateExpired(_) => Code::CertificateExpired,
            Self::CertificateRevoked => Code::CertificateRevoked,
            Self::CertificateNotActivated => Code::CertificateNotActivated,
            Self::Store(_) => Code::Drive,
            Self::Token(e) => match e {
                TokenError::WrongPin { .. } => Code::WrongKeyPassword,
                TokenError::NoKeyForLogin { .. } => Code::KeyNotFound,
                TokenError::CertificateMissing(_) | TokenError::CertificateForAnotherKey => {
                    Code::BrokenKey
                }
                TokenError::NoModule | TokenError::NotAModule { .. } => Code::Settings,
                _ => Code::Drive,
            },
            Self::LoginFailed(_) => Code::Credentials,
            Self::AccountLocked(_) | Self::AddressBlocked(_) => Code::Locked,
            Self::Refused(_) | Self::NotPossible(_) => Code::Refused,
            Self::SessionExpired(_) | Self::SessionEnded => Code::SessionExpired,
            Self::LoginPassword(_) => Code::PasswordPolicy,
            Self::KeyPassword(_) => Code::KeyPasswordPolicy,
            Self::Payment(_) => Code::InvalidOrder,
            Self::Protocol(_) => Code::Protocol,
        }
    }

    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        self.code().kind()
    }

    /// Whether certificate recovery is the way out: a wrong key password, a missing or broken
    /// key, an expired or revoked certificate.
    pub fn offers_recovery(&self) -> bool {
        self.code().offers_recovery()
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
            ConnectionError::Channel(ChannelError::PeerAlert(
                AlertCode::CertificateNotActivated,
            )) => Self::CertificateNotActivated,
            ConnectionError::Channel(ChannelError::PeerAlert(AlertCode::CertificateExpired)) => {
                Self::CertificateExpired(None)
            }
            ConnectionError::Channel(ChannelError::PeerAlert(AlertCode::UnknownSession)) => {
                Self::SessionEnded
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_group_into_kinds_and_say_when_recovery_helps() {
        use Code::*;
        let cases = [
            (Settings, ErrorKind::Other, false),
            (Credentials, ErrorKind::Credentials, false),
            (Locked, ErrorKind::Locked, false),
            (WrongKeyPassword, ErrorKind::Key, true),
            (KeyNotFound, ErrorKind::Key, true),
            (BrokenKey, ErrorKind::Key, true),
            (CertificateExpired, ErrorKind::Key, true),
            (CertificateRevoked, ErrorKind::Key, true),
            (CertificateNotActivated, ErrorKind::Key, false),
            (Drive, ErrorKind::Key, false),
            (Network, ErrorKind::Network, false),
            (SessionExpired, ErrorKind::Network, false),
            (Refused, ErrorKind::Refused, false),
            (PasswordPolicy, ErrorKind::Other, false),
            (KeyPasswordPolicy, ErrorKind::Other, false),
            (InvalidOrder, ErrorKind::Other, false),
            (Protocol, ErrorKind::Other, false),
        ];
        for (code, kind, recovery) in cases {
            assert_eq!(code.kind(), kind, "{code:?}");
            assert_eq!(code.offers_recovery(), recovery, "{code:?}");
        }
    }

    #[test]
    fn errors_carry_their_code() {
        let cases = [
            (ClientError::LoginFailed("no".into()), Code::Credentials),
            (ClientError::AddressBlocked("later".into()), Code::Locked),
            (ClientError::WrongKeyPassword, Code::WrongKeyPassword),
            (ClientError::CertificateRevoked, Code::CertificateRevoked),
            (ClientError::SessionExpired(300), Code::SessionExpired),
            (
                ClientError::from(ConnectionError::Channel(ChannelError::PeerAlert(
                    AlertCode::UnknownSession,
                ))),
                Code::SessionExpired,
            ),
            (ClientError::NotPossible("otp".into()), Code::Refused),
            (ClientError::Protocol("?".into()), Code::Protocol),
            (
                ClientError::Token(TokenError::WrongPin { tries_left: None }),
                Code::WrongKeyPassword,
            ),
            (ClientError::Token(TokenError::PinLocked), Code::Drive),
            (ClientError::Token(TokenError::Removed), Code::Drive),
            (
                ClientError::Token(TokenError::NoKeyForLogin {
                    login: "olena".into(),
                    token: "t".into(),
                }),
                Code::KeyNotFound,
            ),
            (
                ClientError::Token(TokenError::NotAModule {
                    path: "/x".into(),
                    detail: "no".into(),
                }),
                Code::Settings,
            ),
            (
                ClientError::from(ApiError::new(ErrorCode::Unknown, "new")),
                Code::Refused,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e}");
        }
    }
}

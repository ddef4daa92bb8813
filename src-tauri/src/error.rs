//! Errors as the window sees them: a code to branch on and a message to show. The UI never
//! matches on message text.

use serde::Serialize;
use tresor_client::ClientError;
use tresor_client::error::Code;
use tresor_client::settings::SettingsError;

/// What went wrong, for the UI to choose a screen or a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No bank is configured, or the settings are wrong: the Settings screen.
    Settings,
    /// The login was refused. Generic on purpose: which factor was wrong is not said.
    Credentials,
    /// The account is locked, or this address is blocked for a while.
    Locked,
    /// The key password does not open the key: recovery is offered.
    WrongKeyPassword,
    /// No key for this login on the chosen drive.
    KeyNotFound,
    /// The key file cannot be used, or has no certificate: recovery is offered.
    BrokenKey,
    /// The certificate has expired: recovery is offered.
    CertificateExpired,
    /// The bank revoked the certificate: recovery is offered.
    CertificateRevoked,
    /// The bank has not activated the key from its key letter yet.
    CertificateNotActivated,
    /// The drive failed: removed, read-only or full.
    Drive,
    /// The bank cannot be reached, or the connection failed.
    Network,
    /// The session ended (idle, or logged out): log in again.
    SessionExpired,
    /// The bank refused the request (rights, stage), or the session cannot do it.
    Refused,
    /// A new login password breaks the policy.
    PasswordPolicy,
    /// A new key password breaks the policy.
    KeyPasswordPolicy,
    /// A payment order's field is invalid.
    InvalidOrder,
    /// Any other input is invalid (a login's form, say).
    InvalidInput,
    /// Something unexpected.
    Other,
}

/// A failed command.
#[derive(Debug, Clone, Serialize, specta::Type, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// What to tell the user (English; the UI shows its own text per code where it has one).
    pub message: String,
    /// Whether certificate recovery is the way out.
    pub offers_recovery: bool,
}

impl AppError {
    /// An error of `code` with its message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            offers_recovery: false,
        }
    }

    /// No session: the user has to log in (again).
    pub fn not_logged_in() -> Self {
        Self::new(ErrorCode::SessionExpired, "not logged in")
    }
}

impl From<Code> for ErrorCode {
    fn from(code: Code) -> Self {
        match code {
            Code::Settings => Self::Settings,
            Code::Credentials => Self::Credentials,
            Code::Locked => Self::Locked,
            Code::WrongKeyPassword => Self::WrongKeyPassword,
            Code::KeyNotFound => Self::KeyNotFound,
            Code::BrokenKey => Self::BrokenKey,
            Code::CertificateExpired => Self::CertificateExpired,
            Code::CertificateRevoked => Self::CertificateRevoked,
            Code::CertificateNotActivated => Self::CertificateNotActivated,
            Code::Drive => Self::Drive,
            Code::Network => Self::Network,
            Code::SessionExpired => Self::SessionExpired,
            Code::Refused => Self::Refused,
            Code::PasswordPolicy => Self::PasswordPolicy,
            Code::KeyPasswordPolicy => Self::KeyPasswordPolicy,
            Code::InvalidOrder => Self::InvalidOrder,
            Code::Protocol => Self::Other,
        }
    }
}

impl From<ClientError> for AppError {
    fn from(e: ClientError) -> Self {
        let code = e.code();
        Self {
            code: code.into(),
            message: e.to_string(),
            offers_recovery: code.offers_recovery(),
        }
    }
}

impl From<SettingsError> for AppError {
    fn from(e: SettingsError) -> Self {
        ClientError::from(e).into()
    }
}

impl From<tresor_core::login::LoginError> for AppError {
    fn from(e: tresor_core::login::LoginError) -> Self {
        Self::new(ErrorCode::InvalidInput, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_problems_offer_recovery_and_drive_problems_do_not() {
        let wrong: AppError = ClientError::WrongKeyPassword.into();
        assert_eq!(wrong.code, ErrorCode::WrongKeyPassword);
        assert!(wrong.offers_recovery);
        let revoked: AppError = ClientError::CertificateRevoked.into();
        assert_eq!(revoked.code, ErrorCode::CertificateRevoked);
        assert!(revoked.offers_recovery);
        let refused: AppError = ClientError::NotPossible("no".into()).into();
        assert_eq!(refused.code, ErrorCode::Refused);
        assert!(!refused.offers_recovery);
    }

    #[test]
    fn a_refused_login_stays_generic() {
        let e: AppError = ClientError::LoginFailed("login failed".into()).into();
        assert_eq!(e.code, ErrorCode::Credentials);
        assert_eq!(e.message, "login failed");
        assert!(!e.offers_recovery);
    }

    #[test]
    fn serialises_as_code_and_message() {
        let e = AppError::new(ErrorCode::KeyPasswordPolicy, "too short");
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["code"], "key_password_policy");
        assert_eq!(json["message"], "too short");
        assert_eq!(json["offers_recovery"], false);
    }
}

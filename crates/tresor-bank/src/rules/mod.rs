//! The bank's rules as pure decisions: facts in, verdict out. No database, no Argon2, no
//! clock: the services in `bank.rs`, `orders.rs` and `admin.rs` load the facts inside their
//! transaction, ask here, and write what was decided. Each rule has a table of cases below.

use tresor_core::api::{Menus, OrderStatus, Request, Rights, Stage};
use tresor_core::channel::Mode;

use crate::storage::{CertPurpose, PasswordKind};

pub mod admin;
pub mod ledger;
pub mod voice;

// ---------------------------------------------------------------------------------------------
// Login.

/// The second factor a login presents, from the session's mode and the request's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// The session's handshake was signed by the user's key.
    Key,
    /// An anonymous session with a TOTP code.
    Otp,
    /// An anonymous session with an emergency password (certificate recovery).
    Emergency,
    /// An anonymous session with the password alone.
    PasswordOnly,
}

impl Factor {
    /// What the request presents; `None` for a combination no client sends (an OTP or an
    /// emergency password on a key session, or both at once).
    pub fn of(mode: Mode, otp: bool, emergency: bool) -> Option<Self> {
        match (mode, otp, emergency) {
            (Mode::Authenticated, false, false) => Some(Self::Key),
            (Mode::Anonymous, true, false) => Some(Self::Otp),
            (Mode::Anonymous, false, true) => Some(Self::Emergency),
            (Mode::Anonymous, false, false) => Some(Self::PasswordOnly),
            _ => None,
        }
    }

    /// For the audit record.
    pub fn name(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Otp => "otp",
            Self::Emergency => "emergency password",
            Self::PasswordOnly => "one-time password",
        }
    }
}

/// Why a login is refused. The client hears one generic error for all of them (one
/// exception: [`LoginRefusal::Locked`] on a session signed by the login's own key); the
/// audit log records which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// No such login.
    UnknownLogin,
    /// A key session for a login its certificate is not bound to, or with a certificate the
    /// bank does not hold valid.
    ForeignCertificate,
    /// The account is locked.
    Locked,
    /// The one-time password was used already.
    OneTimeUsed,
    /// The one-time password expired.
    OneTimeExpired,
    /// No second factor this login can use.
    NoSecondFactor,
}

impl LoginRefusal {
    /// The audit record's outcome.
    pub fn outcome(self) -> &'static str {
        match self {
            Self::UnknownLogin => "failed: unknown login",
            Self::ForeignCertificate => "failed: certificate of another login",
            Self::Locked => "refused: account locked",
            Self::OneTimeUsed => "refused: one-time password already used",
            Self::OneTimeExpired => "refused: one-time password expired",
            Self::NoSecondFactor => "failed: no usable second factor",
        }
    }
}

/// Before any password is checked: a key session must carry a valid certificate of this
/// login, and the account must be unlocked.
pub fn login_gate(
    factor_is_key: bool,
    certificate_ok: bool,
    locked: bool,
) -> Result<(), LoginRefusal> {
    if factor_is_key && !certificate_ok {
        return Err(LoginRefusal::ForeignCertificate);
    }
    if locked {
        return Err(LoginRefusal::Locked);
    }
    Ok(())
}

/// The user's login password, as far as the login decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordState {
    /// Its kind.
    pub kind: PasswordKind,
    /// A one-time password already used.
    pub used: bool,
    /// A one-time password past its expiry.
    pub expired: bool,
}

/// After the password was found right: the stage the session gets if the second factor (an
/// OTP code, an emergency password) is then found right too.
///
/// | factor        | regular password | one-time password (initial, temporary) |
/// |---------------|------------------|----------------------------------------|
/// | key           | key              | change password                        |
/// | OTP           | otp              | change password                        |
/// | emergency     | recovery         | recovery                               |
/// | password only | refused          | change password                        |
///
/// A one-time password that was used or has expired is refused whatever the factor.
pub fn login_stage(password: PasswordState, factor: Option<Factor>) -> Result<Stage, LoginRefusal> {
    let one_time = password.kind.one_time();
    if one_time && password.used {
        return Err(LoginRefusal::OneTimeUsed);
    }
    if one_time && password.expired {
        return Err(LoginRefusal::OneTimeExpired);
    }
    match factor {
        None => Err(LoginRefusal::NoSecondFactor),
        Some(Factor::Emergency) => Ok(Stage::Recovery),
        Some(_) if one_time => Ok(Stage::ChangePassword),
        Some(Factor::Key) => Ok(Stage::Key),
        Some(Factor::Otp) => Ok(Stage::Otp),
        Some(Factor::PasswordOnly) => Err(LoginRefusal::NoSecondFactor),
    }
}

// ---------------------------------------------------------------------------------------------
// What a session may do.

/// Stages that may use accounts and orders.
pub fn may_use_accounts(stage: Stage) -> bool {
    matches!(stage, Stage::Key | Stage::Otp)
}

/// Stages that may change the password.
pub fn may_change_password(stage: Stage) -> bool {
    matches!(stage, Stage::ChangePassword | Stage::Key | Stage::Otp)
}

/// The admin's grant on an account, narrowed by the session: limited menus and a pending
/// emergency password leave viewing only; an OTP session may view and prepare, never sign
/// or send; a session not logged in for accounts, nothing.
pub fn session_rights(
    granted: Rights,
    stage: Stage,
    menus: Menus,
    recovery_pending: bool,
) -> Rights {
    let view_only = Rights {
        view: granted.view,
        ..Rights::default()
    };
    if !may_use_accounts(stage) {
        return Rights::default();
    }
    if menus == Menus::Limited || recovery_pending {
        return view_only;
    }
    match stage {
        Stage::Key => granted,
        _ => Rights {
            view: granted.view,
            prepare: granted.prepare,
            sign: false,
            send: false,
        },
    }
}

/// What a request does, as far as a pending certificate recovery is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Reads: the overview, orders.
    View,
    /// Changes orders: prepare, edit, sign, send (their rights are narrowed to view anyway).
    Orders,
    /// Changes the user's credentials: password, TOTP, a certificate.
    Credentials,
    /// Logging out.
    Logout,
    /// A bank admin's command.
    Admin,
}

impl Operation {
    /// The operation of a request.
    pub fn of(request: &Request) -> Self {
        match request {
            Request::Overview {}
            | Request::ListOrders { .. }
            | Request::GetOrder { .. }
            | Request::Statement { .. }
            | Request::SignatureQueue { .. }
            | Request::ListTemplates { .. }
            | Request::ListCounterparties { .. }
            | Request::Profile {} => Self::View,
            Request::PrepareOrder { .. }
            | Request::ImportOrders { .. }
            | Request::EditOrder { .. }
            | Request::SignOrder { .. }
            | Request::SendOrder { .. }
            | Request::SignOrders { .. }
            | Request::DeleteOrder { .. }
            | Request::SaveTemplate { .. }
            | Request::DeleteTemplate { .. }
            | Request::SaveCounterparty { .. }
            | Request::DeleteCounterparty { .. } => Self::Orders,
            Request::Logout {} => Self::Logout,
            Request::Admin { .. } => Self::Admin,
            // Answered before the session's login is looked up, like a login.
            Request::BlockKey { .. } | Request::BankInfo {} => Self::Logout,
            // Login is answered before this rule is asked; counted as the most restricted.
            Request::Login { .. }
            | Request::ChangePassword { .. }
            | Request::TotpEnroll {}
            | Request::TotpConfirm { .. }
            | Request::RequestCertificate { .. }
            | Request::ForgotPassword { .. }
            | Request::ResetPassword { .. }
            | Request::ConfirmLogin { .. }
            // The address receives reset codes; the language and the notices go with it.
            | Request::SetEmail { .. }
            | Request::ConfirmEmail { .. }
            | Request::SetPreferences { .. } => Self::Credentials,
        }
    }
}

/// Whether a user whose key is blocked (suspended) may log in with `factor`: only to recover,
/// with an emergency password.
pub fn suspension_allows(suspended: bool, factor: Option<Factor>) -> bool {
    !suspended || factor == Some(Factor::Emergency)
}

/// Whether a request is a client's work (accounts, orders, TOTP), which a session signed by
/// an admin's key may not do.
pub fn client_work(request: &Request) -> bool {
    match request {
        Request::Overview {}
        | Request::ListOrders { .. }
        | Request::GetOrder { .. }
        | Request::PrepareOrder { .. }
        | Request::EditOrder { .. }
        | Request::SignOrder { .. }
        | Request::SendOrder { .. }
        | Request::Statement { .. }
        | Request::ImportOrders { .. }
        | Request::SignatureQueue { .. }
        | Request::SignOrders { .. }
        | Request::DeleteOrder { .. }
        | Request::SaveTemplate { .. }
        | Request::ListTemplates { .. }
        | Request::DeleteTemplate { .. }
        | Request::SaveCounterparty { .. }
        | Request::ListCounterparties { .. }
        | Request::DeleteCounterparty { .. }
        | Request::TotpEnroll {}
        | Request::TotpConfirm { .. } => true,
        Request::Login { .. }
        | Request::ChangePassword { .. }
        | Request::RequestCertificate { .. }
        | Request::Logout {}
        | Request::BlockKey { .. }
        | Request::BankInfo {}
        | Request::ForgotPassword { .. }
        | Request::ResetPassword { .. }
        | Request::ConfirmLogin { .. }
        | Request::Profile {}
        | Request::SetEmail { .. }
        | Request::ConfirmEmail { .. }
        | Request::SetPreferences { .. }
        | Request::Admin { .. } => false,
    }
}

/// While an emergency password is pending (the user reported the key lost), whoever holds
/// the old key and password may be a thief: they may view and log out, nothing more (no new
/// password, TOTP secret or certificate, no order), until the recovery session itself takes
/// its certificate. Orders are refused here as well as by the narrowed rights.
pub fn allowed_while_recovery_pending(op: Operation, stage: Stage, pending: bool) -> bool {
    match (pending, op, stage) {
        (false, _, _) => true,
        (true, Operation::View | Operation::Logout, _) => true,
        (true, Operation::Credentials, Stage::Recovery) => true,
        (true, Operation::Credentials | Operation::Orders | Operation::Admin, _) => false,
    }
}

/// Whether a signature on an order still counts towards sending it: not if the certificate
/// it was made with has been revoked since, nor if the signer has lost the sign right.
pub fn signature_counts(certificate_revoked: bool, signer_may_sign: bool) -> bool {
    !certificate_revoked && signer_may_sign
}

/// The stage after a successful password change.
pub fn stage_after_password_change(stage: Stage, mode: Mode, has_valid_certificate: bool) -> Stage {
    match (stage, mode) {
        (Stage::ChangePassword, Mode::Authenticated) => Stage::Key,
        (Stage::ChangePassword, Mode::Anonymous) if has_valid_certificate => Stage::Reconnect,
        (Stage::ChangePassword, Mode::Anonymous) => Stage::Enroll,
        (stage, _) => stage,
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates.

/// Why a certificate request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateRefusal {
    /// An enrollment for a user who has a valid certificate.
    AlreadyEnrolled,
    /// A renewal on a session not signed by a certificate of this bank.
    NoCurrentCertificate,
    /// A renewal before the window opens.
    RenewalNotOpen,
    /// A stage that may not ask for a certificate.
    WrongStage,
}

/// What a certificate request on a session at `stage` is for. `current_not_after` is the
/// expiry of the certificate that signed the session, if the bank issued it.
pub fn certificate_purpose(
    stage: Stage,
    has_valid_certificate: bool,
    current_not_after: Option<i64>,
    now: i64,
    renewal_window: i64,
) -> Result<CertPurpose, CertificateRefusal> {
    match stage {
        Stage::Enroll if has_valid_certificate => Err(CertificateRefusal::AlreadyEnrolled),
        Stage::Enroll => Ok(CertPurpose::Enroll),
        Stage::Recovery => Ok(CertPurpose::Recovery),
        Stage::Key => match current_not_after {
            None => Err(CertificateRefusal::NoCurrentCertificate),
            Some(t) if renewal_open(t, now, renewal_window) => Ok(CertPurpose::Renewal),
            Some(_) => Err(CertificateRefusal::RenewalNotOpen),
        },
        _ => Err(CertificateRefusal::WrongStage),
    }
}

/// Whether a certificate expiring at `not_after` may be renewed at `now`: not expired, and
/// within `window` seconds of its expiry.
pub fn renewal_open(not_after: i64, now: i64, window: i64) -> bool {
    not_after >= now && not_after - now <= window
}

/// The stage after a certificate was issued: a renewal continues on its key session; after
/// an enrollment or a recovery the user logs in again with the new key.
pub fn stage_after_certificate(purpose: CertPurpose) -> Stage {
    match purpose {
        CertPurpose::Renewal => Stage::Key,
        CertPurpose::Enroll | CertPurpose::Recovery => Stage::Reconnect,
    }
}

// ---------------------------------------------------------------------------------------------
// Orders.

/// Whether an order in `status` may be edited (which drops its signatures).
pub fn editable(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Draft | OrderStatus::PartlySigned | OrderStatus::Signed
    )
}

/// Why a signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignRefusal {
    /// The order has all the signatures it needs, or was sent.
    NoMoreSignatures,
    /// The order is no longer at the version signed.
    VersionChanged,
    /// This user signed it already: a second signature comes from another user.
    AlreadySigned,
}

/// A signature, accepted: its position and the order's new status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signing {
    /// First (1) or second (2).
    pub position: u8,
    /// The order's status with it.
    pub status: OrderStatus,
}

/// The two-signature rule. An order takes signatures from different users until it has
/// `required` (1 or 2) of them, on the version it is at.
pub fn sign(
    status: OrderStatus,
    version: u32,
    signed_version: u32,
    signers: &[i64],
    signer: i64,
    required: u8,
) -> Result<Signing, SignRefusal> {
    let have = signers.len();
    let open = match status {
        OrderStatus::Draft | OrderStatus::PartlySigned => true,
        // Signed under a rule of one signature, then the account asked for two.
        OrderStatus::Signed => have < usize::from(required),
        OrderStatus::Sent | OrderStatus::Accepted | OrderStatus::Rejected => false,
    };
    if !open || have >= usize::from(required).max(1) {
        return Err(SignRefusal::NoMoreSignatures);
    }
    if version != signed_version {
        return Err(SignRefusal::VersionChanged);
    }
    if signers.contains(&signer) {
        return Err(SignRefusal::AlreadySigned);
    }
    let position = u8::try_from(have + 1).unwrap_or(u8::MAX);
    Ok(Signing {
        position,
        status: if position >= required {
            OrderStatus::Signed
        } else {
            OrderStatus::PartlySigned
        },
    })
}

/// What a request to send an order does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStep {
    /// Sent before: the answer is where the order is (sending twice sends once).
    AlreadySent,
    /// It needs this many signatures first.
    NeedsSignatures(u8),
    /// Claim it for sending and debit the account.
    Send,
}

/// Sending: only a signed order with every signature its account requires now.
pub fn send(status: OrderStatus, signatures: usize, required: u8) -> SendStep {
    match status {
        OrderStatus::Sent | OrderStatus::Accepted | OrderStatus::Rejected => SendStep::AlreadySent,
        OrderStatus::Signed if signatures >= usize::from(required) => SendStep::Send,
        OrderStatus::Signed | OrderStatus::Draft | OrderStatus::PartlySigned => {
            SendStep::NeedsSignatures(required)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// IP penalties.

/// Whether an address holding `points` valid penalty points is blocked: above the limit.
pub fn ip_blocked(points: i64, max_points: u32) -> bool {
    points > i64::from(max_points)
}

/// Whole minutes until `until`, at least one.
pub fn minutes_left(until: i64, now: i64) -> i64 {
    ((until - now).max(1) + 59) / 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_counts_while_its_signer_stands_behind_it() {
        for (revoked, may_sign, want) in [
            (false, true, true),
            (true, true, false),
            (false, false, false),
            (true, false, false),
        ] {
            assert_eq!(
                signature_counts(revoked, may_sign),
                want,
                "{revoked} {may_sign}"
            );
        }
    }

    #[test]
    fn a_blocked_key_leaves_only_recovery() {
        let factors = [
            None,
            Some(Factor::Key),
            Some(Factor::Otp),
            Some(Factor::Emergency),
            Some(Factor::PasswordOnly),
        ];
        for f in factors {
            assert!(suspension_allows(false, f), "{f:?}");
            assert_eq!(
                suspension_allows(true, f),
                f == Some(Factor::Emergency),
                "{f:?}"
            );
        }
    }

    #[test]
    fn a_pending_recovery_leaves_viewing_and_the_recovery_itself() {
        use Operation::{Admin, Credentials, Logout, Orders, View};
        let cases = [
            (Admin, Stage::Key, false, true),
            (Admin, Stage::Key, true, false),
            (View, Stage::Key, false, true),
            (Orders, Stage::Key, false, true),
            (Credentials, Stage::Key, false, true),
            (Credentials, Stage::Otp, false, true),
            (View, Stage::Key, true, true),
            (View, Stage::Otp, true, true),
            (Logout, Stage::Key, true, true),
            (Orders, Stage::Key, true, false),
            (Orders, Stage::Otp, true, false),
            (Credentials, Stage::Key, true, false),
            (Credentials, Stage::Otp, true, false),
            (Credentials, Stage::ChangePassword, true, false),
            (Credentials, Stage::Recovery, true, true),
        ];
        for (op, stage, pending, want) in cases {
            assert_eq!(
                allowed_while_recovery_pending(op, stage, pending),
                want,
                "{op:?} {stage:?} {pending}"
            );
        }
    }
    use OrderStatus::{Accepted, Draft, PartlySigned, Rejected, Sent, Signed};
    use PasswordKind::{Initial, Regular, Temporary};

    fn pw(kind: PasswordKind, used: bool, expired: bool) -> PasswordState {
        PasswordState {
            kind,
            used,
            expired,
        }
    }

    #[test]
    fn factor_from_mode_and_fields() {
        use Mode::{Anonymous, Authenticated};
        let cases = [
            (Authenticated, false, false, Some(Factor::Key)),
            (Authenticated, true, false, None),
            (Authenticated, false, true, None),
            (Anonymous, true, false, Some(Factor::Otp)),
            (Anonymous, false, true, Some(Factor::Emergency)),
            (Anonymous, false, false, Some(Factor::PasswordOnly)),
            (Anonymous, true, true, None),
        ];
        for (mode, otp, emergency, want) in cases {
            assert_eq!(
                Factor::of(mode, otp, emergency),
                want,
                "{mode:?} {otp} {emergency}"
            );
        }
    }

    #[test]
    fn gate_before_the_password() {
        let cases = [
            (true, true, false, Ok(())),
            (true, false, false, Err(LoginRefusal::ForeignCertificate)),
            (true, false, true, Err(LoginRefusal::ForeignCertificate)),
            (true, true, true, Err(LoginRefusal::Locked)),
            (false, false, false, Ok(())),
            (false, false, true, Err(LoginRefusal::Locked)),
        ];
        for (key, cert, locked, want) in cases {
            assert_eq!(login_gate(key, cert, locked), want, "{key} {cert} {locked}");
        }
    }

    #[test]
    fn login_stage_table() {
        use Factor::{Emergency, Key, Otp, PasswordOnly};
        use LoginRefusal::{NoSecondFactor, OneTimeExpired, OneTimeUsed};
        let cases = [
            (pw(Regular, false, false), Some(Key), Ok(Stage::Key)),
            (pw(Regular, false, false), Some(Otp), Ok(Stage::Otp)),
            (
                pw(Regular, false, false),
                Some(Emergency),
                Ok(Stage::Recovery),
            ),
            (
                pw(Regular, false, false),
                Some(PasswordOnly),
                Err(NoSecondFactor),
            ),
            (pw(Regular, false, false), None, Err(NoSecondFactor)),
            // Regular passwords are never "used" or "expired".
            (pw(Regular, true, true), Some(Key), Ok(Stage::Key)),
            (
                pw(Initial, false, false),
                Some(PasswordOnly),
                Ok(Stage::ChangePassword),
            ),
            (
                pw(Initial, false, false),
                Some(Key),
                Ok(Stage::ChangePassword),
            ),
            (
                pw(Initial, false, false),
                Some(Otp),
                Ok(Stage::ChangePassword),
            ),
            (
                pw(Initial, false, false),
                Some(Emergency),
                Ok(Stage::Recovery),
            ),
            (pw(Initial, false, false), None, Err(NoSecondFactor)),
            (
                pw(Initial, true, false),
                Some(PasswordOnly),
                Err(OneTimeUsed),
            ),
            (
                pw(Initial, false, true),
                Some(PasswordOnly),
                Err(OneTimeExpired),
            ),
            (pw(Temporary, true, true), Some(Key), Err(OneTimeUsed)),
            (
                pw(Temporary, false, true),
                Some(Emergency),
                Err(OneTimeExpired),
            ),
            (
                pw(Temporary, false, false),
                Some(Key),
                Ok(Stage::ChangePassword),
            ),
        ];
        for (state, factor, want) in cases {
            assert_eq!(login_stage(state, factor), want, "{state:?} {factor:?}");
        }
    }

    #[test]
    fn session_rights_table() {
        let all = Rights {
            view: true,
            prepare: true,
            sign: true,
            send: true,
        };
        let view = Rights {
            view: true,
            ..Rights::default()
        };
        let view_prepare = Rights {
            view: true,
            prepare: true,
            ..Rights::default()
        };
        let none = Rights::default();
        let cases = [
            (all, Stage::Key, Menus::Full, false, all),
            (all, Stage::Otp, Menus::Full, false, view_prepare),
            (all, Stage::Key, Menus::Limited, false, view),
            (all, Stage::Otp, Menus::Limited, false, view),
            (all, Stage::Key, Menus::Full, true, view),
            (all, Stage::Otp, Menus::Full, true, view),
            (all, Stage::Recovery, Menus::Full, false, none),
            (all, Stage::Enroll, Menus::Full, false, none),
            (all, Stage::ChangePassword, Menus::Full, false, none),
            (all, Stage::Reconnect, Menus::Full, false, none),
            (all, Stage::Recovery, Menus::Limited, true, none),
            (view_prepare, Stage::Key, Menus::Full, false, view_prepare),
            (none, Stage::Key, Menus::Full, false, none),
        ];
        for (granted, stage, menus, pending, want) in cases {
            assert_eq!(
                session_rights(granted, stage, menus, pending),
                want,
                "{granted:?} {stage:?} {menus:?} {pending}"
            );
        }
    }

    #[test]
    fn stages_after_a_password_change() {
        use Mode::{Anonymous, Authenticated};
        let cases = [
            (Stage::ChangePassword, Authenticated, true, Stage::Key),
            (Stage::ChangePassword, Anonymous, false, Stage::Enroll),
            (Stage::ChangePassword, Anonymous, true, Stage::Reconnect),
            (Stage::Key, Authenticated, true, Stage::Key),
            (Stage::Otp, Anonymous, true, Stage::Otp),
        ];
        for (stage, mode, has, want) in cases {
            assert_eq!(stage_after_password_change(stage, mode, has), want);
        }
        for s in [Stage::ChangePassword, Stage::Key, Stage::Otp] {
            assert!(may_change_password(s));
        }
        for s in [Stage::Enroll, Stage::Recovery, Stage::Reconnect] {
            assert!(!may_change_password(s));
        }
    }

    #[test]
    fn certificate_purpose_table() {
        use CertificateRefusal::*;
        let (now, window) = (1_000_000, 30 * 86_400);
        let soon = Some(now + 10 * 86_400);
        let later = Some(now + 100 * 86_400);
        let cases = [
            (Stage::Enroll, false, None, Ok(CertPurpose::Enroll)),
            (Stage::Enroll, true, None, Err(AlreadyEnrolled)),
            (Stage::Recovery, true, None, Ok(CertPurpose::Recovery)),
            (Stage::Recovery, false, None, Ok(CertPurpose::Recovery)),
            (Stage::Key, true, soon, Ok(CertPurpose::Renewal)),
            (Stage::Key, true, later, Err(RenewalNotOpen)),
            (Stage::Key, true, None, Err(NoCurrentCertificate)),
            (Stage::Otp, true, soon, Err(WrongStage)),
            (Stage::ChangePassword, false, None, Err(WrongStage)),
            (Stage::Reconnect, true, soon, Err(WrongStage)),
        ];
        for (stage, has, not_after, want) in cases {
            assert_eq!(
                certificate_purpose(stage, has, not_after, now, window),
                want,
                "{stage:?} {has} {not_after:?}"
            );
        }
        assert_eq!(stage_after_certificate(CertPurpose::Renewal), Stage::Key);
        assert_eq!(
            stage_after_certificate(CertPurpose::Enroll),
            Stage::Reconnect
        );
        assert_eq!(
            stage_after_certificate(CertPurpose::Recovery),
            Stage::Reconnect
        );
    }

    #[test]
    fn renewal_window_edges() {
        let cases = [
            (100, 100, 10, true),
            (110, 100, 10, true),
            (111, 100, 10, false),
            (99, 100, 10, false),
        ];
        for (not_after, now, window, want) in cases {
            assert_eq!(
                renewal_open(not_after, now, window),
                want,
                "{not_after} {now}"
            );
        }
    }

    #[test]
    fn editable_statuses() {
        for (s, want) in [
            (Draft, true),
            (PartlySigned, true),
            (Signed, true),
            (Sent, false),
            (Accepted, false),
            (Rejected, false),
        ] {
            assert_eq!(editable(s), want, "{s:?}");
        }
    }

    /// Status, version, version signed, signers, signer, signatures required, verdict.
    type SignCase = (
        OrderStatus,
        u32,
        u32,
        &'static [i64],
        i64,
        u8,
        Result<Signing, SignRefusal>,
    );

    #[test]
    fn two_signature_rule() {
        use SignRefusal::*;
        let sig = |position, status| Ok(Signing { position, status });
        let cases: &[SignCase] = &[
            (Draft, 1, 1, &[], 7, 1, sig(1, Signed)),
            (Draft, 1, 1, &[], 7, 2, sig(1, PartlySigned)),
            (PartlySigned, 1, 1, &[7], 8, 2, sig(2, Signed)),
            (PartlySigned, 1, 1, &[7], 7, 2, Err(AlreadySigned)),
            (Draft, 2, 1, &[], 7, 1, Err(VersionChanged)),
            (PartlySigned, 3, 2, &[7], 8, 2, Err(VersionChanged)),
            (Signed, 1, 1, &[7], 8, 1, Err(NoMoreSignatures)),
            (Signed, 1, 1, &[7, 8], 9, 2, Err(NoMoreSignatures)),
            // The account now needs two: the signed order takes its second.
            (Signed, 1, 1, &[7], 8, 2, sig(2, Signed)),
            (Signed, 1, 1, &[7], 7, 2, Err(AlreadySigned)),
            (Sent, 1, 1, &[7], 8, 2, Err(NoMoreSignatures)),
            (Accepted, 1, 1, &[], 8, 1, Err(NoMoreSignatures)),
            (Rejected, 1, 1, &[], 8, 1, Err(NoMoreSignatures)),
            // A draft that already holds every signature required (the rule went down).
            (PartlySigned, 1, 1, &[7], 8, 1, Err(NoMoreSignatures)),
        ];
        for (status, version, signed, signers, who, required, want) in cases {
            assert_eq!(
                sign(*status, *version, *signed, signers, *who, *required),
                *want,
                "{status:?} v{version}/{signed} {signers:?} by {who}, {required} required"
            );
        }
    }

    #[test]
    fn sending_table() {
        let cases = [
            (Signed, 1, 1, SendStep::Send),
            (Signed, 2, 2, SendStep::Send),
            (Signed, 1, 2, SendStep::NeedsSignatures(2)),
            (Signed, 0, 1, SendStep::NeedsSignatures(1)),
            (PartlySigned, 1, 2, SendStep::NeedsSignatures(2)),
            (Draft, 0, 1, SendStep::NeedsSignatures(1)),
            (Sent, 1, 1, SendStep::AlreadySent),
            (Accepted, 1, 1, SendStep::AlreadySent),
            (Rejected, 2, 2, SendStep::AlreadySent),
        ];
        for (status, have, required, want) in cases {
            assert_eq!(
                send(status, have, required),
                want,
                "{status:?} {have}/{required}"
            );
        }
    }

    #[test]
    fn ip_penalty_arithmetic() {
        for (points, max, want) in [(5, 5, false), (6, 5, true), (0, 0, false), (1, 0, true)] {
            assert_eq!(ip_blocked(points, max), want, "{points} > {max}");
        }
        for (until, now, want) in [(160, 100, 1), (161, 100, 2), (100, 100, 1), (1000, 100, 15)] {
            assert_eq!(minutes_left(until, now), want, "{until} {now}");
        }
    }
}

//! Typed rows, decoded strictly. Every enumerated column parses into its enum and every flag
//! must be 0 or 1: anything else is [`StorageError::Corrupt`], so that a row edited outside
//! the bank (or damaged) fails the request instead of granting a default.

use sqlx::Row as _;
use sqlx::any::AnyRow;
use tresor_core::api::ledger::{Direction, MovementKind};
use tresor_core::api::{Menus, OrderStatus, Rights, Stage};
use tresor_core::payment::PaymentOrder;

use super::{StorageError, from_db};

/// An enum stored as text.
pub trait StoredEnum: Sized + Copy + 'static {
    /// What the column holds, for errors.
    const WHAT: &'static str;
    /// Every value, for the round-trip test and the CHECK constraints' lists.
    const ALL: &'static [Self];
    /// The stored text.
    fn to_db(self) -> &'static str;
    /// The inverse of [`to_db`](Self::to_db), strictly.
    fn from_db(s: &str) -> Result<Self, StorageError> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.to_db() == s)
            .ok_or_else(|| StorageError::corrupt(format!("{} {s:?}", Self::WHAT)))
    }
}

/// What kind of login password a user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordKind {
    /// Issued with the account: single use, expires, must be changed.
    Initial,
    /// Issued by an admin after a lockout: single use, expires, must be changed.
    Temporary,
    /// Chosen by the user.
    Regular,
}

impl PasswordKind {
    /// Initial and temporary passwords are single-use and expire.
    pub fn one_time(self) -> bool {
        self != Self::Regular
    }
}

impl StoredEnum for PasswordKind {
    const WHAT: &'static str = "password kind";
    const ALL: &'static [Self] = &[Self::Initial, Self::Temporary, Self::Regular];
    fn to_db(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Temporary => "temporary",
            Self::Regular => "regular",
        }
    }
}

/// Why a certificate was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertPurpose {
    /// The first certificate, after the first login.
    Enroll,
    /// A new key before the current certificate expires.
    Renewal,
    /// A new key after an emergency password.
    Recovery,
}

impl StoredEnum for CertPurpose {
    const WHAT: &'static str = "certificate purpose";
    const ALL: &'static [Self] = &[Self::Enroll, Self::Renewal, Self::Recovery];
    fn to_db(self) -> &'static str {
        match self {
            Self::Enroll => "enroll",
            Self::Renewal => "renewal",
            Self::Recovery => "recovery",
        }
    }
}

/// Why a certificate was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// Replaced by a recovery certificate.
    Recovery,
    /// Revoked by an admin.
    Admin,
    /// Suspended: the user blocked the key, or the helpdesk did on their call.
    Suspended,
}

impl StoredEnum for RevokeReason {
    const WHAT: &'static str = "revocation reason";
    const ALL: &'static [Self] = &[Self::Recovery, Self::Admin, Self::Suspended];
    fn to_db(self) -> &'static str {
        match self {
            Self::Recovery => "recovery",
            Self::Admin => "admin",
            Self::Suspended => "suspended",
        }
    }
}

/// Whether a certificate may open sessions yet (key letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Issued under `activation = "immediate"`.
    Immediate,
    /// Waits for a security officer to activate it from its letter.
    Pending,
    /// Activated from its letter.
    Activated,
}

impl StoredEnum for Activation {
    const WHAT: &'static str = "activation";
    const ALL: &'static [Self] = &[Self::Immediate, Self::Pending, Self::Activated];
    fn to_db(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::Pending => "pending",
            Self::Activated => "activated",
        }
    }
}

impl StoredEnum for Menus {
    const WHAT: &'static str = "menus";
    const ALL: &'static [Self] = &[Self::Full, Self::Limited];
    fn to_db(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Limited => "limited",
        }
    }
}

impl StoredEnum for OrderStatus {
    const WHAT: &'static str = "order status";
    const ALL: &'static [Self] = &[
        Self::Draft,
        Self::PartlySigned,
        Self::Signed,
        Self::Sent,
        Self::Accepted,
        Self::Rejected,
    ];
    fn to_db(self) -> &'static str {
        self.as_str()
    }
}

impl StoredEnum for Stage {
    const WHAT: &'static str = "session stage";
    const ALL: &'static [Self] = &[
        Self::ChangePassword,
        Self::Enroll,
        Self::Recovery,
        Self::Key,
        Self::Otp,
        Self::Reconnect,
        Self::SmsCode,
    ];
    fn to_db(self) -> &'static str {
        match self {
            Self::ChangePassword => "change_password",
            Self::Enroll => "enroll",
            Self::Recovery => "recovery",
            Self::Key => "key",
            Self::Otp => "otp",
            Self::Reconnect => "reconnect",
            // Never stored: a session waiting for its SMS code is not logged in, and the
            // column's CHECK refuses it.
            Self::SmsCode => "sms_code",
        }
    }
}

/// A 0/1 flag, strictly.
pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool, StorageError> {
    match row.try_get::<i64, _>(column)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(StorageError::corrupt(format!("flag {column} = {v}"))),
    }
}

pub(crate) fn text_enum<E: StoredEnum>(row: &AnyRow, column: &str) -> Result<E, StorageError> {
    E::from_db(&row.try_get::<String, _>(column)?)
}

/// A pending emergency password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emergency {
    /// Its Argon2id hash.
    pub hash: String,
    /// Expiry, Unix seconds.
    pub expires: i64,
}

/// A user.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Key.
    pub id: i64,
    /// Login.
    pub login: String,
    /// Full name.
    pub name: String,
    /// Argon2id PHC string of the login password.
    pub password_hash: String,
    /// Its kind.
    pub password_kind: PasswordKind,
    /// A one-time password's expiry, Unix seconds.
    pub password_expires: Option<i64>,
    /// Whether a one-time password has been used.
    pub password_used: bool,
    /// Consecutive wrong passwords.
    pub failed_logins: i64,
    /// Locked after too many wrong passwords, or by an admin.
    pub locked: bool,
    /// Full or limited menus.
    pub menus: Menus,
    /// A pending emergency password.
    pub emergency: Option<Emergency>,
    /// Rights restricted until a recovery completes.
    pub recovery_pending: bool,
    /// The user blocked their key: no login but a recovery until it completes.
    pub suspended: bool,
    /// The confirmed TOTP secret.
    pub totp_secret: Option<Vec<u8>>,
    /// The newest TOTP step accepted.
    pub totp_last_step: Option<i64>,
    /// TOTP codes checked and wrong since the last right one.
    pub otp_failures: i64,
}

/// The columns [`UserRow::decode`] reads.
pub(crate) const USER_COLUMNS: &str = "id, login, name, password_hash, password_kind, \
    password_expires, password_used, failed_logins, locked, menus, emergency_hash, \
    emergency_expires, recovery_pending, suspended, totp_secret, totp_last_step, otp_failures";

impl UserRow {
    pub(crate) fn decode(r: &AnyRow) -> Result<Self, StorageError> {
        let emergency = match (
            r.try_get::<Option<String>, _>("emergency_hash")?,
            r.try_get::<Option<i64>, _>("emergency_expires")?,
        ) {
            (Some(hash), Some(expires)) => Some(Emergency { hash, expires }),
            (None, None) => None,
            _ => return Err(StorageError::corrupt("emergency password half set")),
        };
        let failed_logins: i64 = r.try_get("failed_logins")?;
        let otp_failures: i64 = r.try_get("otp_failures")?;
        if failed_logins < 0 || otp_failures < 0 {
            return Err(StorageError::corrupt("negative failure count"));
        }
        Ok(Self {
            id: r.try_get("id")?,
            login: r.try_get("login")?,
            name: r.try_get("name")?,
            password_hash: r.try_get("password_hash")?,
            password_kind: text_enum(r, "password_kind")?,
            password_expires: r.try_get("password_expires")?,
            password_used: flag(r, "password_used")?,
            failed_logins,
            locked: flag(r, "locked")?,
            menus: text_enum(r, "menus")?,
            emergency,
            recovery_pending: flag(r, "recovery_pending")?,
            suspended: flag(r, "suspended")?,
            totp_secret: r.try_get("totp_secret")?,
            totp_last_step: r.try_get("totp_last_step")?,
            otp_failures,
        })
    }
}

/// A certificate the bank issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRow {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Whose.
    pub user_id: i64,
    /// Their login.
    pub login: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Validity start, Unix seconds.
    pub not_before: i64,
    /// Expiry, Unix seconds.
    pub not_after: i64,
    /// When issued.
    pub issued_at: i64,
    /// Why issued.
    pub purpose: CertPurpose,
    /// When and why revoked.
    pub revoked: Option<(i64, RevokeReason)>,
    /// Whether it may open sessions yet.
    pub activation: Activation,
    /// MAC over the serial and the activation state (absent on rows older than version 5,
    /// until the first run binds them).
    pub activation_tag: Option<Vec<u8>>,
}

/// The columns [`CertificateRow::decode`] reads, with `c` the certificates and `u` the users.
pub(crate) const CERT_COLUMNS: &str = "c.serial, c.user_id, u.login, c.der, c.not_before, \
    c.not_after, c.issued_at, c.purpose, c.revoked_at, c.revoke_reason, c.activation, \
    c.activation_tag";

impl CertificateRow {
    pub(crate) fn decode(r: &AnyRow) -> Result<Self, StorageError> {
        let revoked = match (
            r.try_get::<Option<i64>, _>("revoked_at")?,
            r.try_get::<Option<String>, _>("revoke_reason")?,
        ) {
            (Some(at), Some(why)) => Some((at, RevokeReason::from_db(&why)?)),
            (None, None) => None,
            _ => return Err(StorageError::corrupt("revocation half set")),
        };
        Ok(Self {
            serial: r.try_get("serial")?,
            user_id: r.try_get("user_id")?,
            login: r.try_get("login")?,
            der: r.try_get("der")?,
            not_before: r.try_get("not_before")?,
            not_after: r.try_get("not_after")?,
            issued_at: r.try_get("issued_at")?,
            purpose: text_enum(r, "purpose")?,
            revoked,
            activation: text_enum(r, "activation")?,
            activation_tag: r.try_get("activation_tag")?,
        })
    }

    /// Neither revoked nor expired at `now` (Unix seconds).
    pub fn valid_at(&self, now: i64) -> bool {
        self.revoked.is_none() && self.not_after > now
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// IBAN.
    pub iban: String,
    /// Holder.
    pub holder: String,
    /// Currency code.
    pub currency: String,
    /// Balance, minor units.
    pub balance: u64,
    /// Signatures an order needs before it is sent: 1 or 2.
    pub signatures_required: u8,
}

pub(crate) const ACCOUNT_COLUMNS: &str = "iban, holder, currency, balance, signatures_required";

impl AccountRow {
    pub(crate) fn decode(r: &AnyRow) -> Result<Self, StorageError> {
        let required = match r.try_get::<i64, _>("signatures_required")? {
            1 => 1,
            2 => 2,
            v => return Err(StorageError::corrupt(format!("signatures required {v}"))),
        };
        Ok(Self {
            iban: r.try_get("iban")?,
            holder: r.try_get("holder")?,
            currency: r.try_get("currency")?,
            balance: from_db(r.try_get("balance")?, "balance")?,
            signatures_required: required,
        })
    }
}

/// The rights in a row with the `rights` table's `can_*` columns.
pub(crate) fn decode_rights(r: &AnyRow) -> Result<Rights, StorageError> {
    Ok(Rights {
        view: flag(r, "can_view")?,
        prepare: flag(r, "can_prepare")?,
        sign: flag(r, "can_sign")?,
        send: flag(r, "can_send")?,
    })
}

/// A payment order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// Its id.
    pub id: u64,
    /// Its version: each edit adds one.
    pub version: u32,
    /// Its content.
    pub order: PaymentOrder,
    /// Where it is.
    pub status: OrderStatus,
    /// Who prepared it.
    pub created_by: i64,
    /// Why rejected.
    pub reject_reason: Option<String>,
}

pub(crate) const ORDER_COLUMNS: &str = "id, payer_iban, payee_name, payee_tax_code, payee_iban, \
    amount, currency, purpose, version, status, created_by, reject_reason";

impl OrderRow {
    pub(crate) fn decode(r: &AnyRow) -> Result<Self, StorageError> {
        let version = u32::try_from(r.try_get::<i64, _>("version")?)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| StorageError::corrupt("order version"))?;
        Ok(Self {
            id: from_db(r.try_get("id")?, "order id")?,
            version,
            order: PaymentOrder {
                payer_iban: r.try_get("payer_iban")?,
                payee_name: r.try_get("payee_name")?,
                payee_tax_code: r.try_get("payee_tax_code")?,
                payee_iban: r.try_get("payee_iban")?,
                amount: from_db(r.try_get("amount")?, "amount")?,
                currency: r.try_get("currency")?,
                purpose: r.try_get("purpose")?,
            },
            status: text_enum(r, "status")?,
            created_by: r.try_get("created_by")?,
            reject_reason: r.try_get("reject_reason")?,
        })
    }
}

/// A signature on an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRow {
    /// First (1) or second (2).
    pub position: u8,
    /// Who signed.
    pub user_id: i64,
    /// Their login.
    pub login: String,
    /// With which certificate.
    pub cert_serial: String,
    /// When, Unix seconds.
    pub signed_at: i64,
}

impl SignatureRow {
    pub(crate) fn decode(r: &AnyRow) -> Result<Self, StorageError> {
        let position = match r.try_get::<i64, _>("position")? {
            1 => 1,
            2 => 2,
            v => return Err(StorageError::corrupt(format!("signature position {v}"))),
        };
        Ok(Self {
            position,
            user_id: r.try_get("user_id")?,
            login: r.try_get("login")?,
            cert_serial: r.try_get("cert_serial")?,
            signed_at: r.try_get("signed_at")?,
        })
    }
}

/// An audit record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When, Unix seconds.
    pub at: i64,
    /// Who did it.
    pub actor: String,
    /// The login concerned.
    pub login: String,
    /// Source address.
    pub ip: String,
    /// What.
    pub event: String,
    /// How it ended.
    pub outcome: String,
    /// More.
    pub detail: String,
    /// The previous record's hash.
    pub prev_hash: Vec<u8>,
    /// This record's hash.
    pub hash: Vec<u8>,
    /// Whether the hash is an HMAC under the bank's audit key (schema version 3 on), or a
    /// plain SHA-256 (records written before).
    pub keyed: bool,
}

impl AuditRow {
    pub(crate) fn decode(r: &AnyRow) -> Result<Self, StorageError> {
        Ok(Self {
            seq: r.try_get("seq")?,
            at: r.try_get("at")?,
            actor: r.try_get("actor")?,
            login: r.try_get("login")?,
            ip: r.try_get("ip")?,
            event: r.try_get("event")?,
            outcome: r.try_get("outcome")?,
            detail: r.try_get("detail")?,
            prev_hash: r.try_get("prev_hash")?,
            hash: r.try_get("hash")?,
            keyed: flag(r, "keyed")?,
        })
    }
}

/// The audit chain's anchored head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// The newest record's seq.
    pub seq: i64,
    /// Its hash.
    pub hash: Vec<u8>,
    /// HMAC over both, under the data folder's key.
    pub mac: Vec<u8>,
}

/// Who is logged in on a channel session, and how far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLogin {
    /// The user.
    pub user_id: i64,
    /// What the session may do.
    pub stage: Stage,
}

impl StoredEnum for Direction {
    const WHAT: &'static str = "movement direction";
    const ALL: &'static [Self] = &[Self::Debit, Self::Credit];
    fn to_db(self) -> &'static str {
        self.as_str()
    }
}

impl StoredEnum for MovementKind {
    const WHAT: &'static str = "movement kind";
    const ALL: &'static [Self] = &[Self::Opening, Self::Order, Self::Internal, Self::Incoming];
    fn to_db(self) -> &'static str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<E: StoredEnum + PartialEq + std::fmt::Debug>() {
        for v in E::ALL {
            assert_eq!(E::from_db(v.to_db()).unwrap(), *v);
        }
        for bad in ["", "bogus", "FULL", " full"] {
            assert!(
                matches!(E::from_db(bad), Err(StorageError::Corrupt(_))),
                "{bad:?} as {}",
                E::WHAT
            );
        }
    }

    #[test]
    fn stored_enums_round_trip_and_refuse_anything_else() {
        round_trips::<PasswordKind>();
        round_trips::<CertPurpose>();
        round_trips::<RevokeReason>();
        round_trips::<Menus>();
        round_trips::<OrderStatus>();
        round_trips::<Stage>();
        round_trips::<Direction>();
        round_trips::<MovementKind>();
    }

    #[test]
    fn stage_names_are_the_wire_names() {
        for s in Stage::ALL {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::String(s.to_db().into())
            );
        }
    }
}

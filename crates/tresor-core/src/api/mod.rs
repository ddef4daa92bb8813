//! The bank's application protocol: what travels inside the secure channel's records, once
//! the handshake is done. One JSON [`Request`] per record; one JSON [`Response`] back.
//!
//! JSON rather than a binary format: the channel already authenticates and encrypts every
//! byte, the messages are small, and the client CLI prints the same types for automation.
//!
//! The two directions evolve differently. A request names every field and the bank refuses
//! unknown ones (a payment order's too), so a typo is an error, not a default. Replies may
//! grow: a client ignores fields it does not know, and decodes a reply or error code it does
//! not know as [`Reply::Unknown`] or [`ErrorCode::Unknown`], so a bank that adds one does not
//! break older clients.

use serde::{Deserialize, Serialize};

use crate::Password;
use crate::payment::PaymentOrder;

pub mod admin;
pub mod directory;
pub mod ledger;
pub mod profile;

use crate::date::Day;
use directory::{Counterparty, CounterpartyContent, Template, TemplateContent};
use ledger::{ImportOutcome, ImportedOrder, StatementPage};
use profile::{Language, NoticeKind, Profile};

use admin::{
    AccountRow, AdminAction, AdminView, ApprovalView, AuditCheck, AuditRecord, CertificateView,
    IssuedSecret, UserDetails, UserSummary,
};

/// What a client asks of the bank.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Logs in on this session. On a session signed by the client's key, the password
    /// alone; on an anonymous session, the password with an OTP code, with an emergency
    /// password (certificate recovery), or alone when it is an initial or temporary password
    /// that must be changed now.
    Login {
        /// The login.
        login: String,
        /// The password.
        #[serde(with = "password")]
        password: Password,
        /// A TOTP code, for a login without the key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        otp: Option<String>,
        /// The emergency password the bank issued, for certificate recovery.
        #[serde(
            default,
            with = "opt_password",
            skip_serializing_if = "Option::is_none"
        )]
        emergency_password: Option<Password>,
    },
    /// Changes the password: the current one and the new one.
    ChangePassword {
        /// The current password.
        #[serde(with = "password")]
        current: Password,
        /// The new password.
        #[serde(with = "password")]
        new: Password,
    },
    /// Asks for a client certificate for a new key: at the first login, for renewal, or for
    /// recovery, as the session allows.
    RequestCertificate {
        /// The PKCS#10 request, DER.
        #[serde(with = "base64")]
        csr: Vec<u8>,
    },
    /// Who is logged in, with what rights, on which accounts.
    Overview {},
    /// Starts TOTP enrollment: the bank answers with an otpauth:// URI.
    TotpEnroll {},
    /// Confirms TOTP enrollment with a first code.
    TotpConfirm {
        /// A code from the authenticator app.
        code: String,
    },
    /// The payment orders of the accounts the user may view.
    ListOrders {
        /// Only this payer account.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
    },
    /// One payment order.
    GetOrder {
        /// Its id.
        id: u64,
    },
    /// Prepares a new payment order (a draft).
    PrepareOrder {
        /// What to pay.
        #[serde(deserialize_with = "strict_order::deserialize")]
        order: PaymentOrder,
    },
    /// Edits a draft; its signatures are dropped.
    EditOrder {
        /// Its id.
        id: u64,
        /// The version being edited, so that two editors do not overwrite each other.
        version: u32,
        /// The new content.
        #[serde(deserialize_with = "strict_order::deserialize")]
        order: PaymentOrder,
    },
    /// Signs a version of an order with the key that signed this session's handshake.
    SignOrder {
        /// Its id.
        id: u64,
        /// The version signed.
        version: u32,
        /// ECDSA P-256 SHA-256 over [`crate::payment::canonical_encoding`], DER.
        #[serde(with = "base64")]
        signature: Vec<u8>,
    },
    /// The orders waiting for this user's signature: on accounts the session may sign on,
    /// not sent, not yet signed by the user; oldest first, [`QUEUE_PAGE`] at a time.
    SignatureQueue {
        /// Only orders after this id (the last of the previous page).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
    },
    /// Signs several orders, each with its own signature over its own canonical encoding,
    /// exactly as one [`Request::SignOrder`] each would; each succeeds or fails alone.
    SignOrders {
        /// At most [`MAX_SIGN_BATCH`].
        signatures: Vec<OrderSignature>,
    },
    /// Deletes an order that was never sent (its signatures with it).
    DeleteOrder {
        /// Its id.
        id: u64,
        /// The version the user saw, so that a draft edited meanwhile is not deleted unseen.
        version: u32,
    },
    /// Sends a fully signed order to the bank. Sending twice sends once.
    SendOrder {
        /// Its id.
        id: u64,
    },
    /// A statement of an account for a period of days, one page at a time.
    Statement {
        /// The account.
        account: String,
        /// The first day.
        from: Day,
        /// The last day (included).
        to: Day,
        /// Where to continue: a previous page's `next`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        /// Movements per page ([`ledger::DEFAULT_PAGE`] if none, at most
        /// [`ledger::MAX_PAGE`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Prepares drafts from an accounting program's orders: all of them, or none if one is
    /// refused. Likely duplicates of existing orders are reported, not prepared again.
    ImportOrders {
        /// At most [`ledger::MAX_IMPORT_BATCH`].
        orders: Vec<ImportedOrder>,
    },
    /// Saves a payment template on its payer account (replacing one of the same name).
    SaveTemplate {
        /// What it holds.
        template: TemplateContent,
    },
    /// The templates of the accounts the user may prepare orders on (or of one).
    ListTemplates {
        /// Only this account's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
    },
    /// Deletes a template.
    DeleteTemplate {
        /// Its id.
        id: u64,
    },
    /// Saves a counterparty in its account's directory (replacing one with the same IBAN).
    SaveCounterparty {
        /// What it holds.
        counterparty: CounterpartyContent,
    },
    /// The directories of the accounts the user may prepare orders on (or of one).
    ListCounterparties {
        /// Only this account's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
    },
    /// Deletes a counterparty from its directory.
    DeleteCounterparty {
        /// Its id.
        id: u64,
    },
    /// Ends the login; the channel session stays until closed.
    Logout {},
    /// Who the bank is and how to reach its helpdesk; on any session, before any login.
    BankInfo {},
    /// Blocks the user's key at once, for one who fears it stolen: every certificate of the
    /// user is suspended and every session ends; only a recovery with an emergency password
    /// brings access back. On any session, with the login and password.
    BlockKey {
        /// The login.
        login: String,
        /// The password.
        #[serde(with = "password")]
        password: Password,
    },
    /// The code the bank sent by SMS after a key login, where its policy asks for one.
    ConfirmLogin {
        /// The code from the SMS.
        #[serde(with = "password")]
        code: Password,
    },
    /// Forgot the password: on a session signed by the user's key, before any login, the
    /// bank mails a one-time code to the user's verified address.
    ForgotPassword {
        /// The login.
        login: String,
    },
    /// Sets a new password with the mailed code, on a session signed by the user's key;
    /// logs the session in. A wrong code counts as a wrong password.
    ResetPassword {
        /// The login.
        login: String,
        /// The code from the mail.
        #[serde(with = "password")]
        code: Password,
        /// The new password.
        #[serde(with = "password")]
        new: Password,
    },
    /// The user's profile.
    Profile {},
    /// Asks to change the e-mail address: a code goes to the new address, a notice to the
    /// old one. On a session with the key.
    SetEmail {
        /// The new address.
        email: String,
    },
    /// Confirms the new address with the code mailed to it.
    ConfirmEmail {
        /// The code from the mail.
        #[serde(with = "password")]
        code: Password,
    },
    /// Sets the language of the bank's mails and the notifications the user does not want.
    SetPreferences {
        /// The language; none: both.
        language: Option<Language>,
        /// The notifications to turn off (security ones cannot be).
        quiet: Vec<NoticeKind>,
    },
    /// A bank admin's command, on a session signed by an admin's key.
    Admin {
        /// What to do.
        action: AdminAction,
    },
}

/// The bank's answer to one request.
pub type Response = Result<Reply, ApiError>;

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reply {
    /// Logged in.
    LoggedIn(LoginInfo),
    /// The bank and its helpdesk.
    BankInfo(BankInfo),
    /// The password was changed; `next` says what the session may do now.
    PasswordChanged {
        /// What is allowed next.
        next: Stage,
    },
    /// A certificate was issued.
    Certificate {
        /// The certificate, DER.
        #[serde(with = "base64")]
        certificate: Vec<u8>,
        /// Its serial number, hex.
        serial: String,
    },
    /// The user, accounts and rights.
    Overview(Overview),
    /// TOTP enrollment: an otpauth:// URI to show as a QR code.
    TotpEnrollment {
        /// The URI, holding the secret.
        uri: String,
    },
    /// One order.
    Order(OrderView),
    /// Several orders.
    Orders {
        /// The orders, newest first.
        orders: Vec<OrderView>,
    },
    /// Done, nothing to report.
    Done,
    /// A page of a statement.
    Statement(StatementPage),
    /// A template, as saved.
    Template(Template),
    /// Templates, by account and name.
    Templates {
        /// The templates.
        templates: Vec<Template>,
    },
    /// A counterparty, as saved.
    Counterparty(Counterparty),
    /// Counterparties, by account and name.
    Counterparties {
        /// The directory entries.
        counterparties: Vec<Counterparty>,
    },
    /// What became of each signature of a batch, in the request's order.
    Signed {
        /// One per signature sent.
        results: Vec<SignResult>,
    },
    /// What an import did, order by order.
    Imported {
        /// In the request's order.
        outcomes: Vec<ImportOutcome>,
    },
    /// An admin, with roles.
    Admin(AdminView),
    /// Admins.
    Admins {
        /// Sorted by login.
        admins: Vec<AdminView>,
    },
    /// Users.
    Users {
        /// Sorted by login.
        users: Vec<UserSummary>,
    },
    /// One user in full.
    User(UserDetails),
    /// Accounts.
    Accounts {
        /// Sorted by IBAN.
        accounts: Vec<AccountRow>,
    },
    /// A user's rights on an account, after a change.
    Rights {
        /// The rights now.
        rights: Rights,
    },
    /// Certificates.
    Certificates {
        /// Newest first.
        certificates: Vec<CertificateView>,
    },
    /// Audit records.
    AuditRecords {
        /// Newest first.
        records: Vec<AuditRecord>,
    },
    /// The audit log's check.
    AuditCheck(AuditCheck),
    /// A one-time secret, shown once.
    Secret(IssuedSecret),
    /// A one-time secret sent to its user by e-mail, not shown.
    Mailed {
        /// For whom.
        login: String,
        /// Where it went, as the audit log shows it (`o•••@example.com`).
        to: String,
    },
    /// The user's profile.
    Profile(Profile),
    /// Four-eyes requests.
    Requests {
        /// Oldest first.
        requests: Vec<ApprovalView>,
    },
    /// The request was filed; it waits for a second admin.
    Requested(ApprovalView),
    /// The request was approved and carried out; its one-time secret, if it made one, is
    /// shown here once.
    Approved {
        /// The request, decided.
        request: ApprovalView,
        /// The secret it made.
        secret: Option<IssuedSecret>,
    },
    /// A reply this client does not know (from a newer bank).
    #[serde(other)]
    Unknown,
}

/// What a logged-in session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Stage {
    /// Only change the password (initial or temporary password).
    ChangePassword,
    /// Only request the first certificate.
    Enroll,
    /// Only request a recovery certificate (emergency password).
    Recovery,
    /// Everything the user's rights allow, with the key: view, prepare, sign, send.
    Key,
    /// Logged in with an OTP code: view and prepare, never sign.
    Otp,
    /// Nothing more on this session: log in again with the key.
    Reconnect,
    /// The key and password were right; the code the bank sent by SMS is still wanted
    /// (`confirm_login`), where the bank's policy asks for a second step.
    SmsCode,
}

/// The longest a [`BankInfo`] field may be, in characters: the bank refuses more in its
/// configuration and a client cuts more off (it is shown in a corner of the login screen).
pub const MAX_BANK_FIELD: usize = 120;

/// Who the bank is and how its users reach its helpdesk: what the login screen shows and
/// every message that sends the user to the bank names. Empty fields are not configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct BankInfo {
    /// The bank's name.
    pub name: String,
    /// The helpdesk's phone number.
    #[serde(default)]
    pub phone: String,
    /// The helpdesk's e-mail address.
    #[serde(default)]
    pub email: String,
    /// When the helpdesk answers, as the bank writes it.
    #[serde(default)]
    pub hours: String,
    /// The bank's website.
    #[serde(default)]
    pub website: String,
}

/// Answer to a login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginInfo {
    /// The login.
    pub login: String,
    /// The user's name.
    pub name: String,
    /// What the session may do.
    pub stage: Stage,
    /// The certificate that signed this session, if any.
    pub certificate: Option<CertificateStatus>,
}

/// A certificate's dates, for renewal reminders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CertificateStatus {
    /// Serial number, hex.
    pub serial: String,
    /// Expiry, Unix seconds.
    pub not_after: u64,
    /// Whether the bank accepts a renewal now.
    pub renewal_open: bool,
}

/// The user's view of the bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Overview {
    /// The login.
    pub login: String,
    /// The user's name.
    pub name: String,
    /// What the session may do.
    pub stage: Stage,
    /// Full or limited menus.
    pub menus: Menus,
    /// Whether an emergency password is pending, which restricts rights to viewing.
    pub restricted: bool,
    /// Whether TOTP is enrolled.
    pub totp_enrolled: bool,
    /// The accounts the user may see, with the rights the session has on each.
    pub accounts: Vec<AccountView>,
}

/// Full menus, or limited to viewing accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Menus {
    /// Every menu the account rights allow.
    Full,
    /// Accounts and orders may be viewed; payments cannot be prepared, signed or sent.
    Limited,
}

/// One account, as a user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AccountView {
    /// IBAN.
    pub iban: String,
    /// Holder's name.
    pub holder: String,
    /// Currency code.
    pub currency: String,
    /// Balance, minor units.
    pub balance: u64,
    /// Signatures an order needs before it may be sent: 1 or 2.
    pub signatures_required: u8,
    /// What this session may do on it.
    pub rights: Rights,
}

/// Rights on one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Rights {
    /// See the balance and the orders.
    pub view: bool,
    /// Prepare and edit orders.
    pub prepare: bool,
    /// Sign orders.
    pub sign: bool,
    /// Send signed orders.
    pub send: bool,
}

impl Rights {
    /// `view,prepare,sign,send` (those held), or `none`.
    pub fn names(self) -> String {
        let names: Vec<&str> = [
            (self.view, "view"),
            (self.prepare, "prepare"),
            (self.sign, "sign"),
            (self.send, "send"),
        ]
        .into_iter()
        .filter_map(|(has, name)| has.then_some(name))
        .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(",")
        }
    }

    /// Parses `view,prepare,sign,send` (any subset, or `all`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut r = Self::default();
        for word in text.split(',').map(str::trim) {
            match word {
                "view" => r.view = true,
                "prepare" => r.prepare = true,
                "sign" => r.sign = true,
                "send" => r.send = true,
                "all" => {
                    r = Self {
                        view: true,
                        prepare: true,
                        sign: true,
                        send: true,
                    }
                }
                other => {
                    return Err(format!(
                        "unknown right {other:?}: use view, prepare, sign, send or all"
                    ));
                }
            }
        }
        Ok(r)
    }
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum OrderStatus {
    /// Prepared, not signed.
    Draft,
    /// Has the first of two signatures.
    PartlySigned,
    /// Has all its signatures.
    Signed,
    /// Sent, being processed.
    Sent,
    /// Accepted and executed by the bank.
    Accepted,
    /// Refused by the bank; see the reason.
    Rejected,
}

impl OrderStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PartlySigned => "partly_signed",
            Self::Signed => "signed",
            Self::Sent => "sent",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => Self::Draft,
            "partly_signed" => Self::PartlySigned,
            "signed" => Self::Signed,
            "sent" => Self::Sent,
            "accepted" => Self::Accepted,
            "rejected" => Self::Rejected,
            _ => return None,
        })
    }
}

/// A payment order, as the bank holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct OrderView {
    /// Its id.
    pub id: u64,
    /// Its version: each edit adds one, and signatures bind it.
    pub version: u32,
    /// Its content.
    pub order: PaymentOrder,
    /// Where it is.
    pub status: OrderStatus,
    /// Who signed it, in order.
    pub signatures: Vec<SignatureView>,
    /// Signatures needed before it may be sent.
    pub signatures_required: u8,
    /// The digest shown before signing ([`crate::payment::short_digest`]).
    pub short_digest: String,
    /// Why it was rejected.
    pub reject_reason: Option<String>,
}

/// Orders a [`Request::SignatureQueue`] answers at most: a shorter page is the last.
pub const QUEUE_PAGE: usize = 500;

/// Signatures a [`Request::SignOrders`] carries at most.
pub const MAX_SIGN_BATCH: usize = 1000;

/// One order's signature in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSignature {
    /// The order.
    pub id: u64,
    /// The version signed.
    pub version: u32,
    /// ECDSA P-256 SHA-256 over [`crate::payment::canonical_encoding`], DER.
    #[serde(with = "base64")]
    pub signature: Vec<u8>,
}

/// What became of one signature of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignResult {
    /// The order.
    pub id: u64,
    /// Where the order is now, if the signature was taken.
    pub status: Option<OrderStatus>,
    /// Why not, if it was refused.
    pub error: Option<ApiError>,
}

/// One signature on an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SignatureView {
    /// Who signed.
    pub login: String,
    /// With which certificate, serial hex.
    pub certificate: String,
    /// When, Unix seconds.
    pub signed_at: u64,
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of refusal, for programs.
    pub code: ErrorCode,
    /// What to tell the user.
    pub message: String,
}

impl ApiError {
    /// An error with its message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Kinds of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Login refused. Deliberately says nothing of which factor was wrong, or whether the
    /// account exists or is locked.
    LoginFailed,
    /// Too many failed logins from this address: refused for a while.
    AddressBlocked,
    /// The account is locked. Said only on a session signed by a valid certificate of that
    /// login, so that only the key's holder learns it; everyone else gets `LoginFailed`.
    AccountLocked,
    /// Not logged in on this session, or the session's stage does not allow this.
    NotAllowed,
    /// The user's rights (an admin's roles, or a four-eyes rule) do not allow this.
    Forbidden,
    /// The new password breaks the password policy.
    PasswordPolicy,
    /// The request is malformed or its content invalid.
    Invalid,
    /// No such thing, or not visible to this user.
    NotFound,
    /// The order changed since the version named.
    Conflict,
    /// Something failed on the bank's side; nothing was changed.
    Internal,
    /// The bank is busy (its password checks are queued full); nothing was done, try again.
    Busy,
    /// A code this client does not know (from a newer bank).
    #[serde(other)]
    Unknown,
}

/// A payment order in a request: unknown fields are refused (in a reply, ignored).
mod strict_order {
    use serde::{Deserialize, Deserializer};

    use crate::payment::PaymentOrder;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        payer_iban: String,
        payee_name: String,
        payee_tax_code: String,
        payee_iban: String,
        amount: u64,
        currency: String,
        purpose: String,
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PaymentOrder, D::Error> {
        let o = Strict::deserialize(d)?;
        Ok(PaymentOrder {
            payer_iban: o.payer_iban,
            payee_name: o.payee_name,
            payee_tax_code: o.payee_tax_code,
            payee_iban: o.payee_iban,
            amount: o.amount,
            currency: o.currency,
            purpose: o.purpose,
        })
    }
}

mod base64 {
    use data_encoding::BASE64;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        BASE64
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

pub(crate) mod password {
    use serde::{Deserialize as _, Deserializer, Serializer};

    use crate::Password;

    pub fn serialize<S: Serializer>(p: &Password, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(p.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Password, D::Error> {
        Ok(Password::new(String::deserialize(d)?))
    }
}

mod opt_password {
    use serde::{Deserialize as _, Deserializer, Serializer};

    use crate::Password;

    pub fn serialize<S: Serializer>(p: &Option<Password>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.serialize_some(p.expose()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Password>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Password::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_unknown_fields_are_refused() {
        let json = r#"{"op":"login","login":"alice","password":"pw","otp":"123456"}"#;
        let req: Request = serde_json::from_str(json).unwrap();
        assert!(
            matches!(&req, Request::Login { otp: Some(c), emergency_password: None, .. } if c == "123456")
        );
        assert_eq!(serde_json::to_string(&req).unwrap(), json);
        let typo = r#"{"op":"login","login":"alice","password":"pw","otpp":"123456"}"#;
        assert!(serde_json::from_str::<Request>(typo).is_err());
        let csr = r#"{"op":"request_certificate","csr":"AAEC"}"#;
        assert!(
            matches!(serde_json::from_str(csr).unwrap(), Request::RequestCertificate { csr } if csr == [0, 1, 2])
        );
        assert!(
            serde_json::from_str::<Request>(r#"{"op":"request_certificate","csr":"*"}"#).is_err()
        );
    }

    #[test]
    fn every_request_refuses_unknown_fields() {
        let order = r#"{"payer_iban":"UA1","payee_name":"N","payee_tax_code":"1","payee_iban":"UA2","amount":1,"currency":"UAH","purpose":"p"}"#;
        let good = [
            r#"{"op":"overview"}"#.to_owned(),
            r#"{"op":"totp_enroll"}"#.to_owned(),
            r#"{"op":"logout"}"#.to_owned(),
            format!(r#"{{"op":"prepare_order","order":{order}}}"#),
            format!(r#"{{"op":"edit_order","id":1,"version":1,"order":{order}}}"#),
        ];
        for json in &good {
            serde_json::from_str::<Request>(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            // The same with one more field, at the top or inside the order.
            let extra = json.replacen('{', r#"{"x":1,"#, 1);
            assert!(serde_json::from_str::<Request>(&extra).is_err(), "{extra}");
        }
        let inner = format!(
            r#"{{"op":"prepare_order","order":{}}}"#,
            order.replacen('{', r#"{"fee":5,"#, 1)
        );
        assert!(serde_json::from_str::<Request>(&inner).is_err(), "{inner}");
        assert_eq!(
            serde_json::to_string(&Request::Overview {}).unwrap(),
            r#"{"op":"overview"}"#
        );
    }

    #[test]
    fn a_client_reads_replies_and_codes_from_a_newer_bank() {
        // A reply it does not know, with fields.
        let r: Reply = serde_json::from_str(r#"{"reply":"forecast","lines":[1,2]}"#).unwrap();
        assert_eq!(r, Reply::Unknown);
        // A known reply with a field added.
        let r: Reply =
            serde_json::from_str(r#"{"reply":"password_changed","next":"key","hint":"x"}"#)
                .unwrap();
        assert_eq!(r, Reply::PasswordChanged { next: Stage::Key });
        // An error code it does not know.
        let e: ApiError =
            serde_json::from_str(r#"{"code":"token_locked","message":"m","retry":3}"#).unwrap();
        assert_eq!(e.code, ErrorCode::Unknown);
        let e: Response =
            serde_json::from_str(r#"{"Err":{"code":"not_found","message":"m","x":1}}"#).unwrap();
        assert_eq!(e.unwrap_err().code, ErrorCode::NotFound);
    }

    #[test]
    fn responses_round_trip() {
        let ok: Response = Ok(Reply::PasswordChanged {
            next: Stage::Enroll,
        });
        let text = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), ok);
        let err: Response = Err(ApiError::new(ErrorCode::LoginFailed, "login failed"));
        let text = serde_json::to_string(&err).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), err);
    }

    #[test]
    fn order_status_names_round_trip() {
        for s in [
            OrderStatus::Draft,
            OrderStatus::PartlySigned,
            OrderStatus::Signed,
            OrderStatus::Sent,
            OrderStatus::Accepted,
            OrderStatus::Rejected,
        ] {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("paid"), None);
    }
}

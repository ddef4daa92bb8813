//! What a bank admin asks of the bank, on a session signed by an admin's key
//! ([`crate::pki::CertKind::Admin`]), and what the bank answers.
//!
//! Which role may do what, and what takes a second admin's approval ("four eyes"), is the
//! bank's rule (`tresor_bank::rules::admin_permission`); the bank checks it on every request
//! against the roles stored for the admin, never against anything the request says.

use serde::{Deserialize, Serialize};

use super::{Menus, Rights};
use crate::Password;

/// The admin roles. An admin holds one or more; each gives only what its work needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Role {
    /// Finds users, shows their status, unlocks, requests a temporary password.
    Helpdesk,
    /// Emergency passwords, certificate revocation and activation, admin accounts.
    SecurityOfficer,
    /// Users, accounts, rights and signature rules.
    AccountManager,
    /// Reads and verifies the audit log; nothing else.
    Auditor,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 4] = [
        Self::Helpdesk,
        Self::SecurityOfficer,
        Self::AccountManager,
        Self::Auditor,
    ];

    /// The name stored and typed: `helpdesk`, `security_officer`, `account_manager`,
    /// `auditor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Helpdesk => "helpdesk",
            Self::SecurityOfficer => "security_officer",
            Self::AccountManager => "account_manager",
            Self::Auditor => "auditor",
        }
    }

    /// The inverse of [`as_str`](Self::as_str); `-` is read as `_`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().replace('-', "_");
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Parses `helpdesk,security_officer,…` into a sorted set without repeats.
pub fn parse_roles(text: &str) -> Result<Vec<Role>, String> {
    let mut roles = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let role = Role::parse(word).ok_or_else(|| {
            format!(
                "unknown role {word:?}: use helpdesk, security_officer, account_manager or auditor"
            )
        })?;
        roles.push(role);
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err("name at least one role".into());
    }
    Ok(roles)
}

/// `helpdesk,auditor`.
pub fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// One admin command.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminAction {
    /// Who this admin is, with which roles.
    WhoAmI {},
    /// Users whose login or name contains `query` (all without one).
    FindUsers {
        /// Part of a login or a name, any case.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
    },
    /// One user's status, certificates and rights.
    ShowUser {
        /// The login.
        login: String,
    },
    /// Creates a client user; the answer holds the one-time initial password, or with
    /// `email` says that it went there by e-mail.
    AddUser {
        /// The login.
        login: String,
        /// The full name.
        name: String,
        /// The user's e-mail address: the bank sends the initial password there, and no
        /// admin sees it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
    },
    /// Sets a user's mobile number, as the bank knows it, for the SMS second step; `None`
    /// removes it.
    SetPhone {
        /// The login.
        login: String,
        /// The number, international format (`+380…`).
        phone: Option<String>,
    },
    /// Locks a user; their sessions end.
    LockUser {
        /// The login.
        login: String,
    },
    /// Unlocks a user and resets the failure counters.
    UnlockUser {
        /// The login.
        login: String,
    },
    /// Full or limited menus.
    SetMenus {
        /// The login.
        login: String,
        /// Full or limited.
        menus: Menus,
    },
    /// Asks for a temporary password for a user (four eyes: the approver gets it).
    TempPassword {
        /// The login.
        login: String,
    },
    /// Asks for an emergency password for a user's certificate recovery (four eyes).
    EmergencyPassword {
        /// The login.
        login: String,
    },
    /// Opens an account.
    AddAccount {
        /// IBAN.
        iban: String,
        /// Holder's name.
        holder: String,
        /// Currency code.
        currency: String,
        /// Opening balance, minor units.
        balance: u64,
    },
    /// All accounts.
    ListAccounts {},
    /// Signatures an order on the account needs: raising is done at once, lowering takes
    /// four eyes.
    SetSignatures {
        /// IBAN.
        iban: String,
        /// 1 or 2.
        count: u8,
    },
    /// Grants or revokes rights of a user on an account; granting `sign` or `send` takes
    /// four eyes.
    ChangeRights {
        /// The login.
        login: String,
        /// IBAN.
        iban: String,
        /// The rights named.
        rights: Rights,
        /// Grant (true) or revoke (false) them.
        grant: bool,
    },
    /// Certificates, of one login (client or admin) or all.
    ListCertificates {
        /// Only this login's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<String>,
    },
    /// Revokes a certificate; its holder's sessions end.
    RevokeCertificate {
        /// Serial, hex.
        serial: String,
    },
    /// Activates a user's certificate that waits for its key letter, if `fingerprint` (as
    /// typed from the signed letter) is its key's.
    ActivateCertificate {
        /// Whose.
        login: String,
        /// The SHA-256 fingerprint from the letter, hex, spaces allowed.
        fingerprint: String,
    },
    /// Suspends every certificate of a user and ends their sessions (on a phone call): only a
    /// recovery with an emergency password (four eyes) brings access back.
    SuspendUser {
        /// The login.
        login: String,
    },
    /// The audit log, newest first.
    AuditList {
        /// Only records about this login.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<String>,
        /// Only this event (`login`, `lockout`, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
        /// Only at or after this time, Unix seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<u64>,
        /// Only at or before this time, Unix seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
        /// At most this many.
        limit: u32,
    },
    /// Checks the audit chain and its anchor.
    AuditVerify {},
    /// The admins and their roles.
    ListAdmins {},
    /// Asks for a new admin with these roles (four eyes); the approver gets the initial
    /// password.
    AddAdmin {
        /// The login.
        login: String,
        /// The full name.
        name: String,
        /// The roles.
        roles: Vec<Role>,
    },
    /// Asks to set an admin's roles (four eyes).
    SetRoles {
        /// The admin's login.
        login: String,
        /// The new roles.
        roles: Vec<Role>,
    },
    /// Asks for a break-glass window: the local `tresor-bank break-glass` commands work
    /// once it is approved, until it expires (four eyes).
    BreakGlass {
        /// Why, for the audit log.
        reason: String,
    },
    /// The requests waiting for a second admin.
    ListRequests {},
    /// Approves a request and carries it out.
    Approve {
        /// Its id.
        id: u64,
    },
    /// Rejects a request (its requester may withdraw it so too).
    Reject {
        /// Its id.
        id: u64,
    },
}

/// An admin, as `whoami` and `admin list` show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AdminView {
    /// Login.
    pub login: String,
    /// Name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Status words, as for users.
    pub status: Vec<String>,
}

/// A user in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct UserSummary {
    /// Login.
    pub login: String,
    /// Name.
    pub name: String,
    /// Status words: active, locked, must change password, emergency pending, …
    pub status: Vec<String>,
}

/// One user in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct UserDetails {
    /// Login, name, status.
    pub summary: UserSummary,
    /// Full or limited menus.
    pub menus: Menus,
    /// Consecutive wrong passwords.
    pub failed_logins: u32,
    /// Whether TOTP is enrolled.
    pub totp: bool,
    /// Certificates, newest first.
    pub certificates: Vec<CertificateView>,
    /// Rights per account (IBAN).
    pub rights: Vec<(String, Rights)>,
}

/// A certificate as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CertificateView {
    /// Serial, hex.
    pub serial: String,
    /// Whose.
    pub login: String,
    /// enroll, renewal or recovery.
    pub purpose: String,
    /// Valid from, Unix seconds.
    pub not_before: u64,
    /// Expiry, Unix seconds.
    pub not_after: u64,
    /// When revoked, and why.
    pub revoked: Option<(u64, String)>,
    /// `immediate`, `pending` (waits for its key letter) or `activated`.
    pub activation: String,
}

/// An account as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AccountRow {
    /// IBAN.
    pub iban: String,
    /// Holder.
    pub holder: String,
    /// Currency.
    pub currency: String,
    /// Balance, minor units.
    pub balance: u64,
    /// 1 or 2.
    pub signatures_required: u8,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AuditRecord {
    /// Position in the chain.
    pub seq: u64,
    /// When, Unix seconds.
    pub at: u64,
    /// Who: `user`, `bank`, `admin:<login>@<serial>`, `break-glass:<name>`.
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
}

/// The audit log's check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AuditCheck {
    /// Whether the chain is whole and ends at its anchored head.
    pub intact: bool,
    /// Records checked.
    pub records: u64,
    /// What is wrong, if anything.
    pub problem: Option<String>,
}

/// A request waiting for (or decided by) a second admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ApprovalView {
    /// Its id.
    pub id: u64,
    /// What: `temp_password`, `emergency_password`, `grant_rights`, `lower_signatures`,
    /// `add_admin`, `set_roles`, `break_glass`.
    pub action: String,
    /// Whom or what it concerns (a login or an IBAN).
    pub target: String,
    /// In words.
    pub summary: String,
    /// Who asked.
    pub requested_by: String,
    /// When, Unix seconds.
    pub requested_at: u64,
    /// Until when it may be approved, Unix seconds.
    pub expires_at: u64,
    /// `pending`, `approved`, `rejected`.
    pub status: String,
    /// Who decided.
    pub decided_by: Option<String>,
    /// The roles that may approve it.
    pub approvers: Vec<Role>,
}

/// A one-time secret the bank hands out once: an initial, temporary or emergency password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedSecret {
    /// For whom.
    pub login: String,
    /// `initial`, `temporary` or `emergency`.
    pub kind: String,
    /// The secret.
    #[serde(with = "super::password")]
    pub secret: Password,
    /// Until when it may be used, Unix seconds.
    pub expires_at: u64,
}

impl PartialEq for IssuedSecret {
    fn eq(&self, other: &Self) -> bool {
        self.login == other.login
            && self.kind == other.kind
            && self.secret.expose() == other.secret.expose()
            && self.expires_at == other.expires_at
    }
}

impl Eq for IssuedSecret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print() {
        let cases: [(&str, Result<Vec<Role>, ()>); 6] = [
            ("helpdesk", Ok(vec![Role::Helpdesk])),
            (
                "auditor, security-officer,auditor",
                Ok(vec![Role::SecurityOfficer, Role::Auditor]),
            ),
            ("account_manager", Ok(vec![Role::AccountManager])),
            ("", Err(())),
            ("root", Err(())),
            ("helpdesk,,", Ok(vec![Role::Helpdesk])),
        ];
        for (text, want) in cases {
            assert_eq!(parse_roles(text).map_err(|_| ()), want, "{text:?}");
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(
            roles_text(&[Role::Helpdesk, Role::Auditor]),
            "helpdesk,auditor"
        );
    }

    #[test]
    fn admin_actions_refuse_unknown_fields() {
        let json = r#"{"op":"admin","action":{"do":"approve","id":7}}"#;
        let req: super::super::Request = serde_json::from_str(json).unwrap();
        assert!(matches!(
            req,
            super::super::Request::Admin {
                action: AdminAction::Approve { id: 7 }
            }
        ));
        let typo = r#"{"op":"admin","action":{"do":"approve","id":7,"force":true}}"#;
        assert!(serde_json::from_str::<super::super::Request>(typo).is_err());
    }
}

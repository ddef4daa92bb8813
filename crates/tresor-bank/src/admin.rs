//! What bank admins do, through the same database and rules as the server: users, passwords,
//! accounts, rights, certificates. Every change is audited with the admin's name; secrets
//! are returned once, to be printed once.

use tresor_core::api::{Menus, Rights};
use tresor_core::payment::{Currency, Iban};
use tresor_core::{Login, Password};

use crate::audit::Event;
use crate::bank::{Bank, secs};
use crate::passwords;
use crate::storage::users::NewUser;
use crate::storage::{
    PasswordKind, RevokeReason, StorageError, StoredEnum as _, UserRow, from_unix,
};

/// Why an admin command was refused. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No such user.
    #[error("no user with login {0:?}")]
    NoSuchUser(String),
    /// The login is taken.
    #[error("a user with login {0:?} already exists")]
    UserExists(String),
    /// No such account.
    #[error("no account {0}")]
    NoSuchAccount(String),
    /// The account exists.
    #[error("account {0} already exists")]
    AccountExists(String),
    /// No such certificate.
    #[error("no certificate with serial {0}")]
    NoSuchCertificate(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
}

/// A user as `user list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// Login.
    pub login: String,
    /// Name.
    pub name: String,
    /// Status words: active, must change password, locked, emergency pending.
    pub status: Vec<&'static str>,
}

/// A user as `user show` shows it.
#[derive(Debug, Clone)]
pub struct UserDetails {
    /// Login, name and status.
    pub summary: UserSummary,
    /// Full or limited menus.
    pub menus: Menus,
    /// Consecutive wrong passwords.
    pub failed_logins: i64,
    /// Whether TOTP is enrolled.
    pub totp: bool,
    /// Certificates, newest first.
    pub certificates: Vec<CertificateRow>,
    /// Rights per account.
    pub rights: Vec<(String, Rights)>,
}

/// A certificate as `cert list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRow {
    /// Serial, hex.
    pub serial: String,
    /// Whose.
    pub login: String,
    /// enroll, renewal or recovery.
    pub purpose: String,
    /// Validity, Unix seconds.
    pub not_before: i64,
    /// Expiry, Unix seconds.
    pub not_after: i64,
    /// When revoked, and why.
    pub revoked: Option<(i64, String)>,
}

/// An account as `account list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// IBAN.
    pub iban: String,
    /// Holder.
    pub holder: String,
    /// Currency.
    pub currency: String,
    /// Balance, minor units.
    pub balance: i64,
    /// 1 or 2.
    pub signatures_required: i64,
}

fn status_of(u: &UserRow, now: i64) -> Vec<&'static str> {
    let mut s = Vec::new();
    if u.locked {
        s.push("locked");
    }
    if u.password_kind.one_time() {
        if u.password_used {
            s.push("one-time password used, not changed");
        } else if u.password_expires.is_some_and(|e| e < now) {
            s.push("one-time password expired");
        } else {
            s.push("must change password");
        }
    }
    if u.recovery_pending {
        s.push("emergency pending");
    }
    if s.is_empty() {
        s.push("active");
    }
    s
}

impl From<crate::storage::CertificateRow> for CertificateRow {
    fn from(c: crate::storage::CertificateRow) -> Self {
        Self {
            serial: c.serial,
            login: c.login,
            purpose: c.purpose.to_db().to_owned(),
            not_before: c.not_before,
            not_after: c.not_after,
            revoked: c.revoked.map(|(at, why)| (at, why.to_db().to_owned())),
        }
    }
}

impl Bank {
    fn admin_event(
        actor: &str,
        login: &str,
        event: &'static str,
        outcome: &str,
        detail: &str,
    ) -> Event {
        Event {
            actor: actor.to_owned(),
            login: login.to_owned(),
            ip: "local".into(),
            event,
            outcome: outcome.to_owned(),
            detail: detail.to_owned(),
        }
    }

    async fn existing_user(&self, login: &str) -> Result<UserRow, AdminError> {
        self.store
            .read()
            .await?
            .user_by_login(login)
            .await?
            .ok_or_else(|| AdminError::NoSuchUser(login.to_owned()))
    }

    /// Creates a user; returns the one-time initial password.
    pub async fn add_user(
        &self,
        actor: &str,
        login: &str,
        name: &str,
    ) -> Result<Password, AdminError> {
        let login = Login::new(login).map_err(|e| AdminError::Invalid(e.to_string()))?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(AdminError::Invalid(
                "the name must have 1 to 200 printable characters".into(),
            ));
        }
        let password = passwords::one_time();
        let hash = self.bind_password(
            login.as_str(),
            PasswordKind::Initial,
            &passwords::hash_patiently(&password).await,
        );
        let now = self.unix_now();
        let mut work = self.begin().await?;
        let inserted = work
            .insert_user(&NewUser {
                login: login.as_str(),
                name,
                password_hash: &hash,
                password_expires: now + secs(self.policy.initial_password_seconds),
                created_at: now,
            })
            .await?;
        if !inserted {
            return Err(AdminError::UserExists(login.to_string()));
        }
        work.record(Self::admin_event(
            actor,
            login.as_str(),
            "user_add",
            "ok",
            "initial password issued",
        ));
        self.commit(work).await?;
        Ok(password)
    }

    /// All users.
    pub async fn list_users(&self) -> Result<Vec<UserSummary>, AdminError> {
        let users = self.store.read().await?.users().await?;
        let now = self.unix_now();
        Ok(users
            .into_iter()
            .map(|u| UserSummary {
                status: status_of(&u, now),
                login: u.login,
                name: u.name,
            })
            .collect())
    }

    /// One user, with certificates and rights.
    pub async fn show_user(&self, login: &str) -> Result<UserDetails, AdminError> {
        let u = self.existing_user(login).await?;
        let mut conn = self.store.read().await?;
        let rights = conn.rights_of_user(u.id).await?;
        let certificates = conn
            .certificates(Some(&u.login))
            .await?
            .into_iter()
            .map(CertificateRow::from)
            .collect();
        Ok(UserDetails {
            summary: UserSummary {
                status: status_of(&u, self.unix_now()),
                login: u.login.clone(),
                name: u.name.clone(),
            },
            menus: u.menus,
            failed_logins: u.failed_logins,
            totp: u.totp_secret.is_some(),
            certificates,
            rights,
        })
    }

    /// Locks an account; its sessions end.
    pub async fn lock_user(&self, actor: &str, login: &str) -> Result<(), AdminError> {
        let u = self.existing_user(login).await?;
        let mut work = self.begin().await?;
        work.set_locked(u.id, true).await?;
        work.end_sessions_of(u.id, None).await?;
        work.record(Self::admin_event(actor, &u.login, "lock", "ok", ""));
        self.commit(work).await?;
        Ok(())
    }

    /// Unlocks an account and resets its failure counters.
    pub async fn unlock_user(&self, actor: &str, login: &str) -> Result<(), AdminError> {
        let u = self.existing_user(login).await?;
        let mut work = self.begin().await?;
        work.set_locked(u.id, false).await?;
        work.record(Self::admin_event(actor, &u.login, "unlock", "ok", ""));
        self.commit(work).await?;
        Ok(())
    }

    /// Issues a temporary password, which unlocks the account and must be changed at the
    /// next login; returns it.
    pub async fn temporary_password(
        &self,
        actor: &str,
        login: &str,
    ) -> Result<Password, AdminError> {
        let u = self.existing_user(login).await?;
        let password = passwords::one_time();
        let hash = self.bind_password(
            &u.login,
            PasswordKind::Temporary,
            &passwords::hash_patiently(&password).await,
        );
        let expires = self.unix_now() + secs(self.policy.temporary_password_seconds);
        let mut work = self.begin().await?;
        work.set_temporary_password(u.id, &hash, expires).await?;
        work.end_sessions_of(u.id, None).await?;
        work.record(Self::admin_event(
            actor,
            &u.login,
            "temporary_password",
            "issued",
            "account unlocked",
        ));
        self.commit(work).await?;
        Ok(password)
    }

    /// Issues an emergency password for certificate recovery; restricts the user's rights to
    /// viewing until recovery completes; returns it.
    pub async fn emergency_password(
        &self,
        actor: &str,
        login: &str,
    ) -> Result<Password, AdminError> {
        let u = self.existing_user(login).await?;
        let password = passwords::one_time();
        let expires = self.unix_now() + secs(self.policy.emergency_password_seconds);
        let hash = self.binding.bind_emergency(
            &u.login,
            expires,
            &passwords::hash_patiently(&password).await,
        );
        let mut work = self.begin().await?;
        work.set_emergency(u.id, &hash, expires).await?;
        // The key may be in a thief's hands: every session of the user ends now.
        work.end_sessions_of(u.id, None).await?;
        work.record(Self::admin_event(
            actor,
            &u.login,
            "emergency_password",
            "issued",
            &format!("valid until {expires}"),
        ));
        self.commit(work).await?;
        Ok(password)
    }

    /// Full or limited menus.
    pub async fn set_menus(
        &self,
        actor: &str,
        login: &str,
        menus: Menus,
    ) -> Result<(), AdminError> {
        let u = self.existing_user(login).await?;
        let mut work = self.begin().await?;
        work.set_menus(u.id, menus).await?;
        // Sessions opened under the old rights end; the next login gets the new ones.
        work.end_sessions_of(u.id, None).await?;
        work.record(Self::admin_event(
            actor,
            &u.login,
            "rights_change",
            "ok",
            &format!("menus {}", menus.to_db()),
        ));
        self.commit(work).await?;
        Ok(())
    }

    /// Opens an account with a balance.
    pub async fn add_account(
        &self,
        actor: &str,
        iban: &str,
        holder: &str,
        currency: &str,
        balance: u64,
    ) -> Result<String, AdminError> {
        let iban = Iban::parse(iban).map_err(|e| AdminError::Invalid(e.to_string()))?;
        let currency = Currency::parse(currency).map_err(|e| AdminError::Invalid(e.to_string()))?;
        let holder = holder.trim();
        if holder.is_empty() || holder.chars().any(char::is_control) {
            return Err(AdminError::Invalid(
                "the holder's name must be printable text".into(),
            ));
        }
        let balance =
            i64::try_from(balance).map_err(|_| AdminError::Invalid("balance too large".into()))?;
        let mut work = self.begin().await?;
        if !work
            .insert_account(iban.as_str(), holder, currency.as_str(), balance)
            .await?
        {
            return Err(AdminError::AccountExists(iban.to_string()));
        }
        work.record(Self::admin_event(
            actor,
            "",
            "account_add",
            "ok",
            &format!("{iban} {currency}"),
        ));
        self.commit(work).await?;
        Ok(iban.to_string())
    }

    /// All accounts.
    pub async fn list_accounts(&self) -> Result<Vec<AccountRow>, AdminError> {
        let accounts = self.store.read().await?.accounts().await?;
        Ok(accounts
            .into_iter()
            .map(|a| AccountRow {
                iban: a.iban,
                holder: a.holder,
                currency: a.currency,
                balance: i64::try_from(a.balance).unwrap_or(i64::MAX),
                signatures_required: i64::from(a.signatures_required),
            })
            .collect())
    }

    /// Sets how many signatures (1 or 2) an order on the account needs before it is sent.
    pub async fn set_signatures_required(
        &self,
        actor: &str,
        iban: &str,
        n: u8,
    ) -> Result<(), AdminError> {
        if !(1..=2).contains(&n) {
            return Err(AdminError::Invalid(
                "an account requires 1 or 2 signatures".into(),
            ));
        }
        let mut work = self.begin().await?;
        if !work.set_signatures_required(iban, n).await? {
            return Err(AdminError::NoSuchAccount(iban.to_owned()));
        }
        work.record(Self::admin_event(
            actor,
            "",
            "rights_change",
            "ok",
            &format!("{iban}: {n} signatures required"),
        ));
        self.commit(work).await?;
        Ok(())
    }

    /// Grants (`grant = true`) or revokes rights of a user on an account.
    pub async fn change_rights(
        &self,
        actor: &str,
        login: &str,
        iban: &str,
        rights: Rights,
        grant: bool,
    ) -> Result<Rights, AdminError> {
        let u = self.existing_user(login).await?;
        let mut work = self.begin().await?;
        if work.account(iban).await?.is_none() {
            return Err(AdminError::NoSuchAccount(iban.to_owned()));
        }
        let old = work.rights_for_update(u.id, iban).await?;
        let apply = |had: bool, named: bool| if named { grant } else { had };
        let new = Rights {
            view: apply(old.view, rights.view),
            prepare: apply(old.prepare, rights.prepare),
            sign: apply(old.sign, rights.sign),
            send: apply(old.send, rights.send),
        };
        work.set_rights(u.id, iban, new).await?;
        // Sessions opened under the old rights end; the next login gets the new ones.
        work.end_sessions_of(u.id, None).await?;
        let detail = format!("{iban}: {} → {}", rights_text(old), rights_text(new));
        work.record(Self::admin_event(
            actor,
            &u.login,
            "rights_change",
            "ok",
            &detail,
        ));
        self.commit(work).await?;
        Ok(new)
    }

    /// Certificates, of one user or all, newest first.
    pub async fn list_certificates(
        &self,
        login: Option<&str>,
    ) -> Result<Vec<CertificateRow>, AdminError> {
        let rows = self.store.read().await?.certificates(login).await?;
        Ok(rows.into_iter().map(CertificateRow::from).collect())
    }

    /// Revokes a certificate; the sessions of its user end.
    pub async fn revoke_certificate(&self, actor: &str, serial: &str) -> Result<(), AdminError> {
        let serial = serial.trim().to_ascii_lowercase().replace(':', "");
        let mut work = self.begin().await?;
        let cert = work
            .certificate(&serial)
            .await?
            .ok_or_else(|| AdminError::NoSuchCertificate(serial.clone()))?;
        work.revoke_certificate(&serial, self.unix_now(), RevokeReason::Admin)
            .await?;
        work.end_sessions_of(cert.user_id, None).await?;
        work.record(Self::admin_event(
            actor,
            &cert.login,
            "revocation",
            "ok",
            &format!("serial {serial}"),
        ));
        self.commit(work).await?;
        Ok(())
    }

    /// The audit log, newest first.
    pub async fn audit_list(
        &self,
        login: Option<&str>,
        limit: i64,
    ) -> Result<Vec<crate::audit::Record>, AdminError> {
        Ok(crate::audit::list(&self.store, login, limit).await?)
    }

    /// Checks the audit chain and its anchor.
    pub async fn audit_verify(&self) -> Result<Result<i64, crate::audit::Tampering>, AdminError> {
        Ok(crate::audit::verify(&self.store, &self.audit_key).await?)
    }

    /// Seeds a demo company: two UAH accounts with balances, one user with every right on
    /// both; returns the user's login and initial password.
    pub async fn seed_demo(&self, actor: &str) -> Result<Option<(String, Password)>, AdminError> {
        const LOGIN: &str = "demo.director";
        if self
            .store
            .read()
            .await?
            .user_by_login(LOGIN)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let password = self
            .add_user(actor, LOGIN, "Olena Demchenko (Demo Trade LLC)")
            .await?;
        let holder = "Demo Trade LLC";
        for (account, balance) in [
            ("26000000000001", 125_000_000u64),
            ("26000000000002", 4_250_000),
        ] {
            let iban = Iban::ua_from_parts("300001", account)
                .map_err(|e| AdminError::Invalid(e.to_string()))?;
            self.add_account(actor, iban.as_str(), holder, "UAH", balance)
                .await?;
            let all = Rights {
                view: true,
                prepare: true,
                sign: true,
                send: true,
            };
            self.change_rights(actor, LOGIN, iban.as_str(), all, true)
                .await?;
        }
        Ok(Some((LOGIN.to_owned(), password)))
    }
}

/// Text as a terminal may show it: control characters (C0 but the line feed, DEL, C1) and
/// the Unicode controls that reorder text (bidi overrides and isolates) are written as
/// `\u{..}` escapes, so that stored text (a login, a name, an audit detail) cannot move the
/// cursor, recolour or rewrite the admin's screen, or disguise itself.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let hostile = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hostile(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `view,prepare,sign,send` or `none`.
pub fn rights_text(r: Rights) -> String {
    let names: Vec<&str> = [
        (r.view, "view"),
        (r.prepare, "prepare"),
        (r.sign, "sign"),
        (r.send, "send"),
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
pub fn parse_rights(text: &str) -> Result<Rights, AdminError> {
    let mut r = Rights::default();
    for word in text.split(',').map(str::trim) {
        match word {
            "view" => r.view = true,
            "prepare" => r.prepare = true,
            "sign" => r.sign = true,
            "send" => r.send = true,
            "all" => {
                r = Rights {
                    view: true,
                    prepare: true,
                    sign: true,
                    send: true,
                }
            }
            other => {
                return Err(AdminError::Invalid(format!(
                    "unknown right {other:?}: use view, prepare, sign, send or all"
                )));
            }
        }
    }
    Ok(r)
}

/// Formats Unix seconds as UTC, RFC 3339 (`2026-11-21T11:48:00Z`).
pub fn format_time(t: i64) -> String {
    tresor_core::x509_cert::der::DateTime::from_system_time(from_unix(t))
        .map_or_else(|_| t.to_string(), |d| d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_could_drive_a_terminal() {
        let cases = [
            ("alice.k", "alice.k"),
            ("Олена Демченко", "Олена Демченко"),
            ("two\nlines", "two\nlines"),
            ("\u{1b}[2J\u{1b}[Hadmin", "\\u{1b}[2J\\u{1b}[Hadmin"),
            ("bell\u{7}", "bell\\u{7}"),
            ("cr\rover", "cr\\u{d}over"),
            ("del\u{7f}", "del\\u{7f}"),
            ("csi\u{9b}31m", "csi\\u{9b}31m"),
            ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
            ("iso\u{2067}x", "iso\\u{2067}x"),
        ];
        for (input, want) in cases {
            assert_eq!(printable(input), want, "{input:?}");
        }
    }
}

//! What bank admins do, through the same database and rules as the server: users, passwords,
//! accounts, rights, certificates. Every change is audited with the admin's name; secrets
//! are returned once, to be printed once.

use sqlx::Row as _;
use tresor_core::api::{Menus, Rights};
use tresor_core::payment::{Currency, Iban};
use tresor_core::{Login, Password};

use crate::audit::Event;
use crate::bank::{Bank, INITIAL, TEMPORARY, USER_COLUMNS, User};
use crate::orders::rights_of;
use crate::passwords;
use crate::sessions;
use crate::store::{StorageError, from_unix, unix};

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

impl From<sqlx::Error> for AdminError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(StorageError::Database(e))
    }
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

fn status_of(u: &User, now: i64) -> Vec<&'static str> {
    let mut s = Vec::new();
    if u.locked {
        s.push("locked");
    }
    if u.password_kind != crate::bank::REGULAR {
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

impl Bank {
    fn admin_event<'a>(
        actor: &'a str,
        login: &'a str,
        event: &'a str,
        outcome: &'a str,
        detail: &'a str,
    ) -> Event<'a> {
        Event {
            actor,
            login,
            ip: "local",
            event,
            outcome,
            detail,
        }
    }

    async fn existing_user(&self, login: &str) -> Result<User, AdminError> {
        self.user_by_login(login)
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
        if self.user_by_login(login.as_str()).await?.is_some() {
            return Err(AdminError::UserExists(login.to_string()));
        }
        let password = passwords::one_time();
        let hash = passwords::hash(&password).await;
        let now = unix(self.now());
        let expires = now + secs(self.policy.initial_password_seconds);
        let mut tx = self.store.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (login, name, password_hash, password_kind, password_expires, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (login) DO NOTHING",
        )
        .bind(login.as_str())
        .bind(name)
        .bind(hash)
        .bind(INITIAL)
        .bind(expires)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() != 1 {
            return Err(AdminError::UserExists(login.to_string()));
        }
        self.audit(
            &mut tx,
            Self::admin_event(
                actor,
                login.as_str(),
                "user_add",
                "ok",
                "initial password issued",
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(password)
    }

    /// All users.
    pub async fn list_users(&self) -> Result<Vec<UserSummary>, AdminError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY login");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.store.pool())
            .await?;
        let now = unix(self.now());
        rows.iter()
            .map(|r| {
                let u = User::from_row(r)?;
                Ok(UserSummary {
                    status: status_of(&u, now),
                    login: u.login,
                    name: u.name,
                })
            })
            .collect()
    }

    /// One user, with certificates and rights.
    pub async fn show_user(&self, login: &str) -> Result<UserDetails, AdminError> {
        let u = self.existing_user(login).await?;
        let rows = sqlx::query(
            "SELECT iban, can_view, can_prepare, can_sign, can_send FROM rights \
             WHERE user_id = $1 ORDER BY iban",
        )
        .bind(u.id)
        .fetch_all(self.store.pool())
        .await?;
        let mut rights = Vec::new();
        for r in &rows {
            rights.push((r.try_get("iban")?, rights_of(r)?));
        }
        Ok(UserDetails {
            summary: UserSummary {
                status: status_of(&u, unix(self.now())),
                login: u.login.clone(),
                name: u.name.clone(),
            },
            menus: u.menus,
            failed_logins: u.failed_logins,
            totp: u.totp_secret.is_some(),
            certificates: self.list_certificates(Some(login)).await?,
            rights,
        })
    }

    /// Locks an account; its sessions end.
    pub async fn lock_user(&self, actor: &str, login: &str) -> Result<(), AdminError> {
        let u = self.existing_user(login).await?;
        let mut tx = self.store.begin().await?;
        sqlx::query("UPDATE users SET locked = 1 WHERE id = $1")
            .bind(u.id)
            .execute(&mut *tx)
            .await?;
        sessions::end_all_of(&mut tx, u.id).await?;
        self.audit(
            &mut tx,
            Self::admin_event(actor, &u.login, "lock", "ok", ""),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Unlocks an account and resets its failure counters.
    pub async fn unlock_user(&self, actor: &str, login: &str) -> Result<(), AdminError> {
        let u = self.existing_user(login).await?;
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "UPDATE users SET locked = 0, failed_logins = 0, otp_failures = 0 WHERE id = $1",
        )
        .bind(u.id)
        .execute(&mut *tx)
        .await?;
        self.audit(
            &mut tx,
            Self::admin_event(actor, &u.login, "unlock", "ok", ""),
        )
        .await?;
        tx.commit().await?;
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
        let hash = passwords::hash(&password).await;
        let expires = unix(self.now()) + secs(self.policy.temporary_password_seconds);
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_kind = $2, password_expires = $3, \
             password_used = 0, locked = 0, failed_logins = 0, otp_failures = 0 WHERE id = $4",
        )
        .bind(hash)
        .bind(TEMPORARY)
        .bind(expires)
        .bind(u.id)
        .execute(&mut *tx)
        .await?;
        sessions::end_all_of(&mut tx, u.id).await?;
        self.audit(
            &mut tx,
            Self::admin_event(
                actor,
                &u.login,
                "temporary_password",
                "issued",
                "account unlocked",
            ),
        )
        .await?;
        tx.commit().await?;
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
        let hash = passwords::hash(&password).await;
        let expires = unix(self.now()) + secs(self.policy.emergency_password_seconds);
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "UPDATE users SET emergency_hash = $1, emergency_expires = $2, recovery_pending = 1 \
             WHERE id = $3",
        )
        .bind(hash)
        .bind(expires)
        .bind(u.id)
        .execute(&mut *tx)
        .await?;
        let detail = format!("valid until {}", expires);
        self.audit(
            &mut tx,
            Self::admin_event(actor, &u.login, "emergency_password", "issued", &detail),
        )
        .await?;
        tx.commit().await?;
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
        let name = match menus {
            Menus::Full => "full",
            Menus::Limited => "limited",
        };
        let mut tx = self.store.begin().await?;
        sqlx::query("UPDATE users SET menus = $1 WHERE id = $2")
            .bind(name)
            .bind(u.id)
            .execute(&mut *tx)
            .await?;
        self.audit(
            &mut tx,
            Self::admin_event(
                actor,
                &u.login,
                "rights_change",
                "ok",
                &format!("menus {name}"),
            ),
        )
        .await?;
        tx.commit().await?;
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
        let mut tx = self.store.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO accounts (iban, holder, currency, balance) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (iban) DO NOTHING",
        )
        .bind(iban.as_str())
        .bind(holder)
        .bind(currency.as_str())
        .bind(balance)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() != 1 {
            return Err(AdminError::AccountExists(iban.to_string()));
        }
        self.audit(
            &mut tx,
            Self::admin_event(
                actor,
                "",
                "account_add",
                "ok",
                &format!("{iban} {currency}"),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(iban.to_string())
    }

    /// All accounts.
    pub async fn list_accounts(&self) -> Result<Vec<AccountRow>, AdminError> {
        let rows = sqlx::query(
            "SELECT iban, holder, currency, balance, signatures_required FROM accounts ORDER BY iban",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AccountRow {
                    iban: r.try_get("iban")?,
                    holder: r.try_get("holder")?,
                    currency: r.try_get("currency")?,
                    balance: r.try_get("balance")?,
                    signatures_required: r.try_get("signatures_required")?,
                })
            })
            .collect()
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
        let mut tx = self.store.begin().await?;
        let done = sqlx::query("UPDATE accounts SET signatures_required = $1 WHERE iban = $2")
            .bind(i64::from(n))
            .bind(iban)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(AdminError::NoSuchAccount(iban.to_owned()));
        }
        self.audit(
            &mut tx,
            Self::admin_event(
                actor,
                "",
                "rights_change",
                "ok",
                &format!("{iban}: {n} signatures required"),
            ),
        )
        .await?;
        tx.commit().await?;
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
        let exists: Option<String> =
            sqlx::query_scalar("SELECT iban FROM accounts WHERE iban = $1")
                .bind(iban)
                .fetch_optional(self.store.pool())
                .await?;
        if exists.is_none() {
            return Err(AdminError::NoSuchAccount(iban.to_owned()));
        }
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "INSERT INTO rights (user_id, iban) VALUES ($1, $2) ON CONFLICT (user_id, iban) DO NOTHING",
        )
        .bind(u.id)
        .bind(iban)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT can_view, can_prepare, can_sign, can_send FROM rights WHERE user_id = $1 AND iban = $2",
        )
        .bind(u.id)
        .bind(iban)
        .fetch_one(&mut *tx)
        .await?;
        let old = rights_of(&row)?;
        let apply = |had: bool, named: bool| if named { grant } else { had };
        let new = Rights {
            view: apply(old.view, rights.view),
            prepare: apply(old.prepare, rights.prepare),
            sign: apply(old.sign, rights.sign),
            send: apply(old.send, rights.send),
        };
        sqlx::query(
            "UPDATE rights SET can_view = $1, can_prepare = $2, can_sign = $3, can_send = $4 \
             WHERE user_id = $5 AND iban = $6",
        )
        .bind(i64::from(new.view))
        .bind(i64::from(new.prepare))
        .bind(i64::from(new.sign))
        .bind(i64::from(new.send))
        .bind(u.id)
        .bind(iban)
        .execute(&mut *tx)
        .await?;
        let detail = format!("{iban}: {} → {}", rights_text(old), rights_text(new));
        self.audit(
            &mut tx,
            Self::admin_event(actor, &u.login, "rights_change", "ok", &detail),
        )
        .await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Certificates, of one user or all, newest first.
    pub async fn list_certificates(
        &self,
        login: Option<&str>,
    ) -> Result<Vec<CertificateRow>, AdminError> {
        let rows = sqlx::query(
            "SELECT c.serial, u.login, c.purpose, c.not_before, c.not_after, c.revoked_at, \
             c.revoke_reason FROM certificates c JOIN users u ON u.id = c.user_id \
             WHERE $1 = '' OR u.login = $1 ORDER BY c.issued_at DESC, c.serial",
        )
        .bind(login.unwrap_or(""))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let revoked_at: Option<i64> = r.try_get("revoked_at")?;
                let reason: Option<String> = r.try_get("revoke_reason")?;
                Ok(CertificateRow {
                    serial: r.try_get("serial")?,
                    login: r.try_get("login")?,
                    purpose: r.try_get("purpose")?,
                    not_before: r.try_get("not_before")?,
                    not_after: r.try_get("not_after")?,
                    revoked: revoked_at.map(|t| (t, reason.unwrap_or_default())),
                })
            })
            .collect()
    }

    /// Revokes a certificate; the sessions of its user end.
    pub async fn revoke_certificate(&self, actor: &str, serial: &str) -> Result<(), AdminError> {
        let serial = serial.trim().to_ascii_lowercase().replace(':', "");
        let user_id: Option<i64> =
            sqlx::query_scalar("SELECT user_id FROM certificates WHERE serial = $1")
                .bind(&serial)
                .fetch_optional(self.store.pool())
                .await?;
        let user_id = user_id.ok_or_else(|| AdminError::NoSuchCertificate(serial.clone()))?;
        let login = self.user_by_id(user_id).await?.login;
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revoke_reason = 'admin' \
             WHERE serial = $2 AND revoked_at IS NULL",
        )
        .bind(unix(self.now()))
        .bind(&serial)
        .execute(&mut *tx)
        .await?;
        sessions::end_all_of(&mut tx, user_id).await?;
        self.audit(
            &mut tx,
            Self::admin_event(
                actor,
                &login,
                "revocation",
                "ok",
                &format!("serial {serial}"),
            ),
        )
        .await?;
        tx.commit().await?;
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
        if self.user_by_login(LOGIN).await?.is_some() {
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

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

/// Formats Unix seconds as UTC, RFC 3339 (`2026-11-21T11:48:00Z`).
pub fn format_time(t: i64) -> String {
    tresor_core::x509_cert::der::DateTime::from_system_time(from_unix(t))
        .map_or_else(|_| t.to_string(), |d| d.to_string())
}

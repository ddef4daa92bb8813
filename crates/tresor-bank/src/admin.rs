//! What bank admins do, through the same database and rules as the server: users, passwords,
//! accounts, rights, certificates, admin accounts. Every change is audited with its
//! [`Actor`]; secrets are returned once, to be shown once.
//!
//! Two callers: an admin's session over the channel (`four_eyes.rs` checks the roles and
//! files what takes a second admin), and the local break-glass commands of `tresor-bank`.

use tresor_core::api::admin::{
    AccountRow, AdminView, CertificateView, IssuedSecret, Role, UserDetails, UserSummary,
    roles_text,
};
use tresor_core::api::{Menus, Rights};
use tresor_core::payment::{Currency, Iban};
use tresor_core::{Login, Password};

use crate::audit::Event;
use crate::bank::{Bank, Work, secs};
use crate::passwords;
use crate::storage::users::NewUser;
use crate::storage::{
    Activation, PasswordKind, RevokeReason, StorageError, StoredEnum as _, UserRow, from_unix,
};
use tresor_core::x509_cert::der::Decode as _;

/// Who does an admin action, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `admin:<login>@<certificate serial>`, `break-glass:<name>`, or as given.
    pub(crate) name: String,
    /// The address, or `local`.
    pub(crate) ip: String,
}

impl Actor {
    /// An admin on a session signed by their certificate, from `ip`.
    pub fn admin(login: &str, serial: &str, ip: &str) -> Self {
        Self {
            name: format!("admin:{login}@{serial}"),
            ip: ip.to_owned(),
        }
    }

    /// Someone using the local break-glass commands, by their OS user name.
    pub fn break_glass(who: &str) -> Self {
        Self {
            name: format!("break-glass:{who}"),
            ip: "local".into(),
        }
    }

    /// The bank's clearing operator feeding payments from other banks, by OS user name.
    pub fn clearing(who: &str) -> Self {
        Self {
            name: format!("clearing:{who}"),
            ip: "local".into(),
        }
    }

    /// Someone running an operator's command on the bank's host (a TLS certificate for a
    /// load balancer), by OS user name.
    pub fn operator(who: &str) -> Self {
        Self {
            name: format!("operator:{who}"),
            ip: "local".into(),
        }
    }

    /// The name the audit log records.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn event(
        &self,
        login: &str,
        event: &'static str,
        outcome: &str,
        detail: &str,
    ) -> Event {
        Event {
            actor: self.name.clone(),
            login: login.to_owned(),
            ip: self.ip.clone(),
            event,
            outcome: outcome.to_owned(),
            detail: detail.to_owned(),
        }
    }
}

/// A local actor named as given (the demo seed, tests).
impl From<&str> for Actor {
    fn from(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ip: "local".into(),
        }
    }
}

impl From<&Actor> for Actor {
    fn from(a: &Actor) -> Self {
        a.clone()
    }
}

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
    /// The command needs an approved break-glass window.
    #[error(
        "break-glass needs a window: a security officer asks for one (`tresor-admin break-glass \
         request`) and another approves it"
    )]
    NoBreakGlassWindow,
}

pub(crate) fn status_of(u: &UserRow, now: i64) -> Vec<String> {
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
    s.into_iter().map(String::from).collect()
}

impl From<crate::storage::CertificateRow> for CertificateView {
    fn from(c: crate::storage::CertificateRow) -> Self {
        let t = |v: i64| u64::try_from(v).unwrap_or(0);
        Self {
            serial: c.serial,
            login: c.login,
            purpose: c.purpose.to_db().to_owned(),
            not_before: t(c.not_before),
            not_after: t(c.not_after),
            revoked: c.revoked.map(|(at, why)| (t(at), why.to_db().to_owned())),
            activation: c.activation.to_db().to_owned(),
        }
    }
}

impl Bank {
    pub(crate) async fn existing_user(&self, login: &str) -> Result<UserRow, AdminError> {
        self.store
            .read()
            .await?
            .user_by_login(login)
            .await?
            .ok_or_else(|| AdminError::NoSuchUser(login.to_owned()))
    }

    /// Creates a client user; returns the one-time initial password.
    pub async fn add_user(
        &self,
        actor: impl Into<Actor>,
        login: &str,
        name: &str,
    ) -> Result<Password, AdminError> {
        let actor = actor.into();
        let new = self.new_account(login, name).await?;
        let mut work = self.begin().await?;
        self.insert_account_user(&mut work, &new).await?;
        work.record(actor.event(
            new.login.as_str(),
            "user_add",
            "ok",
            "initial password issued",
        ));
        self.commit(work).await?;
        Ok(new.password)
    }

    /// Creates a user whose one-time initial password goes by e-mail to `email`, which
    /// becomes their address: queued in the transaction that creates the user, so that no
    /// admin ever sees the password and a mail server that is down delays only the mail.
    /// Returns the address as the audit log shows it (`mail::mask`).
    pub async fn add_user_by_mail(
        &self,
        actor: impl Into<Actor>,
        login: &str,
        name: &str,
        email: &str,
    ) -> Result<String, AdminError> {
        let actor = actor.into();
        let vault = self.mail.as_ref().ok_or_else(|| {
            AdminError::Invalid(
                "this bank sends no e-mail: set [mail] smtp in its configuration, or add the \
                 user without --email and hand the password over yourself"
                    .into(),
            )
        })?;
        let email = email.trim();
        if !tresor_core::text::plausible_email(email) {
            return Err(AdminError::Invalid(format!(
                "{email:?} is not an e-mail address"
            )));
        }
        let new = self.new_account(login, name).await?;
        let now = self.unix_now();
        let expires = format_time(now + secs(self.policy.initial_password_seconds));
        let message = crate::mail::activation(
            &self.info,
            email,
            new.login.as_str(),
            &new.password,
            &expires,
        );
        let id = crate::mail::new_id()
            .ok_or_else(|| AdminError::Invalid("no randomness for a mail id".into()))?;
        let sealed = crate::mail::seal(vault, &id, &message)
            .ok_or_else(|| AdminError::Invalid("the mail could not be sealed".into()))?;
        let masked = crate::mail::mask(email);
        let mut work = self.begin().await?;
        let user = self.insert_account_user(&mut work, &new).await?;
        // The address the admin gives counts as verified: the bank vouches for it, and the
        // initial password that goes there proves that the user reads it.
        let tag = self.binding.email_tag(user, new.login.as_str(), email);
        work.set_user_email(user, email, &tag).await?;
        work.enqueue_mail(&id, &sealed, now).await?;
        work.record(actor.event(
            new.login.as_str(),
            "user_add",
            "ok",
            &format!("initial password sent by e-mail to {masked}"),
        ));
        self.commit(work).await?;
        Ok(masked)
    }

    /// Checks a new user's login and name, and makes their initial password (Argon2 runs
    /// here, before any transaction).
    pub(crate) async fn new_account(
        &self,
        login: &str,
        name: &str,
    ) -> Result<NewAccount, AdminError> {
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
        Ok(NewAccount {
            login,
            name: name.to_owned(),
            password,
            hash,
        })
    }

    /// Inserts a user made by [`new_account`](Self::new_account); its id.
    pub(crate) async fn insert_account_user(
        &self,
        work: &mut Work,
        new: &NewAccount,
    ) -> Result<i64, AdminError> {
        let now = self.unix_now();
        let inserted = work
            .insert_user(&NewUser {
                login: new.login.as_str(),
                name: &new.name,
                password_hash: &new.hash,
                password_expires: now + secs(self.policy.initial_password_seconds),
                created_at: now,
            })
            .await?;
        if !inserted {
            return Err(AdminError::UserExists(new.login.to_string()));
        }
        let user = work
            .user_by_login(new.login.as_str())
            .await?
            .ok_or_else(|| StorageError::corrupt("a user just inserted is not there"))?;
        Ok(user.id)
    }

    /// Creates an admin with roles; returns the one-time initial password. The admin then
    /// enrolls a key as a client does, and gets an admin certificate.
    pub async fn add_admin(
        &self,
        actor: impl Into<Actor>,
        login: &str,
        name: &str,
        roles: &[Role],
    ) -> Result<Password, AdminError> {
        let actor = actor.into();
        let new = self.new_account(login, name).await?;
        let mut work = self.begin().await?;
        self.apply_add_admin(&mut work, &actor, &new, roles, "")
            .await?;
        self.commit(work).await?;
        Ok(new.password)
    }

    pub(crate) async fn apply_add_admin(
        &self,
        work: &mut Work,
        actor: &Actor,
        new: &NewAccount,
        roles: &[Role],
        approval: &str,
    ) -> Result<(), AdminError> {
        if roles.is_empty() {
            return Err(AdminError::Invalid(
                "an admin needs at least one role".into(),
            ));
        }
        let id = self.insert_account_user(work, new).await?;
        let text = roles_text(roles);
        let tag = self.binding.admin_roles_tag(id, new.login.as_str(), &text);
        work.insert_admin(id, &text, &tag).await?;
        work.record(actor.event(
            new.login.as_str(),
            "admin_add",
            "ok",
            &format!("roles {text}; initial password issued{approval}"),
        ));
        Ok(())
    }

    /// Sets an admin's roles.
    pub async fn set_roles(
        &self,
        actor: impl Into<Actor>,
        login: &str,
        roles: &[Role],
    ) -> Result<(), AdminError> {
        let actor = actor.into();
        let mut work = self.begin().await?;
        self.apply_set_roles(&mut work, &actor, login, roles, "")
            .await?;
        self.commit(work).await?;
        Ok(())
    }

    pub(crate) async fn apply_set_roles(
        &self,
        work: &mut Work,
        actor: &Actor,
        login: &str,
        roles: &[Role],
        approval: &str,
    ) -> Result<(), AdminError> {
        if roles.is_empty() {
            return Err(AdminError::Invalid(
                "an admin needs at least one role".into(),
            ));
        }
        let u = work
            .user_by_login(login)
            .await?
            .ok_or_else(|| AdminError::NoSuchUser(login.to_owned()))?;
        let Some(old) = work.admin_of(u.id).await? else {
            return Err(AdminError::Invalid(format!("{login} is not an admin")));
        };
        let text = roles_text(roles);
        let tag = self.binding.admin_roles_tag(u.id, &u.login, &text);
        if !work.set_admin_roles(u.id, &old.roles, &text, &tag).await? {
            return Err(AdminError::Invalid(
                "the admin's roles changed meanwhile; try again".into(),
            ));
        }
        // Sessions opened under the old roles end.
        work.end_sessions_of(u.id, None).await?;
        work.record(actor.event(
            &u.login,
            "admin_roles",
            "ok",
            &format!("{} → {text}{approval}", old.roles),
        ));
        Ok(())
    }

    /// The roles of an admin, if the user is one and the roles' MAC holds. A row written
    /// without the bank's key makes nobody an admin.
    pub(crate) async fn roles_of<C>(
        &self,
        conn: &mut crate::storage::Conn<C>,
        user: &UserRow,
    ) -> Result<Option<Vec<Role>>, StorageError>
    where
        C: std::ops::DerefMut<Target = sqlx::AnyConnection> + Send,
    {
        let Some(row) = conn.admin_of(user.id).await? else {
            return Ok(None);
        };
        if row.login != user.login
            || !self
                .binding
                .admin_roles_hold(row.user_id, &row.login, &row.roles, &row.tag)
        {
            tracing::error!(login = %user.login, "an admin row is not bound to this bank: ignored");
            return Ok(None);
        }
        Ok(tresor_core::api::admin::parse_roles(&row.roles).ok())
    }

    /// The admins, with their roles (rows whose MAC fails are left out).
    pub async fn list_admins(&self) -> Result<Vec<AdminView>, AdminError> {
        let mut conn = self.store.read().await?;
        let rows = conn.admins().await?;
        let now = self.unix_now();
        let mut out = Vec::new();
        for row in rows {
            if !self
                .binding
                .admin_roles_hold(row.user_id, &row.login, &row.roles, &row.tag)
            {
                continue;
            }
            let Some(u) = conn.user_by_id(row.user_id).await? else {
                continue;
            };
            out.push(AdminView {
                login: row.login,
                name: row.name,
                roles: tresor_core::api::admin::parse_roles(&row.roles).unwrap_or_default(),
                status: status_of(&u, now),
            });
        }
        Ok(out)
    }

    /// How many security officers could approve a request now: roles bound, not locked,
    /// holding a valid certificate.
    pub(crate) async fn usable_security_officers(&self) -> Result<usize, StorageError> {
        let mut conn = self.store.read().await?;
        let now = self.unix_now();
        let mut n = 0;
        for row in conn.admins().await? {
            let Some(u) = conn.user_by_id(row.user_id).await? else {
                continue;
            };
            let so = self
                .roles_of(&mut conn, &u)
                .await?
                .is_some_and(|r| r.contains(&Role::SecurityOfficer));
            if so && !u.locked && !conn.valid_certificates_of(u.id, now).await?.is_empty() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Users (clients and admins) whose login or name contains `query`, any case.
    pub async fn list_users(&self) -> Result<Vec<UserSummary>, AdminError> {
        self.find_users(None).await
    }

    /// Users whose login or name contains `query` (all without one).
    pub async fn find_users(&self, query: Option<&str>) -> Result<Vec<UserSummary>, AdminError> {
        let mut conn = self.store.read().await?;
        let users = conn.users().await?;
        let admins: Vec<i64> = conn.admins().await?.iter().map(|a| a.user_id).collect();
        let now = self.unix_now();
        let query = query.map(str::to_lowercase).filter(|q| !q.is_empty());
        Ok(users
            .into_iter()
            .filter(|u| {
                query.as_ref().is_none_or(|q| {
                    u.login.to_lowercase().contains(q) || u.name.to_lowercase().contains(q)
                })
            })
            .map(|u| {
                let mut status = status_of(&u, now);
                if admins.contains(&u.id) {
                    status.insert(0, "admin".into());
                }
                UserSummary {
                    status,
                    login: u.login,
                    name: u.name,
                }
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
            .map(CertificateView::from)
            .collect();
        let mut status = status_of(&u, self.unix_now());
        if conn.admin_of(u.id).await?.is_some() {
            status.insert(0, "admin".into());
        }
        Ok(UserDetails {
            summary: UserSummary {
                status,
                login: u.login.clone(),
                name: u.name.clone(),
            },
            menus: u.menus,
            failed_logins: u32::try_from(u.failed_logins).unwrap_or(u32::MAX),
            totp: u.totp_secret.is_some(),
            certificates,
            rights,
        })
    }

    /// Whether `login` is an admin account (its row present; bound or not, an admin row is
    /// enough to ask for the stricter role).
    pub(crate) async fn is_admin_login(&self, login: &str) -> Result<bool, StorageError> {
        let mut conn = self.store.read().await?;
        let Some(u) = conn.user_by_login(login).await? else {
            return Ok(false);
        };
        Ok(conn.admin_of(u.id).await?.is_some())
    }

    /// Sets (or with `None` removes) a user's mobile number, where the SMS second step's
    /// codes go: bound to the user by a MAC, so that one written in the database alone gets
    /// no code. The user is told by e-mail (a security notice).
    pub async fn set_phone(
        &self,
        actor: impl Into<Actor>,
        login: &str,
        phone: Option<&str>,
    ) -> Result<(), AdminError> {
        let actor = actor.into();
        let phone = phone.map(str::trim);
        if let Some(p) = phone
            && !crate::sms::plausible_phone(p)
        {
            return Err(AdminError::Invalid(format!(
                "{p:?} is not a mobile number: + and 8 to 15 digits, e.g. +380441234567"
            )));
        }
        let u = self.existing_user(login).await?;
        let mut work = self.begin().await?;
        let tag = phone.map(|p| self.binding.phone_tag(u.id, &u.login, p));
        work.set_user_phone(u.id, phone.zip(tag.as_deref())).await?;
        let shown = phone.map_or_else(|| "removed".to_owned(), crate::sms::mask_phone);
        let at = format_time(self.unix_now());
        self.notify(
            &mut work,
            u.id,
            &crate::mail::Notice::PhoneChanged {
                phone: &shown,
                at: &at,
            },
        )
        .await?;
        work.record(actor.event(&u.login, "phone_set", "ok", &shown));
        self.commit(work).await?;
        Ok(())
    }

    /// Locks an account; its sessions end.
    pub async fn lock_user(&self, actor: impl Into<Actor>, login: &str) -> Result<(), AdminError> {
        let actor = actor.into();
        let u = self.existing_user(login).await?;
        let mut work = self.begin().await?;
        work.set_locked(u.id, true).await?;
        work.end_sessions_of(u.id, None).await?;
        work.record(actor.event(&u.login, "lock", "ok", ""));
        self.commit(work).await?;
        Ok(())
    }

    /// Unlocks an account and resets its failure counters.
    pub async fn unlock_user(
        &self,
        actor: impl Into<Actor>,
        login: &str,
    ) -> Result<(), AdminError> {
        let actor = actor.into();
        let u = self.existing_user(login).await?;
        let mut work = self.begin().await?;
        work.set_locked(u.id, false).await?;
        work.record(actor.event(&u.login, "unlock", "ok", ""));
        self.commit(work).await?;
        Ok(())
    }

    /// Issues a temporary password, which unlocks the account and must be changed at the
    /// next login; returns it.
    pub async fn temporary_password(
        &self,
        actor: impl Into<Actor>,
        login: &str,
    ) -> Result<Password, AdminError> {
        self.one_time_password(actor.into(), login, false).await
    }

    pub(crate) async fn apply_temporary_password(
        &self,
        work: &mut Work,
        actor: &Actor,
        u: &UserRow,
        password: Password,
        phc: &str,
        approval: &str,
    ) -> Result<IssuedSecret, AdminError> {
        let hash = self.bind_password(&u.login, PasswordKind::Temporary, phc);
        let expires = self.unix_now() + secs(self.policy.temporary_password_seconds);
        work.set_temporary_password(u.id, &hash, expires).await?;
        work.end_sessions_of(u.id, None).await?;
        work.record(actor.event(
            &u.login,
            "temporary_password",
            "issued",
            &format!("account unlocked{approval}"),
        ));
        Ok(IssuedSecret {
            login: u.login.clone(),
            kind: "temporary".into(),
            secret: password,
            expires_at: u64::try_from(expires).unwrap_or(0),
        })
    }

    /// Issues an emergency password for certificate recovery; restricts the user's rights to
    /// viewing until recovery completes; returns it.
    pub async fn emergency_password(
        &self,
        actor: impl Into<Actor>,
        login: &str,
    ) -> Result<Password, AdminError> {
        self.one_time_password(actor.into(), login, true).await
    }

    /// A temporary or (`emergency`) an emergency password, issued at once: Argon2 before the
    /// transaction, the write and its record in it.
    async fn one_time_password(
        &self,
        actor: Actor,
        login: &str,
        emergency: bool,
    ) -> Result<Password, AdminError> {
        let u = self.existing_user(login).await?;
        let password = passwords::one_time();
        let phc = passwords::hash_patiently(&password).await;
        let mut work = self.begin().await?;
        let issued = if emergency {
            self.apply_emergency_password(&mut work, &actor, &u, password, &phc, "")
                .await?
        } else {
            self.apply_temporary_password(&mut work, &actor, &u, password, &phc, "")
                .await?
        };
        self.commit(work).await?;
        Ok(issued.secret)
    }

    pub(crate) async fn apply_emergency_password(
        &self,
        work: &mut Work,
        actor: &Actor,
        u: &UserRow,
        password: Password,
        phc: &str,
        approval: &str,
    ) -> Result<IssuedSecret, AdminError> {
        let expires = self.unix_now() + secs(self.policy.emergency_password_seconds);
        let hash = self.binding.bind_emergency(&u.login, expires, phc);
        work.set_emergency(u.id, &hash, expires).await?;
        // The key may be in a thief's hands: every session of the user ends now.
        work.end_sessions_of(u.id, None).await?;
        work.record(actor.event(
            &u.login,
            "emergency_password",
            "issued",
            &format!("valid until {expires}{approval}"),
        ));
        Ok(IssuedSecret {
            login: u.login.clone(),
            kind: "emergency".into(),
            secret: password,
            expires_at: u64::try_from(expires).unwrap_or(0),
        })
    }

    /// Full or limited menus.
    pub async fn set_menus(
        &self,
        actor: impl Into<Actor>,
        login: &str,
        menus: Menus,
    ) -> Result<(), AdminError> {
        let actor = actor.into();
        let u = self.existing_user(login).await?;
        let mut work = self.begin().await?;
        work.set_menus(u.id, menus).await?;
        // Sessions opened under the old rights end; the next login gets the new ones.
        work.end_sessions_of(u.id, None).await?;
        work.record(actor.event(
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
        actor: impl Into<Actor>,
        iban: &str,
        holder: &str,
        currency: &str,
        balance: u64,
    ) -> Result<String, AdminError> {
        let actor = actor.into();
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
            .insert_account(iban.as_str(), holder, currency.as_str())
            .await?
        {
            return Err(AdminError::AccountExists(iban.to_string()));
        }
        if balance > 0 {
            // The opening balance is the ledger's first movement, like any other.
            work.account_for_update(iban.as_str()).await?;
            self.book(
                &mut work,
                &crate::ledger::Posting {
                    iban: iban.as_str(),
                    direction: tresor_core::api::ledger::Direction::Credit,
                    amount: u64::try_from(balance).unwrap_or_default(),
                    kind: tresor_core::api::ledger::MovementKind::Opening,
                    counterparty_name: holder,
                    counterparty_iban: iban.as_str(),
                    counterparty_tax_code: "",
                    purpose: "Opening balance",
                    doc_number: "0",
                    order_id: None,
                },
            )
            .await?
            .map_err(|_| AdminError::Invalid("balance too large".into()))?;
        }
        work.record(actor.event("", "account_add", "ok", &format!("{iban} {currency}")));
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
                balance: a.balance,
                signatures_required: a.signatures_required,
            })
            .collect())
    }

    /// Sets how many signatures (1 or 2) an order on the account needs before it is sent.
    pub async fn set_signatures_required(
        &self,
        actor: impl Into<Actor>,
        iban: &str,
        n: u8,
    ) -> Result<(), AdminError> {
        let actor = actor.into();
        let mut work = self.begin().await?;
        self.apply_signatures(&mut work, &actor, iban, n, false, "")
            .await?;
        self.commit(work).await?;
        Ok(())
    }

    /// Sets the signatures required; with `raise_only`, refuses to lower them (what an
    /// admin may do without a second admin), decided on the row as it is when written.
    pub(crate) async fn apply_signatures(
        &self,
        work: &mut Work,
        actor: &Actor,
        iban: &str,
        n: u8,
        raise_only: bool,
        approval: &str,
    ) -> Result<(), AdminError> {
        if !(1..=2).contains(&n) {
            return Err(AdminError::Invalid(
                "an account requires 1 or 2 signatures".into(),
            ));
        }
        let done = if raise_only {
            work.raise_signatures_required(iban, n).await?
        } else {
            work.set_signatures_required(iban, n).await?
        };
        if !done {
            return Err(match work.account(iban).await? {
                None => AdminError::NoSuchAccount(iban.to_owned()),
                Some(_) => AdminError::Invalid(
                    "lowering the signatures required takes a second admin".into(),
                ),
            });
        }
        work.record(actor.event(
            "",
            "rights_change",
            "ok",
            &format!("{iban}: {n} signatures required{approval}"),
        ));
        Ok(())
    }

    /// Grants (`grant = true`) or revokes rights of a user on an account.
    pub async fn change_rights(
        &self,
        actor: impl Into<Actor>,
        login: &str,
        iban: &str,
        rights: Rights,
        grant: bool,
    ) -> Result<Rights, AdminError> {
        let actor = actor.into();
        let mut work = self.begin().await?;
        let new = self
            .apply_rights(&mut work, &actor, login, iban, rights, grant, "")
            .await?;
        self.commit(work).await?;
        Ok(new)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_rights(
        &self,
        work: &mut Work,
        actor: &Actor,
        login: &str,
        iban: &str,
        rights: Rights,
        grant: bool,
        approval: &str,
    ) -> Result<Rights, AdminError> {
        let u = work
            .user_by_login(login)
            .await?
            .ok_or_else(|| AdminError::NoSuchUser(login.to_owned()))?;
        if grant && work.admin_of(u.id).await?.is_some() {
            return Err(AdminError::Invalid(
                "an admin account holds no rights on accounts".into(),
            ));
        }
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
        let detail = format!("{iban}: {} → {}{approval}", old.names(), new.names());
        work.record(actor.event(&u.login, "rights_change", "ok", &detail));
        Ok(new)
    }

    /// Certificates, of one user or all, newest first.
    pub async fn list_certificates(
        &self,
        login: Option<&str>,
    ) -> Result<Vec<CertificateView>, AdminError> {
        let rows = self.store.read().await?.certificates(login).await?;
        Ok(rows.into_iter().map(CertificateView::from).collect())
    }

    /// Revokes a certificate; the sessions of its user end.
    pub async fn revoke_certificate(
        &self,
        actor: impl Into<Actor>,
        serial: &str,
    ) -> Result<(), AdminError> {
        let actor = actor.into();
        let serial = serial.trim().to_ascii_lowercase().replace(':', "");
        let mut work = self.begin().await?;
        let cert = work
            .certificate(&serial)
            .await?
            .ok_or_else(|| AdminError::NoSuchCertificate(serial.clone()))?;
        work.revoke_certificate(&serial, self.unix_now(), RevokeReason::Admin)
            .await?;
        work.end_sessions_of(cert.user_id, None).await?;
        work.record(actor.event(&cert.login, "revocation", "ok", &format!("serial {serial}")));
        self.commit(work).await?;
        Ok(())
    }

    /// Suspends every certificate of a user and ends their sessions (the helpdesk, on the
    /// user's call); only a recovery with an emergency password brings access back.
    pub async fn suspend_user(
        &self,
        actor: impl Into<Actor>,
        login: &str,
    ) -> Result<(), AdminError> {
        let actor = actor.into();
        let u = self.existing_user(login).await?;
        let mut work = self.begin().await?;
        work.user_for_update(u.id).await?;
        self.suspend_in(
            &mut work,
            &u,
            actor.event(&u.login, "suspension", "ok", "by an admin"),
        )
        .await?;
        self.commit(work).await?;
        Ok(())
    }

    /// Activates the certificate of `login` that waits for its key letter and whose key has
    /// `fingerprint` (as typed from the letter); its serial. A fingerprint that matches no
    /// waiting certificate is refused and audited.
    pub async fn activate_certificate(
        &self,
        actor: impl Into<Actor>,
        login: &str,
        fingerprint: &str,
    ) -> Result<String, AdminError> {
        let actor = actor.into();
        let u = self.existing_user(login).await?;
        let typed = tresor_core::pki::parse_fingerprint(fingerprint);
        let now = self.unix_now();
        let mut work = self.begin().await?;
        let waiting: Vec<_> = work
            .valid_certificates_of(u.id, now)
            .await?
            .into_iter()
            .filter(|c| c.activation == Activation::Pending)
            .collect();
        let matching = waiting.iter().find(|c| {
            let fp = tresor_core::x509_cert::Certificate::from_der(&c.der)
                .ok()
                .and_then(|cert| tresor_core::pki::key_fingerprint(&cert).ok());
            typed.is_some() && fp == typed
        });
        let Some(cert) = matching else {
            let why = if waiting.is_empty() {
                "no certificate of this user waits for activation"
            } else if typed.is_none() {
                "the fingerprint is not 64 hexadecimal digits"
            } else {
                "the fingerprint matches no certificate waiting for activation"
            };
            work.record(actor.event(&u.login, "key_activation", &format!("refused: {why}"), ""));
            self.commit(work).await?;
            return Err(AdminError::Invalid(format!("{why} ({})", u.login)));
        };
        let tag = self
            .binding
            .activation_tag(&cert.serial, Activation::Activated);
        if !work
            .set_activation(
                &cert.serial,
                Activation::Pending,
                Activation::Activated,
                &tag,
            )
            .await?
        {
            return Err(AdminError::Invalid(
                "the certificate changed meanwhile; try again".into(),
            ));
        }
        work.record(actor.event(
            &u.login,
            "key_activation",
            "ok",
            &format!("serial {} activated from its key letter", cert.serial),
        ));
        self.commit(work).await?;
        Ok(cert.serial.clone())
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
    pub async fn seed_demo(
        &self,
        actor: impl Into<Actor>,
    ) -> Result<Option<(String, Password)>, AdminError> {
        const LOGIN: &str = "demo.director";
        let actor = actor.into();
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
            .add_user(&actor, LOGIN, "Olena Demchenko (Demo Trade LLC)")
            .await?;
        let holder = "Demo Trade LLC";
        for (account, balance) in [
            ("26000000000001", 125_000_000u64),
            ("26000000000002", 4_250_000),
        ] {
            let iban = Iban::ua_from_parts("300001", account)
                .map_err(|e| AdminError::Invalid(e.to_string()))?;
            self.add_account(&actor, iban.as_str(), holder, "UAH", balance)
                .await?;
            let all = Rights {
                view: true,
                prepare: true,
                sign: true,
                send: true,
            };
            self.change_rights(&actor, LOGIN, iban.as_str(), all, true)
                .await?;
        }
        Ok(Some((LOGIN.to_owned(), password)))
    }
}

/// A user about to be created: login and name checked, initial password made.
pub(crate) struct NewAccount {
    pub(crate) login: Login,
    pub(crate) name: String,
    pub(crate) password: Password,
    pub(crate) hash: String,
}

/// Formats Unix seconds as UTC, RFC 3339 (`2026-11-21T11:48:00Z`).
pub fn format_time(t: i64) -> String {
    tresor_core::x509_cert::der::DateTime::from_system_time(from_unix(t))
        .map_or_else(|_| t.to_string(), |d| d.to_string())
}

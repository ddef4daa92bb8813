//! The bank: the application behind the secure channel. Each request arrives opened, with
//! the session it came on; the bank loads what it needs, asks the rules (`rules.rs`), and
//! writes the outcome with its audit record in one transaction ([`Work`]).
//!
//! Login rules ([`rules::login_stage`] has the table):
//! * a session signed by the user's key + password → everything the rights allow;
//! * anonymous + password + TOTP code → view and prepare, never sign;
//! * anonymous + password + emergency password → only a recovery certificate;
//! * anonymous + initial or temporary password → only a password change, then the first
//!   certificate if the user has none.
//!
//! Every refused login answers the same [`ErrorCode::LoginFailed`]; the audit log says why.
//! One exception: a session signed by a valid certificate of the login hears
//! [`ErrorCode::AccountLocked`] for a locked account, without its password being checked.

use std::net::IpAddr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::SystemTime;

use tresor_core::api::{
    ApiError, BankInfo, CertificateStatus, ErrorCode, LoginInfo, Reply, Request, Response, Stage,
};
use tresor_core::channel::Mode;
use tresor_core::pki::{self, BankCa};
use tresor_core::totp::{self, TotpSecret};
use tresor_core::x509_cert::der::{Decode as _, Encode as _};
use tresor_core::x509_cert::serial_number::SerialNumber;
use tresor_core::x509_cert::{Certificate, spki::EncodePublicKey as _};
use tresor_core::{Login, Password};
use zeroize::Zeroizing;

use crate::audit::{self, Event};
use crate::binding::Binding;
use crate::channel::{Handler, SessionInfo, StoreError, source_of, unmapped};
use crate::clock::Clock;
use crate::config::Policy;
use crate::data::BankSecrets;
use crate::mail::Notice;
use crate::passwords::{self, Busy};
use crate::rules::{self, CertificateRefusal, Factor, LoginRefusal, PasswordState};
use crate::sessions::id_text;
use crate::storage::certs::NewCertificate;
use crate::storage::sessions::StoredLogin;
use crate::storage::users::LoginSuccess;
use crate::storage::{
    Activation, CertPurpose, CertificateRow, Conn, PasswordKind, RevokeReason, SessionLogin,
    StorageError, Store, StoredEnum as _, Tx, UserRow, unix,
};

/// The bank's application.
pub struct Bank {
    pub(crate) store: Store,
    pub(crate) ca: BankCa,
    pub(crate) audit_key: Zeroizing<[u8; 32]>,
    pub(crate) binding: Binding,
    pub(crate) policy: Policy,
    pub(crate) clock: Arc<dyn Clock>,
    /// The bank's name and helpdesk, told to anyone who asks.
    pub(crate) info: BankInfo,
    /// Seals the mail the bank queues; `None` if it sends no mail (`[mail]` unset).
    pub(crate) mail: Option<crate::binding::Vault>,
    /// Seals the text messages the bank queues; `None` if it sends none (`[sms]` unset).
    pub(crate) sms: Option<crate::binding::Vault>,
    /// The sessions whose seqs this process holds in memory, told when a login changes.
    pub(crate) held: Option<Arc<crate::sessions::HeldSessions>>,
}

/// What a request handler needs to know about where the request came from.
pub(crate) struct Ctx<'a> {
    /// The session's id, as stored.
    pub(crate) session: String,
    pub(crate) mode: Mode,
    /// The certificate serial that signed the handshake.
    pub(crate) serial: Option<&'a SerialNumber>,
    /// The login bound to that certificate.
    pub(crate) cert_login: Option<&'a Login>,
    /// Whether that certificate is a client's or an admin's.
    pub(crate) cert_kind: Option<pki::CertKind>,
    /// The exact address, for the audit log.
    pub(crate) ip: String,
    /// The address's penalty key (an IPv6 /64 counts as one address).
    pub(crate) source: String,
    /// The session's login as the session store read it with this record, if it did.
    pub(crate) login: Option<&'a StoredLogin>,
}

pub(crate) fn login_failed() -> Refusal {
    Refusal::from(ApiError::new(
        ErrorCode::LoginFailed,
        "login failed: check the login, the password and the second factor",
    ))
}

pub(crate) fn not_allowed(what: &str) -> Refusal {
    Refusal(ApiError::new(ErrorCode::NotAllowed, what))
}

pub(crate) fn conflict(what: &str) -> Refusal {
    Refusal(ApiError::new(ErrorCode::Conflict, what))
}

pub(crate) fn internal(e: StorageError) -> Refusal {
    tracing::error!(error = %e, "storage failed");
    Refusal(ApiError::new(
        ErrorCode::Internal,
        "the bank could not complete the request; nothing was changed, try again",
    ))
}

/// A refused request inside the bank: the [`ApiError`] the client gets, from a rule or from
/// a storage failure (logged, and told to the client without its details).
#[derive(Debug)]
pub(crate) struct Refusal(pub(crate) ApiError);

/// What the request handlers return.
pub(crate) type Answer = Result<Reply, Refusal>;

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<StorageError> for Refusal {
    fn from(e: StorageError) -> Self {
        internal(e)
    }
}

impl From<Busy> for Refusal {
    fn from(e: Busy) -> Self {
        Refusal(ApiError::new(ErrorCode::Busy, e.to_string()))
    }
}

/// Why the bank could not start.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The database belongs to another bank CA.
    #[error(
        "this database was created for another bank CA (fingerprint {stored}); the data folder \
         holds {ours}"
    )]
    WrongCa {
        /// In the database.
        stored: String,
        /// In the data folder.
        ours: String,
    },
}

/// A write transaction and the audit records that commit with it: whatever it writes is
/// recorded in the same transaction, or not written at all.
pub(crate) struct Work {
    tx: Tx,
    events: Vec<Event>,
}

impl Work {
    /// Adds an audit record, appended at commit.
    pub(crate) fn record(&mut self, e: Event) {
        self.events.push(e);
    }
}

impl Deref for Work {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl DerefMut for Work {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}

/// The audit record of an upgrade step the bank took on its own in the run that migrated.
pub(crate) fn upgrade_event(detail: String) -> Event {
    Event {
        actor: "bank".into(),
        login: String::new(),
        ip: "local".into(),
        event: "upgrade",
        outcome: "ok".into(),
        detail,
    }
}

impl Bank {
    /// The bank on `store`, issuing with `ca`. Ties the database to the CA on first use, so
    /// that an instance started with another data folder refuses to serve it.
    pub async fn new(
        store: Store,
        ca: BankCa,
        secrets: &BankSecrets,
        policy: Policy,
        clock: Arc<dyn Clock>,
        name: &str,
    ) -> Result<Self, BankError> {
        audit::init(&store, &secrets.audit_key).await?;
        let ours = ca_fingerprint(&ca)?;
        let mut tx = store.begin().await?;
        let stored = tx.meta_or_insert("ca", &ours).await?;
        tx.commit().await?;
        if stored != ours {
            return Err(BankError::WrongCa { stored, ours });
        }
        let bank = Self {
            store,
            ca,
            audit_key: Zeroizing::new(*secrets.audit_key),
            binding: Binding::new(secrets),
            policy,
            clock,
            info: BankInfo {
                name: name.to_owned(),
                ..BankInfo::default()
            },
            mail: None,
            sms: None,
            held: None,
        };
        if bank.store.upgraded_from().is_some_and(|v| v < 3) {
            bank.bind_legacy_rows().await?;
        }
        if bank.store.upgraded_from().is_some_and(|v| v < 5) {
            bank.bind_legacy_activations().await?;
        }
        if bank.store.upgraded_from().is_some_and(|v| v < 6) {
            bank.bind_legacy_movements().await?;
        }
        Ok(bank)
    }

    /// Binds the secrets that schema versions before 3 stored unbound, once, in the run
    /// that migrated the database: afterwards an unbound secret is refused as tampering.
    async fn bind_legacy_rows(&self) -> Result<(), StorageError> {
        let mut work = self.begin().await?;
        let users = work.users().await?;
        let mut bound = 0;
        for u in &users {
            let seal_totp =
                |s: &Option<Vec<u8>>| s.as_ref().map(|raw| self.binding.seal_totp(&u.login, raw));
            let secrets = crate::storage::users::UserSecrets {
                password_hash: if Binding::is_bound(&u.password_hash) {
                    u.password_hash.clone()
                } else {
                    self.binding
                        .bind_password(&u.login, u.password_kind, &u.password_hash)
                },
                emergency_hash: u
                    .emergency
                    .as_ref()
                    .map(|e| self.binding.bind_emergency(&u.login, e.expires, &e.hash)),
                totp_secret: seal_totp(&u.totp_secret),
                totp_pending: seal_totp(&work.totp_pending(u.id).await?),
            };
            work.set_user_secrets(u.id, &secrets).await?;
            bound += 1;
        }
        work.record(upgrade_event(format!(
            "secrets of {bound} users bound to the data folder's key"
        )));
        self.commit(work).await
    }

    /// Binds the activation state of certificates issued before schema version 5 (all
    /// `immediate`), once, in the run that migrated the database.
    async fn bind_legacy_activations(&self) -> Result<(), StorageError> {
        let mut work = self.begin().await?;
        let rows = work.unbound_activations().await?;
        for (serial, state) in &rows {
            let tag = self.binding.activation_tag(serial, *state);
            work.bind_activation(serial, &tag).await?;
        }
        work.record(upgrade_event(format!(
            "activation state of {} certificates bound to the data folder's key",
            rows.len()
        )));
        self.commit(work).await
    }

    /// The login on a session, if its MAC holds: a login written without the bank's key is
    /// refused as tampering, never obeyed.
    pub(crate) async fn session_login<C>(
        &self,
        conn: &mut Conn<C>,
        session: &str,
    ) -> Result<Option<SessionLogin>, StorageError>
    where
        C: DerefMut<Target = sqlx::AnyConnection> + Send,
    {
        let Some(stored) = conn.session_login(session).await? else {
            return Ok(None);
        };
        self.verified_login(session, &stored)
    }

    /// A stored login, if its MAC holds.
    fn verified_login(
        &self,
        session: &str,
        stored: &StoredLogin,
    ) -> Result<Option<SessionLogin>, StorageError> {
        if !self
            .binding
            .session_login_holds(session, stored.login.as_ref(), &stored.tag)
        {
            return Err(StorageError::corrupt(
                "a session's login was changed without the bank's key",
            ));
        }
        Ok(stored.login.clone())
    }

    /// Sets the login on a session, with its MAC.
    pub(crate) async fn set_session_login(
        &self,
        work: &mut Work,
        session: &str,
        login: Option<&SessionLogin>,
    ) -> Result<(), StorageError> {
        let tag = self.binding.session_login_tag(session, login);
        if let Some(held) = &self.held {
            held.login_changes(session);
        }
        work.tx.set_session_login(session, login, &tag).await
    }

    /// The PHC string of the user's login password, if its binding holds.
    pub(crate) fn password_of<'a>(&self, user: &'a UserRow) -> Option<&'a str> {
        let phc = self
            .binding
            .open_password(&user.login, user.password_kind, &user.password_hash);
        if phc.is_none() {
            tracing::error!(login = %user.login, "a password hash is not bound to this bank: refused");
        }
        phc
    }

    /// Checks the user's login password: as long for an unbound (tampered) hash, which
    /// matches nothing.
    pub(crate) async fn password_matches(
        &self,
        user: &UserRow,
        password: &Password,
    ) -> Result<bool, Busy> {
        match self.password_of(user) {
            Some(phc) => passwords::verify(phc, password).await,
            None => passwords::verify_nothing(password).await.map(|()| false),
        }
    }

    /// A new login password's hash, bound.
    pub(crate) fn bind_password(&self, login: &str, kind: PasswordKind, phc: &str) -> String {
        self.binding.bind_password(login, kind, phc)
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The rules.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The bank sending text messages (`[sms]` in bank.toml): what it queues is sealed with
    /// `vault` (`mailer::vault`, under AADs of their own).
    #[must_use]
    pub fn with_sms(mut self, vault: crate::binding::Vault) -> Self {
        self.sms = Some(vault);
        self
    }

    /// The bank whose channel holds its sessions' seqs in memory (`sessions::DbSessions::held`):
    /// it says there when a session's login changes.
    #[must_use]
    pub fn with_held_sessions(mut self, held: Option<Arc<crate::sessions::HeldSessions>>) -> Self {
        self.held = held;
        self
    }

    /// The bank sending mail (`[mail]` in bank.toml): what it queues is sealed with `vault`
    /// (`mailer::vault`).
    #[must_use]
    pub fn with_mail(mut self, vault: crate::binding::Vault) -> Self {
        self.mail = Some(vault);
        self
    }

    /// The bank with its name and helpdesk as configured (`[bank]` in bank.toml).
    #[must_use]
    pub fn with_info(mut self, info: BankInfo) -> Self {
        self.info = info;
        self
    }

    /// The bank's name and helpdesk.
    pub fn info(&self) -> &BankInfo {
        &self.info
    }

    /// The bank CA.
    pub fn ca(&self) -> &BankCa {
        &self.ca
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub(crate) fn unix_now(&self) -> i64 {
        unix(self.now())
    }

    /// Starts a write transaction.
    pub(crate) async fn begin(&self) -> Result<Work, StorageError> {
        Ok(Work {
            tx: self.store.begin().await?,
            events: Vec::new(),
        })
    }

    /// Appends the work's audit records and commits it all.
    pub(crate) async fn commit(&self, mut work: Work) -> Result<(), StorageError> {
        let now = self.now();
        for e in &work.events {
            audit::append(&mut work.tx, &self.audit_key, now, e).await?;
        }
        work.tx.commit().await?;
        // Counted once committed: what `/metrics` says happened, the audit log says too.
        for e in work.events.iter().filter(|e| e.event == "login") {
            crate::metrics::metrics().login(&e.outcome);
        }
        Ok(())
    }

    /// Appends an audit record in a transaction of its own.
    pub(crate) async fn audit_alone(&self, e: Event) -> Result<(), StorageError> {
        let mut work = self.begin().await?;
        work.record(e);
        self.commit(work).await
    }

    async fn dispatch(&self, ctx: &Ctx<'_>, request: Request) -> Answer {
        if let Request::Login {
            login,
            password,
            otp,
            emergency_password,
        } = request
        {
            return self
                .login(ctx, &login, &password, otp.as_deref(), emergency_password)
                .await;
        }
        if let Request::BlockKey { login, password } = request {
            return self.block_key(ctx, &login, &password).await;
        }
        if let Request::BankInfo {} = request {
            return Ok(Reply::BankInfo(self.info.clone()));
        }
        if let Request::ConfirmLogin { code } = request {
            return self.confirm_login(ctx, &code).await;
        }
        if let Request::ForgotPassword { login } = request {
            return self.forgot_password(ctx, &login).await;
        }
        if let Request::ResetPassword { login, code, new } = request {
            return self.reset_password(ctx, &login, &code, &new).await;
        }
        // Read by the channel with the record's seq, in the same statement; else here.
        let login = match ctx.login {
            Some(stored) => self.verified_login(&ctx.session, stored)?,
            None => {
                let mut read = self.store.read().await?;
                self.session_login(&mut read, &ctx.session).await?
            }
        };
        let Some(session) = login else {
            return Err(not_allowed("log in first"));
        };
        let mut read = self.store.read().await?;
        let user = read
            .user_by_id(session.user_id)
            .await?
            .ok_or_else(|| StorageError::corrupt("a session names a user who does not exist"))?;
        drop(read);
        // A key session lives only as long as the certificate that signed it is the bank's,
        // the user's, unrevoked and unexpired: checked on every request, not only at login.
        let now = self.unix_now();
        if ctx.serial.is_some() {
            let holds = self
                .session_certificate(ctx, &user)
                .await?
                .is_some_and(|c| c.revoked.is_none() && c.valid_at(now));
            if !holds {
                let mut work = self.begin().await?;
                work.remove_session(&ctx.session).await?;
                work.record(ctx.event(
                    &user.login,
                    "session",
                    "ended: certificate no longer valid",
                    "",
                ));
                self.commit(work).await?;
                return Err(ApiError::new(
                    ErrorCode::NotAllowed,
                    "the certificate of this session is no longer valid; the session has ended",
                )
                .into());
            }
        }
        if user.locked {
            return Err(not_allowed("the account is locked; ask the bank"));
        }
        // Set with the emergency password, cleared when the recovery completes.
        if !rules::allowed_while_recovery_pending(
            rules::Operation::of(&request),
            session.stage,
            user.recovery_pending,
        ) {
            return Err(not_allowed(
                "certificate recovery is pending for this user: only viewing is possible until it completes",
            ));
        }
        // An admin's key does no client work (and a client's no admin work: `admin_request`).
        if ctx.cert_kind == Some(pki::CertKind::Admin) && rules::client_work(&request) {
            return Err(not_allowed(
                "this session is signed by an admin's key: it does admin work only",
            ));
        }
        match request {
            // Answered above, before the session's login is looked up.
            Request::Login { .. }
            | Request::BlockKey { .. }
            | Request::BankInfo {}
            | Request::ForgotPassword { .. }
            | Request::ResetPassword { .. }
            | Request::ConfirmLogin { .. } => Err(not_allowed("log in first")),
            Request::Profile {} => self.profile(&session, &user).await,
            Request::SetEmail { email } => self.set_email(ctx, &session, &user, &email).await,
            Request::ConfirmEmail { code } => self.confirm_email(ctx, &session, &user, &code).await,
            Request::SetPreferences { language, quiet } => {
                self.set_preferences(ctx, &session, &user, language, &quiet)
                    .await
            }
            Request::Admin { action } => self.admin_request(ctx, &session, &user, action).await,
            Request::ChangePassword { current, new } => {
                self.change_password(ctx, &session, &user, &current, &new)
                    .await
            }
            Request::RequestCertificate { csr } => {
                self.request_certificate(ctx, &session, &user, &csr).await
            }
            Request::Overview {} => self.overview(&session, &user).await,
            Request::TotpEnroll {} => self.totp_enroll(ctx, &session, &user).await,
            Request::TotpConfirm { code } => self.totp_confirm(ctx, &session, &user, &code).await,
            Request::ListOrders { account } => {
                self.list_orders(&session, &user, account.as_deref()).await
            }
            Request::GetOrder { id } => self.get_order(&session, &user, id).await,
            Request::PrepareOrder { order } => {
                self.prepare_order(ctx, &session, &user, order).await
            }
            Request::EditOrder { id, version, order } => {
                self.edit_order(ctx, &session, &user, id, version, order)
                    .await
            }
            Request::SignOrder {
                id,
                version,
                signature,
            } => {
                self.sign_order(ctx, &session, &user, id, version, &signature)
                    .await
            }
            Request::SendOrder { id } => self.send_order(ctx, &session, &user, id).await,
            Request::Statement {
                account,
                from,
                to,
                cursor,
                limit,
            } => {
                self.statement(
                    &session,
                    &user,
                    &account,
                    (from, to),
                    cursor.as_deref(),
                    limit,
                )
                .await
            }
            Request::ImportOrders { orders } => {
                self.import_orders(ctx, &session, &user, orders).await
            }
            Request::SignatureQueue { after } => {
                self.signature_queue(&session, &user, after.unwrap_or(0))
                    .await
            }
            Request::SignOrders { signatures } => {
                self.sign_orders(ctx, &session, &user, signatures).await
            }
            Request::DeleteOrder { id, version } => {
                self.delete_order(ctx, &session, &user, id, version).await
            }
            Request::SaveTemplate { template } => {
                self.save_template(ctx, &session, &user, template).await
            }
            Request::ListTemplates { account } => {
                self.list_templates(&session, &user, account.as_deref())
                    .await
            }
            Request::DeleteTemplate { id } => self.delete_template(ctx, &session, &user, id).await,
            Request::SaveCounterparty { counterparty } => {
                self.save_counterparty(ctx, &session, &user, counterparty)
                    .await
            }
            Request::ListCounterparties { account } => {
                self.list_counterparties(&session, &user, account.as_deref())
                    .await
            }
            Request::DeleteCounterparty { id } => {
                self.delete_counterparty(ctx, &session, &user, id).await
            }
            Request::Logout {} => {
                let mut work = self.begin().await?;
                self.set_session_login(&mut work, &ctx.session, None)
                    .await?;
                work.record(ctx.event(&user.login, "logout", "ok", ""));
                self.commit(work).await?;
                Ok(Reply::Done)
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Login.

    async fn login(
        &self,
        ctx: &Ctx<'_>,
        login: &str,
        password: &Password,
        otp: Option<&str>,
        emergency: Option<Password>,
    ) -> Answer {
        let now = self.unix_now();
        // Every path below runs Argon2 as often as a right password would (once, twice with
        // an emergency password), so that timing tells nothing about which factor was wrong.
        let spend = |n: usize| async move {
            for _ in 0..n {
                passwords::verify_nothing(password).await?;
            }
            Ok::<(), Busy>(())
        };
        let factors = 1 + usize::from(emergency.is_some());
        let mut read = self.store.read().await?;
        if self.session_login(&mut read, &ctx.session).await?.is_some() {
            return Err(not_allowed(
                "already logged in on this session; log out first",
            ));
        }
        // An audit record names at most 64 characters of whatever was typed as a login.
        let shown: String = login.chars().take(64).collect();
        if let Some(until) = read.ip_blocked_until(&ctx.source, now).await? {
            drop(read);
            self.audit_alone(ctx.event(&shown, "login", "refused: address blocked", ""))
                .await?;
            let minutes = rules::minutes_left(until, now);
            return Err(ApiError::new(
                ErrorCode::AddressBlocked,
                format!("too many failed logins from this address; try again in {minutes} minutes"),
            )
            .into());
        }
        let user = user_named(&mut read, login).await?;
        let Some(user) = user else {
            drop(read);
            spend(factors).await?;
            return self
                .refuse(ctx, &shown, LoginRefusal::UnknownLogin.outcome())
                .await;
        };
        let factor = Factor::of(ctx.mode, otp.is_some(), emergency.is_some());
        if !rules::suspension_allows(user.suspended, factor) {
            drop(read);
            spend(factors).await?;
            return self
                .refuse(ctx, &user.login, "refused: key blocked, recovery needed")
                .await;
        }
        // A key session logs in only the login its certificate is bound to, with a
        // certificate the bank issued to this user and still holds valid.
        let certificate = match (ctx.mode, ctx.serial) {
            (Mode::Authenticated, Some(serial))
                if ctx.cert_login.is_some_and(|l| l.as_str() == user.login) =>
            {
                read.certificate(&pki::serial_hex(serial))
                    .await?
                    .filter(|c| c.user_id == user.id && c.valid_at(now))
            }
            _ => None,
        };
        // An admin's certificate opens only an admin's login, a client's only a client's.
        let kind = if self.roles_of(&mut read, &user).await?.is_some() {
            pki::CertKind::Admin
        } else {
            pki::CertKind::Client
        };
        let certificate = certificate.filter(|_| ctx.cert_kind == Some(kind));
        drop(read);
        let key_session = ctx.mode == Mode::Authenticated;
        if let Err(refusal) = rules::login_gate(key_session, certificate.is_some(), user.locked) {
            spend(factors).await?;
            let refused = self.refuse(ctx, &user.login, refusal.outcome()).await;
            // The key's holder may learn that the account is locked (and so call the bank);
            // the password was not checked, so this says nothing about it.
            return match refused {
                Err(e) if refusal == LoginRefusal::Locked && key_session => {
                    if e.0.code == ErrorCode::LoginFailed {
                        Err(Refusal(ApiError::new(
                            ErrorCode::AccountLocked,
                            "the account is locked; ask the bank for a temporary password",
                        )))
                    } else {
                        Err(e)
                    }
                }
                other => other,
            };
        }
        // A stranger's guesses (no key) are throttled per account instead of locking it.
        if !key_session && !self.reserve_anonymous_check(user.id, now).await? {
            spend(factors).await?;
            return self
                .refuse(ctx, &user.login, "refused: anonymous guesses throttled")
                .await;
        }
        let matches = match self.password_matches(&user, password).await {
            Ok(m) => m,
            Err(Busy) => {
                // Not checked after all: the reservation is given back.
                if !key_session {
                    self.store
                        .read()
                        .await?
                        .release_anonymous_check(user.id)
                        .await?;
                }
                return Err(Busy.into());
            }
        };
        if !matches {
            spend(factors - 1).await?;
            return self.wrong_password(ctx, &user, "login", key_session).await;
        }
        let state = PasswordState {
            kind: user.password_kind,
            used: user.password_used,
            expired: user.password_expires.is_some_and(|e| e < now),
        };
        let stage = match rules::login_stage(state, factor) {
            Ok(stage) => stage,
            Err(refusal) => return self.refuse(ctx, &user.login, refusal.outcome()).await,
        };
        // The second factor.
        let emergency_hash = match (factor, emergency) {
            (Some(Factor::Emergency), Some(emergency)) => {
                let bound = user
                    .emergency
                    .as_ref()
                    .filter(|e| e.expires >= now)
                    .and_then(|e| {
                        self.binding
                            .open_emergency(&user.login, e.expires, &e.hash)
                            .map(|phc| (phc, &e.hash))
                    });
                let valid = match bound {
                    Some((phc, stored)) => {
                        passwords::verify(phc, &emergency).await?.then_some(stored)
                    }
                    None => {
                        passwords::verify_nothing(&emergency).await?;
                        None
                    }
                };
                let Some(hash) = valid else {
                    return self.wrong_password(ctx, &user, "login", key_session).await;
                };
                Some(hash.clone())
            }
            _ => None,
        };
        if let (Some(Factor::Otp), Some(code)) = (factor, otp) {
            self.check_otp(ctx, &user, code, now).await?;
        }

        // Where the bank's policy asks for it, a key login ends with a code by SMS; the
        // session is logged in only by `confirm_login`.
        let sms_to = if stage == Stage::Key
            && self.policy.login_second_step == crate::config::SecondStep::Sms
        {
            let phone = self
                .store
                .read()
                .await?
                .contact(user.id)
                .await?
                .and_then(|row| self.contact_of(user.id, row).phone);
            match phone {
                Some(p) if self.sms.is_some() => Some(p),
                _ => {
                    self.audit_alone(ctx.event(
                        &user.login,
                        "login",
                        "refused: no mobile number for the SMS code",
                        "",
                    ))
                    .await?;
                    return Err(not_allowed(
                        "the bank asks for a code by SMS at login and has no mobile number for \
                         you; ask the bank",
                    ));
                }
            }
        } else {
            None
        };

        // Written only if nothing it was decided on changed meanwhile.
        let mut work = self.begin().await?;
        // With an SMS step, the login succeeds (failures reset) only with the code: else each
        // right password would give a code guesser a fresh count.
        let recorded = sms_to.is_some()
            || work
                .record_login(&LoginSuccess {
                    user_id: user.id,
                    password_hash: &user.password_hash,
                    one_time: user.password_kind.one_time(),
                })
                .await?;
        let consumed = match &emergency_hash {
            Some(hash) => work.consume_emergency(user.id, hash).await?,
            None => true,
        };
        if !recorded || !consumed {
            drop(work);
            let outcome = if !recorded && user.password_kind.one_time() {
                LoginRefusal::OneTimeUsed.outcome()
            } else if !recorded {
                "refused: account locked or password changed meanwhile"
            } else {
                "refused: emergency password already used"
            };
            return self.refuse(ctx, &user.login, outcome).await;
        }
        let certificate = certificate.map(|c| certificate_status(c, now, self.renewal_window()));
        if let Some(phone) = sms_to {
            let to = self.send_login_code(&mut work, ctx, &user, &phone).await?;
            work.record(ctx.event(
                &user.login,
                "login",
                "password right; SMS code sent",
                &format!("to {to}"),
            ));
            self.commit(work).await?;
            return Ok(Reply::LoggedIn(LoginInfo {
                login: user.login,
                name: user.name,
                stage: Stage::SmsCode,
                certificate,
            }));
        }
        self.set_session_login(
            &mut work,
            &ctx.session,
            Some(&SessionLogin {
                user_id: user.id,
                stage,
            }),
        )
        .await?;
        self.note_address(&mut work, ctx, user.id, now).await?;
        let factor_name = factor.map_or("none", Factor::name);
        work.record(ctx.event(
            &user.login,
            "login",
            "ok",
            &format!("factor: {factor_name}; stage: {stage:?}"),
        ));
        self.commit(work).await?;
        Ok(Reply::LoggedIn(LoginInfo {
            login: user.login,
            name: user.name,
            stage,
            certificate,
        }))
    }

    /// Blocks a user's key on their word (login and password), from any session: the same
    /// guards as a login (address blocks, the anonymous throttle, Argon2 as often either way,
    /// a wrong password counted), then every certificate suspended and every session ended.
    async fn block_key(&self, ctx: &Ctx<'_>, login: &str, password: &Password) -> Answer {
        let now = self.unix_now();
        let shown: String = login.chars().take(64).collect();
        self.refuse_if_blocked(ctx, &shown, "suspension").await?;
        let user = user_named(&mut self.store.read().await?, login).await?;
        let Some(user) = user else {
            passwords::verify_nothing(password).await?;
            return self
                .refuse(ctx, &shown, "refused: key block for an unknown login")
                .await;
        };
        let key_session = ctx.mode == Mode::Authenticated
            && ctx.cert_login.is_some_and(|l| l.as_str() == user.login);
        if !key_session && !self.reserve_anonymous_check(user.id, now).await? {
            passwords::verify_nothing(password).await?;
            return self
                .refuse(ctx, &user.login, "refused: anonymous guesses throttled")
                .await;
        }
        if !self.password_matches(&user, password).await? {
            return self
                .wrong_password(ctx, &user, "suspension", key_session)
                .await;
        }
        let mut work = self.begin().await?;
        work.user_for_update(user.id).await?;
        self.suspend_in(
            &mut work,
            &user,
            ctx.event(&user.login, "suspension", "ok", "key blocked by the user"),
        )
        .await?;
        self.commit(work).await?;
        Ok(Reply::Done)
    }

    /// Refuses (audited as `event`) a source whose address is blocked, before anything is
    /// looked at.
    pub(crate) async fn refuse_if_blocked(
        &self,
        ctx: &Ctx<'_>,
        shown: &str,
        event: &'static str,
    ) -> Result<(), Refusal> {
        let now = self.unix_now();
        let blocked = self
            .store
            .read()
            .await?
            .ip_blocked_until(&ctx.source, now)
            .await?;
        if blocked.is_none() {
            return Ok(());
        }
        self.audit_alone(ctx.event(shown, event, "refused: address blocked", ""))
            .await?;
        Err(ApiError::new(
            ErrorCode::AddressBlocked,
            "too many failed attempts from this address; try again later",
        )
        .into())
    }

    /// Suspends every certificate of `user`, marks them suspended until a recovery, ends
    /// every session of theirs; records `event`.
    pub(crate) async fn suspend_in(
        &self,
        work: &mut Work,
        user: &UserRow,
        mut event: Event,
    ) -> Result<(), StorageError> {
        let n = work
            .revoke_all_of(user.id, self.unix_now(), RevokeReason::Suspended)
            .await?;
        work.set_suspended(user.id).await?;
        work.end_sessions_of(user.id, None).await?;
        if !event.detail.is_empty() {
            event.detail.push_str("; ");
        }
        event
            .detail
            .push_str(&format!("{n} certificate(s) suspended"));
        work.record(event);
        Ok(())
    }

    /// Reserves one of a stranger's password checks on this account (the per-account
    /// throttle of anonymous guesses); false when the window's are spent.
    async fn reserve_anonymous_check(&self, user_id: i64, now: i64) -> Result<bool, StorageError> {
        self.store
            .read()
            .await?
            .reserve_anonymous_check(
                user_id,
                self.policy.anonymous_guesses,
                now,
                secs(self.policy.anonymous_guess_seconds),
            )
            .await
    }

    /// A refused login that was not a wrong password: audited, an IP penalty point, and the
    /// generic error.
    async fn refuse(&self, ctx: &Ctx<'_>, login: &str, outcome: &str) -> Answer {
        let mut work = self.begin().await?;
        self.penalize_login(&mut work, &ctx.source).await?;
        work.record(ctx.event(login, "login", outcome, ""));
        self.commit(work).await?;
        Err(login_failed())
    }

    /// A wrong password (or emergency password): audited, an IP penalty point, and, from
    /// someone holding the key (`locks`), counted towards the lockout, exactly, by one
    /// conditional write. A stranger's guesses were throttled per account before they were
    /// checked (`reserve_anonymous_check`) and lock nothing: anyone who knows a login could
    /// otherwise lock it, and end its owner's sessions, at will.
    pub(crate) async fn wrong_password(
        &self,
        ctx: &Ctx<'_>,
        user: &UserRow,
        event: &'static str,
        locks: bool,
    ) -> Answer {
        let mut work = self.begin().await?;
        self.penalize_login(&mut work, &ctx.source).await?;
        if !locks {
            work.record(ctx.event(
                &user.login,
                event,
                "failed: wrong password",
                "anonymous session",
            ));
            self.commit(work).await?;
            return Err(login_failed());
        }
        let counted = work
            .count_wrong_password(user.id, self.policy.lockout_threshold)
            .await?;
        match counted {
            Some((failed, locked)) => {
                let detail = format!("consecutive failures: {failed}");
                work.record(ctx.event(&user.login, event, "failed: wrong password", &detail));
                if locked {
                    work.record(ctx.event(&user.login, "lockout", "locked", &detail));
                    work.end_sessions_of(user.id, None).await?;
                    let at = crate::admin::format_time(self.unix_now());
                    self.notify(&mut work, user.id, &Notice::Lockout { at: &at })
                        .await?;
                }
            }
            None => work.record(ctx.event(&user.login, event, "refused: account locked", "")),
        }
        self.commit(work).await?;
        Err(login_failed())
    }

    /// Checks a TOTP code. Each check is reserved against the limit before the code is
    /// looked at, so concurrent guesses cannot all be checked against a count read earlier.
    async fn check_otp(
        &self,
        ctx: &Ctx<'_>,
        user: &UserRow,
        code: &str,
        now: i64,
    ) -> Result<(), Refusal> {
        let Some(secret) = user
            .totp_secret
            .as_deref()
            .and_then(|s| self.binding.open_totp(&user.login, s))
            .and_then(|s| TotpSecret::from_bytes(&s).ok())
        else {
            self.refuse(ctx, &user.login, "failed: no TOTP enrolled")
                .await?;
            return Err(login_failed());
        };
        let mut conn = self.store.read().await?;
        if !conn
            .reserve_otp_check(user.id, self.policy.otp_lockout_threshold)
            .await?
        {
            drop(conn);
            self.refuse(ctx, &user.login, "refused: OTP locked").await?;
            return Err(login_failed());
        }
        let last = user.totp_last_step.and_then(|s| u64::try_from(s).ok());
        let t = u64::try_from(now).unwrap_or(0);
        let outcome = match totp::verify(&secret, code, t, last) {
            Ok(step) => {
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                if conn.otp_accepted(user.id, step).await? {
                    return Ok(());
                }
                "failed: OTP code reused".to_owned()
            }
            Err(e) => format!("failed: OTP {e}"),
        };
        drop(conn);
        self.refuse(ctx, &user.login, &outcome).await?;
        Err(login_failed())
    }

    // -----------------------------------------------------------------------------------------
    // IP penalty points.

    /// Until when `ip` is refused, if it is.
    pub async fn ip_blocked(
        &self,
        ip: &str,
        now: SystemTime,
    ) -> Result<Option<SystemTime>, StorageError> {
        let until = self
            .store
            .read()
            .await?
            .ip_blocked_until(ip, unix(now))
            .await?;
        Ok(until.map(crate::storage::from_unix))
    }

    /// One penalty point for a failed login from `source`; above the limit, a block.
    pub(crate) async fn penalize_login(
        &self,
        work: &mut Work,
        source: &str,
    ) -> Result<(), StorageError> {
        self.penalize_in(work, source, "failed logins")
            .await
            .map(drop)
    }

    /// One penalty point for `source`, for `why`; above the limit of valid points, a block,
    /// and until when.
    async fn penalize_in(
        &self,
        work: &mut Work,
        source: &str,
        why: &str,
    ) -> Result<Option<i64>, StorageError> {
        let now = self.unix_now();
        let window = secs(self.policy.ip_point_seconds);
        let points = work.add_ip_point(source, now, window).await?;
        if !rules::ip_blocked(points, self.policy.ip_max_points) {
            return Ok(None);
        }
        let until = now.saturating_add(secs(self.policy.ip_block_seconds));
        work.block_ip(source, until).await?;
        work.record(Event {
            actor: "bank".into(),
            login: String::new(),
            ip: source.to_owned(),
            event: "ip_block",
            outcome: "blocked".into(),
            detail: format!("{points} penalty points within the window ({why})"),
        });
        Ok(Some(until))
    }

    // -----------------------------------------------------------------------------------------
    // Passwords.

    async fn change_password(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        current: &Password,
        new: &Password,
    ) -> Answer {
        if !rules::may_change_password(session.stage) {
            return Err(not_allowed(
                "a password change is not possible on this session",
            ));
        }
        if !self.password_matches(user, current).await? {
            // Counted towards the lockout like a login's guess on this kind of session.
            let locks = ctx.mode == Mode::Authenticated;
            return match self
                .wrong_password(ctx, user, "password_change", locks)
                .await
            {
                Err(e) if e.0.code == ErrorCode::LoginFailed => {
                    Err(ApiError::new(ErrorCode::Forbidden, "the current password is wrong").into())
                }
                other => other,
            };
        }
        let login = Login::new(&user.login).map_err(StorageError::corrupt)?;
        if let Err(e) = new.check_new_login_password(&login) {
            self.audit_alone(ctx.event(
                &user.login,
                "password_change",
                "refused: policy",
                &e.to_string(),
            ))
            .await?;
            return Err(ApiError::new(ErrorCode::PasswordPolicy, e.to_string()).into());
        }
        if self.password_matches(user, new).await? {
            return Err(ApiError::new(
                ErrorCode::PasswordPolicy,
                "the new password must differ from the current one",
            )
            .into());
        }
        let hash = self.bind_password(
            &user.login,
            PasswordKind::Regular,
            &passwords::hash(new).await?,
        );
        let now = self.unix_now();
        let mut work = self.begin().await?;
        let has_certificate = !work.valid_certificates_of(user.id, now).await?.is_empty();
        let next = rules::stage_after_password_change(session.stage, ctx.mode, has_certificate);
        self.replace_password_in(&mut work, ctx, user, &hash, next)
            .await?;
        work.record(ctx.event(&user.login, "password_change", "ok", ""));
        self.commit(work).await?;
        Ok(Reply::PasswordChanged { next })
    }

    /// Sets the user's new password (bound hash `hash`) if the one verified is still theirs,
    /// logs out whoever else knew the old one, and leaves this session at `stage`: a change
    /// in Settings and a reset with a mailed code alike.
    pub(crate) async fn replace_password_in(
        &self,
        work: &mut Work,
        ctx: &Ctx<'_>,
        user: &UserRow,
        hash: &str,
        stage: Stage,
    ) -> Result<(), Refusal> {
        if !work
            .set_regular_password(user.id, &user.password_hash, hash)
            .await?
        {
            return Err(conflict("the password was changed meanwhile; log in again"));
        }
        work.end_sessions_of(user.id, Some(&ctx.session)).await?;
        self.set_session_login(
            work,
            &ctx.session,
            Some(&SessionLogin {
                user_id: user.id,
                stage,
            }),
        )
        .await?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // TOTP.

    async fn totp_enroll(&self, ctx: &Ctx<'_>, session: &SessionLogin, user: &UserRow) -> Answer {
        if session.stage != Stage::Key {
            return Err(not_allowed(
                "TOTP is enrolled on a session signed by the key",
            ));
        }
        let secret = TotpSecret::generate();
        let mut work = self.begin().await?;
        work.set_totp_pending(
            user.id,
            &self.binding.seal_totp(&user.login, secret.as_bytes()),
        )
        .await?;
        work.record(ctx.event(&user.login, "totp_enroll", "started", ""));
        self.commit(work).await?;
        Ok(Reply::TotpEnrollment {
            uri: totp::otpauth_uri(&secret, &self.info.name, &user.login),
        })
    }

    async fn totp_confirm(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        code: &str,
    ) -> Answer {
        if session.stage != Stage::Key {
            return Err(not_allowed(
                "TOTP is enrolled on a session signed by the key",
            ));
        }
        let mut work = self.begin().await?;
        let Some(sealed) = work.totp_pending(user.id).await? else {
            return Err(not_allowed("start TOTP enrollment first"));
        };
        let Some(secret) = self
            .binding
            .open_totp(&user.login, &sealed)
            .and_then(|s| TotpSecret::from_bytes(&s).ok())
        else {
            return Err(not_allowed("start TOTP enrollment first"));
        };
        let t = u64::try_from(self.unix_now()).unwrap_or(0);
        let step = match totp::verify(&secret, code, t, None) {
            Ok(step) => step,
            Err(e) => {
                work.record(ctx.event(&user.login, "totp_enroll", "failed", &e.to_string()));
                self.commit(work).await?;
                return Err(ApiError::new(ErrorCode::Invalid, e.to_string()).into());
            }
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        if !work.confirm_totp(user.id, &sealed, step).await? {
            return Err(conflict("TOTP enrollment changed meanwhile; start again"));
        }
        work.record(ctx.event(&user.login, "totp_enroll", "ok", ""));
        self.commit(work).await?;
        Ok(Reply::Done)
    }

    // -----------------------------------------------------------------------------------------
    // Certificates.

    pub(crate) fn renewal_window(&self) -> i64 {
        i64::try_from(self.policy.renewal_window().as_secs()).unwrap_or(i64::MAX)
    }

    /// The certificate that signed this session, if the bank issued it to `user`.
    pub(crate) async fn session_certificate(
        &self,
        ctx: &Ctx<'_>,
        user: &UserRow,
    ) -> Result<Option<CertificateRow>, StorageError> {
        let Some(serial) = ctx.serial else {
            return Ok(None);
        };
        Ok(self
            .store
            .read()
            .await?
            .certificate(&pki::serial_hex(serial))
            .await?
            .filter(|c| c.user_id == user.id))
    }

    async fn request_certificate(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        csr: &[u8],
    ) -> Answer {
        let now = self.unix_now();
        let current = self
            .session_certificate(ctx, user)
            .await?
            .filter(|c| c.revoked.is_none());
        let has_valid = !self
            .store
            .read()
            .await?
            .valid_certificates_of(user.id, now)
            .await?
            .is_empty();
        let purpose = rules::certificate_purpose(
            session.stage,
            has_valid,
            current.as_ref().map(|c| c.not_after),
            now,
            self.renewal_window(),
        )
        .map_err(|r| self.certificate_refusal(r))?;
        let verified = pki::verify_csr(csr)
            .map_err(|e| ApiError::new(ErrorCode::Invalid, format!("certificate request: {e}")))?;
        let login = Login::new(&user.login).map_err(StorageError::corrupt)?;
        if let (CertPurpose::Renewal, Some(current)) = (purpose, &current) {
            let current = Certificate::from_der(&current.der).map_err(StorageError::corrupt)?;
            let new_key = verified
                .public_key()
                .to_public_key_der()
                .map_err(|e| ApiError::new(ErrorCode::Invalid, e.to_string()))?;
            let old_key = current
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .map_err(StorageError::corrupt)?;
            if new_key.as_bytes() == old_key.as_slice() {
                return Err(ApiError::new(
                    ErrorCode::Invalid,
                    "renewal needs a new key, not the current one",
                )
                .into());
            }
        }
        let kind = {
            let mut read = self.store.read().await?;
            if self.roles_of(&mut read, user).await?.is_some() {
                pki::CertKind::Admin
            } else {
                pki::CertKind::Client
            }
        };
        let cert = self
            .ca
            .issue_certificate(
                &verified,
                &login,
                kind,
                self.now(),
                self.policy.certificate_validity(),
            )
            .map_err(|e| {
                // The bank's own fault (no CA key here, the HSM gone) is not the request's.
                let code = match e {
                    pki::PkiError::NoCaKey | pki::PkiError::Sign(_) => ErrorCode::Internal,
                    _ => ErrorCode::Invalid,
                };
                ApiError::new(code, e.to_string())
            })?;
        let der = cert.to_der().map_err(StorageError::corrupt)?;
        let tbs = cert.tbs_certificate();
        let serial = pki::serial_hex(tbs.serial_number());

        let mut work = self.begin().await?;
        // The user's row orders their certificate requests; the session must still be where
        // the purpose was decided (a second request on one recovery session is refused).
        work.user_for_update(user.id).await?;
        if self.session_login(&mut work, &ctx.session).await?.as_ref() != Some(session) {
            return Err(conflict("the session changed meanwhile; log in again"));
        }
        if purpose == CertPurpose::Enroll
            && !work.valid_certificates_of(user.id, now).await?.is_empty()
        {
            return Err(self.certificate_refusal(CertificateRefusal::AlreadyEnrolled));
        }
        if purpose == CertPurpose::Recovery {
            work.revoke_all_of(user.id, now, RevokeReason::Recovery)
                .await?;
            work.finish_recovery(user.id).await?;
            // Whoever held the lost key is logged out everywhere; this session goes on
            // only to hand over the new certificate.
            work.end_sessions_of(user.id, Some(&ctx.session)).await?;
            work.record(ctx.event(&user.login, "revocation", "ok", "recovery"));
        }
        // Key letters are for clients; an admin's key is enrolled at the bank, and the first
        // security officer would have nobody to activate theirs.
        let activation = match (self.policy.activation, kind) {
            (crate::config::Activation::Letter, pki::CertKind::Client) => Activation::Pending,
            _ => Activation::Immediate,
        };
        work.insert_certificate(&NewCertificate {
            serial: &serial,
            user_id: user.id,
            der: &der,
            not_before: unix(tbs.validity().not_before.to_system_time()),
            not_after: unix(tbs.validity().not_after.to_system_time()),
            issued_at: now,
            purpose,
            activation,
            activation_tag: &self.binding.activation_tag(&serial, activation),
        })
        .await?;
        self.set_session_login(
            &mut work,
            &ctx.session,
            Some(&SessionLogin {
                user_id: user.id,
                stage: rules::stage_after_certificate(purpose),
            }),
        )
        .await?;
        let event = match purpose {
            CertPurpose::Enroll => "key_issuance",
            CertPurpose::Renewal => "renewal",
            CertPurpose::Recovery => "recovery",
        };
        work.record(ctx.event(
            &user.login,
            event,
            "ok",
            &format!(
                "serial {serial}; {} certificate; activation {}",
                kind.as_str(),
                activation.to_db()
            ),
        ));
        self.commit(work).await?;
        Ok(Reply::Certificate {
            certificate: der,
            serial,
        })
    }

    fn certificate_refusal(&self, r: CertificateRefusal) -> Refusal {
        match r {
            CertificateRefusal::AlreadyEnrolled => {
                not_allowed("the user already has a valid certificate")
            }
            CertificateRefusal::NoCurrentCertificate => {
                not_allowed("renewal needs a certificate of this bank")
            }
            CertificateRefusal::RenewalNotOpen => not_allowed(&format!(
                "renewal opens {} days before the certificate expires",
                self.policy.renewal_window_days
            )),
            CertificateRefusal::WrongStage => {
                not_allowed("a certificate cannot be requested on this session")
            }
        }
    }
}

impl Ctx<'_> {
    pub(crate) fn event(
        &self,
        login: &str,
        event: &'static str,
        outcome: &str,
        detail: &str,
    ) -> Event {
        Event {
            actor: "user".into(),
            login: login.to_owned(),
            ip: self.ip.clone(),
            event,
            outcome: outcome.to_owned(),
            detail: detail.to_owned(),
        }
    }
}

/// A session certificate's dates, as a login's reply tells them.
pub(crate) fn certificate_status(c: CertificateRow, now: i64, window: i64) -> CertificateStatus {
    CertificateStatus {
        renewal_open: rules::renewal_open(c.not_after, now, window),
        not_after: u64::try_from(c.not_after).unwrap_or(0),
        serial: c.serial,
    }
}

/// The user with this login, if the text is a login and there is one.
pub(crate) async fn user_named<C>(
    conn: &mut Conn<C>,
    login: &str,
) -> Result<Option<UserRow>, StorageError>
where
    C: DerefMut<Target = sqlx::AnyConnection> + Send,
{
    match Login::new(login) {
        Ok(l) => conn.user_by_login(l.as_str()).await,
        Err(_) => Ok(None),
    }
}

pub(crate) fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

/// The CA certificate's SHA-256, hex: what ties a database to its bank.
fn ca_fingerprint(ca: &BankCa) -> Result<String, StorageError> {
    let der = ca.certificate().to_der().map_err(StorageError::corrupt)?;
    Ok(data_encoding::HEXLOWER.encode(ring::digest::digest(&ring::digest::SHA256, &der).as_ref()))
}

/// An address as the audit log shows it: IPv4-mapped IPv6 folded to IPv4.
pub fn ip_text(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "unknown".to_string(), |ip| unmapped(ip).to_string())
}

impl Handler for Bank {
    fn now(&self) -> SystemTime {
        self.clock.now()
    }

    async fn handle(&self, session: &SessionInfo, request: Zeroizing<Vec<u8>>) -> Vec<u8> {
        let ctx = Ctx {
            session: id_text(session.id),
            mode: session.mode,
            serial: session.client.as_ref().map(|c| &c.serial),
            cert_login: session.client.as_ref().map(|c| &c.login),
            cert_kind: session.client.as_ref().map(|c| c.kind),
            ip: ip_text(session.peer.map(|p| p.ip())),
            source: source_of(session.peer.map(|p| p.ip())),
            login: session.login.as_ref(),
        };
        let response: Response = match serde_json::from_slice::<Request>(&request) {
            Ok(request) => self.dispatch(&ctx, request).await.map_err(|r| r.0),
            Err(e) => Err(ApiError::new(
                ErrorCode::Invalid,
                format!("malformed request: {e}"),
            )),
        };
        // Serializing these types cannot fail.
        serde_json::to_vec(&response).unwrap_or_default()
    }

    async fn certificate_refusal(
        &self,
        serial: &SerialNumber,
    ) -> Result<Option<pki::CertError>, StoreError> {
        let cert = async {
            self.store
                .read()
                .await?
                .certificate(&pki::serial_hex(serial))
                .await
        }
        .await
        .map_err(|e| StoreError(e.to_string()))?;
        // A certificate the bank has no record of counts as revoked: fail closed; so does one
        // whose activation state was written without the bank's key.
        let Some(c) = cert.filter(|c| c.revoked.is_none()) else {
            return Ok(Some(pki::CertError::Revoked));
        };
        let bound = c
            .activation_tag
            .as_deref()
            .is_some_and(|t| self.binding.activation_holds(&c.serial, c.activation, t));
        Ok(match (bound, c.activation) {
            (false, _) => {
                tracing::error!(serial = %c.serial, "a certificate's activation is not bound to this bank: refused");
                Some(pki::CertError::Revoked)
            }
            (true, Activation::Pending) => Some(pki::CertError::NotActivated),
            (true, Activation::Immediate | Activation::Activated) => None,
        })
    }

    async fn penalize(&self, source: &str, why: &'static str) -> Option<SystemTime> {
        let outcome = async {
            let mut work = self.begin().await?;
            let until = self.penalize_in(&mut work, source, why).await?;
            self.commit(work).await?;
            Ok::<_, StorageError>(until)
        }
        .await;
        match outcome {
            Ok(until) => until.map(crate::storage::from_unix),
            Err(e) => {
                tracing::error!(error = %e, "recording a penalty point failed");
                None
            }
        }
    }

    async fn blocked_sources(
        &self,
        now: SystemTime,
    ) -> Result<Vec<(String, SystemTime)>, StoreError> {
        let rows = async { self.store.read().await?.blocked_sources(unix(now)).await }
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(rows
            .into_iter()
            .map(|(ip, until)| (ip, crate::storage::from_unix(until)))
            .collect())
    }
}

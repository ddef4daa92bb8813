//! The bank: the application behind the secure channel. Each request arrives opened, with
//! the session it came on; the bank checks the session's login and the user's rights, does
//! the work in one database transaction with its audit record, and answers.
//!
//! Login rules (docs/ARCHITECTURE.md has the full table):
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
use std::sync::Arc;
use std::time::SystemTime;

use sqlx::{AnyConnection, Row as _};
use tresor_core::api::{
    ApiError, CertificateStatus, ErrorCode, LoginInfo, Menus, Reply, Request, Response, Stage,
};
use tresor_core::channel::{Mode, SessionId};
use tresor_core::pki::{self, BankCa};
use tresor_core::totp::{self, TotpSecret};
use tresor_core::x509_cert::der::{Decode as _, Encode as _};
use tresor_core::x509_cert::serial_number::SerialNumber;
use tresor_core::x509_cert::{Certificate, spki::EncodePublicKey as _};
use tresor_core::{Login, Password};
use zeroize::Zeroizing;

use crate::audit::{self, Event};
use crate::channel::{Handler, SessionInfo, StoreError};
use crate::clock::Clock;
use crate::config::Policy;
use crate::data::BankSecrets;
use crate::passwords;
use crate::sessions::{self, SessionLogin};
use crate::store::{StorageError, Store, from_unix, unix};

/// The bank's application.
pub struct Bank {
    pub(crate) store: Store,
    pub(crate) ca: BankCa,
    pub(crate) audit_key: Zeroizing<[u8; 32]>,
    pub(crate) policy: Policy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) name: String,
}

/// What a request handler needs to know about where the request came from.
pub(crate) struct Ctx<'a> {
    pub(crate) session: SessionId,
    pub(crate) mode: Mode,
    /// The certificate serial that signed the handshake.
    pub(crate) serial: Option<&'a SerialNumber>,
    /// The login bound to that certificate.
    pub(crate) cert_login: Option<&'a Login>,
    pub(crate) ip: String,
}

/// A user row.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) id: i64,
    pub(crate) login: String,
    pub(crate) name: String,
    pub(crate) password_hash: String,
    pub(crate) password_kind: String,
    pub(crate) password_expires: Option<i64>,
    pub(crate) password_used: bool,
    pub(crate) failed_logins: i64,
    pub(crate) locked: bool,
    pub(crate) menus: Menus,
    pub(crate) emergency_hash: Option<String>,
    pub(crate) emergency_expires: Option<i64>,
    pub(crate) recovery_pending: bool,
    pub(crate) totp_secret: Option<Vec<u8>>,
    pub(crate) totp_last_step: Option<i64>,
    pub(crate) otp_failures: i64,
}

pub(crate) const USER_COLUMNS: &str = "id, login, name, password_hash, password_kind, \
    password_expires, password_used, failed_logins, locked, menus, emergency_hash, \
    emergency_expires, recovery_pending, totp_secret, totp_last_step, otp_failures";

impl User {
    pub(crate) fn from_row(r: &sqlx::any::AnyRow) -> Result<Self, StorageError> {
        let menus: String = r.try_get("menus")?;
        Ok(Self {
            id: r.try_get("id")?,
            login: r.try_get("login")?,
            name: r.try_get("name")?,
            password_hash: r.try_get("password_hash")?,
            password_kind: r.try_get("password_kind")?,
            password_expires: r.try_get("password_expires")?,
            password_used: r.try_get::<i64, _>("password_used")? != 0,
            failed_logins: r.try_get("failed_logins")?,
            locked: r.try_get::<i64, _>("locked")? != 0,
            menus: if menus == "limited" {
                Menus::Limited
            } else {
                Menus::Full
            },
            emergency_hash: r.try_get("emergency_hash")?,
            emergency_expires: r.try_get("emergency_expires")?,
            recovery_pending: r.try_get::<i64, _>("recovery_pending")? != 0,
            totp_secret: r.try_get("totp_secret")?,
            totp_last_step: r.try_get("totp_last_step")?,
            otp_failures: r.try_get("otp_failures")?,
        })
    }

    fn one_time_password(&self) -> bool {
        self.password_kind != "regular"
    }
}

/// Password kinds, as stored.
pub(crate) const INITIAL: &str = "initial";
pub(crate) const TEMPORARY: &str = "temporary";
pub(crate) const REGULAR: &str = "regular";

pub(crate) fn login_failed() -> Refusal {
    Refusal::from(ApiError::new(
        ErrorCode::LoginFailed,
        "login failed: check the login, the password and the second factor",
    ))
}

pub(crate) fn not_allowed(what: &str) -> Refusal {
    Refusal(ApiError::new(ErrorCode::NotAllowed, what))
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

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        internal(StorageError::Database(e))
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
        sqlx::query("INSERT INTO meta (key, value) VALUES ('ca', $1) ON CONFLICT (key) DO NOTHING")
            .bind(&ours)
            .execute(store.pool())
            .await
            .map_err(StorageError::from)?;
        let stored: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'ca'")
            .fetch_one(store.pool())
            .await
            .map_err(StorageError::from)?;
        if stored != ours {
            return Err(BankError::WrongCa { stored, ours });
        }
        Ok(Self {
            store,
            ca,
            audit_key: Zeroizing::new(*secrets.audit_key),
            policy,
            clock,
            name: name.to_owned(),
        })
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The rules.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The bank CA.
    pub fn ca(&self) -> &BankCa {
        &self.ca
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Appends an audit record inside `conn`'s transaction.
    pub(crate) async fn audit(
        &self,
        conn: &mut AnyConnection,
        e: Event<'_>,
    ) -> Result<(), StorageError> {
        audit::append(conn, &self.audit_key, self.now(), &e).await?;
        Ok(())
    }

    /// Appends an audit record in a transaction of its own.
    pub(crate) async fn audit_alone(&self, e: Event<'_>) -> Result<(), StorageError> {
        let mut tx = self.store.begin().await?;
        self.audit(&mut tx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn user_by_login(&self, login: &str) -> Result<Option<User>, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(login)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(User::from_row).transpose()
    }

    pub(crate) async fn user_by_id(&self, id: i64) -> Result<User, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(self.store.pool())
            .await?;
        User::from_row(&row)
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
        let Some(session) = sessions::login_of(&self.store, ctx.session).await? else {
            return Err(not_allowed("log in first"));
        };
        let user = self.user_by_id(session.user_id).await?;
        if user.locked {
            return Err(not_allowed("the account is locked; ask the bank"));
        }
        match request {
            // Answered above, before the session's login is looked up.
            Request::Login { .. } => Err(not_allowed("log in first")),
            Request::ChangePassword { current, new } => {
                self.change_password(ctx, &session, &user, &current, &new)
                    .await
            }
            Request::RequestCertificate { csr } => {
                self.request_certificate(ctx, &session, &user, &csr).await
            }
            Request::Overview => self.overview(&session, &user).await,
            Request::TotpEnroll => self.totp_enroll(ctx, &session, &user).await,
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
            Request::Logout => {
                let mut tx = self.store.begin().await?;
                sessions::set_login(&mut tx, ctx.session, None).await?;
                self.audit(&mut tx, ctx.event(&user.login, "logout", "ok", ""))
                    .await?;
                tx.commit().await?;
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
        let now = self.now();
        if sessions::login_of(&self.store, ctx.session)
            .await?
            .is_some()
        {
            return Err(not_allowed(
                "already logged in on this session; log out first",
            ));
        }
        // An audit record names at most 64 characters of whatever was typed as a login.
        let shown: String = login.chars().take(64).collect();
        if let Some(until) = self.ip_blocked(&ctx.ip, now).await? {
            self.audit_alone(ctx.event(&shown, "login", "refused: address blocked", ""))
                .await?;
            let minutes = until
                .duration_since(now)
                .map_or(1, |d| d.as_secs().div_ceil(60));
            return Err(ApiError::new(
                ErrorCode::AddressBlocked,
                format!("too many failed logins from this address; try again in {minutes} minutes"),
            )
            .into());
        }
        let user = match Login::new(login) {
            Ok(l) => self.user_by_login(l.as_str()).await?,
            Err(_) => None,
        };
        let Some(user) = user else {
            passwords::verify_nothing(password).await;
            return self.refuse(ctx, &shown, "failed: unknown login").await;
        };
        // A key session logs in only the login its certificate is bound to, with a
        // certificate the bank issued to this user and still holds valid.
        let mut cert_not_after = None;
        if ctx.mode == Mode::Authenticated {
            let bound = ctx.cert_login.is_some_and(|l| l.as_str() == user.login);
            if bound {
                cert_not_after = self.current_certificate(ctx, &user, now).await?;
            }
            if cert_not_after.is_none() {
                passwords::verify_nothing(password).await;
                return self
                    .refuse(ctx, &user.login, "failed: certificate of another login")
                    .await;
            }
        }
        if user.locked {
            passwords::verify_nothing(password).await;
            let refused = self
                .refuse(ctx, &user.login, "refused: account locked")
                .await;
            // The key's holder may learn that the account is locked (and so call the bank);
            // the password was not checked, so this says nothing about it.
            return if ctx.mode == Mode::Authenticated {
                refused.map_err(|e| {
                    if e.0.code == ErrorCode::LoginFailed {
                        Refusal(ApiError::new(
                            ErrorCode::AccountLocked,
                            "the account is locked; ask the bank for a temporary password",
                        ))
                    } else {
                        e
                    }
                })
            } else {
                refused
            };
        }
        if !passwords::verify(&user.password_hash, password).await {
            return self.wrong_password(ctx, &user, "login").await;
        }
        if user.one_time_password() {
            if user.password_used {
                return self
                    .refuse(ctx, &user.login, "refused: one-time password already used")
                    .await;
            }
            if user.password_expires.is_some_and(|e| e < unix(now)) {
                return self
                    .refuse(ctx, &user.login, "refused: one-time password expired")
                    .await;
            }
        }

        // The second factor decides the stage.
        let (stage, factor) = match (ctx.mode, otp, emergency) {
            (Mode::Authenticated, None, None) => (Stage::Key, "key"),
            (Mode::Anonymous, None, Some(emergency)) => {
                let valid = match (&user.emergency_hash, user.emergency_expires) {
                    (Some(hash), Some(expires)) if expires >= unix(now) => {
                        passwords::verify(hash, &emergency).await
                    }
                    _ => {
                        passwords::verify_nothing(&emergency).await;
                        false
                    }
                };
                if !valid {
                    return self.wrong_password(ctx, &user, "login").await;
                }
                (Stage::Recovery, "emergency password")
            }
            (Mode::Anonymous, Some(code), None) => {
                self.check_otp(ctx, &user, code, now).await?;
                (Stage::Otp, "otp")
            }
            (Mode::Anonymous, None, None) if user.one_time_password() => {
                (Stage::ChangePassword, "one-time password")
            }
            _ => {
                return self
                    .refuse(ctx, &user.login, "failed: no usable second factor")
                    .await;
            }
        };
        let stage = if user.one_time_password() && stage != Stage::Recovery {
            Stage::ChangePassword
        } else {
            stage
        };

        let mut tx = self.store.begin().await?;
        // Not locked meanwhile by a concurrent wrong attempt.
        let done = sqlx::query(
            "UPDATE users SET failed_logins = 0, password_used = $1, emergency_hash = $2, \
             emergency_expires = $3 WHERE id = $4 AND locked = 0",
        )
        .bind(i64::from(user.one_time_password()))
        .bind(if stage == Stage::Recovery {
            None
        } else {
            user.emergency_hash.clone()
        })
        .bind(if stage == Stage::Recovery {
            None
        } else {
            user.emergency_expires
        })
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            drop(tx);
            return self
                .refuse(ctx, &user.login, "refused: account locked")
                .await;
        }
        let session = SessionLogin {
            user_id: user.id,
            stage,
        };
        sessions::set_login(&mut tx, ctx.session, Some(&session)).await?;
        let detail = format!("factor: {factor}; stage: {stage:?}");
        self.audit(&mut tx, ctx.event(&user.login, "login", "ok", &detail))
            .await?;
        tx.commit().await?;

        let certificate = match (ctx.serial, cert_not_after) {
            (Some(serial), Some(not_after)) => Some(CertificateStatus {
                serial: pki::serial_hex(serial),
                not_after: u64::try_from(not_after).unwrap_or(0),
                renewal_open: self.renewal_open(from_unix(not_after), now),
            }),
            _ => None,
        };
        Ok(Reply::LoggedIn(LoginInfo {
            login: user.login,
            name: user.name,
            stage,
            certificate,
        }))
    }

    /// A refused login that was not a wrong password: audited, an IP penalty point, and the
    /// generic error.
    async fn refuse(&self, ctx: &Ctx<'_>, login: &str, outcome: &str) -> Answer {
        let mut tx = self.store.begin().await?;
        self.penalize(&mut tx, &ctx.ip).await?;
        self.audit(&mut tx, ctx.event(login, "login", outcome, ""))
            .await?;
        tx.commit().await?;
        Err(login_failed())
    }

    /// A wrong password (or emergency password): counted towards the lockout, exactly, by
    /// one conditional UPDATE; audited; an IP penalty point.
    pub(crate) async fn wrong_password(&self, ctx: &Ctx<'_>, user: &User, event: &str) -> Answer {
        let mut tx = self.store.begin().await?;
        let row = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1, \
             locked = CASE WHEN failed_logins + 1 >= $1 THEN 1 ELSE 0 END \
             WHERE id = $2 AND locked = 0 RETURNING failed_logins, locked",
        )
        .bind(i64::from(self.policy.lockout_threshold))
        .bind(user.id)
        .fetch_optional(&mut *tx)
        .await?;
        self.penalize(&mut tx, &ctx.ip).await?;
        match row {
            Some(row) => {
                let failed: i64 = row.try_get("failed_logins")?;
                let locked: i64 = row.try_get("locked")?;
                let detail = format!("consecutive failures: {failed}");
                self.audit(
                    &mut tx,
                    ctx.event(&user.login, event, "failed: wrong password", &detail),
                )
                .await?;
                if locked != 0 {
                    self.audit(
                        &mut tx,
                        ctx.event(&user.login, "lockout", "locked", &detail),
                    )
                    .await?;
                    sessions::end_all_of(&mut tx, user.id).await?;
                }
            }
            None => {
                self.audit(
                    &mut tx,
                    ctx.event(&user.login, event, "refused: account locked", ""),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Err(login_failed())
    }

    async fn check_otp(
        &self,
        ctx: &Ctx<'_>,
        user: &User,
        code: &str,
        now: SystemTime,
    ) -> Result<(), Refusal> {
        let Some(secret) = user
            .totp_secret
            .as_deref()
            .and_then(|s| TotpSecret::from_bytes(s).ok())
        else {
            self.refuse(ctx, &user.login, "failed: no TOTP enrolled")
                .await?;
            return Err(login_failed());
        };
        if user.otp_failures >= i64::from(self.policy.otp_lockout_threshold) {
            self.refuse(ctx, &user.login, "refused: OTP locked").await?;
            return Err(login_failed());
        }
        let last = user.totp_last_step.and_then(|s| u64::try_from(s).ok());
        let t = u64::try_from(unix(now)).unwrap_or(0);
        match totp::verify(&secret, code, t, last) {
            Ok(step) => {
                // Compare-and-set on the last step, so that two logins racing with one code
                // cannot both pass.
                let done = sqlx::query(
                    "UPDATE users SET totp_last_step = $1, otp_failures = 0 \
                     WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
                )
                .bind(i64::try_from(step).unwrap_or(i64::MAX))
                .bind(user.id)
                .execute(self.store.pool())
                .await?;
                if done.rows_affected() == 1 {
                    return Ok(());
                }
                self.refuse(ctx, &user.login, "failed: OTP code reused")
                    .await?;
                Err(login_failed())
            }
            Err(e) => {
                let mut tx = self.store.begin().await?;
                sqlx::query("UPDATE users SET otp_failures = otp_failures + 1 WHERE id = $1")
                    .bind(user.id)
                    .execute(&mut *tx)
                    .await?;
                self.penalize(&mut tx, &ctx.ip).await?;
                self.audit(
                    &mut tx,
                    ctx.event(&user.login, "login", &format!("failed: OTP {e}"), ""),
                )
                .await?;
                tx.commit().await?;
                Err(login_failed())
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // IP penalty points.

    /// Until when `ip` is refused, if it is.
    pub async fn ip_blocked(
        &self,
        ip: &str,
        now: SystemTime,
    ) -> Result<Option<SystemTime>, StorageError> {
        let until: Option<i64> =
            sqlx::query_scalar("SELECT until FROM ip_blocks WHERE ip = $1 AND until > $2")
                .bind(ip)
                .bind(unix(now))
                .fetch_optional(self.store.pool())
                .await?;
        Ok(until.map(from_unix))
    }

    /// One penalty point for `ip`; above the limit of valid points, a block.
    async fn penalize(&self, conn: &mut AnyConnection, ip: &str) -> Result<(), StorageError> {
        let now = unix(self.now());
        let window = i64::try_from(self.policy.ip_point_seconds).unwrap_or(i64::MAX);
        sqlx::query("DELETE FROM ip_points WHERE at <= $1")
            .bind(now - window)
            .execute(&mut *conn)
            .await?;
        sqlx::query("INSERT INTO ip_points (ip, at) VALUES ($1, $2)")
            .bind(ip)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        let points: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM ip_points WHERE ip = $1 AND at > $2")
                .bind(ip)
                .bind(now - window)
                .fetch_one(&mut *conn)
                .await?;
        if points > i64::from(self.policy.ip_max_points) {
            let until = now + i64::try_from(self.policy.ip_block_seconds).unwrap_or(i64::MAX);
            sqlx::query(
                "INSERT INTO ip_blocks (ip, until) VALUES ($1, $2) \
                 ON CONFLICT (ip) DO UPDATE SET until = $2",
            )
            .bind(ip)
            .bind(until)
            .execute(&mut *conn)
            .await?;
            // The points that caused the block are spent.
            sqlx::query("DELETE FROM ip_points WHERE ip = $1")
                .bind(ip)
                .execute(&mut *conn)
                .await?;
            audit::append(
                conn,
                &self.audit_key,
                self.now(),
                &Event {
                    actor: "bank",
                    login: "",
                    ip,
                    event: "ip_block",
                    outcome: "blocked",
                    detail: &format!("{points} failed logins within the penalty window"),
                },
            )
            .await?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Passwords.

    async fn change_password(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &User,
        current: &Password,
        new: &Password,
    ) -> Answer {
        if !matches!(
            session.stage,
            Stage::ChangePassword | Stage::Key | Stage::Otp
        ) {
            return Err(not_allowed(
                "a password change is not possible on this session",
            ));
        }
        if !passwords::verify(&user.password_hash, current).await {
            // Counted towards the lockout like any password guess.
            return match self.wrong_password(ctx, user, "password_change").await {
                Err(e) if e.0.code == ErrorCode::LoginFailed => {
                    Err(ApiError::new(ErrorCode::Forbidden, "the current password is wrong").into())
                }
                other => other,
            };
        }
        let login =
            Login::new(&user.login).map_err(|e| internal(StorageError::Corrupt(e.to_string())))?;
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
        if passwords::verify(&user.password_hash, new).await {
            return Err(ApiError::new(
                ErrorCode::PasswordPolicy,
                "the new password must differ from the current one",
            )
            .into());
        }
        let hash = passwords::hash(new).await;
        let next = match (session.stage, ctx.mode) {
            (Stage::ChangePassword, Mode::Authenticated) => Stage::Key,
            (Stage::ChangePassword, Mode::Anonymous) => {
                if self.active_certificates(user.id).await?.is_empty() {
                    Stage::Enroll
                } else {
                    Stage::Reconnect
                }
            }
            (stage, _) => stage,
        };
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_kind = $2, password_expires = NULL, \
             password_used = 0, failed_logins = 0 WHERE id = $3",
        )
        .bind(hash)
        .bind(REGULAR)
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
        sessions::set_login(
            &mut tx,
            ctx.session,
            Some(&SessionLogin {
                user_id: user.id,
                stage: next,
            }),
        )
        .await?;
        self.audit(&mut tx, ctx.event(&user.login, "password_change", "ok", ""))
            .await?;
        tx.commit().await?;
        Ok(Reply::PasswordChanged { next })
    }

    // -----------------------------------------------------------------------------------------
    // TOTP.

    async fn totp_enroll(&self, ctx: &Ctx<'_>, session: &SessionLogin, user: &User) -> Answer {
        if session.stage != Stage::Key {
            return Err(not_allowed(
                "TOTP is enrolled on a session signed by the key",
            ));
        }
        let secret = TotpSecret::generate();
        let mut tx = self.store.begin().await?;
        sqlx::query("UPDATE users SET totp_pending = $1 WHERE id = $2")
            .bind(secret.as_bytes().to_vec())
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        self.audit(
            &mut tx,
            ctx.event(&user.login, "totp_enroll", "started", ""),
        )
        .await?;
        tx.commit().await?;
        Ok(Reply::TotpEnrollment {
            uri: totp::otpauth_uri(&secret, &self.name, &user.login),
        })
    }

    async fn totp_confirm(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &User,
        code: &str,
    ) -> Answer {
        if session.stage != Stage::Key {
            return Err(not_allowed(
                "TOTP is enrolled on a session signed by the key",
            ));
        }
        let pending: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT totp_pending FROM users WHERE id = $1")
                .bind(user.id)
                .fetch_one(self.store.pool())
                .await?;
        let Some(secret) = pending
            .as_deref()
            .and_then(|s| TotpSecret::from_bytes(s).ok())
        else {
            return Err(not_allowed("start TOTP enrollment first"));
        };
        let t = u64::try_from(unix(self.now())).unwrap_or(0);
        let step = match totp::verify(&secret, code, t, None) {
            Ok(step) => step,
            Err(e) => {
                self.audit_alone(ctx.event(&user.login, "totp_enroll", "failed", &e.to_string()))
                    .await?;
                return Err(ApiError::new(ErrorCode::Invalid, e.to_string()).into());
            }
        };
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, \
             totp_last_step = $1, otp_failures = 0 WHERE id = $2",
        )
        .bind(i64::try_from(step).unwrap_or(i64::MAX))
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
        self.audit(&mut tx, ctx.event(&user.login, "totp_enroll", "ok", ""))
            .await?;
        tx.commit().await?;
        Ok(Reply::Done)
    }

    // -----------------------------------------------------------------------------------------
    // Certificates.

    /// Serials of the user's certificates that are neither revoked nor expired.
    pub(crate) async fn active_certificates(
        &self,
        user_id: i64,
    ) -> Result<Vec<String>, StorageError> {
        Ok(sqlx::query_scalar(
            "SELECT serial FROM certificates WHERE user_id = $1 AND revoked_at IS NULL \
             AND not_after > $2",
        )
        .bind(user_id)
        .bind(unix(self.now()))
        .fetch_all(self.store.pool())
        .await?)
    }

    /// The expiry of the certificate that signed this session, if the bank issued it to
    /// `user` and it is neither revoked nor expired.
    async fn current_certificate(
        &self,
        ctx: &Ctx<'_>,
        user: &User,
        now: SystemTime,
    ) -> Result<Option<i64>, StorageError> {
        let Some(serial) = ctx.serial else {
            return Ok(None);
        };
        Ok(sqlx::query_scalar(
            "SELECT not_after FROM certificates WHERE serial = $1 AND user_id = $2 \
             AND revoked_at IS NULL AND not_after > $3",
        )
        .bind(pki::serial_hex(serial))
        .bind(user.id)
        .bind(unix(now))
        .fetch_optional(self.store.pool())
        .await?)
    }

    async fn certificate_not_after(
        &self,
        serial: &SerialNumber,
    ) -> Result<Option<i64>, StorageError> {
        Ok(
            sqlx::query_scalar("SELECT not_after FROM certificates WHERE serial = $1")
                .bind(pki::serial_hex(serial))
                .fetch_optional(self.store.pool())
                .await?,
        )
    }

    pub(crate) async fn certificate_der(
        &self,
        serial: &SerialNumber,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(sqlx::query_scalar(
            "SELECT der FROM certificates WHERE serial = $1 AND revoked_at IS NULL",
        )
        .bind(pki::serial_hex(serial))
        .fetch_optional(self.store.pool())
        .await?)
    }

    fn renewal_open(&self, not_after: SystemTime, now: SystemTime) -> bool {
        not_after
            .duration_since(now)
            .is_ok_and(|left| left <= self.policy.renewal_window())
    }

    async fn request_certificate(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &User,
        csr: &[u8],
    ) -> Answer {
        let now = self.now();
        let purpose = match session.stage {
            Stage::Enroll => {
                if !self.active_certificates(user.id).await?.is_empty() {
                    return Err(not_allowed("the user already has a valid certificate"));
                }
                "enroll"
            }
            Stage::Recovery => "recovery",
            Stage::Key => {
                let serial = ctx
                    .serial
                    .ok_or_else(|| not_allowed("renewal needs the key"))?;
                let not_after = self
                    .certificate_not_after(serial)
                    .await?
                    .ok_or_else(|| not_allowed("renewal needs a certificate of this bank"))?;
                if !self.renewal_open(from_unix(not_after), now) {
                    return Err(not_allowed(
                        format!(
                            "renewal opens {} days before the certificate expires",
                            self.policy.renewal_window_days
                        )
                        .as_str(),
                    ));
                }
                "renewal"
            }
            _ => {
                return Err(not_allowed(
                    "a certificate cannot be requested on this session",
                ));
            }
        };
        let verified = pki::verify_csr(csr)
            .map_err(|e| ApiError::new(ErrorCode::Invalid, format!("certificate request: {e}")))?;
        let login =
            Login::new(&user.login).map_err(|e| internal(StorageError::Corrupt(e.to_string())))?;
        if purpose == "renewal"
            && let Some(serial) = ctx.serial
            && let Some(der) = self.certificate_der(serial).await?
        {
            let current = Certificate::from_der(&der)
                .map_err(|e| internal(StorageError::Corrupt(e.to_string())))?;
            let new_key = verified
                .public_key()
                .to_public_key_der()
                .map_err(|e| ApiError::new(ErrorCode::Invalid, e.to_string()))?;
            let old_key = current
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .map_err(|e| internal(StorageError::Corrupt(e.to_string())))?;
            if new_key.as_bytes() == old_key.as_slice() {
                return Err(ApiError::new(
                    ErrorCode::Invalid,
                    "renewal needs a new key, not the current one",
                )
                .into());
            }
        }
        let cert = self
            .ca
            .issue_client_certificate(&verified, &login, now, self.policy.certificate_validity())
            .map_err(|e| ApiError::new(ErrorCode::Invalid, e.to_string()))?;
        let der = cert
            .to_der()
            .map_err(|e| internal(StorageError::Corrupt(e.to_string())))?;
        let tbs = cert.tbs_certificate();
        let serial = pki::serial_hex(tbs.serial_number());
        let mut tx = self.store.begin().await?;
        if purpose == "recovery" {
            sqlx::query(
                "UPDATE certificates SET revoked_at = $1, revoke_reason = 'recovery' \
                 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(unix(now))
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE users SET recovery_pending = 0 WHERE id = $1")
                .bind(user.id)
                .execute(&mut *tx)
                .await?;
            self.audit(
                &mut tx,
                ctx.event(&user.login, "revocation", "ok", "recovery"),
            )
            .await?;
        }
        sqlx::query(
            "INSERT INTO certificates (serial, user_id, der, not_before, not_after, issued_at, \
             purpose) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&serial)
        .bind(user.id)
        .bind(der.clone())
        .bind(unix(tbs.validity().not_before.to_system_time()))
        .bind(unix(tbs.validity().not_after.to_system_time()))
        .bind(unix(now))
        .bind(purpose)
        .execute(&mut *tx)
        .await?;
        let next = if purpose == "renewal" {
            Stage::Key
        } else {
            Stage::Reconnect
        };
        sessions::set_login(
            &mut tx,
            ctx.session,
            Some(&SessionLogin {
                user_id: user.id,
                stage: next,
            }),
        )
        .await?;
        let event = match purpose {
            "enroll" => "key_issuance",
            "renewal" => "renewal",
            _ => "recovery",
        };
        self.audit(
            &mut tx,
            ctx.event(&user.login, event, "ok", &format!("serial {serial}")),
        )
        .await?;
        tx.commit().await?;
        Ok(Reply::Certificate {
            certificate: der,
            serial,
        })
    }
}

impl Ctx<'_> {
    pub(crate) fn event<'e>(
        &'e self,
        login: &'e str,
        event: &'e str,
        outcome: &'e str,
        detail: &'e str,
    ) -> Event<'e> {
        Event {
            actor: "user",
            login,
            ip: &self.ip,
            event,
            outcome,
            detail,
        }
    }
}

/// The CA certificate's SHA-256, hex: what ties a database to its bank.
fn ca_fingerprint(ca: &BankCa) -> Result<String, StorageError> {
    let der = ca
        .certificate()
        .to_der()
        .map_err(|e| StorageError::Corrupt(e.to_string()))?;
    Ok(data_encoding::HEXLOWER.encode(ring::digest::digest(&ring::digest::SHA256, &der).as_ref()))
}

/// An address as stored for penalties: IPv4-mapped IPv6 folded to IPv4.
pub fn ip_text(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        Some(ip) => ip.to_string(),
        None => "unknown".to_string(),
    }
}

impl Handler for Bank {
    fn now(&self) -> SystemTime {
        self.clock.now()
    }

    async fn handle(&self, session: &SessionInfo, request: Zeroizing<Vec<u8>>) -> Vec<u8> {
        let ctx = Ctx {
            session: session.id,
            mode: session.mode,
            serial: session.client.as_ref().map(|c| &c.serial),
            cert_login: session.client.as_ref().map(|c| &c.login),
            ip: ip_text(session.peer.map(|p| p.ip())),
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

    async fn is_revoked(&self, serial: &SerialNumber) -> Result<bool, StoreError> {
        // A certificate the bank has no record of counts as revoked: fail closed.
        let revoked: Option<Option<i64>> =
            sqlx::query_scalar("SELECT revoked_at FROM certificates WHERE serial = $1")
                .bind(pki::serial_hex(serial))
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| StoreError(e.to_string()))?;
        Ok(!matches!(revoked, Some(None)))
    }
}

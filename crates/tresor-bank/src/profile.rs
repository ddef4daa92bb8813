//! The user's own profile and the self-service password reset.
//!
//! A reset needs the key: "forgot my password" is asked on a session signed by a valid
//! certificate of the login, and the bank mails a one-time code to the user's verified
//! address; with the code (on such a session again) the user sets a new password. Without
//! the key, the only way stays the admin's temporary password: a mailbox alone must not
//! open an account (docs/THREAT_MODEL.md). A code is kept only as a MAC over itself and what
//! it is for, is used once (a conditioned delete in the transaction that uses it), lives 15
//! minutes, and a wrong one counts as a wrong password: towards the lockout and the
//! address's penalty points.
//!
//! An address is verified by a code mailed to it; the old address hears of the change.

use tresor_core::api::profile::Profile;
use tresor_core::api::{ApiError, ErrorCode, LoginInfo, Reply, Stage};
use tresor_core::channel::Mode;
use tresor_core::{Login, Password, pki};

use crate::admin::format_time;
use crate::bank::{Answer, Bank, Ctx, Refusal, conflict, login_failed, not_allowed};
use crate::binding::CodeFacts;
use crate::mail::{self, Notice};
use crate::passwords;
use crate::rules::voice as rules;
use crate::storage::mail::{Channel, NewCode};
use crate::storage::users::LoginSuccess;
use crate::storage::{PasswordKind, SessionLogin, StorageError, UserRow};

/// A code that sets a new password.
const RESET: &str = "reset";
/// A code that confirms a new address.
const EMAIL: &str = "email";
/// A code that completes a key login (the SMS second step).
const LOGIN: &str = "login";

impl Bank {
    /// The user a "forgot my password" or reset request is for, if this session is signed
    /// by a valid certificate of theirs and not logged in; otherwise the generic refusal,
    /// audited and counted as a failed login (a locked account is told as such to the key's
    /// holder, as a login tells it).
    async fn key_holder(&self, ctx: &Ctx<'_>, login: &str) -> Result<UserRow, Refusal> {
        let now = self.unix_now();
        let shown: String = login.chars().take(64).collect();
        let mut read = self.store.read().await?;
        if self.session_login(&mut read, &ctx.session).await?.is_some() {
            return Err(not_allowed(
                "already logged in on this session: change the password in Settings",
            ));
        }
        drop(read);
        self.refuse_if_blocked(ctx, &shown, "password_reset")
            .await?;
        let mut read = self.store.read().await?;
        let user = crate::bank::user_named(&mut read, login).await?;
        let certificate = match (ctx.mode, ctx.serial, &user) {
            (Mode::Authenticated, Some(serial), Some(user))
                if ctx.cert_login.is_some_and(|l| l.as_str() == user.login) =>
            {
                read.certificate(&pki::serial_hex(serial))
                    .await?
                    .filter(|c| c.user_id == user.id && c.valid_at(now))
            }
            _ => None,
        };
        drop(read);
        let (Some(user), Some(_)) = (user, certificate) else {
            self.refuse_reset(ctx, &shown, "refused: not a session of this login's key")
                .await?;
            return Err(login_failed());
        };
        if user.suspended {
            self.refuse_reset(ctx, &user.login, "refused: key blocked, recovery needed")
                .await?;
            return Err(login_failed());
        }
        if user.locked {
            self.refuse_reset(ctx, &user.login, "refused: account locked")
                .await?;
            return Err(ApiError::new(
                ErrorCode::AccountLocked,
                "the account is locked; ask the bank for a temporary password",
            )
            .into());
        }
        Ok(user)
    }

    /// A refused reset request: audited, and a penalty point for the address.
    async fn refuse_reset(&self, ctx: &Ctx<'_>, login: &str, outcome: &str) -> Result<(), Refusal> {
        let mut work = self.begin().await?;
        self.penalize_login(&mut work, &ctx.source).await?;
        work.record(ctx.event(login, "password_reset", outcome, ""));
        self.commit(work).await?;
        Ok(())
    }

    /// A new mailed code for `user`, kept (as its MAC) in the caller's transaction; refused
    /// while the last one is less than a minute old.
    async fn new_code(
        &self,
        work: &mut crate::bank::Work,
        user: &UserRow,
        purpose: &str,
        target: &str,
    ) -> Result<(Password, i64), Refusal> {
        let now = self.unix_now();
        if let Some(last) = work.code(user.id, purpose).await?
            && rules::too_soon_for_another_code(last.created_at, now)
        {
            return Err(conflict(
                "a code was sent less than a minute ago; look in your mail",
            ));
        }
        self.keep_code(
            work,
            user,
            purpose,
            target,
            rules::CODE_DIGITS,
            rules::CODE_SECONDS,
        )
        .await
    }

    /// A new code of `digits` for `user`, valid `seconds`, kept as its MAC in the caller's
    /// transaction (replacing any earlier one for `purpose`).
    async fn keep_code(
        &self,
        work: &mut crate::bank::Work,
        user: &UserRow,
        purpose: &str,
        target: &str,
        digits: usize,
        seconds: i64,
    ) -> Result<(Password, i64), Refusal> {
        let now = self.unix_now();
        let code = passwords::numeric_code(digits);
        let expires = now + seconds;
        let facts = CodeFacts {
            user_id: user.id,
            login: &user.login,
            purpose,
            target,
            expires,
        };
        let tag = self.binding.code_tag(&facts, code.expose());
        work.put_code(&NewCode {
            user_id: user.id,
            purpose,
            target,
            expires,
            created_at: now,
            tag: &tag,
        })
        .await?;
        Ok((code, expires))
    }

    /// A login's SMS code, sent to `phone` and bound to this session; the number masked.
    pub(crate) async fn send_login_code(
        &self,
        work: &mut crate::bank::Work,
        ctx: &Ctx<'_>,
        user: &UserRow,
        phone: &str,
    ) -> Result<String, Refusal> {
        let vault = self
            .sms
            .as_ref()
            .ok_or_else(|| not_allowed("this bank sends no SMS"))?;
        let (code, _) = self
            .keep_code(
                work,
                user,
                LOGIN,
                &ctx.session,
                crate::sms::LOGIN_CODE_DIGITS,
                crate::sms::LOGIN_CODE_SECONDS,
            )
            .await?;
        let message = crate::sms::login_code(&self.info, phone, code.expose());
        let id = mail::new_id().ok_or_else(|| StorageError::corrupt("no randomness"))?;
        let sealed = crate::sms::seal(vault, &id, &message)
            .ok_or_else(|| StorageError::corrupt("an SMS could not be sealed"))?;
        work.enqueue(Channel::Sms, &id, &sealed, self.unix_now())
            .await?;
        Ok(crate::sms::mask_phone(phone))
    }

    /// The second step of a key login: the code sent by SMS, on the session it was sent for.
    /// A wrong one counts as a wrong password; a right one logs the session in.
    pub(crate) async fn confirm_login(&self, ctx: &Ctx<'_>, code: &Password) -> Answer {
        let now = self.unix_now();
        let mut read = self.store.read().await?;
        if self.session_login(&mut read, &ctx.session).await?.is_some() {
            return Err(not_allowed("already logged in on this session"));
        }
        if read.ip_blocked_until(&ctx.source, now).await?.is_some() {
            return Err(ApiError::new(
                ErrorCode::AddressBlocked,
                "too many failed attempts from this address; try again later",
            )
            .into());
        }
        let Some((user_id, kept)) = read.login_code_of_session(&ctx.session).await? else {
            return Err(not_allowed(
                "no SMS code was sent for this session: log in with the key first",
            ));
        };
        let user = read
            .user_by_id(user_id)
            .await?
            .ok_or_else(|| StorageError::corrupt("a login code names a user who does not exist"))?;
        drop(read);
        // Still a session of this login's key.
        let key_of_user = ctx.mode == Mode::Authenticated
            && ctx.cert_login.is_some_and(|l| l.as_str() == user.login);
        if !key_of_user {
            return Err(login_failed());
        }
        if user.locked {
            return Err(ApiError::new(
                ErrorCode::AccountLocked,
                "the account is locked; ask the bank for a temporary password",
            )
            .into());
        }
        let facts = CodeFacts {
            user_id: user.id,
            login: &user.login,
            purpose: LOGIN,
            target: &ctx.session,
            expires: kept.expires,
        };
        if kept.expires < now || !self.binding.code_holds(&facts, code.expose(), &kept.tag) {
            return self.wrong_code(ctx, &user, "login").await;
        }
        let mut work = self.begin().await?;
        if !work.take_code(user.id, LOGIN, &kept.tag).await? {
            return Err(conflict("the code was used meanwhile; log in again"));
        }
        // The login succeeds now: failures reset, if nothing changed since the password.
        if !work
            .record_login(&LoginSuccess {
                user_id: user.id,
                password_hash: &user.password_hash,
                one_time: false,
            })
            .await?
        {
            return Err(conflict(
                "the account was locked or its password changed meanwhile; log in again",
            ));
        }
        self.set_session_login(
            &mut work,
            &ctx.session,
            Some(&SessionLogin {
                user_id: user.id,
                stage: Stage::Key,
            }),
        )
        .await?;
        self.note_address(&mut work, ctx, user.id, now).await?;
        work.record(ctx.event(
            &user.login,
            "login",
            "ok",
            "factor: key and SMS code; stage: Key",
        ));
        self.commit(work).await?;
        self.key_logged_in(ctx, user, now).await
    }

    /// The reply to a key session just logged in: the user and the certificate that signed
    /// the session, with its renewal window.
    async fn key_logged_in(&self, ctx: &Ctx<'_>, user: UserRow, now: i64) -> Answer {
        let certificate = self
            .session_certificate(ctx, &user)
            .await?
            .map(|c| crate::bank::certificate_status(c, now, self.renewal_window()));
        Ok(Reply::LoggedIn(LoginInfo {
            login: user.login,
            name: user.name,
            stage: Stage::Key,
            certificate,
        }))
    }

    /// The code kept for `user` and `purpose`, if `code` is it and it has not expired: its
    /// target and MAC.
    async fn matching_code(
        &self,
        user: &UserRow,
        purpose: &str,
        code: &Password,
    ) -> Result<Option<(String, Vec<u8>)>, Refusal> {
        let now = self.unix_now();
        let kept = self.store.read().await?.code(user.id, purpose).await?;
        Ok(kept.and_then(|k| {
            let facts = CodeFacts {
                user_id: user.id,
                login: &user.login,
                purpose,
                target: &k.target,
                expires: k.expires,
            };
            (k.expires >= now && self.binding.code_holds(&facts, code.expose(), &k.tag))
                .then_some((k.target, k.tag))
        }))
    }

    /// A wrong or expired code: a wrong password, with the error that says so.
    async fn wrong_code(&self, ctx: &Ctx<'_>, user: &UserRow, event: &'static str) -> Answer {
        match self.wrong_password(ctx, user, event, true).await {
            Err(e) if e.0.code == ErrorCode::LoginFailed => Err(ApiError::new(
                ErrorCode::Forbidden,
                "the code is wrong, used or expired; ask for a new one",
            )
            .into()),
            other => other,
        }
    }

    /// "Forgot my password", on a session of the user's key: a code to the verified address.
    pub(crate) async fn forgot_password(&self, ctx: &Ctx<'_>, login: &str) -> Answer {
        let user = self.key_holder(ctx, login).await?;
        let mut work = self.begin().await?;
        let Some(contact) = self.contact_in(&mut work, user.id).await? else {
            return Err(login_failed());
        };
        let Some(to) = contact.email.clone().filter(|_| self.mail.is_some()) else {
            drop(work);
            self.audit_alone(ctx.event(
                &user.login,
                "password_reset",
                "refused: no verified e-mail address",
                "",
            ))
            .await?;
            return Err(not_allowed(
                "the bank has no verified e-mail address for this login; ask the bank for a \
                 temporary password",
            ));
        };
        let (code, expires) = self.new_code(&mut work, &user, RESET, "").await?;
        let expires = format_time(expires);
        let masked = self
            .queue_to(
                &mut work,
                &to,
                &contact,
                &Notice::ResetCode {
                    code: &code,
                    expires: &expires,
                },
            )
            .await?
            .unwrap_or_default();
        work.record(ctx.event(
            &user.login,
            "password_reset",
            "code sent",
            &format!("to {masked}"),
        ));
        self.commit(work).await?;
        Ok(Reply::Mailed {
            login: user.login,
            to: masked,
        })
    }

    /// Sets a new password with the mailed code, on a session of the user's key, and logs
    /// this session in; every other session of the user ends.
    pub(crate) async fn reset_password(
        &self,
        ctx: &Ctx<'_>,
        login: &str,
        code: &Password,
        new: &Password,
    ) -> Answer {
        let user = self.key_holder(ctx, login).await?;
        // A new password the policy refuses spends no guess and no code.
        let checked = Login::new(&user.login).map_err(StorageError::corrupt)?;
        if let Err(e) = new.check_new_login_password(&checked) {
            return Err(ApiError::new(ErrorCode::PasswordPolicy, e.to_string()).into());
        }
        let Some((_, tag)) = self.matching_code(&user, RESET, code).await? else {
            return self.wrong_code(ctx, &user, "password_reset").await;
        };
        let hash = self.bind_password(
            &user.login,
            PasswordKind::Regular,
            &passwords::hash(new).await?,
        );
        let now = self.unix_now();
        let mut work = self.begin().await?;
        if !work.take_code(user.id, RESET, &tag).await? {
            return Err(conflict("the code was used meanwhile; ask for a new one"));
        }
        self.replace_password_in(&mut work, ctx, &user, &hash, Stage::Key)
            .await?;
        // A login from here now; the reset's own notice tells the user of it.
        work.saw_address(user.id, &ctx.source, now).await?;
        let at = format_time(now);
        self.notify(&mut work, user.id, &Notice::PasswordReset { at: &at })
            .await?;
        work.record(ctx.event(&user.login, "password_reset", "ok", "with a mailed code"));
        self.commit(work).await?;
        self.key_logged_in(ctx, user, now).await
    }

    /// The user's profile.
    pub(crate) async fn profile(&self, session: &SessionLogin, user: &UserRow) -> Answer {
        if !matches!(session.stage, Stage::Key | Stage::Otp) {
            return Err(not_allowed("the profile is not available on this session"));
        }
        let mut read = self.store.read().await?;
        let contact = read
            .contact(user.id)
            .await?
            .map(|row| self.contact_of(user.id, row));
        let pending = read
            .code(user.id, EMAIL)
            .await?
            .filter(|c| c.expires >= self.unix_now())
            .map(|c| mail::mask(&c.target));
        let contact = contact.ok_or_else(|| StorageError::corrupt("no user"))?;
        Ok(Reply::Profile(Profile {
            email: contact.email,
            pending_email: pending,
            language: contact.language,
            quiet: contact.quiet,
            bank_sends_mail: self.mail.is_some(),
        }))
    }

    /// Asks to move the user's mail to `email`: a code to it, a notice to the old address.
    pub(crate) async fn set_email(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        email: &str,
    ) -> Answer {
        if session.stage != Stage::Key {
            return Err(not_allowed(
                "the e-mail address can be changed only on a session with the key",
            ));
        }
        if self.mail.is_none() {
            return Err(not_allowed("this bank sends no e-mail"));
        }
        let email = email.trim();
        if !tresor_core::text::plausible_email(email) {
            return Err(ApiError::new(
                ErrorCode::Invalid,
                format!("{email:?} is not an e-mail address"),
            )
            .into());
        }
        let mut work = self.begin().await?;
        let contact = self
            .contact_in(&mut work, user.id)
            .await?
            .ok_or_else(|| StorageError::corrupt("no user"))?;
        if contact.email.as_deref() == Some(email) {
            return Err(ApiError::new(ErrorCode::Invalid, "this is already your address").into());
        }
        let (code, expires) = self.new_code(&mut work, user, EMAIL, email).await?;
        let expires = format_time(expires);
        let masked = self
            .queue_to(
                &mut work,
                email,
                &contact,
                &Notice::EmailCode {
                    code: &code,
                    expires: &expires,
                },
            )
            .await?
            .unwrap_or_default();
        self.notify(&mut work, user.id, &Notice::EmailChanging { new: &masked })
            .await?;
        work.record(ctx.event(
            &user.login,
            "email_change",
            "code sent",
            &format!("to {masked}"),
        ));
        self.commit(work).await?;
        Ok(Reply::Mailed {
            login: user.login.clone(),
            to: masked,
        })
    }

    /// Confirms the new address with its code: it becomes the user's, and the old address
    /// is told.
    pub(crate) async fn confirm_email(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        code: &Password,
    ) -> Answer {
        if session.stage != Stage::Key {
            return Err(not_allowed(
                "the e-mail address can be changed only on a session with the key",
            ));
        }
        let Some((target, tag)) = self.matching_code(user, EMAIL, code).await? else {
            return self.wrong_code(ctx, user, "email_change").await;
        };
        let masked = mail::mask(&target);
        let mut work = self.begin().await?;
        if !work.take_code(user.id, EMAIL, &tag).await? {
            return Err(conflict("the code was used meanwhile; ask for a new one"));
        }
        // The old address hears of it before the new one replaces it.
        self.notify(&mut work, user.id, &Notice::EmailChanged { new: &masked })
            .await?;
        let bound = self.binding.email_tag(user.id, &user.login, &target);
        work.set_user_email(user.id, &target, &bound).await?;
        work.record(ctx.event(&user.login, "email_change", "ok", &format!("now {masked}")));
        self.commit(work).await?;
        self.profile(session, user).await
    }

    /// Sets the language of the user's mail and the notices they do not want.
    pub(crate) async fn set_preferences(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        language: Option<tresor_core::api::profile::Language>,
        quiet: &[tresor_core::api::profile::NoticeKind],
    ) -> Answer {
        if !matches!(session.stage, Stage::Key | Stage::Otp) {
            return Err(not_allowed("the profile is not available on this session"));
        }
        let stored = rules::quiet_to_store(quiet).map_err(|k| {
            ApiError::new(
                ErrorCode::Invalid,
                format!(
                    "{} is a security notice: it cannot be turned off",
                    k.as_str()
                ),
            )
        })?;
        let mut work = self.begin().await?;
        work.set_mail_preferences(user.id, language.map(|l| l.as_str()), &stored)
            .await?;
        work.record(ctx.event(
            &user.login,
            "preferences",
            "ok",
            &format!(
                "language: {}; off: {}",
                language.map_or("both", |l| l.as_str()),
                if stored.is_empty() { "none" } else { &stored }
            ),
        ));
        self.commit(work).await?;
        self.profile(session, user).await
    }
}

//! The mail outbox, users' e-mail addresses and preferences, one-time codes, the addresses
//! users logged in from, and the notices sent. What a mail says is sealed by the bank
//! (`crate::mail`); here it is bytes with a schedule.

use std::ops::DerefMut;

use sqlx::{AnyConnection, Row as _};

use super::{Conn, StorageError};

/// A mail due for sending, as claimed.
#[derive(Debug)]
pub struct DueMail {
    /// Its id: the seal's AAD.
    pub id: String,
    /// Recipient, subject and bodies, sealed.
    pub sealed: Vec<u8>,
    /// Attempts before this one.
    pub attempts: i64,
}

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// Queues a mail, due at once. Run in the transaction of the action it tells of, so that
    /// the two commit together.
    pub async fn enqueue_mail(
        &mut self,
        id: &str,
        sealed: &[u8],
        now: i64,
    ) -> Result<(), StorageError> {
        self.enqueue(Channel::Mail, id, sealed, now).await
    }

    /// Queues a message for `channel`, due at once, in the transaction of its action.
    pub async fn enqueue(
        &mut self,
        channel: Channel,
        id: &str,
        sealed: &[u8],
        now: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO mail_outbox (id, sealed, created_at, next_attempt, channel) \
             VALUES ($1, $2, $3, $3, $4)",
        )
        .bind(id)
        .bind(sealed.to_vec())
        .bind(now)
        .bind(channel.as_str())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Claims up to `limit` mails due at `now` until `lease_until`: each by a statement
    /// conditioned on the attempt time it was read with, so that of several instances one
    /// sends it; one whose sender dies is due again when the lease ends.
    pub async fn claim_mail(
        &mut self,
        channel: Channel,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<DueMail>, StorageError> {
        let due = sqlx::query(
            "SELECT id, sealed, attempts, next_attempt FROM mail_outbox \
             WHERE sent_at IS NULL AND next_attempt <= $1 AND channel = $3 \
             ORDER BY next_attempt LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .bind(channel.as_str())
        .fetch_all(self.conn())
        .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for row in due {
            let id: String = row.try_get("id")?;
            let was: i64 = row.try_get("next_attempt")?;
            let taken = sqlx::query(
                "UPDATE mail_outbox SET next_attempt = $1 \
                 WHERE id = $2 AND next_attempt = $3 AND sent_at IS NULL",
            )
            .bind(lease_until)
            .bind(&id)
            .bind(was)
            .execute(self.conn())
            .await?
            .rows_affected();
            if taken == 1 {
                claimed.push(DueMail {
                    id,
                    sealed: row.try_get("sealed")?,
                    attempts: row.try_get("attempts")?,
                });
            }
        }
        Ok(claimed)
    }

    /// Records that the SMTP server took a mail, and forgets what it said.
    pub async fn mail_sent(&mut self, id: &str, now: i64) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE mail_outbox SET sent_at = $1, sealed = $2, last_error = NULL WHERE id = $3",
        )
        .bind(now)
        .bind(Vec::<u8>::new())
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records a failed attempt, and when to try again.
    pub async fn mail_failed(
        &mut self,
        id: &str,
        attempts: i64,
        next_attempt: i64,
        error: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE mail_outbox SET attempts = $1, next_attempt = $2, last_error = $3 \
             WHERE id = $4 AND sent_at IS NULL",
        )
        .bind(attempts)
        .bind(next_attempt)
        .bind(error)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Mails not sent yet, for `/metrics` and the tests.
    pub async fn unsent_mail(&mut self) -> Result<i64, StorageError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL")
                .fetch_one(self.conn())
                .await?,
        )
    }

    /// Sets a user's address with its MAC (`Binding::email_tag`): verified.
    pub async fn set_user_email(
        &mut self,
        user_id: i64,
        email: &str,
        tag: &[u8],
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE users SET email = $1, email_tag = $2 WHERE id = $3")
            .bind(email)
            .bind(tag.to_vec())
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Sets or removes a user's mobile number with its MAC (`Binding::phone_tag`).
    pub async fn set_user_phone(
        &mut self,
        user_id: i64,
        phone: Option<(&str, &[u8])>,
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE users SET phone = $1, phone_tag = $2 WHERE id = $3")
            .bind(phone.map(|p| p.0))
            .bind(phone.map(|p| p.1.to_vec()))
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// The login code waiting on `session`: whose, and the code's row.
    pub async fn login_code_of_session(
        &mut self,
        session: &str,
    ) -> Result<Option<(i64, CodeRow)>, StorageError> {
        let row = sqlx::query(
            "SELECT user_id, target, expires, created_at, tag FROM user_codes \
             WHERE purpose = 'login' AND target = $1",
        )
        .bind(session)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("user_id")?,
                CodeRow {
                    target: r.try_get("target")?,
                    expires: r.try_get("expires")?,
                    created_at: r.try_get("created_at")?,
                    tag: r.try_get("tag")?,
                },
            ))
        })
        .transpose()
    }

    /// A user's address and mail preferences.
    pub async fn contact(&mut self, user_id: i64) -> Result<Option<ContactRow>, StorageError> {
        let row = sqlx::query(
            "SELECT login, email, email_tag, language, quiet, phone, phone_tag FROM users \
             WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| {
            Ok(ContactRow {
                login: r.try_get("login")?,
                email: r.try_get("email")?,
                email_tag: r.try_get("email_tag")?,
                language: r.try_get("language")?,
                quiet: r.try_get("quiet")?,
                phone: r.try_get("phone")?,
                phone_tag: r.try_get("phone_tag")?,
            })
        })
        .transpose()
    }

    /// Sets the language of a user's mails (`None`: both) and the notices they turned off.
    pub async fn set_mail_preferences(
        &mut self,
        user_id: i64,
        language: Option<&str>,
        quiet: &str,
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE users SET language = $1, quiet = $2 WHERE id = $3")
            .bind(language)
            .bind(quiet)
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Keeps a new one-time code for `user_id` and `purpose`, replacing any earlier one.
    pub async fn put_code(&mut self, c: &NewCode<'_>) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM user_codes WHERE user_id = $1 AND purpose = $2")
            .bind(c.user_id)
            .bind(c.purpose)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO user_codes (user_id, purpose, target, expires, created_at, tag) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.user_id)
        .bind(c.purpose)
        .bind(c.target)
        .bind(c.expires)
        .bind(c.created_at)
        .bind(c.tag.to_vec())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The code kept for `user_id` and `purpose`, if any.
    pub async fn code(
        &mut self,
        user_id: i64,
        purpose: &str,
    ) -> Result<Option<CodeRow>, StorageError> {
        let row = sqlx::query(
            "SELECT target, expires, created_at, tag FROM user_codes \
             WHERE user_id = $1 AND purpose = $2",
        )
        .bind(user_id)
        .bind(purpose)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| {
            Ok(CodeRow {
                target: r.try_get("target")?,
                expires: r.try_get("expires")?,
                created_at: r.try_get("created_at")?,
                tag: r.try_get("tag")?,
            })
        })
        .transpose()
    }

    /// Uses up the code kept under `tag`: false if it is gone (used by a concurrent request,
    /// or replaced by a newer one).
    pub async fn take_code(
        &mut self,
        user_id: i64,
        purpose: &str,
        tag: &[u8],
    ) -> Result<bool, StorageError> {
        let done =
            sqlx::query("DELETE FROM user_codes WHERE user_id = $1 AND purpose = $2 AND tag = $3")
                .bind(user_id)
                .bind(purpose)
                .bind(tag.to_vec())
                .execute(self.conn())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that `user_id` logged in from `ip`: whether the address is new for them, and
    /// whether they had logged in from anywhere before.
    pub async fn saw_address(
        &mut self,
        user_id: i64,
        ip: &str,
        now: i64,
    ) -> Result<SeenAddress, StorageError> {
        let known: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM seen_addresses WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(self.conn())
                .await?;
        let added = sqlx::query(
            "INSERT INTO seen_addresses (user_id, ip, first_seen) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, ip) DO NOTHING",
        )
        .bind(user_id)
        .bind(ip)
        .bind(now)
        .execute(self.conn())
        .await?
        .rows_affected();
        Ok(match (added, known) {
            (0, _) => SeenAddress::Known,
            (_, 0) => SeenAddress::First,
            _ => SeenAddress::New,
        })
    }

    /// Marks a notice identified by `key` as sent; false if it already was. Run in the
    /// transaction that queues it, so that of several instances one sends it.
    pub async fn note_notice(&mut self, key: &str, now: i64) -> Result<bool, StorageError> {
        let added = sqlx::query(
            "INSERT INTO notices_sent (key, sent_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(now)
        .execute(self.conn())
        .await?
        .rows_affected();
        Ok(added == 1)
    }

    /// The users who may view `iban`.
    pub async fn viewers_of(&mut self, iban: &str) -> Result<Vec<i64>, StorageError> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM rights WHERE iban = $1 AND can_view <> 0 ORDER BY user_id",
        )
        .bind(iban)
        .fetch_all(self.conn())
        .await?)
    }

    /// Unrevoked certificates that expire after `now` and by `until`, each its user's
    /// latest (a user who renewed is not reminded of the old one).
    pub async fn certificates_expiring(
        &mut self,
        now: i64,
        until: i64,
    ) -> Result<Vec<Expiring>, StorageError> {
        let rows = sqlx::query(
            "SELECT c.serial, c.user_id, c.not_after FROM certificates c \
             WHERE c.revoked_at IS NULL AND c.not_after > $1 AND c.not_after <= $2 \
             AND NOT EXISTS (SELECT 1 FROM certificates d WHERE d.user_id = c.user_id \
                 AND d.revoked_at IS NULL AND d.not_after > c.not_after) \
             ORDER BY c.not_after, c.serial",
        )
        .bind(now)
        .bind(until)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Expiring {
                    serial: r.try_get("serial")?,
                    user_id: r.try_get("user_id")?,
                    not_after: r.try_get("not_after")?,
                })
            })
            .collect()
    }
}

/// A user's address and mail preferences, as stored.
#[derive(Debug)]
pub struct ContactRow {
    /// The login (bound into the address's MAC).
    pub login: String,
    /// The address.
    pub email: Option<String>,
    /// Its MAC: without one that holds, the address is not the user's verified one.
    pub email_tag: Option<Vec<u8>>,
    /// `uk`, `en`, or none (both).
    pub language: Option<String>,
    /// Notice kinds turned off, comma-separated.
    pub quiet: String,
    /// The mobile number, for the SMS second step.
    pub phone: Option<String>,
    /// Its MAC.
    pub phone_tag: Option<Vec<u8>>,
}

/// Which outbox a message waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// E-mail, through SMTP.
    Mail,
    /// A text message, through the SMS gateway.
    Sms,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Mail => "mail",
            Self::Sms => "sms",
        }
    }
}

/// A one-time code to keep.
#[derive(Debug)]
pub struct NewCode<'a> {
    /// Whose.
    pub user_id: i64,
    /// `reset` or `email`.
    pub purpose: &'a str,
    /// A new address, or empty.
    pub target: &'a str,
    /// Until when.
    pub expires: i64,
    /// When it was made.
    pub created_at: i64,
    /// Its MAC (`Binding::code_tag`); the code itself is not stored.
    pub tag: &'a [u8],
}

/// A one-time code as stored.
#[derive(Debug)]
pub struct CodeRow {
    /// A new address, or empty.
    pub target: String,
    /// Until when.
    pub expires: i64,
    /// When it was made.
    pub created_at: i64,
    /// Its MAC.
    pub tag: Vec<u8>,
}

/// Whether a login's address is one the user has logged in from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenAddress {
    /// Yes.
    Known,
    /// No, and they had logged in from elsewhere.
    New,
    /// Their first login.
    First,
}

/// A certificate nearing its expiry.
#[derive(Debug)]
pub struct Expiring {
    /// Serial, hex.
    pub serial: String,
    /// Whose.
    pub user_id: i64,
    /// Expiry, Unix seconds.
    pub not_after: i64,
}

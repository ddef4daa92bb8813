//! The mail outbox and users' e-mail addresses. What a mail says is sealed by the bank
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
        sqlx::query(
            "INSERT INTO mail_outbox (id, sealed, created_at, next_attempt) VALUES ($1, $2, $3, $3)",
        )
        .bind(id)
        .bind(sealed.to_vec())
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Claims up to `limit` mails due at `now` until `lease_until`: each by a statement
    /// conditioned on the attempt time it was read with, so that of several instances one
    /// sends it; one whose sender dies is due again when the lease ends.
    pub async fn claim_mail(
        &mut self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<DueMail>, StorageError> {
        let due = sqlx::query(
            "SELECT id, sealed, attempts, next_attempt FROM mail_outbox \
             WHERE sent_at IS NULL AND next_attempt <= $1 ORDER BY next_attempt LIMIT $2",
        )
        .bind(now)
        .bind(limit)
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

    /// Sets a user's e-mail address.
    pub async fn set_user_email(&mut self, user_id: i64, email: &str) -> Result<(), StorageError> {
        sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
            .bind(email)
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

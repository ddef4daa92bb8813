//! Secure-channel sessions, shared by every instance on this database, and the login each
//! carries. The sealing of their state is the bank's (`crate::sessions`).

use std::ops::DerefMut;

use sqlx::{AnyConnection, Row as _};
use tresor_core::api::Stage;

use super::rows::{SessionLogin, StoredEnum as _};
use super::{Conn, StorageError};

/// A stored session's sealed state, next seq and last activity, and the MAC over the latter
/// two (`crate::binding`).
#[derive(Debug)]
pub struct StoredSession {
    /// Sealed state.
    pub sealed: Vec<u8>,
    /// The next client seq the session accepts.
    pub next_seq: i64,
    /// Last activity, Unix seconds.
    pub last_activity: i64,
    /// MAC over the id, `next_seq` and `last_activity`.
    pub seq_tag: Vec<u8>,
}

/// A new session's row.
#[derive(Debug)]
pub struct NewSession<'a> {
    /// The session id, as stored.
    pub id: &'a str,
    /// Its state.
    pub stored: StoredSession,
    /// Seconds without a record before it ends.
    pub idle_timeout: i64,
    /// The address group that opened it (budgets per source).
    pub source: &'a str,
    /// MAC over "not logged in".
    pub login_tag: Vec<u8>,
}

/// A session's login as stored, with its MAC, for the bank to check.
#[derive(Debug)]
pub struct StoredLogin {
    /// Who is logged in, if anyone.
    pub login: Option<SessionLogin>,
    /// MAC over the id and the login.
    pub tag: Vec<u8>,
}

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// Stores a new session.
    pub async fn insert_session(&mut self, s: &NewSession<'_>) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO channel_sessions (id, state, next_seq, last_activity, idle_timeout, \
             seq_tag, source, login_tag) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(s.id)
        .bind(s.stored.sealed.clone())
        .bind(s.stored.next_seq)
        .bind(s.stored.last_activity)
        .bind(s.idle_timeout)
        .bind(s.stored.seq_tag.clone())
        .bind(s.source)
        .bind(s.login_tag.clone())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Sessions open, and how many of them this source opened, in one query.
    pub async fn count_sessions_and_from(
        &mut self,
        source: &str,
    ) -> Result<(i64, i64), StorageError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, \
             COALESCE(SUM(CASE WHEN source = $1 THEN 1 ELSE 0 END), 0) AS mine \
             FROM channel_sessions",
        )
        .bind(source)
        .fetch_one(self.conn())
        .await?;
        Ok((row.try_get("total")?, row.try_get("mine")?))
    }

    /// A session's stored state.
    pub async fn session(&mut self, id: &str) -> Result<Option<StoredSession>, StorageError> {
        let row = sqlx::query(
            "SELECT state, next_seq, last_activity, seq_tag FROM channel_sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| {
            Ok(StoredSession {
                sealed: r.try_get("state")?,
                next_seq: r.try_get("next_seq")?,
                last_activity: r.try_get("last_activity")?,
                seq_tag: r
                    .try_get::<Option<Vec<u8>>, _>("seq_tag")?
                    .ok_or_else(|| StorageError::corrupt("session without a seq MAC"))?,
            })
        })
        .transpose()
    }

    /// Accepts the record numbered `from`: moves the session from the state it was loaded
    /// in (`from`, MAC `from_tag`) to `to`, only if no other request (on any instance)
    /// accepted it first.
    pub async fn advance_session(
        &mut self,
        id: &str,
        from: (i64, &[u8]),
        to: &StoredSession,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE channel_sessions SET next_seq = $1, last_activity = $2, seq_tag = $3 \
             WHERE id = $4 AND next_seq = $5 AND seq_tag = $6",
        )
        .bind(to.next_seq)
        .bind(to.last_activity)
        .bind(to.seq_tag.clone())
        .bind(id)
        .bind(from.0)
        .bind(from.1.to_vec())
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a session.
    pub async fn remove_session(&mut self, id: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM channel_sessions WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Ends the sessions idle past their timeout at `now`.
    pub async fn sweep_sessions(&mut self, now: i64) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM channel_sessions WHERE last_activity + idle_timeout < $1")
            .bind(now)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// How many sessions are open.
    pub async fn count_sessions(&mut self) -> Result<i64, StorageError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM channel_sessions")
            .fetch_one(self.conn())
            .await?)
    }

    /// The login a session carries, with its MAC; `None` if there is no such session.
    pub async fn session_login(&mut self, id: &str) -> Result<Option<StoredLogin>, StorageError> {
        let row =
            sqlx::query("SELECT user_id, stage, login_tag FROM channel_sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(self.conn())
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let login = match (
            row.try_get::<Option<i64>, _>("user_id")?,
            row.try_get::<Option<String>, _>("stage")?,
        ) {
            (Some(user_id), Some(stage)) => Some(SessionLogin {
                user_id,
                stage: Stage::from_db(&stage)?,
            }),
            (None, None) => None,
            _ => return Err(StorageError::corrupt("session login half set")),
        };
        let tag = row
            .try_get::<Option<Vec<u8>>, _>("login_tag")?
            .ok_or_else(|| StorageError::corrupt("session without a login MAC"))?;
        Ok(Some(StoredLogin { login, tag }))
    }

    /// Sets or clears the login a session carries, with its MAC.
    pub async fn set_session_login(
        &mut self,
        id: &str,
        login: Option<&SessionLogin>,
        tag: &[u8],
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE channel_sessions SET user_id = $1, stage = $2, login_tag = $3 WHERE id = $4",
        )
        .bind(login.map(|l| l.user_id))
        .bind(login.map(|l| l.stage.to_db()))
        .bind(tag.to_vec())
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Ends every session of a user but `except` (the session asking, when it goes on).
    pub async fn end_sessions_of(
        &mut self,
        user_id: i64,
        except: Option<&str>,
    ) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM channel_sessions WHERE user_id = $1 AND id <> $2")
            .bind(user_id)
            .bind(except.unwrap_or(""))
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

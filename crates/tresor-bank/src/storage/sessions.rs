//! Secure-channel sessions, shared by every instance on this database, and the login each
//! carries. The sealing of their state is the bank's (`crate::sessions`).

use std::ops::DerefMut;

use sqlx::{AnyConnection, Row as _};
use tresor_core::api::Stage;

use super::rows::{SessionLogin, StoredEnum as _};
use super::{Conn, StorageError};

/// A stored session's sealed state, next seq and last activity.
#[derive(Debug)]
pub struct StoredSession {
    /// Sealed state.
    pub sealed: Vec<u8>,
    /// The next client seq the session accepts.
    pub next_seq: i64,
    /// Last activity, Unix seconds.
    pub last_activity: i64,
}

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// Stores a new session.
    pub async fn insert_session(
        &mut self,
        id: &str,
        s: &StoredSession,
        idle_timeout: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO channel_sessions (id, state, next_seq, last_activity, idle_timeout) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(s.sealed.clone())
        .bind(s.next_seq)
        .bind(s.last_activity)
        .bind(idle_timeout)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A session's stored state.
    pub async fn session(&mut self, id: &str) -> Result<Option<StoredSession>, StorageError> {
        let row = sqlx::query(
            "SELECT state, next_seq, last_activity FROM channel_sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| {
            Ok(StoredSession {
                sealed: r.try_get("state")?,
                next_seq: r.try_get("next_seq")?,
                last_activity: r.try_get("last_activity")?,
            })
        })
        .transpose()
    }

    /// Accepts the record numbered `from`: moves the session to `to` only if no other
    /// request (on any instance) accepted it first.
    pub async fn advance_session(
        &mut self,
        id: &str,
        from: i64,
        to: i64,
        last_activity: i64,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE channel_sessions SET next_seq = $1, last_activity = $2 \
             WHERE id = $3 AND next_seq = $4",
        )
        .bind(to)
        .bind(last_activity)
        .bind(id)
        .bind(from)
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

    /// The login a session carries, if any.
    pub async fn session_login(&mut self, id: &str) -> Result<Option<SessionLogin>, StorageError> {
        let row = sqlx::query("SELECT user_id, stage FROM channel_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        match (
            row.try_get::<Option<i64>, _>("user_id")?,
            row.try_get::<Option<String>, _>("stage")?,
        ) {
            (Some(user_id), Some(stage)) => Ok(Some(SessionLogin {
                user_id,
                stage: Stage::from_db(&stage)?,
            })),
            (None, None) => Ok(None),
            _ => Err(StorageError::corrupt("session login half set")),
        }
    }

    /// Sets or clears the login a session carries.
    pub async fn set_session_login(
        &mut self,
        id: &str,
        login: Option<&SessionLogin>,
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE channel_sessions SET user_id = $1, stage = $2 WHERE id = $3")
            .bind(login.map(|l| l.user_id))
            .bind(login.map(|l| l.stage.to_db()))
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Ends every session of a user.
    pub async fn end_sessions_of(&mut self, user_id: i64) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM channel_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

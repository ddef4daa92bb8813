//! Secure-channel sessions in the bank's database, so that every instance on one database
//! serves every session: the fixed state sealed with AES-256-GCM under a key from the data
//! folder (the rows hold traffic keys), the next seq and last activity in the clear beside
//! it for the compare-and-set that accepts each record once.

use std::time::SystemTime;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use sqlx::Row as _;
use tresor_core::channel::SessionId;
use tresor_core::channel::server::ServerSession;
use zeroize::Zeroizing;

use crate::channel::{SessionStore, StoreError};
use crate::store::{StorageError, Store, from_unix, unix};

/// Sessions in the database.
pub struct DbSessions {
    store: Store,
    key: LessSafeKey,
}

impl DbSessions {
    /// Sessions in `store`, sealed under `key`.
    pub fn new(store: Store, key: &[u8; 32]) -> Self {
        // A 32-byte key is what AES-256-GCM takes.
        #[allow(clippy::expect_used)]
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("AES-256 key"));
        Self { store, key }
    }

    fn seal(&self, id: SessionId, state: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StoreError("no randomness".into()))?;
        let mut buf = Zeroizing::new(state.to_vec());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.0),
                &mut buf,
            )
            .map_err(|_| StoreError("sealing session state".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open(&self, id: SessionId, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let bad = || StoreError("stored session state does not decrypt".into());
        if sealed.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut buf = Zeroizing::new(rest.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(id.0), &mut buf)
            .map_err(|_| bad())?
            .len();
        buf.truncate(plain);
        Ok(buf)
    }
}

/// A session id as stored: lowercase hex.
pub fn id_text(id: SessionId) -> String {
    data_encoding::HEXLOWER.encode(&id.0)
}

fn db(e: sqlx::Error) -> StoreError {
    StoreError(e.to_string())
}

impl SessionStore for DbSessions {
    async fn insert(&self, session: &ServerSession) -> Result<(), StoreError> {
        let state = self.seal(session.id(), &session.export())?;
        sqlx::query(
            "INSERT INTO channel_sessions (id, state, next_seq, last_activity, idle_timeout) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_text(session.id()))
        .bind(state)
        .bind(seq_to_db(session.next_client_seq())?)
        .bind(unix(session.last_activity()))
        .bind(i64::try_from(session.idle_timeout().as_secs()).unwrap_or(i64::MAX))
        .execute(self.store.pool())
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn load(&self, id: SessionId) -> Result<Option<ServerSession>, StoreError> {
        let row = sqlx::query(
            "SELECT state, next_seq, last_activity FROM channel_sessions WHERE id = $1",
        )
        .bind(id_text(id))
        .fetch_optional(self.store.pool())
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed: Vec<u8> = row.try_get("state").map_err(db)?;
        let next_seq: i64 = row.try_get("next_seq").map_err(db)?;
        let last: i64 = row.try_get("last_activity").map_err(db)?;
        let state = self.open(id, &sealed)?;
        let seq = u64::try_from(next_seq).map_err(|_| StoreError("negative seq".into()))?;
        ServerSession::restore(&state, seq, from_unix(last))
            .map(Some)
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn advance(&self, session: &ServerSession, from: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE channel_sessions SET next_seq = $1, last_activity = $2 \
             WHERE id = $3 AND next_seq = $4",
        )
        .bind(seq_to_db(session.next_client_seq())?)
        .bind(unix(session.last_activity()))
        .bind(id_text(session.id()))
        .bind(seq_to_db(from)?)
        .execute(self.store.pool())
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove(&self, id: SessionId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM channel_sessions WHERE id = $1")
            .bind(id_text(id))
            .execute(self.store.pool())
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn sweep(&self, now: SystemTime) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM channel_sessions WHERE last_activity + idle_timeout < $1")
            .bind(unix(now))
            .execute(self.store.pool())
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM channel_sessions")
            .fetch_one(self.store.pool())
            .await
            .map_err(db)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

fn seq_to_db(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError("seq out of range".into()))
}

/// Who is logged in on a session, and how far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLogin {
    /// The user.
    pub user_id: i64,
    /// What the session may do.
    pub stage: tresor_core::api::Stage,
}

/// The login a session carries, if any.
pub async fn login_of(store: &Store, id: SessionId) -> Result<Option<SessionLogin>, StorageError> {
    let row = sqlx::query("SELECT user_id, stage FROM channel_sessions WHERE id = $1")
        .bind(id_text(id))
        .fetch_optional(store.pool())
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let user_id: Option<i64> = row.try_get("user_id")?;
    let stage: Option<String> = row.try_get("stage")?;
    Ok(match (user_id, stage) {
        (Some(user_id), Some(stage)) => Some(SessionLogin {
            user_id,
            stage: serde_json::from_value(serde_json::Value::String(stage))
                .map_err(|e| StorageError::Corrupt(format!("session stage: {e}")))?,
        }),
        _ => None,
    })
}

/// Sets or clears the login a session carries, inside the caller's transaction.
pub async fn set_login(
    conn: &mut sqlx::AnyConnection,
    id: SessionId,
    login: Option<&SessionLogin>,
) -> Result<(), StorageError> {
    let stage = login.map(|l| stage_name(l.stage));
    sqlx::query("UPDATE channel_sessions SET user_id = $1, stage = $2 WHERE id = $3")
        .bind(login.map(|l| l.user_id))
        .bind(stage)
        .bind(id_text(id))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every session of a user (after a lock or a revocation).
pub async fn end_all_of(conn: &mut sqlx::AnyConnection, user_id: i64) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM channel_sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

fn stage_name(stage: tresor_core::api::Stage) -> String {
    match serde_json::to_value(stage) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

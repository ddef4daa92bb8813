//! Secure-channel sessions in the bank's database, so that every instance on one database
//! serves every session: the fixed state sealed with AES-256-GCM under a key from the data
//! folder (the rows hold traffic keys), the next seq and last activity in the clear beside
//! it for the compare-and-set that accepts each record once, under an HMAC that a
//! database-only attacker cannot recompute (`crate::binding`): a seq moved back is refused.

use std::time::SystemTime;

use tresor_core::channel::SessionId;
use tresor_core::channel::server::ServerSession;
use zeroize::Zeroizing;

use crate::binding::{Binding, Vault};
use crate::channel::{Loaded, SessionStore, StoreError};
use crate::data::BankSecrets;
use crate::storage::sessions::{NewSession, StoredSession};
use crate::storage::{Reader, StorageError, Store, from_db, from_unix, to_db, unix};

/// Sessions in the database.
pub struct DbSessions {
    store: Store,
    vault: Vault,
    binding: Binding,
}

impl DbSessions {
    /// Sessions in `store`, sealed and bound under the bank's keys.
    pub fn new(store: Store, secrets: &BankSecrets) -> Self {
        Self {
            store,
            vault: Vault::new(&secrets.session_key),
            binding: Binding::new(secrets),
        }
    }

    fn stored(&self, id: &str, session: &ServerSession) -> Result<StoredSession, StoreError> {
        let next_seq = to_db(session.next_client_seq(), "seq").map_err(db)?;
        let last_activity = unix(session.last_activity());
        Ok(StoredSession {
            sealed: Vec::new(),
            next_seq,
            last_activity,
            seq_tag: self.binding.session_seq_tag(id, next_seq, last_activity),
        })
    }

    fn seal(&self, id: SessionId, state: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.vault
            .seal(&id.0, state)
            .ok_or_else(|| StoreError("no randomness to seal session state".into()))
    }

    fn open(&self, id: SessionId, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.vault
            .open(&id.0, sealed)
            .ok_or_else(|| StoreError("stored session state does not decrypt".into()))
    }
}

/// A session id as stored: lowercase hex.
pub fn id_text(id: SessionId) -> String {
    data_encoding::HEXLOWER.encode(&id.0)
}

fn db(e: StorageError) -> StoreError {
    StoreError(e.to_string())
}

impl DbSessions {
    async fn conn(&self) -> Result<Reader, StoreError> {
        self.store.read().await.map_err(db)
    }
}

impl SessionStore for DbSessions {
    async fn insert(&self, session: &ServerSession, source: &str) -> Result<(), StoreError> {
        let id = id_text(session.id());
        let mut stored = self.stored(&id, session)?;
        stored.sealed = self.seal(session.id(), &session.export())?;
        let idle = i64::try_from(session.idle_timeout().as_secs()).unwrap_or(i64::MAX);
        self.conn()
            .await?
            .insert_session(&NewSession {
                id: &id,
                stored,
                idle_timeout: idle,
                source,
                login_tag: self.binding.session_login_tag(&id, None),
            })
            .await
            .map_err(db)
    }

    async fn load(&self, id: SessionId) -> Result<Option<(ServerSession, Loaded)>, StoreError> {
        let text = id_text(id);
        let Some(stored) = self.conn().await?.session(&text).await.map_err(db)? else {
            return Ok(None);
        };
        if !self.binding.session_seq_holds(
            &text,
            stored.next_seq,
            stored.last_activity,
            &stored.seq_tag,
        ) {
            return Err(StoreError(
                "a stored session's seq was changed without the bank's key".into(),
            ));
        }
        let state = self.open(id, &stored.sealed)?;
        let seq = from_db(stored.next_seq, "seq").map_err(db)?;
        let session = ServerSession::restore(&state, seq, from_unix(stored.last_activity))
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(Some((session, Loaded(stored.seq_tag))))
    }

    async fn advance(
        &self,
        session: &ServerSession,
        from: u64,
        loaded: &Loaded,
    ) -> Result<bool, StoreError> {
        let id = id_text(session.id());
        let to = self.stored(&id, session)?;
        self.conn()
            .await?
            .advance_session(&id, (to_db(from, "seq").map_err(db)?, &loaded.0), &to)
            .await
            .map_err(db)
    }

    async fn counts(&self, source: &str) -> Result<(usize, usize), StoreError> {
        let (all, mine) = self
            .conn()
            .await?
            .count_sessions_and_from(source)
            .await
            .map_err(db)?;
        let n = |v: i64| usize::try_from(v).unwrap_or(0);
        Ok((n(all), n(mine)))
    }

    async fn remove(&self, id: SessionId) -> Result<(), StoreError> {
        self.conn()
            .await?
            .remove_session(&id_text(id))
            .await
            .map_err(db)
    }

    async fn sweep(&self, now: SystemTime) -> Result<(), StoreError> {
        self.conn()
            .await?
            .sweep_sessions(unix(now))
            .await
            .map_err(db)
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let n = self.conn().await?.count_sessions().await.map_err(db)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

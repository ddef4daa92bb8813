//! Secure-channel sessions in the bank's database, so that every instance on one database
//! serves every session: the fixed state sealed with AES-256-GCM under a key from the data
//! folder (the rows hold traffic keys), the next seq and last activity in the clear beside
//! it for the compare-and-set that accepts each record once, under an HMAC that a
//! database-only attacker cannot recompute (`crate::binding`): a seq moved back is refused.
//!
//! A request costs one statement ([`Conn::accept_seq`](crate::storage::Conn::accept_seq)):
//! the fixed state is kept in memory once opened (it never changes), so the record is
//! authenticated at the seq it carries, and the statement moves the seq on only if it was
//! that one, returns the activity and MAC it replaced for the idle timeout and the MAC
//! check, and the session's login for the bank. Its commit does not wait for the disk
//! ([`Store::session_writer`]): if the database server or host stops uncleanly, a seq may
//! move back, so then every session ends (`storage::sessions::renew_epoch`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tresor_core::channel::SessionId;
use tresor_core::channel::server::{PendingHandshake, ServerSession};
use zeroize::Zeroizing;

use crate::binding::{Binding, Vault};
use crate::channel::{Advanced, SessionStore, StoreError, lock};
use crate::data::BankSecrets;
use crate::generations::Generations;
use crate::storage::sessions::{NewSession, StoredSession};
use crate::storage::{Reader, StorageError, Store, from_db, from_unix, to_db, unix};

/// Sessions whose opened state one instance keeps in memory, per generation: the channel's
/// limit on open sessions.
pub const STATE_GENERATION: usize = 100_000;

/// Sessions in the database.
pub struct DbSessions {
    store: Store,
    vault: Vault,
    binding: Binding,
    /// Opened fixed state, by session: what [`ServerSession::export`] wrote.
    states: Generations<SessionId, Arc<Zeroizing<Vec<u8>>>>,
    /// Sessions open on every instance, as last counted and when, plus those this instance
    /// opened since. The global limit guards against floods; counting the table on every
    /// handshake would cost a scan of up to 100,000 rows, so a count up to [`TOTAL_FRESH`]
    /// old will do (other instances may open a second's worth of sessions beyond it).
    total: Mutex<Option<(Instant, usize)>>,
}

/// How old the count of open sessions may be.
const TOTAL_FRESH: Duration = Duration::from_secs(1);

impl DbSessions {
    /// Sessions in `store`, sealed and bound under the bank's keys.
    pub fn new(store: Store, secrets: &BankSecrets) -> Self {
        Self {
            store,
            vault: Vault::new(&secrets.session_key),
            binding: Binding::new(secrets),
            states: Generations::new(STATE_GENERATION),
            total: Mutex::new(None),
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

/// How long a handshake stays spent after its session opened: its ticket's life
/// ([`HANDSHAKE_TIMEOUT`](tresor_core::channel::server::HANDSHAKE_TIMEOUT)), with room for
/// instances whose clocks differ by up to a minute and a half.
const SPENT_SECONDS: i64 = 120;

/// What a ticket's seal is bound to: the handshake's session id, under a label that no
/// session state's seal (bound to the bare id) can take.
fn ticket_aad(id: SessionId) -> Vec<u8> {
    [b"tresor handshake ticket v1 ".as_slice(), &id.0].concat()
}

/// A session id as stored: lowercase hex.
pub fn id_text(id: SessionId) -> String {
    data_encoding::HEXLOWER.encode(&id.0)
}

/// The session id a stored id names.
fn id_of(text: &str) -> Option<SessionId> {
    let bytes = data_encoding::HEXLOWER.decode(text.as_bytes()).ok()?;
    Some(SessionId(bytes.try_into().ok()?))
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
    async fn insert(&self, session: &ServerSession, source: &str) -> Result<bool, StoreError> {
        let id = id_text(session.id());
        let state = session.export();
        let mut stored = self.stored(&id, session)?;
        stored.sealed = self.seal(session.id(), &state)?;
        let idle = i64::try_from(session.idle_timeout().as_secs()).unwrap_or(i64::MAX);
        let until = stored.last_activity.saturating_add(SPENT_SECONDS);
        let mut tx = self.store.begin().await.map_err(db)?;
        if !tx.spend_handshake(&id, until).await.map_err(db)? {
            return Ok(false);
        }
        tx.insert_session(&NewSession {
            id: &id,
            stored,
            idle_timeout: idle,
            source,
            login_tag: self.binding.session_login_tag(&id, None),
        })
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.states.insert(session.id(), Arc::new(state));
        if let Some((_, all)) = lock(&self.total).as_mut() {
            *all += 1;
        }
        Ok(true)
    }

    fn ticket(&self, pending: &PendingHandshake) -> Option<Vec<u8>> {
        self.vault
            .seal(&ticket_aad(pending.session_id()), &pending.export())
    }

    fn redeem(&self, id: SessionId, ticket: &[u8]) -> Option<PendingHandshake> {
        let opened = self.vault.open(&ticket_aad(id), ticket)?;
        let pending = PendingHandshake::restore(&opened).ok()?;
        (pending.session_id() == id).then_some(pending)
    }

    async fn load(
        &self,
        id: SessionId,
        seq: u64,
        now: SystemTime,
    ) -> Result<Option<ServerSession>, StoreError> {
        let restored = |state: &[u8], seq, at| {
            ServerSession::restore(state, seq, at).map_err(|e| StoreError(e.to_string()))
        };
        // Known here: restored at the record's seq, which `advance` checks in its statement.
        if let Some(state) = self.states.get(&id) {
            return restored(&state, seq, now).map(Some);
        }
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
        let next = from_db(stored.next_seq, "seq").map_err(db)?;
        let session = restored(&state, next, from_unix(stored.last_activity))?;
        self.states.insert(id, Arc::new(state));
        Ok(Some(session))
    }

    async fn advance(&self, session: &ServerSession, from: u64) -> Result<Advanced, StoreError> {
        let id = id_text(session.id());
        let to = self.stored(&id, session)?;
        let from_seq = to_db(from, "seq").map_err(db)?;
        let accepted = self
            .store
            .session_writer()
            .await
            .map_err(db)?
            .accept_seq(&id, from_seq, &to)
            .await
            .map_err(db)?;
        let Some(accepted) = accepted else {
            // Not at `from`: taken by another request, or gone.
            let kept = self.conn().await?.session_seq(&id).await.map_err(db)?;
            if kept.is_none() {
                self.states.remove(&session.id());
                return Ok(Advanced::Ended);
            }
            return Ok(Advanced::Taken);
        };
        if !self.binding.session_seq_holds(
            &id,
            from_seq,
            accepted.prev_activity,
            &accepted.prev_seq_tag,
        ) {
            // The row was edited: the session ends rather than be trusted (fail closed).
            self.remove(session.id()).await?;
            return Err(StoreError(
                "a stored session's seq was changed without the bank's key".into(),
            ));
        }
        if session.idle_between(from_unix(accepted.prev_activity), session.last_activity()) {
            self.states.remove(&session.id());
            return Ok(Advanced::Ended);
        }
        Ok(Advanced::Accepted(accepted.login))
    }

    async fn counts(&self, source: &str) -> Result<(usize, usize), StoreError> {
        let n = |v: i64| usize::try_from(v).unwrap_or(0);
        let mut conn = self.conn().await?;
        let mine = n(conn.count_sessions_from(source).await.map_err(db)?);
        let cached = *lock(&self.total);
        let all = match cached {
            Some((at, all)) if at.elapsed() < TOTAL_FRESH => all,
            _ => {
                let all = n(conn.count_sessions().await.map_err(db)?);
                *lock(&self.total) = Some((Instant::now(), all));
                all
            }
        };
        Ok((all, mine))
    }

    async fn remove(&self, id: SessionId) -> Result<(), StoreError> {
        self.states.remove(&id);
        self.conn()
            .await?
            .remove_session(&id_text(id))
            .await
            .map_err(db)
    }

    async fn sweep(&self, now: SystemTime) -> Result<(), StoreError> {
        // The channel sweeps when the sessions seem full, then counts again: for real.
        *lock(&self.total) = None;
        let mut conn = self.conn().await?;
        conn.forget_spent_handshakes(unix(now)).await.map_err(db)?;
        let ended = conn.sweep_sessions(unix(now)).await.map_err(db)?;
        for id in ended {
            if let Some(id) = id_of(&id) {
                self.states.remove(&id);
            }
        }
        Ok(())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let n = self.conn().await?.count_sessions().await.map_err(db)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

//! Secure-channel sessions in the bank's database: the fixed state sealed with AES-256-GCM
//! under a key from the data folder (the rows hold traffic keys), the next seq and last
//! activity in the clear beside it, under an HMAC that a database-only attacker cannot
//! recompute (`crate::binding`): a seq moved back is refused.
//!
//! Two ways to keep the seq, which is what makes a record acceptable once:
//!
//! * **Shared** (a database by URL, which several instances may serve): a request costs one
//!   statement ([`Conn::accept_seq`](crate::storage::Conn::accept_seq)), the compare-and-set
//!   that moves the seq on only if it was the record's, returning the activity and MAC it
//!   replaced for the idle timeout and the MAC check, and the session's login. Its commit
//!   does not wait for the disk ([`Store::session_writer`]): if the database server or host
//!   stops uncleanly, a seq may move back, so then every session ends
//!   (`storage::sessions::renew_epoch`).
//! * **Held** (the embedded database, which one process serves: a lock on the data folder
//!   says so): the seq and last activity live in this process's memory, taken from the row
//!   when a session is first used and written back every sweep and at a clean stop. A record
//!   on a session known to be anonymous touches no database at all; one on a logged-in
//!   session reads its login, so that a session the bank ended anywhere (a recovery, an
//!   admin's command in another process) is refused. If the process stops without writing
//!   its seqs back (killed, crashed, the host lost), the next start finds the meta row
//!   `sessions_holder` still naming it and ends every session before serving: a seq that may
//!   have moved back is never trusted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tresor_core::channel::SessionId;
use tresor_core::channel::server::{PendingHandshake, ServerSession};
use zeroize::Zeroizing;

use crate::binding::{Binding, Vault};
use crate::channel::{Advanced, SessionStore, StoreError, lock};
use crate::data::BankSecrets;
use crate::generations::Generations;
use crate::storage::sessions::{NewSession, StoredLogin, StoredSession};
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
    /// The seqs this process holds, in held mode.
    holding: Option<Holding>,
}

/// The sessions whose seq one process holds in memory, shared with the bank, which says when
/// a session's login changes.
#[derive(Default)]
pub struct HeldSessions {
    map: Mutex<HashMap<SessionId, Held>>,
}

/// One held session.
struct Held {
    state: Arc<Zeroizing<Vec<u8>>>,
    next_seq: u64,
    last_activity: SystemTime,
    idle_timeout: Duration,
    /// The MAC over "not logged in", while the session is known to be so: its records then
    /// need no read of the login.
    anonymous: Option<Vec<u8>>,
    /// Changed since last written to the database.
    dirty: bool,
}

impl HeldSessions {
    /// The bank is changing `session`'s login: its records read the login from now on.
    pub fn login_changes(&self, session: &str) {
        let Some(id) = id_of(session) else {
            return;
        };
        if let Some(held) = lock(&self.map).get_mut(&id) {
            held.anonymous = None;
        }
    }
}

/// Held mode: the lock that makes this process the only one serving the data folder, and
/// whether it has taken the sessions over from the last holder yet.
struct Holding {
    held: Arc<HeldSessions>,
    /// Locked while the process lives; the kernel lets go when it dies.
    _lock: std::fs::File,
    /// This process, as written into `sessions_holder`.
    holder: String,
    taken: tokio::sync::OnceCell<()>,
}

/// The file in the data folder whose lock says which process serves it.
pub const SERVING_LOCK: &str = "serving.lock";

/// Why the sessions could not be held.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// Another process holds the lock.
    #[error("another tresor-bank is serving the data folder {0}")]
    Serving(String),
    /// The lock file.
    #[error("{0}: {1}")]
    File(String, std::io::Error),
}

/// What `sessions_holder` says after a clean stop.
const RELEASED: &str = "released";

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
            holding: None,
        }
    }

    /// Sessions in the embedded database of `data_dir`, their seqs held in this process's
    /// memory; refused if another process serves that folder.
    pub fn held(store: Store, secrets: &BankSecrets, data_dir: &Path) -> Result<Self, HoldError> {
        let path = data_dir.join(SERVING_LOCK);
        let file = lock_file(&path).map_err(|e| HoldError::File(path.display().to_string(), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(HoldError::Serving(data_dir.display().to_string()));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(HoldError::File(path.display().to_string(), e));
            }
        }
        let mut n = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut n).map_err(|_| {
            HoldError::File(
                path.display().to_string(),
                std::io::Error::other("no randomness"),
            )
        })?;
        Ok(Self {
            holding: Some(Holding {
                held: Arc::default(),
                _lock: file,
                holder: format!("held by {}", data_encoding::HEXLOWER.encode(&n)),
                taken: tokio::sync::OnceCell::new(),
            }),
            ..Self::new(store, secrets)
        })
    }

    /// The held sessions, for the bank to tell of login changes; `None` in shared mode.
    pub fn held_sessions(&self) -> Option<Arc<HeldSessions>> {
        self.holding.as_ref().map(|h| h.held.clone())
    }

    /// In held mode, takes the sessions over from the last holder, once, before any is used:
    /// if that holder did not release them (it stopped without writing its seqs back), they
    /// all end.
    async fn take_over(&self) -> Result<Option<&Holding>, StoreError> {
        let Some(h) = &self.holding else {
            return Ok(None);
        };
        h.taken
            .get_or_try_init(|| async {
                let mut tx = self.store.begin().await.map_err(db)?;
                let last = tx.sessions_holder().await.map_err(db)?;
                let ended = match last.as_deref() {
                    None | Some(RELEASED) => 0,
                    Some(_) => tx.end_all_sessions().await.map_err(db)?,
                };
                tx.set_sessions_holder(&h.holder).await.map_err(db)?;
                tx.commit().await.map_err(db)?;
                if ended > 0 {
                    tracing::warn!(
                        ended,
                        "the bank stopped without writing its sessions' seqs back: they ended"
                    );
                }
                Ok::<(), StoreError>(())
            })
            .await?;
        Ok(Some(h))
    }

    /// Writes the held seqs that changed since last time.
    async fn write_back(&self, h: &Holding) -> Result<(), StoreError> {
        let changed: Vec<(SessionId, u64, SystemTime)> = lock(&h.held.map)
            .iter_mut()
            .filter(|(_, held)| held.dirty)
            .map(|(id, held)| {
                held.dirty = false;
                (*id, held.next_seq, held.last_activity)
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let rows = changed
            .iter()
            .map(|(id, seq, at)| {
                let id = id_text(*id);
                let next_seq = to_db(*seq, "seq").map_err(db)?;
                let last_activity = unix(*at);
                let seq_tag = self.binding.session_seq_tag(&id, next_seq, last_activity);
                Ok((
                    id,
                    StoredSession {
                        sealed: Vec::new(),
                        next_seq,
                        last_activity,
                        seq_tag,
                    },
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let written = async {
            let mut tx = self.store.begin().await?;
            tx.write_seqs(&rows).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = written {
            // Still to write: next time.
            let mut map = lock(&h.held.map);
            for (id, _, _) in &changed {
                if let Some(held) = map.get_mut(id) {
                    held.dirty = true;
                }
            }
            return Err(db(e));
        }
        Ok(())
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

impl DbSessions {
    /// [`SessionStore::advance`] in held mode: the seq moves on in memory, under the map's
    /// lock, only if it still is `from`.
    async fn advance_held(
        &self,
        h: &Holding,
        session: &ServerSession,
        from: u64,
    ) -> Result<Advanced, StoreError> {
        let id = session.id();
        let accepted = {
            let mut map = lock(&h.held.map);
            match map.get_mut(&id) {
                None => return Ok(Advanced::Ended),
                Some(held) if held.next_seq != from => return Ok(Advanced::Taken),
                Some(held) if session.idle_between(held.last_activity, session.last_activity()) => {
                    None
                }
                Some(held) => {
                    held.next_seq = session.next_client_seq();
                    held.last_activity = session.last_activity();
                    held.dirty = true;
                    Some(held.anonymous.clone())
                }
            }
        };
        let Some(anonymous) = accepted else {
            // Idle past its timeout: over.
            self.remove(id).await?;
            return Ok(Advanced::Ended);
        };
        if let Some(tag) = anonymous {
            return Ok(Advanced::Accepted(Some(StoredLogin { login: None, tag })));
        }
        // Logged in: the login as stored, so that a session ended anywhere ends here.
        let text = id_text(id);
        match self.conn().await?.session_login(&text).await {
            Ok(Some(login)) => Ok(Advanced::Accepted(Some(login))),
            Ok(None) => {
                lock(&h.held.map).remove(&id);
                Ok(Advanced::Ended)
            }
            // One that does not parse is the bank's to refuse, as when it reads it.
            Err(StorageError::Corrupt(_)) => Ok(Advanced::Accepted(None)),
            Err(e) => Err(db(e)),
        }
    }
}

/// The serving lock's file, readable by the owner only.
fn lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
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
        let holding = self.take_over().await?;
        let login_tag = self.binding.session_login_tag(&id, None);
        let mut tx = self.store.begin().await.map_err(db)?;
        if !tx.spend_handshake(&id, until).await.map_err(db)? {
            return Ok(false);
        }
        tx.insert_session(&NewSession {
            id: &id,
            stored,
            idle_timeout: idle,
            source,
            login_tag: login_tag.clone(),
        })
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let state = Arc::new(state);
        if let Some(h) = holding {
            lock(&h.held.map).insert(
                session.id(),
                Held {
                    state,
                    next_seq: session.next_client_seq(),
                    last_activity: session.last_activity(),
                    idle_timeout: session.idle_timeout(),
                    anonymous: Some(login_tag),
                    dirty: false,
                },
            );
        } else {
            self.states.insert(session.id(), state);
        }
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
        let holding = self.take_over().await?;
        if let Some(h) = holding {
            let known = lock(&h.held.map)
                .get(&id)
                .map(|held| (held.state.clone(), held.next_seq, held.last_activity));
            if let Some((state, next, at)) = known {
                return restored(&state, next, at).map(Some);
            }
        } else if let Some(state) = self.states.get(&id) {
            // Known here: restored at the record's seq, which `advance` checks in its
            // statement.
            return restored(&state, seq, now).map(Some);
        }
        let text = id_text(id);
        let Some(row) = self.conn().await?.session(&text).await.map_err(db)? else {
            return Ok(None);
        };
        let stored = row.stored;
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
        let state = Arc::new(self.open(id, &stored.sealed)?);
        let next = from_db(stored.next_seq, "seq").map_err(db)?;
        let at = from_unix(stored.last_activity);
        let session = restored(&state, next, at)?;
        match holding {
            Some(h) => {
                // Known anonymous only if the stored login says so under its MAC.
                let anonymous = row
                    .login
                    .filter(|l| {
                        l.login.is_none() && self.binding.session_login_holds(&text, None, &l.tag)
                    })
                    .map(|l| l.tag);
                let held = Held {
                    state,
                    next_seq: next,
                    last_activity: at,
                    idle_timeout: session.idle_timeout(),
                    anonymous,
                    dirty: false,
                };
                // Two records racing to take it up read the same row: the first one's stays.
                let mut map = lock(&h.held.map);
                let held = map.entry(id).or_insert(held);
                restored(&held.state, held.next_seq, held.last_activity).map(Some)
            }
            None => {
                self.states.insert(id, state);
                Ok(Some(session))
            }
        }
    }

    async fn advance(&self, session: &ServerSession, from: u64) -> Result<Advanced, StoreError> {
        if let Some(h) = &self.holding {
            return self.advance_held(h, session, from).await;
        }
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
        // The row goes first: a record that misses the held seq then finds no row either,
        // rather than the row's older seq (the last write-back), which would accept it again.
        self.conn()
            .await?
            .remove_session(&id_text(id))
            .await
            .map_err(db)?;
        if let Some(h) = &self.holding {
            lock(&h.held.map).remove(&id);
        }
        Ok(())
    }

    async fn sweep(&self, now: SystemTime) -> Result<(), StoreError> {
        // The channel sweeps when the sessions seem full, then counts again: for real.
        *lock(&self.total) = None;
        if let Some(h) = self.take_over().await? {
            // Idle ones end here (their rows' activity is as old as the last write-back);
            // the others' seqs go to the database, so that its sweep sees them as they are.
            let idle: Vec<SessionId> = lock(&h.held.map)
                .iter()
                .filter(|(_, held)| {
                    now.duration_since(held.last_activity)
                        .is_ok_and(|d| d > held.idle_timeout)
                })
                .map(|(id, _)| *id)
                .collect();
            for id in idle {
                self.remove(id).await?;
            }
            self.write_back(h).await?;
        }
        let mut conn = self.conn().await?;
        conn.forget_spent_handshakes(unix(now)).await.map_err(db)?;
        let ended = conn.sweep_sessions(unix(now)).await.map_err(db)?;
        for id in ended {
            if let Some(id) = id_of(&id) {
                self.states.remove(&id);
                if let Some(h) = &self.holding {
                    lock(&h.held.map).remove(&id);
                }
            }
        }
        Ok(())
    }

    async fn release(&self) -> Result<(), StoreError> {
        let Some(h) = &self.holding else {
            return Ok(());
        };
        if h.taken.get().is_none() {
            // Never served: nothing held, and the last holder's state stays as it was.
            return Ok(());
        }
        self.write_back(h).await?;
        let mut tx = self.store.begin().await.map_err(db)?;
        tx.set_sessions_holder(RELEASED).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        tracing::info!("sessions' seqs written back; they go on after the restart");
        Ok(())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let n = self.conn().await?.count_sessions().await.map_err(db)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

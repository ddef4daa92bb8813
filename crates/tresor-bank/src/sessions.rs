//! Secure-channel sessions in the bank's database: the fixed state sealed with AES-256-GCM
//! under a key from the data folder (the rows hold traffic keys), the next seq and last
//! activity in the clear beside it, under an HMAC that a database-only attacker cannot
//! recompute (`crate::binding`): a seq moved back is refused.
//!
//! Two ways to keep the seq, which is what makes a record acceptable once:
//!
//! * **Held** (the embedded database, which one process serves, as a lock on the data folder
//!   says; and PostgreSQL, shared by instances): the seq and last activity live in the
//!   memory of the one instance holding the session, which the row names (under the seq
//!   MAC). A record on a session known to be anonymous touches no database at all; one on a
//!   logged-in session reads its login, so that a session the bank ended anywhere (a
//!   recovery, an admin's command in another process) is refused. Seqs are written back
//!   every sweep, and at a clean stop with the sessions let go. A holder that stopped without
//!   writing its seqs back took them with it: its sessions end (the embedded database's next
//!   start ends them all; on PostgreSQL, the instance a record then reaches). On PostgreSQL an
//!   instance asks the holder for a session by NOTIFY, once the record authenticated, and
//!   takes it up when let go.
//! * **Shared** (SQLite by URL, which several processes may open): a request costs one
//!   statement ([`Conn::accept_seq`](crate::storage::Conn::accept_seq)), the compare-and-set
//!   that moves the seq on only if it was the record's, returning the activity and MAC it
//!   replaced for the idle timeout and the MAC check, and the session's login. Its commit
//!   does not wait for the disk ([`Store::session_writer`]): if the database server or host
//!   stops uncleanly, a seq may move back, so then every session ends
//!   (`storage::sessions::renew_epoch`).

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
use crate::storage::sessions::{NewSession, SessionRow, StoredLogin, StoredSession};
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

/// The sessions whose seq this instance holds in memory, shared with the bank, which says
/// when a session's login changes.
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

/// Held mode: what this instance holds, under which name, and how it learned of its
/// predecessors (taken over once, before any session is used).
struct Holding {
    core: Arc<HoldCore>,
    /// Embedded: locked while the process lives; the kernel lets go when it dies.
    _lock: Option<std::fs::File>,
    taken: tokio::sync::OnceCell<()>,
    /// Stops the PostgreSQL listener's task.
    stop: Arc<tokio::sync::Notify>,
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

/// What the held mode shares with the task that answers other instances' requests.
struct HoldCore {
    held: Arc<HeldSessions>,
    store: Store,
    binding: Binding,
    /// This instance's name as a holder, written beside each session it holds: a random one
    /// for the embedded database's one process; on PostgreSQL, its listener connection's
    /// backend, so that others can tell it still lives (a new one after a reconnection).
    holder: Mutex<String>,
    /// Other instances share the database (PostgreSQL): a session another holds is asked
    /// for; else one held by another name is a dead process's.
    shared: bool,
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

/// How long an instance waits for another to let a session go before it answers "busy".
const HANDOVER_WAIT: Duration = Duration::from_secs(1);
/// How often it looks meanwhile.
const HANDOVER_POLL: Duration = Duration::from_millis(2);

impl HoldCore {
    fn holder(&self) -> String {
        lock(&self.holder).clone()
    }

    /// A held session's row as written by its holder: `holder` still, or none.
    fn row(
        &self,
        id: &str,
        seq: u64,
        at: SystemTime,
        holder: Option<&str>,
    ) -> Result<StoredSession, StoreError> {
        seq_row(&self.binding, id, seq, at, holder)
    }

    /// Writes the held seqs: those changed since last time, still held; or, to `let_go`,
    /// all of them, the sessions then held by no one (and no longer here).
    async fn write_back(&self, let_go: bool) -> Result<(), StoreError> {
        let holder = self.holder();
        let seqs: Vec<(SessionId, u64, SystemTime)> = {
            let mut map = lock(&self.held.map);
            let seqs = map
                .iter_mut()
                .filter(|(_, held)| let_go || held.dirty)
                .map(|(id, held)| {
                    held.dirty = false;
                    (*id, held.next_seq, held.last_activity)
                })
                .collect();
            if let_go {
                map.clear();
            }
            seqs
        };
        if seqs.is_empty() {
            return Ok(());
        }
        let keep = (!let_go).then_some(holder.as_str());
        let rows = seqs
            .iter()
            .map(|(id, seq, at)| {
                let id = id_text(*id);
                let row = self.row(&id, *seq, *at, keep)?;
                Ok((id, row))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let written = async {
            let mut tx = self.store.begin().await?;
            tx.write_seqs(&holder, &rows).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = written {
            if !let_go {
                // Still to write: next time.
                let mut map = lock(&self.held.map);
                for (id, _, _) in &seqs {
                    if let Some(held) = map.get_mut(id) {
                        held.dirty = true;
                    }
                }
            }
            return Err(db(e));
        }
        Ok(())
    }

    /// Lets session `id` go because another instance asks for it: out of memory first (no
    /// record is accepted here any more), then its seq written to the row, held by no one.
    async fn release(&self, id: &str) {
        let Some(sid) = id_of(id) else {
            return;
        };
        // Every instance hears every request: only the holder has it.
        let Some(held) = lock(&self.held.map).remove(&sid) else {
            return;
        };
        let holder = self.holder();
        let written = async {
            let row = self.row(id, held.next_seq, held.last_activity, None)?;
            let mut conn = self.store.read().await.map_err(db)?;
            conn.write_seqs(&holder, &[(id.to_owned(), row)])
                .await
                .map_err(db)
        }
        .await;
        if let Err(e) = written {
            // The seq is only in this memory, which just let it go: the session ends.
            tracing::warn!(error = %e, "could not hand a session over: it ends");
            if let Ok(mut conn) = self.store.read().await {
                let _ = conn.remove_session_held_by(id, &holder).await;
            }
        }
    }
}

/// Answers other instances' requests for sessions this one holds, until `stop`. When the
/// listener's connection breaks, the name it gave this instance is over (others will take
/// it for dead), so every held session is let go first, and a new name comes with the new
/// connection.
async fn answer_releases(
    core: std::sync::Weak<HoldCore>,
    mut listener: crate::storage::sessions::ReleaseListener,
    stop: Arc<tokio::sync::Notify>,
) {
    use crate::storage::sessions::Heard;
    loop {
        let heard = tokio::select! {
            heard = listener.next() => heard,
            () = stop.notified() => return,
        };
        let Some(core) = core.upgrade() else {
            return;
        };
        match heard {
            Ok(Heard::Release(id)) => core.release(&id).await,
            Ok(Heard::Lost) | Err(_) => {
                tracing::warn!(
                    "lost the connection that names this instance: letting its sessions go"
                );
                if let Err(e) = core.write_back(true).await {
                    tracing::warn!(error = %e, "could not write the sessions back: they end");
                }
                loop {
                    match listener.reconnect().await {
                        Ok(()) => break,
                        Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                }
                *lock(&core.holder) = listener.holder().to_owned();
            }
        }
    }
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
        let holder = format!("embedded {}", data_encoding::HEXLOWER.encode(&n));
        Ok(Self::holding(store, secrets, holder, Some(file)))
    }

    /// Sessions in a PostgreSQL database that other instances share, each held in the memory
    /// of the instance that serves it; another instance asks for it when a record of it comes
    /// there.
    pub fn held_shared(store: Store, secrets: &BankSecrets) -> Self {
        // Named when its listener connects (`take_over`).
        Self::holding(store, secrets, String::new(), None)
    }

    fn holding(
        store: Store,
        secrets: &BankSecrets,
        holder: String,
        lock_file: Option<std::fs::File>,
    ) -> Self {
        let shared = lock_file.is_none();
        Self {
            holding: Some(Holding {
                core: Arc::new(HoldCore {
                    held: Arc::default(),
                    store: store.clone(),
                    binding: Binding::new(secrets),
                    holder: Mutex::new(holder),
                    shared,
                }),
                _lock: lock_file,
                taken: tokio::sync::OnceCell::new(),
                stop: Arc::default(),
            }),
            ..Self::new(store, secrets)
        }
    }

    /// The held sessions, for the bank to tell of login changes; `None` in shared mode.
    pub fn held_sessions(&self) -> Option<Arc<HeldSessions>> {
        self.holding.as_ref().map(|h| h.core.held.clone())
    }

    /// In held mode, once, before any session is used: the embedded database's one process
    /// ends the sessions a process before it held and never wrote back (it stopped uncleanly,
    /// so their seqs may have moved on since); on PostgreSQL, the instance starts listening
    /// for requests for its sessions, and takes its name from that connection.
    async fn take_over(&self) -> Result<Option<&HoldCore>, StoreError> {
        let Some(h) = &self.holding else {
            return Ok(None);
        };
        h.taken
            .get_or_try_init(|| async {
                if h.core.shared {
                    let listener = self.store.release_listener().await.map_err(db)?;
                    *lock(&h.core.holder) = listener.holder().to_owned();
                    tokio::spawn(answer_releases(
                        Arc::downgrade(&h.core),
                        listener,
                        h.stop.clone(),
                    ));
                } else {
                    let ended = self.conn().await?.end_held_sessions().await.map_err(db)?;
                    if ended > 0 {
                        tracing::warn!(
                            ended,
                            "the bank stopped without writing its sessions' seqs back: they ended"
                        );
                    }
                }
                Ok::<(), StoreError>(())
            })
            .await?;
        Ok(Some(&h.core))
    }

    fn stored(&self, id: &str, session: &ServerSession) -> Result<StoredSession, StoreError> {
        let (seq, at) = (session.next_client_seq(), session.last_activity());
        seq_row(&self.binding, id, seq, at, None)
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
    /// A session's row, its seq MAC checked (over the holder it names): a row edited without
    /// the bank's key fails closed.
    async fn read_row(&self, text: &str) -> Result<Option<SessionRow>, StoreError> {
        let Some(row) = self.conn().await?.session(text).await.map_err(db)? else {
            return Ok(None);
        };
        let s = &row.stored;
        if !self.binding.session_seq_holds(
            text,
            s.next_seq,
            s.last_activity,
            s.holder.as_deref(),
            &s.seq_tag,
        ) {
            return Err(StoreError(
                "a stored session's seq was changed without the bank's key".into(),
            ));
        }
        Ok(Some(row))
    }

    /// Holds a session this instance just claimed, at its row's seq and activity.
    fn hold(
        &self,
        h: &HoldCore,
        session: &ServerSession,
        text: &str,
        row: SessionRow,
    ) -> Result<(), StoreError> {
        // Known anonymous only if the stored login says so under its MAC.
        let anonymous = row
            .login
            .filter(|l| l.login.is_none() && self.binding.session_login_holds(text, None, &l.tag))
            .map(|l| l.tag);
        lock(&h.held.map).insert(
            session.id(),
            Held {
                state: Arc::new(session.export()),
                next_seq: from_db(row.stored.next_seq, "seq").map_err(db)?,
                last_activity: from_unix(row.stored.last_activity),
                idle_timeout: session.idle_timeout(),
                anonymous,
                dirty: false,
            },
        );
        Ok(())
    }

    /// Ends a session whose holder is gone.
    async fn end_held_by(&self, text: &str, holder: &str) -> Result<(), StoreError> {
        tracing::info!("a session's holder stopped without letting it go: it ends");
        self.conn()
            .await?
            .remove_session_held_by(text, holder)
            .await
            .map_err(db)
    }

    /// [`SessionStore::advance`] in held mode: the seq moves on in memory, under the map's
    /// lock, only if it still is `from`; a session not held here is taken up first.
    async fn advance_held(
        &self,
        h: &HoldCore,
        session: &ServerSession,
        from: u64,
    ) -> Result<Advanced, StoreError> {
        let id = session.id();
        let mut tries = 0;
        let anonymous = loop {
            match accept_in_memory(h, session, from) {
                InMemory::Accepted(anonymous) => break anonymous,
                InMemory::Taken => return Ok(Advanced::Taken),
                InMemory::Idle => {
                    self.remove(id).await?;
                    return Ok(Advanced::Ended);
                }
                // Let go again at once (another instance asked): the client sends it again.
                InMemory::NotHere if tries > 2 => {
                    return Err(StoreError("the session moved meanwhile".into()));
                }
                InMemory::NotHere => {
                    tries += 1;
                    if let Some(over) = self.take_up(h, session).await? {
                        return Ok(over);
                    }
                }
            }
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

    /// Takes up a session no instance holds, from its row, once its holder (if any) let it
    /// go: `None` once it is held here, else what became of it.
    async fn take_up(
        &self,
        h: &HoldCore,
        session: &ServerSession,
    ) -> Result<Option<Advanced>, StoreError> {
        let id = session.id();
        let text = id_text(id);
        let mut asked: Option<String> = None;
        let deadline = Instant::now() + HANDOVER_WAIT;
        loop {
            if lock(&h.held.map).contains_key(&id) {
                return Ok(None);
            }
            let Some(row) = self.read_row(&text).await? else {
                return Ok(Some(Advanced::Ended));
            };
            let me = h.holder();
            match row.stored.holder.as_deref() {
                None => {
                    let tag = self.binding.session_seq_tag(
                        &text,
                        row.stored.next_seq,
                        row.stored.last_activity,
                        Some(&me),
                    );
                    let claimed = self
                        .conn()
                        .await?
                        .claim_session(&text, &row.stored, &me, &tag)
                        .await
                        .map_err(db)?;
                    if claimed {
                        self.hold(h, session, &text, row)?;
                        return Ok(None);
                    }
                    // Another record or instance took it first: look again.
                    continue;
                }
                // Held by another process than the embedded database's one: it is gone,
                // and its seq with it.
                Some(other) if !h.shared && other != me => {
                    self.end_held_by(&text, other).await?;
                    return Ok(Some(Advanced::Ended));
                }
                Some(other) if other != me => {
                    if asked.as_deref() != Some(other) {
                        // A holder that is gone took the seq with it; a living one is asked.
                        if !self.conn().await?.holder_alive(other).await.map_err(db)? {
                            self.end_held_by(&text, other).await?;
                            return Ok(Some(Advanced::Ended));
                        }
                        self.conn().await?.ask_release(&text).await.map_err(db)?;
                        asked = Some(other.to_owned());
                    }
                }
                // Ours by the row, not in memory: being let go just now, or lost.
                Some(_) => {}
            }
            if Instant::now() >= deadline {
                if row.stored.holder.as_deref() == Some(me.as_str()) {
                    // Lost from this memory: the seq with it.
                    self.end_held_by(&text, &me).await?;
                    return Ok(Some(Advanced::Ended));
                }
                return Err(StoreError(
                    "the instance holding the session did not let it go in time".into(),
                ));
            }
            tokio::time::sleep(HANDOVER_POLL).await;
        }
    }
}

/// What the held map said of a record.
enum InMemory {
    /// Accepted: the seq moved on; the MAC over "not logged in" if the session is known so.
    Accepted(Option<Vec<u8>>),
    /// Not the session's next seq.
    Taken,
    /// Idle past its timeout.
    Idle,
    /// Not held here.
    NotHere,
}

/// The compare-and-set of a held seq.
fn accept_in_memory(h: &HoldCore, session: &ServerSession, from: u64) -> InMemory {
    let mut map = lock(&h.held.map);
    match map.get_mut(&session.id()) {
        None => InMemory::NotHere,
        Some(held) if held.next_seq != from => InMemory::Taken,
        Some(held) if session.idle_between(held.last_activity, session.last_activity()) => {
            InMemory::Idle
        }
        Some(held) => {
            held.next_seq = session.next_client_seq();
            held.last_activity = session.last_activity();
            held.dirty = true;
            InMemory::Accepted(held.anonymous.clone())
        }
    }
}

/// A session's seq, last activity and holder as its row stores them, under their MAC.
fn seq_row(
    binding: &Binding,
    id: &str,
    seq: u64,
    at: SystemTime,
    holder: Option<&str>,
) -> Result<StoredSession, StoreError> {
    let next_seq = to_db(seq, "seq").map_err(db)?;
    let last_activity = unix(at);
    Ok(StoredSession {
        sealed: Vec::new(),
        next_seq,
        last_activity,
        seq_tag: binding.session_seq_tag(id, next_seq, last_activity, holder),
        holder: holder.map(str::to_owned),
    })
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
        // Held here from the start (in held mode): the row says by whom.
        let holding = self.take_over().await?;
        let holder = holding.map(HoldCore::holder);
        let (seq, at) = (session.next_client_seq(), session.last_activity());
        let mut stored = seq_row(&self.binding, &id, seq, at, holder.as_deref())?;
        stored.sealed = self.seal(session.id(), &state)?;
        let idle = i64::try_from(session.idle_timeout().as_secs()).unwrap_or(i64::MAX);
        let until = stored.last_activity.saturating_add(SPENT_SECONDS);
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
        let Some(row) = self.read_row(&text).await? else {
            return Ok(None);
        };
        let state = Arc::new(self.open(id, &row.stored.sealed)?);
        if holding.is_some() {
            // Not held here: the record is opened at its own seq first (as a shared store's
            // is), and `advance` takes the session up, so that a record that does not
            // authenticate neither moves a session between instances nor ends one.
            return restored(&state, seq, now).map(Some);
        }
        let next = from_db(row.stored.next_seq, "seq").map_err(db)?;
        let session = restored(&state, next, from_unix(row.stored.last_activity))?;
        self.states.insert(id, state);
        Ok(Some(session))
    }

    async fn advance(&self, session: &ServerSession, from: u64) -> Result<Advanced, StoreError> {
        if let Some(h) = &self.holding {
            return self.advance_held(&h.core, session, from).await;
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
            None,
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
            lock(&h.core.held.map).remove(&id);
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
            h.write_back(false).await?;
        }
        let mut conn = self.conn().await?;
        conn.forget_spent_handshakes(unix(now)).await.map_err(db)?;
        let ended = conn.sweep_sessions(unix(now)).await.map_err(db)?;
        for id in ended {
            if let Some(id) = id_of(&id) {
                self.states.remove(&id);
                if let Some(h) = &self.holding {
                    lock(&h.core.held.map).remove(&id);
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
        // Held by no one, with their seqs: the sessions go on after a restart, or at the
        // other instances.
        h.core.write_back(true).await?;
        tracing::info!("sessions' seqs written back; they go on after the restart");
        Ok(())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let n = self.conn().await?.count_sessions().await.map_err(db)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

//! Secure-channel sessions, shared by every instance on this database, and the login each
//! carries. The sealing of their state is the bank's (`crate::sessions`).

use std::ops::DerefMut;

use sqlx::any::AnyRow;
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
    /// MAC over the id, `next_seq`, `last_activity` and `holder`.
    pub seq_tag: Vec<u8>,
    /// The instance whose memory holds the seq and activity (then newer than these), if any.
    pub holder: Option<String>,
}

/// A stored session as an instance takes it up: its state, idle timeout and login.
#[derive(Debug)]
pub struct SessionRow {
    /// State, seq, activity and the MAC over them.
    pub stored: StoredSession,
    /// Seconds without a record before it ends.
    pub idle_timeout: i64,
    /// Its login; `None` if the stored one does not parse.
    pub login: Option<StoredLogin>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogin {
    /// Who is logged in, if anyone.
    pub login: Option<SessionLogin>,
    /// MAC over the id and the login.
    pub tag: Vec<u8>,
}

/// What [`Conn::accept_seq`] replaced, and the session's login.
#[derive(Debug)]
pub struct AcceptedSeq {
    /// The last activity before this record, Unix seconds.
    pub prev_activity: i64,
    /// The MAC over the seq and activity before this record.
    pub prev_seq_tag: Vec<u8>,
    /// The session's login; `None` if the stored one does not parse (then the bank reads
    /// it again, and refuses it as corrupt).
    pub login: Option<StoredLogin>,
}

fn login_of(row: &AnyRow) -> Result<StoredLogin, StorageError> {
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
    Ok(StoredLogin { login, tag })
}

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// Stores a new session.
    pub async fn insert_session(&mut self, s: &NewSession<'_>) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO channel_sessions (id, state, next_seq, last_activity, idle_timeout, \
             seq_tag, source, login_tag, holder) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(s.id)
        .bind(s.stored.sealed.clone())
        .bind(s.stored.next_seq)
        .bind(s.stored.last_activity)
        .bind(s.idle_timeout)
        .bind(s.stored.seq_tag.clone())
        .bind(s.source)
        .bind(s.login_tag.clone())
        .bind(s.stored.holder.clone())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Marks the handshake that opens session `id` as spent until `until` (Unix seconds);
    /// `false` if it already was: its ClientFinish came before, here or on another instance.
    /// Run in the transaction that inserts the session.
    pub async fn spend_handshake(&mut self, id: &str, until: i64) -> Result<bool, StorageError> {
        let inserted = sqlx::query(
            "INSERT INTO spent_handshakes (id, until_time) VALUES ($1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(until)
        .execute(self.conn())
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Forgets the spent handshakes whose ClientFinish can no longer be accepted at `now`.
    pub async fn forget_spent_handshakes(&mut self, now: i64) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM spent_handshakes WHERE until_time < $1")
            .bind(now)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// How many open sessions this source opened (by its index: at most its budget's rows).
    pub async fn count_sessions_from(&mut self, source: &str) -> Result<i64, StorageError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM channel_sessions WHERE source = $1")
                .bind(source)
                .fetch_one(self.conn())
                .await?,
        )
    }

    /// A session's stored state, its idle timeout and its login.
    pub async fn session(&mut self, id: &str) -> Result<Option<SessionRow>, StorageError> {
        let row = sqlx::query(
            "SELECT state, next_seq, last_activity, seq_tag, holder, idle_timeout, user_id, \
             stage, login_tag FROM channel_sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                stored: StoredSession {
                    sealed: r.try_get("state")?,
                    next_seq: r.try_get("next_seq")?,
                    last_activity: r.try_get("last_activity")?,
                    seq_tag: r
                        .try_get::<Option<Vec<u8>>, _>("seq_tag")?
                        .ok_or_else(|| StorageError::corrupt("session without a seq MAC"))?,
                    holder: r.try_get("holder")?,
                },
                idle_timeout: r.try_get("idle_timeout")?,
                // One that does not parse is the bank's to refuse, as when it reads it.
                login: login_of(&r).ok(),
            })
        })
        .transpose()
    }

    /// Makes `holder` the holder of a session that no instance holds, at the seq and activity
    /// read from its row, with the MAC over them and `holder`; `false` if the row changed
    /// meanwhile (another instance took it, or it ended).
    pub async fn claim_session(
        &mut self,
        id: &str,
        read: &StoredSession,
        holder: &str,
        seq_tag: &[u8],
    ) -> Result<bool, StorageError> {
        let claimed = sqlx::query(
            "UPDATE channel_sessions SET holder = $1, seq_tag = $2 \
             WHERE id = $3 AND holder IS NULL AND next_seq = $4 AND last_activity = $5",
        )
        .bind(holder)
        .bind(seq_tag.to_vec())
        .bind(id)
        .bind(read.next_seq)
        .bind(read.last_activity)
        .execute(self.conn())
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    /// Writes the seqs and last activities that `holder` kept in memory, each with its new
    /// holder (`holder` still, or none when it lets the session go) and MAC, where `holder`
    /// still holds the session; how many it wrote. The rows of sessions that ended meanwhile
    /// are gone and stay so.
    pub async fn write_seqs(
        &mut self,
        holder: &str,
        seqs: &[(String, StoredSession)],
    ) -> Result<u64, StorageError> {
        let mut written = 0;
        for (id, s) in seqs {
            written += sqlx::query(
                "UPDATE channel_sessions SET next_seq = $1, last_activity = $2, seq_tag = $3, \
                 holder = $4 WHERE id = $5 AND holder = $6",
            )
            .bind(s.next_seq)
            .bind(s.last_activity)
            .bind(s.seq_tag.clone())
            .bind(s.holder.clone())
            .bind(id)
            .bind(holder)
            .execute(self.conn())
            .await?
            .rows_affected();
        }
        Ok(written)
    }

    /// Ends a session if `holder` holds it: a holder that is gone took its seq with it.
    pub async fn remove_session_held_by(
        &mut self,
        id: &str,
        holder: &str,
    ) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM channel_sessions WHERE id = $1 AND holder = $2")
            .bind(id)
            .bind(holder)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Ends every session some instance holds; how many. For the embedded database's one
    /// process at its start: whoever held them is gone without writing their seqs back.
    pub async fn end_held_sessions(&mut self) -> Result<u64, StorageError> {
        Ok(
            sqlx::query("DELETE FROM channel_sessions WHERE holder IS NOT NULL")
                .execute(self.conn())
                .await?
                .rows_affected(),
        )
    }

    /// Whether the PostgreSQL connection that a holder's name ([`ReleaseListener::holder`])
    /// stands for is still open: the instance lives (its connection closes when it dies).
    pub async fn holder_alive(&mut self, holder: &str) -> Result<bool, StorageError> {
        let Some((pid, started)) = holder
            .strip_prefix("pg ")
            .and_then(|rest| rest.split_once(' '))
            .and_then(|(pid, started)| Some((pid.parse::<i32>().ok()?, started)))
        else {
            return Ok(false);
        };
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE pid = $1 AND CAST(backend_start AS TEXT) = $2",
        )
        .bind(pid)
        .bind(started)
        .fetch_one(self.conn())
        .await?;
        Ok(n > 0)
    }

    /// Asks the instance holding session `id` to let it go (PostgreSQL's NOTIFY, to every
    /// instance's [`ReleaseListener`]).
    pub async fn ask_release(&mut self, id: &str) -> Result<(), StorageError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(RELEASE_CHANNEL)
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Accepts the record numbered `from`, in one statement: the seq moves to `to` only if
    /// it still is `from` (no other request, on any instance, took this record), and the
    /// activity and MAC it replaced are kept beside it and returned with the session's login
    /// for the bank to check. `None` if the session is gone or not at `from`.
    ///
    /// On the connection of [`super::Store::session_writer`]: the commit may not be on disk
    /// when this returns (module `crate::sessions` says why that is safe).
    pub async fn accept_seq(
        &mut self,
        id: &str,
        from: i64,
        to: &StoredSession,
    ) -> Result<Option<AcceptedSeq>, StorageError> {
        let row = sqlx::query(
            "UPDATE channel_sessions SET next_seq = $1, last_activity = $2, seq_tag = $3, \
             prev_activity = last_activity, prev_seq_tag = seq_tag \
             WHERE id = $4 AND next_seq = $5 \
             RETURNING prev_activity, prev_seq_tag, user_id, stage, login_tag",
        )
        .bind(to.next_seq)
        .bind(to.last_activity)
        .bind(to.seq_tag.clone())
        .bind(id)
        .bind(from)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| {
            Ok(AcceptedSeq {
                prev_activity: r.try_get("prev_activity")?,
                prev_seq_tag: r
                    .try_get::<Option<Vec<u8>>, _>("prev_seq_tag")?
                    .ok_or_else(|| StorageError::corrupt("session without a seq MAC"))?,
                // One that does not parse is the bank's to refuse, as when it reads it.
                login: login_of(&r).ok(),
            })
        })
        .transpose()
    }

    /// A session's next seq, if the session is kept: why [`Conn::accept_seq`] found nothing.
    pub async fn session_seq(&mut self, id: &str) -> Result<Option<i64>, StorageError> {
        Ok(
            sqlx::query_scalar("SELECT next_seq FROM channel_sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(self.conn())
                .await?,
        )
    }

    /// Ends a session.
    pub async fn remove_session(&mut self, id: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM channel_sessions WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Ends the sessions idle past their timeout at `now`; their ids.
    pub async fn sweep_sessions(&mut self, now: i64) -> Result<Vec<String>, StorageError> {
        Ok(sqlx::query_scalar(
            "DELETE FROM channel_sessions WHERE last_activity + idle_timeout < $1 RETURNING id",
        )
        .bind(now)
        .fetch_all(self.conn())
        .await?)
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
        row.as_ref().map(login_of).transpose()
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

/// The NOTIFY channel on which instances ask each other to let a session go.
const RELEASE_CHANNEL: &str = "tresor_release";

/// An instance's ear for [`Conn::ask_release`], on a PostgreSQL connection of its own, whose
/// backend also names the instance as a holder: it lives exactly as long as that connection.
pub struct ReleaseListener {
    listener: sqlx::postgres::PgListener,
    holder: String,
}

/// What a [`ReleaseListener`] heard.
#[derive(Debug)]
pub enum Heard {
    /// Another instance wants this session.
    Release(String),
    /// The connection broke: the holder name is over, and notices may have been missed.
    Lost,
}

impl ReleaseListener {
    /// Listens on a new connection to the PostgreSQL database at `url`.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(RELEASE_CHANNEL).await?;
        let holder = Self::name(&mut listener).await?;
        Ok(Self { listener, holder })
    }

    async fn name(listener: &mut sqlx::postgres::PgListener) -> Result<String, StorageError> {
        let (pid, started): (i32, String) = sqlx::query_as(
            "SELECT pid, CAST(backend_start AS TEXT) FROM pg_stat_activity \
             WHERE pid = pg_backend_pid()",
        )
        .fetch_one(&mut *listener)
        .await?;
        Ok(format!("pg {pid} {started}"))
    }

    /// This instance's name as a holder while the connection lasts.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The next request, or the news that the connection broke.
    pub async fn next(&mut self) -> Result<Heard, StorageError> {
        match self.listener.try_recv().await? {
            Some(n) => Ok(Heard::Release(n.payload().to_owned())),
            None => Ok(Heard::Lost),
        }
    }

    /// After [`Heard::Lost`]: connected again, under a new holder name.
    pub async fn reconnect(&mut self) -> Result<(), StorageError> {
        self.holder = Self::name(&mut self.listener).await?;
        Ok(())
    }
}

/// The meta key of the durability epoch the stored sessions' seqs belong to.
const EPOCH_KEY: &str = "session_epoch";

/// Ends every session unless the stored durability epoch is `epoch`, and stores `epoch`: in
/// one transaction, the epoch's change conditioned on its old value, so that of several
/// connections noticing one restart, one ends the sessions, before any of them is used.
/// How many sessions it ended.
///
/// Seqs are written without waiting for the disk ([`super::Store::session_writer`]); an
/// epoch names the span in which such writes cannot have been lost (one boot of the host
/// for SQLite, one run of the server for PostgreSQL), so a new one means a seq may have moved
/// back: the sessions go, rather than accept a record twice.
async fn renew_epoch(conn: &mut AnyConnection, epoch: &str) -> Result<u64, StorageError> {
    use sqlx::Connection as _;
    let mut tx = conn.begin().await?;
    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, '') ON CONFLICT (key) DO NOTHING")
        .bind(EPOCH_KEY)
        .execute(&mut *tx)
        .await?;
    let changed = sqlx::query("UPDATE meta SET value = $1 WHERE key = $2 AND value <> $1")
        .bind(epoch)
        .bind(EPOCH_KEY)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let ended = if changed == 1 {
        sqlx::query("DELETE FROM channel_sessions")
            .execute(&mut *tx)
            .await?
            .rows_affected()
    } else {
        0
    };
    tx.commit().await?;
    Ok(ended)
}

/// Ends every session if the durability epoch of `backend` is not the stored one
/// ([`renew_epoch`]): at start, and on each new session-writer connection to PostgreSQL.
pub(super) async fn end_sessions_of_a_past_epoch(
    conn: &mut AnyConnection,
    backend: super::Backend,
) -> Result<(), StorageError> {
    let epoch = match backend {
        super::Backend::Sqlite => host_epoch(),
        super::Backend::Postgres => postgres_epoch(conn).await?,
    };
    let ended = renew_epoch(conn, &epoch).await?;
    if ended > 0 {
        tracing::warn!(
            ended,
            epoch,
            "the database or its host restarted since these sessions' seqs were written: \
             they ended"
        );
    }
    Ok(())
}

/// The PostgreSQL server's durability epoch: when it started. Asynchronous commits are lost
/// only if it stops uncleanly, and any stop gives the next run another start time.
async fn postgres_epoch(conn: &mut AnyConnection) -> Result<String, StorageError> {
    let started: String = sqlx::query_scalar("SELECT CAST(pg_postmaster_start_time() AS TEXT)")
        .fetch_one(&mut *conn)
        .await?;
    Ok(format!("postgres started {started}"))
}

/// The host's durability epoch for the embedded database: its boot. SQLite's WAL with
/// `synchronous = NORMAL` loses no commit when the process dies, only when the host does;
/// Linux names each boot. Elsewhere every start is a new epoch.
fn host_epoch() -> String {
    match std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        Ok(id) if !id.trim().is_empty() => format!("boot {}", id.trim()),
        _ => {
            let mut n = [0u8; 16];
            if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut n).is_err() {
                // Still new at every start.
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                n = t.as_nanos().to_be_bytes();
            }
            format!("start {}", data_encoding::HEXLOWER.encode(&n))
        }
    }
}

//! The bank's database, and all of the bank's SQL: SQLite (the embedded default, a file in the
//! data folder) or PostgreSQL (several instances sharing one set of users).
//!
//! Nothing outside this module tree writes SQL. The services above it read typed rows
//! ([`rows`]) whose enumerated columns parse strictly: a value the bank never writes is
//! [`StorageError::Corrupt`], never a default, so an edited row fails closed.
//!
//! * [`Conn`] is a connection with the queries as methods: [`Reader`] for reads on a pooled
//!   connection, [`Tx`] for a write transaction. A write transaction starts with
//!   `BEGIN IMMEDIATE` on SQLite (writers queue for the database's one write lock, and what a
//!   transaction read cannot change before it commits); on PostgreSQL the rows a decision
//!   depends on are read with `SELECT … FOR UPDATE` (the `*_for_update` methods), or the write
//!   carries its own condition (a version, a status, a used flag) and reports whether it
//!   applied.
//! * The schema changes only by the versioned migrations in `migrations/{sqlite,postgres}`,
//!   applied by sqlx's migrator; [`SchemaPolicy`] says what opening a database may do to it.
//!
//! Queries use `$n` placeholders and portable SQL (`RETURNING`, `ON CONFLICT`, `BIGINT` for
//! every number, 0/1 for flags) through sqlx's Any driver.

mod accounts;
pub mod admins;
mod audit;
pub mod certs;
pub mod directory;
pub mod ledger;
pub mod mail;
mod meta;
mod migrations;
pub mod orders;
mod penalties;
pub mod rows;
pub mod sessions;
pub mod users;

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use sqlx::ConnectOptions as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Transaction};

pub use audit::AuditFilter;
pub use migrations::{LATEST_VERSION, SchemaPolicy, SchemaState};
pub use rows::*;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file in the data folder.
    Sqlite,
    /// A PostgreSQL server, shared by several instances.
    Postgres,
}

/// Why the database could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The URL names no supported database.
    #[error("unsupported database URL (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    /// A stored value is not one the bank writes: the row was edited or damaged.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// Applying the migrations failed; the failed one was rolled back.
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database's schema is newer than this program: an older `tresor-bank` must not
    /// write to it.
    #[error(
        "the database's schema is version {found}, newer than this tresor-bank knows \
         ({known}); run the tresor-bank that migrated it"
    )]
    SchemaNewer {
        /// The database's version.
        found: i64,
        /// The newest this program knows.
        known: i64,
    },
    /// The database's schema is older than this program.
    #[error(
        "the database's schema is version {found}, this tresor-bank needs {known}: back it \
         up, then run `tresor-bank migrate` (or `serve --migrate`)"
    )]
    SchemaOlder {
        /// The database's version.
        found: i64,
        /// The version needed.
        known: i64,
    },
    /// The database holds no bank.
    #[error("the database holds no Tresor bank; create one with `tresor-bank init` (or `serve`)")]
    NoBank,
    /// The embedded database's file could not be created or restricted.
    #[error("database file {0}")]
    File(String),
}

impl StorageError {
    /// A stored value that does not parse.
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }
}

/// The bank's database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Connections whose commits do not wait for the disk, for accepting session records
    /// ([`Store::session_writer`]); opened when first used.
    sessions: AnyPool,
    backend: Backend,
    upgraded_from: Option<i64>,
    /// The data folder, when this is the embedded database in it: served by one process.
    embedded_in: Option<std::path::PathBuf>,
    /// A PostgreSQL database's URL, for the connection that listens for other instances'
    /// requests (`sessions::ReleaseListener`); it may hold a password, and is never printed.
    listen_url: Option<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for Store {
    // The URL may hold a database password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The file of the embedded database inside the data folder.
pub const SQLITE_FILE: &str = "tresor.db";

/// The URL of the embedded database in `data_dir`. `create` allows making the file.
pub fn sqlite_url(data_dir: &Path, create: bool) -> String {
    let mode = if create { "rwc" } else { "rw" };
    format!(
        "sqlite://{}?mode={mode}",
        data_dir.join(SQLITE_FILE).display()
    )
}

/// Makes the database file readable by its owner only, creating it empty (0600) if asked,
/// before SQLite opens it: SQLite gives its WAL and shared-memory files the database file's
/// mode, so they are 0600 too. Files an older version left readable are tightened.
fn owner_only(file: &Path, create: bool) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |e: std::io::Error| StorageError::File(format!("{}: {e}", file.display()));
        if create && !file.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(file)
                .map_err(io)?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let path = std::path::PathBuf::from(format!("{}{suffix}", file.display()));
            crate::files::owner_only(&path, 0o600).map_err(io)?;
        }
    }
    #[cfg(not(unix))]
    let _ = (file, create);
    Ok(())
}

impl Store {
    /// The embedded database in `data_dir`.
    pub async fn open_sqlite(data_dir: &Path, policy: SchemaPolicy) -> Result<Self, StorageError> {
        let create = policy != SchemaPolicy::Current;
        let file = data_dir.join(SQLITE_FILE);
        if !create && !file.exists() {
            return Err(StorageError::NoBank);
        }
        owner_only(&file, create)?;
        let mut store = Self::connect(&sqlite_url(data_dir, create), policy).await?;
        store.embedded_in = Some(data_dir.to_owned());
        Ok(store)
    }

    /// The database `tresor-bank serve` opens for the data folder `data_dir`: the one at
    /// `database_url`, or else the embedded one in the folder.
    pub async fn open(
        data_dir: &Path,
        database_url: Option<&str>,
        policy: SchemaPolicy,
    ) -> Result<Self, StorageError> {
        match database_url {
            Some(url) => Self::connect(url, policy).await,
            None => Self::open_sqlite(data_dir, policy).await,
        }
    }

    /// A new connection that listens for other instances' requests for the sessions this one
    /// holds (PostgreSQL only).
    pub async fn release_listener(&self) -> Result<sessions::ReleaseListener, StorageError> {
        let url = self
            .listen_url
            .as_ref()
            .ok_or(StorageError::UnsupportedUrl)?;
        sessions::ReleaseListener::connect(url).await
    }

    /// The data folder whose embedded database this is; `None` for a database by URL, which
    /// other instances may share.
    pub fn embedded_in(&self) -> Option<&Path> {
        self.embedded_in.as_deref()
    }

    /// A database by URL: `sqlite://…` or `postgres://…`, its schema handled as `policy`
    /// says.
    pub async fn connect(url: &str, policy: SchemaPolicy) -> Result<Self, StorageError> {
        let mut store = Self::connect_only(url).await?;
        store.upgraded_from = migrations::prepare(&store, policy).await?;
        // Before any session is served: sessions whose seqs may have been lost end now.
        sessions::end_sessions_of_a_past_epoch(&mut *store.pool.acquire().await?, store.backend)
            .await?;
        Ok(store)
    }

    /// The schema version this connection upgraded the database from, if it did: the bank
    /// then binds the rows that older versions stored unbound (`Bank::new`).
    pub fn upgraded_from(&self) -> Option<i64> {
        self.upgraded_from
    }

    /// A private SQLite database in memory, migrated: for fast tests. It lives as long as a
    /// connection of the pool does.
    pub async fn in_memory() -> Result<Self, StorageError> {
        // A name of its own, shared by the pool's connections (shared cache): through the Any
        // driver, `sqlite::memory:` would give each connection a database of its own.
        let mut name = [0u8; 12];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut name)
            .map_err(|_| StorageError::corrupt("no randomness for a database name"))?;
        let url = format!(
            "sqlite:file:tresor-memory-{}?mode=memory&cache=shared",
            data_encoding::HEXLOWER.encode(&name)
        );
        Self::connect(&url, SchemaPolicy::Create).await
    }

    /// Connects without looking at the schema.
    async fn connect_only(url: &str) -> Result<Self, StorageError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StorageError::UnsupportedUrl);
        };
        // Statement logging would put bound values (hashes, sealed session state) in logs.
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(30))
            // No round trip before each use: sqlx tests a connection when it comes back to
            // the pool, so a dead one (the server restarted) fails one query, then goes.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL for concurrent readers; FULL so that an acknowledged write
                        // survives a power cut; a long busy timeout so writers queue.
                        sqlx::raw_sql(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;",
                        )
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        let sessions = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    match backend {
                        // NORMAL: in WAL mode a commit survives the process dying, not the
                        // host; the host's boot is the sessions' epoch (`Store::connect`).
                        Backend::Sqlite => {
                            sqlx::raw_sql(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;",
                            )
                            .execute(&mut *conn)
                            .await?;
                        }
                        // Every new connection first checks that the server has not
                        // restarted since the seqs were written, then stops waiting for the
                        // WAL flush on its commits.
                        Backend::Postgres => {
                            sessions::end_sessions_of_a_past_epoch(conn, backend)
                                .await
                                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                            sqlx::query("SET synchronous_commit = off")
                                .execute(&mut *conn)
                                .await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            sessions,
            backend,
            upgraded_from: None,
            embedded_in: None,
            listen_url: (backend == Backend::Postgres)
                .then(|| zeroize::Zeroizing::new(url.to_owned())),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool. The bank goes through [`Store::read`] and [`Store::begin`];
    /// tests that play a database-only attacker write through this.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database answers: one round trip on a pooled connection, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The pool's connections: (open, idle), for `/metrics`.
    pub fn pool_use(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// A pooled connection for reads.
    pub async fn read(&self) -> Result<Reader, StorageError> {
        Ok(Conn {
            c: self.pool.acquire().await?,
            backend: self.backend,
        })
    }

    /// A pooled connection for [`Conn::accept_seq`], whose commits return before they are
    /// on disk: PostgreSQL's `synchronous_commit = off`, SQLite's `synchronous = NORMAL`.
    /// Such a commit is lost only if the database server or the host stops uncleanly, and
    /// then the sessions end at the next connection or start (`sessions::renew_epoch`).
    pub async fn session_writer(&self) -> Result<Reader, StorageError> {
        Ok(Conn {
            c: self.sessions.acquire().await?,
            backend: self.backend,
        })
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, StorageError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Conn {
            c: tx,
            backend: self.backend,
        })
    }

    /// The schema's version and what it needs.
    pub async fn schema_state(&self) -> Result<SchemaState, StorageError> {
        migrations::state(self).await
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<SchemaState, StorageError> {
        migrations::run(self).await?;
        migrations::state(self).await
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.sessions.close().await;
        self.pool.close().await;
    }
}

/// A database connection with the bank's queries as methods (in this module's files).
pub struct Conn<C> {
    c: C,
    backend: Backend,
}

/// A connection for reads.
pub type Reader = Conn<PoolConnection<Any>>;

/// A write transaction: what is read through it and then written commits together, or not
/// at all (dropped without [`Tx::commit`], it rolls back).
pub type Tx = Conn<Transaction<'static, Any>>;

impl<C: DerefMut<Target = AnyConnection>> Conn<C> {
    fn conn(&mut self) -> &mut AnyConnection {
        self.c.deref_mut()
    }

    /// ` FOR UPDATE` where row locks exist (PostgreSQL); SQLite's `BEGIN IMMEDIATE` already
    /// holds the database's write lock.
    fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }
}

impl<C: Deref<Target = AnyConnection>> Conn<C> {
    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> Result<(), StorageError> {
        self.c.commit().await?;
        Ok(())
    }
}

/// Unix seconds, as stored.
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The inverse of [`unix`].
pub fn from_unix(s: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

/// A count or amount as stored (BIGINT), refusing what does not fit.
pub(crate) fn to_db(v: u64, what: &str) -> Result<i64, StorageError> {
    i64::try_from(v).map_err(|_| StorageError::corrupt(format!("{what} out of range")))
}

/// A stored BIGINT that must not be negative.
pub(crate) fn from_db(v: i64, what: &str) -> Result<u64, StorageError> {
    u64::try_from(v).map_err(|_| StorageError::corrupt(format!("negative {what}")))
}

#[cfg(test)]
mod tests {
    use tresor_core::api::Menus;

    use super::users::NewUser;
    use super::*;

    async fn with_user(store: &Store) -> i64 {
        let mut tx = store.begin().await.unwrap();
        assert!(
            tx.insert_user(&NewUser {
                login: "ivan",
                name: "Ivan",
                password_hash: "$argon2id$hash",
                password_expires: 100,
                created_at: 1,
            })
            .await
            .unwrap()
        );
        tx.commit().await.unwrap();
        let mut r = store.read().await.unwrap();
        r.user_by_login("ivan").await.unwrap().unwrap().id
    }

    #[tokio::test]
    async fn an_in_memory_store_is_migrated_and_shared_by_the_pool() {
        let store = Store::in_memory().await.unwrap();
        assert_eq!(
            store.schema_state().await.unwrap(),
            SchemaState::At(LATEST_VERSION)
        );
        let id = with_user(&store).await;
        // Another connection of the pool sees the same database.
        let mut a = store.read().await.unwrap();
        let mut b = store.read().await.unwrap();
        let u = b.user_by_id(id).await.unwrap().unwrap();
        assert_eq!(
            (u.login.as_str(), u.password_kind, u.menus, u.locked),
            ("ivan", PasswordKind::Initial, Menus::Full, false)
        );
        assert_eq!(a.users().await.unwrap().len(), 1);
        // A second in-memory store is another database.
        let other = Store::in_memory().await.unwrap();
        assert!(
            other
                .read()
                .await
                .unwrap()
                .users()
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_write_that_lost_its_condition_reports_it_and_changes_nothing() {
        let store = Store::in_memory().await.unwrap();
        let id = with_user(&store).await;
        let mut tx = store.begin().await.unwrap();
        let login = super::users::LoginSuccess {
            user_id: id,
            password_hash: "$argon2id$hash",
            one_time: true,
        };
        assert!(tx.record_login(&login).await.unwrap());
        // The one-time password is used now: the same write no longer applies.
        assert!(!tx.record_login(&login).await.unwrap());
        let other = super::users::LoginSuccess {
            password_hash: "$argon2id$another",
            ..login
        };
        assert!(!tx.record_login(&other).await.unwrap());
        tx.commit().await.unwrap();
        let u = store
            .read()
            .await
            .unwrap()
            .user_by_id(id)
            .await
            .unwrap()
            .unwrap();
        assert!(u.password_used);
    }

    #[tokio::test]
    async fn a_stored_value_outside_its_set_is_corrupt() {
        let store = Store::in_memory().await.unwrap();
        let id = with_user(&store).await;
        let mut conn = store.pool().acquire().await.unwrap();
        sqlx::raw_sql(
            "PRAGMA ignore_check_constraints = ON; UPDATE users SET menus = 'bogus'; \
             PRAGMA ignore_check_constraints = OFF;",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        drop(conn);
        let got = store.read().await.unwrap().user_by_id(id).await;
        assert!(
            matches!(&got, Err(StorageError::Corrupt(m)) if m.contains("bogus")),
            "{got:?}"
        );
    }
}

//! The bank's database: one schema and one set of queries for SQLite (the embedded default,
//! a file in the data folder) and PostgreSQL (several instances sharing one set of users).
//!
//! The queries go through sqlx's Any driver with `$n` placeholders, which both databases
//! take, and only portable SQL (`RETURNING`, `ON CONFLICT`, `BIGINT` for every number, 0/1
//! for flags). Only the table definitions and the way a write transaction starts differ.
//!
//! Write transactions start with a write (or, on SQLite, with `BEGIN IMMEDIATE`), so that
//! concurrent writers queue instead of failing on a lock upgrade; on PostgreSQL, row locks
//! taken by `UPDATE … RETURNING` serialize what must be exact (the failed-login counter, the
//! audit chain's head).

use std::path::Path;
use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use sqlx::ConnectOptions as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, AssertSqlSafe, Transaction};

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
    /// A stored value does not make sense.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// The bank's database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
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

impl Store {
    /// The embedded database in `data_dir`, created if missing.
    pub async fn open_sqlite(data_dir: &Path) -> Result<Self, StorageError> {
        let path = data_dir.join(SQLITE_FILE);
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url).await
    }

    /// A database by URL: `sqlite://…` or `postgres://…`. Creates the schema if missing.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
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
            .connect_with(options)
            .await?;
        let store = Self { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, StorageError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrate(&self) -> Result<(), StorageError> {
        let mut conn = self.pool.acquire().await?;
        let (id, blob) = match self.backend {
            Backend::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
            Backend::Postgres => ("BIGSERIAL PRIMARY KEY", "BYTEA"),
        };
        let schema = AssertSqlSafe(SCHEMA.replace("{ID}", id).replace("{BLOB}", blob));
        match self.backend {
            Backend::Sqlite => {
                sqlx::raw_sql(schema).execute(&mut *conn).await?;
            }
            Backend::Postgres => {
                // Two instances starting at once must not both create the tables.
                // "relation already exists, skipping" notices are not news.
                sqlx::query("SET client_min_messages TO warning")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("SELECT pg_advisory_lock(74657273)")
                    .execute(&mut *conn)
                    .await?;
                let created = sqlx::raw_sql(schema).execute(&mut *conn).await;
                sqlx::query("SELECT pg_advisory_unlock(74657273)")
                    .execute(&mut *conn)
                    .await?;
                created?;
            }
        }
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

/// The tables, with `{ID}` (an auto-increment key) and `{BLOB}` filled in per database.
const SCHEMA: &str = include_str!("schema.sql");

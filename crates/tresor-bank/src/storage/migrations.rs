//! Versioned migrations, one folder per database (`migrations/sqlite`, `migrations/postgres`),
//! embedded in the binary and applied by sqlx's migrator, which records each in
//! `_sqlx_migrations` with its checksum, runs each in a transaction, and on PostgreSQL holds
//! an advisory lock so that two instances starting at once migrate once.
//!
//! A database made by the first release, before migrations existed, has the version-1 tables
//! and no `_sqlx_migrations`: it is [`SchemaState::Legacy`], and migration 1 (written with
//! `IF NOT EXISTS`) takes it over unchanged.

use std::borrow::Cow;

use sqlx::migrate::{Migrate as _, MigrateError, Migration, MigrationType, Migrator};

use super::{Backend, StorageError, Store};

const TABLE: &str = "_sqlx_migrations";

/// (version, description, SQLite, PostgreSQL).
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "constraints",
        include_str!("../../migrations/sqlite/0002_constraints.sql"),
        include_str!("../../migrations/postgres/0002_constraints.sql"),
    ),
    (
        3,
        "bound rows",
        include_str!("../../migrations/sqlite/0003_bound_rows.sql"),
        include_str!("../../migrations/postgres/0003_bound_rows.sql"),
    ),
    (
        4,
        "admins",
        include_str!("../../migrations/sqlite/0004_admins.sql"),
        include_str!("../../migrations/postgres/0004_admins.sql"),
    ),
    (
        5,
        "key letters",
        include_str!("../../migrations/sqlite/0005_key_letters.sql"),
        include_str!("../../migrations/postgres/0005_key_letters.sql"),
    ),
    (
        6,
        "ledger",
        include_str!("../../migrations/sqlite/0006_ledger.sql"),
        include_str!("../../migrations/postgres/0006_ledger.sql"),
    ),
    (
        7,
        "templates",
        include_str!("../../migrations/sqlite/0007_templates.sql"),
        include_str!("../../migrations/postgres/0007_templates.sql"),
    ),
    (
        8,
        "session fast path",
        include_str!("../../migrations/sqlite/0008_session_fast_path.sql"),
        include_str!("../../migrations/postgres/0008_session_fast_path.sql"),
    ),
    (
        9,
        "spent handshakes",
        include_str!("../../migrations/sqlite/0009_spent_handshakes.sql"),
        include_str!("../../migrations/postgres/0009_spent_handshakes.sql"),
    ),
    (
        10,
        "mail",
        include_str!("../../migrations/sqlite/0010_mail.sql"),
        include_str!("../../migrations/postgres/0010_mail.sql"),
    ),
    (
        11,
        "voice",
        include_str!("../../migrations/sqlite/0011_voice.sql"),
        include_str!("../../migrations/postgres/0011_voice.sql"),
    ),
    (
        12,
        "sms",
        include_str!("../../migrations/sqlite/0012_sms.sql"),
        include_str!("../../migrations/postgres/0012_sms.sql"),
    ),
    (
        13,
        "held sessions",
        include_str!("../../migrations/sqlite/0013_held_sessions.sql"),
        include_str!("../../migrations/postgres/0013_held_sessions.sql"),
    ),
];

/// The schema version this program reads and writes.
pub const LATEST_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// What opening a database may do to its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaPolicy {
    /// Create the schema of an empty database (a new bank); refuse an older schema.
    Create,
    /// Create, or bring an older schema up to date (`tresor-bank migrate`, `serve --migrate`).
    Migrate,
    /// Only a database already at this program's version (admin commands): create nothing.
    Current,
}

/// Where a database's schema is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaState {
    /// No tables at all.
    Empty,
    /// Version 1, made before migrations were recorded.
    Legacy,
    /// The newest migration applied.
    At(i64),
}

impl SchemaState {
    /// The schema version, if there is a schema.
    pub fn version(self) -> Option<i64> {
        match self {
            Self::Empty => None,
            Self::Legacy => Some(1),
            Self::At(v) => Some(v),
        }
    }
}

fn migrator(backend: Backend) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sqlite, postgres)| {
            let sql = match backend {
                Backend::Sqlite => sqlite,
                Backend::Postgres => postgres,
            };
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sqlx::SqlSafeStr::into_sql_str(sql),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

async fn table_exists(store: &Store, name: &str) -> Result<bool, StorageError> {
    let sql = match store.backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let n: i64 = sqlx::query_scalar(sql)
        .bind(name)
        .fetch_one(&store.pool)
        .await?;
    Ok(n > 0)
}

/// The schema's version, read without changing anything.
pub(super) async fn state(store: &Store) -> Result<SchemaState, StorageError> {
    if !table_exists(store, TABLE).await? {
        return Ok(if table_exists(store, "users").await? {
            SchemaState::Legacy
        } else {
            SchemaState::Empty
        });
    }
    let mut conn = store.pool.acquire().await?;
    if let Some(v) = conn.dirty_version(TABLE).await? {
        return Err(MigrateError::Dirty(v).into());
    }
    let applied = conn.list_applied_migrations(TABLE).await?;
    Ok(applied
        .iter()
        .map(|m| m.version)
        .max()
        .map_or(SchemaState::Empty, SchemaState::At))
}

/// Applies the pending migrations.
pub(super) async fn run(store: &Store) -> Result<(), StorageError> {
    let migrator = migrator(store.backend);
    let mut conn = store.pool.acquire().await?;
    match store.backend {
        Backend::Postgres => migrator.run_direct(None, &mut *conn, false).await?,
        Backend::Sqlite => {
            // SQLite changes a table's constraints only by rebuilding it, which its manual
            // does with foreign keys off (a pragma that cannot change inside a transaction),
            // then checks every reference still holds.
            sqlx::query("PRAGMA foreign_keys = OFF")
                .execute(&mut *conn)
                .await?;
            let migrated = migrator.run_direct(None, &mut *conn, false).await;
            let broken: Result<Vec<(String,)>, _> = sqlx::query_as("PRAGMA foreign_key_check")
                .fetch_all(&mut *conn)
                .await;
            let restored = sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&mut *conn)
                .await;
            migrated?;
            restored?;
            let broken = broken?;
            if let Some((table,)) = broken.first() {
                return Err(StorageError::corrupt(format!(
                    "table {table} refers to rows that do not exist"
                )));
            }
        }
    }
    Ok(())
}

/// Brings the schema to where `policy` allows, or says why not. The version it upgraded from,
/// when it upgraded an existing schema: some steps need the bank's keys and run after it.
pub(super) async fn prepare(
    store: &Store,
    policy: SchemaPolicy,
) -> Result<Option<i64>, StorageError> {
    let state = state(store).await?;
    match (state, policy) {
        (SchemaState::At(v), _) if v > LATEST_VERSION => Err(StorageError::SchemaNewer {
            found: v,
            known: LATEST_VERSION,
        }),
        (SchemaState::At(LATEST_VERSION), _) => Ok(None),
        (SchemaState::Empty, SchemaPolicy::Current) => Err(StorageError::NoBank),
        (SchemaState::Empty, _) => run(store).await.map(|()| None),
        (older, SchemaPolicy::Migrate) => run(store).await.map(|()| older.version()),
        (older, _) => Err(StorageError::SchemaOlder {
            found: older.version().unwrap_or(0),
            known: LATEST_VERSION,
        }),
    }
}

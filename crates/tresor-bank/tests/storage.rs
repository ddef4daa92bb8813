//! The storage layer on SQLite and PostgreSQL: a database written by the first release's
//! schema is migrated with everything in it; schema versions are checked at start; stored
//! values the bank never writes fail the request instead of granting a default.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use support::*;
use tresor_bank::clock::ManualClock;
use tresor_bank::config::Config;
use tresor_bank::server::{self, Purpose, StartError};
use tresor_bank::storage::{LATEST_VERSION, SchemaPolicy, SchemaState, StorageError, Store};
use tresor_core::api::{ErrorCode, OrderStatus, Request};

fn fixture(db: Db) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v1")
        .join(match db {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
}

/// The fixture's bank in a fresh place: its data folder, and its database (the SQLite file
/// in the folder, or the PostgreSQL dump loaded into a fresh database).
async fn v1_bank(db: Db, dir: &Path) -> Config {
    let data = dir.join("data");
    copy_dir(&fixture(db).join("data"), &data);
    let mut config = Config {
        data,
        ..Config::default()
    };
    if db == Db::Postgres {
        let url = fresh_database(db, dir).await;
        let dump = std::fs::read_to_string(fixture(db).join("dump.sql")).unwrap();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(dump))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::Connection::close(conn).await.unwrap();
        config.database_url = Some(url);
    }
    config
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(std::time::SystemTime::now()))
}

on_both!(
    a_first_release_database_is_migrated_with_everything_in_it,
    |db: Db| async move {
        let dir = tempfile::tempdir().unwrap();
        let config = v1_bank(db, dir.path()).await;

        // Neither serving nor an admin command touches an older schema unasked.
        for purpose in [Purpose::Serve { migrate: false }, Purpose::Admin] {
            match server::open(&config, clock(), purpose).await {
                Err(StartError::Storage(StorageError::SchemaOlder { found: 1, known })) => {
                    assert_eq!(known, LATEST_VERSION)
                }
                Err(other) => panic!("{purpose:?}: {other}"),
                Ok(_) => panic!("{purpose:?} opened a version-1 database"),
            }
        }
        let opened = server::open(&config, clock(), Purpose::Migrate)
            .await
            .unwrap();
        let bank = &opened.bank;
        assert_eq!(
            bank.store().schema_state().await.unwrap(),
            SchemaState::At(LATEST_VERSION)
        );

        let logins: Vec<String> = bank
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.login)
            .collect();
        assert_eq!(logins, ["alice.director", "bob.accountant", "carol.new"]);
        let alice = bank.show_user("alice.director").await.unwrap();
        assert!(alice.totp, "TOTP secret kept");
        assert_eq!(alice.rights.len(), 2);
        let bob = bank.show_user("bob.accountant").await.unwrap();
        assert_eq!(bob.failed_logins, 1);
        assert!(bob.summary.status.iter().any(|s| s == "emergency pending"));
        let carol = bank.show_user("carol.new").await.unwrap();
        assert!(
            carol
                .summary
                .status
                .iter()
                .any(|s| s == "must change password")
        );

        let certs = bank.list_certificates(None).await.unwrap();
        assert_eq!(certs.len(), 2);
        assert!(
            certs
                .iter()
                .all(|c| c.purpose == "enroll" && c.revoked.is_none())
        );

        let mut accounts: Vec<(u8, u64)> = bank
            .list_accounts()
            .await
            .unwrap()
            .iter()
            .map(|a| (a.signatures_required, a.balance))
            .collect();
        accounts.sort();
        assert_eq!(accounts, [(1, 500_000), (2, 100_000_000 - 150_000)]);

        let mut conn = bank.store().read().await.unwrap();
        let sent = conn.order(1).await.unwrap().unwrap();
        assert_eq!(
            (sent.status, sent.order.amount),
            (OrderStatus::Accepted, 150_000)
        );
        assert_eq!(sent.order.payee_name, "ТОВ Постачальник");
        let signers: Vec<String> = conn
            .signatures(1)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.login)
            .collect();
        assert_eq!(signers, ["alice.director", "bob.accountant"]);
        let draft = conn.order(2).await.unwrap().unwrap();
        assert_eq!(
            (draft.status, draft.order.amount),
            (OrderStatus::Draft, 2_500)
        );
        drop(conn);

        let records: i64 = std::fs::read_to_string(fixture(db).join("audit_records"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The upgrade to version 3 bound every secret to the data folder's key, the one to
        // version 5 every certificate's activation state, and the one to version 6 booked
        // every account's balance as its opening movement, in the run that migrated, and
        // said so in the log.
        assert_eq!(bank.audit_verify().await.unwrap(), Ok(records + 3));
        let upgrades = bank.audit_list(None, 3).await.unwrap();
        assert!(
            upgrades.iter().all(|u| u.event == "upgrade"),
            "{upgrades:?}"
        );
        assert_eq!(
            upgrades[2].detail,
            "secrets of 3 users bound to the data folder's key"
        );
        assert_eq!(
            upgrades[0].detail,
            "opening movements of 2 accounts booked in the ledger"
        );
        let ledger = bank.verify_ledger().await.unwrap();
        assert_eq!(
            (ledger.accounts, ledger.movements, ledger.problem),
            (2, 2, None)
        );
        let certificates: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM certificates")
            .fetch_one(bank.store().pool())
            .await
            .unwrap();
        assert!(certificates > 0);
        assert_eq!(
            upgrades[1].detail,
            format!(
                "activation state of {certificates} certificates bound to the data folder's key"
            )
        );
        let unbound: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM certificates WHERE activation_tag IS NULL \
             OR activation <> 'immediate'",
        )
        .fetch_one(bank.store().pool())
        .await
        .unwrap();
        assert_eq!(unbound, 0);
        let unbound: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE password_hash NOT LIKE 'b1:%' \
             OR emergency_hash NOT LIKE 'b1:%' OR length(totp_secret) <> 48",
        )
        .fetch_one(bank.store().pool())
        .await
        .unwrap();
        assert_eq!(unbound, 0);
        // The migrated bank keeps working and its log keeps verifying.
        bank.unlock_user("admin:test", "bob.accountant")
            .await
            .unwrap();
        assert_eq!(bank.audit_verify().await.unwrap(), Ok(records + 4));
        // Migrating again is a no-op.
        let again = server::open(&config, clock(), Purpose::Migrate)
            .await
            .unwrap();
        assert_eq!(again.bank.audit_verify().await.unwrap(), Ok(records + 4));
    }
);

on_both!(
    a_database_newer_than_the_program_is_refused,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, $1, 0)",
    )
    .bind(vec![0u8; 48])
    .execute(bank.store().pool())
    .await
    .unwrap();
        for policy in [
            SchemaPolicy::Create,
            SchemaPolicy::Migrate,
            SchemaPolicy::Current,
        ] {
            match Store::connect(&bank.url, policy).await {
                Err(StorageError::SchemaNewer { found: 9999, known }) => {
                    assert_eq!(known, LATEST_VERSION)
                }
                other => panic!("{policy:?}: {other:?}"),
            }
        }
    }
);

on_both!(
    an_empty_database_is_no_bank_for_admin_commands,
    |db: Db| async move {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_database(db, dir.path()).await;
        assert!(matches!(
            Store::connect(&url, SchemaPolicy::Current).await,
            Err(StorageError::NoBank)
        ));
        let store = Store::connect(&url, SchemaPolicy::Create).await.unwrap();
        assert_eq!(
            store.schema_state().await.unwrap(),
            SchemaState::At(LATEST_VERSION)
        );
    }
);

/// Writes a value the schema's CHECK constraints refuse, as a database-only attacker who
/// also dropped them would.
async fn force(bank: &TestBank, table: &str, constraint: &str, sql: &str) {
    let pool = bank.store().pool();
    let mut conn = pool.acquire().await.unwrap();
    match bank.db {
        Db::Sqlite => {
            sqlx::query("PRAGMA ignore_check_constraints = ON")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        Db::Postgres => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}"
            )))
            .execute(&mut *conn)
            .await
            .unwrap();
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
        .unwrap();
    if bank.db == Db::Sqlite {
        sqlx::query("PRAGMA ignore_check_constraints = OFF")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}

on_both!(
    the_constraints_refuse_values_the_bank_never_writes,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        bank.enrolled_user("check.me", &[]).await;
        for sql in [
            "UPDATE users SET menus = 'bogus'",
            "UPDATE users SET locked = 2",
            "UPDATE users SET password_kind = 'master'",
            "UPDATE certificates SET purpose = 'gift'",
        ] {
            let refused = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(bank.store().pool())
                .await;
            assert!(refused.is_err(), "{sql} was accepted");
        }
    }
);

on_both!(
    an_unknown_stored_value_fails_the_request_instead_of_granting_rights,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(90, 100_000).await;
        let who = bank
            .enrolled_user("strict.me", &[(&iban, rights(true, false, false, false))])
            .await;
        bank.bank()
            .set_menus("admin:test", &who.login, tresor_core::api::Menus::Limited)
            .await
            .unwrap();
        let mut k = bank.key_login(&who, "10.90.0.1").await;
        k.call(Request::Overview {}).await.unwrap();

        // Menus neither full nor limited: not "full".
        force(
            &bank,
            "users",
            "users_menus",
            "UPDATE users SET menus = 'bogus'",
        )
        .await;
        assert_eq!(
            code(&k.call(Request::Overview {}).await),
            ErrorCode::Internal
        );
        force(
            &bank,
            "users",
            "users_menus",
            "UPDATE users SET menus = 'limited'",
        )
        .await;
        k.call(Request::Overview {}).await.unwrap();

        // A flag that is neither 0 nor 1.
        force(
            &bank,
            "rights",
            "rights_flags",
            "UPDATE rights SET can_sign = 7",
        )
        .await;
        assert_eq!(
            code(&k.call(Request::Overview {}).await),
            ErrorCode::Internal
        );
        force(
            &bank,
            "rights",
            "rights_flags",
            "UPDATE rights SET can_sign = 0",
        )
        .await;

        // A session stage the bank never wrote.
        force(
            &bank,
            "channel_sessions",
            "channel_sessions_stage",
            "UPDATE channel_sessions SET stage = 'admin' WHERE stage IS NOT NULL",
        )
        .await;
        assert_eq!(
            code(&k.call(Request::Overview {}).await),
            ErrorCode::Internal
        );
    }
);

on_both!(
    an_unknown_signature_rule_fails_instead_of_defaulting,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(91, 100_000).await;
        let who = bank.enrolled_user("strict.rule", &[(&iban, ALL)]).await;
        let mut k = bank.key_login(&who, "10.91.0.1").await;
        force(
            &bank,
            "accounts",
            "accounts_signatures_required",
            "UPDATE accounts SET signatures_required = 0",
        )
        .await;
        assert_eq!(
            code(&k.call(Request::Overview {}).await),
            ErrorCode::Internal
        );
        assert!(bank.bank().list_accounts().await.is_err());
    }
);

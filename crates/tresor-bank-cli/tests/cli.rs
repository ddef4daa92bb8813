//! `tresor-bank` as its operator runs it: only `init` and `serve` create a bank; every other
//! command on a folder without one fails with a clear error and creates nothing; admin
//! commands run only as break-glass, audited as such.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

fn bank(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tresor-bank"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("TRESOR_CONFIG")
        .env_remove("TRESOR_DATABASE_URL")
        .env("TRESOR_LOG", "warn")
        .output()
        .expect("run tresor-bank")
}

/// A break-glass admin command.
fn glass(data: &Path, args: &[&str]) -> Output {
    let mut all = vec!["break-glass", "--reason", "cli test"];
    all.extend_from_slice(args);
    bank(data, &all)
}

const INIT: &[&str] = &[
    "init",
    "--admin",
    "first.officer",
    "--name",
    "First Officer",
];

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn admin_commands_never_create_a_bank() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("tresor-dtaa");
    for args in [
        &["user", "list"][..],
        &["user", "add", "new.user", "--name", "New User"],
        &["account", "list"],
        &["audit", "verify"],
        &["cert", "list"],
        &["migrate"],
    ] {
        let out = if args[0] == "migrate" || args[0] == "audit" {
            bank(&missing, args)
        } else {
            glass(&missing, args)
        };
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&out).contains("holds no Tresor bank"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
    // An empty folder stays empty.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = glass(&empty, &["user", "list"]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn init_creates_a_bank_once_and_admin_commands_then_work() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("bank");
    let out = bank(&data, INIT);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let initial = stdout.lines().last().unwrap().trim();
    assert!(initial.len() >= 12, "{stdout}");
    assert!(data.join("bank-ca.pem").exists());
    assert!(data.join("tresor.db").exists());
    let ca = std::fs::read(data.join("bank-ca.pem")).unwrap();

    let again = bank(&data, INIT);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already holds a Tresor bank"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(data.join("bank-ca.pem")).unwrap(), ca);

    // The first security officer exists, with the role, and must change the password.
    let out = glass(&data, &["admin", "list"]);
    let admins = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        admins.contains("first.officer") && admins.contains("security_officer"),
        "{admins}"
    );
    assert!(admins.contains("must change password"), "{admins}");

    // The old admin commands are gone from the top level.
    let out = bank(&data, &["user", "list"]);
    assert!(!out.status.success());
    // A break-glass command without a reason is refused.
    let out = bank(&data, &["break-glass", "--reason", " ", "user", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("say why"), "{}", stderr(&out));

    let out = glass(
        &data,
        &["user", "add", "first.user", "--name", "First User"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = glass(&data, &["user", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("first.user"));
    // Each break-glass use is in the audit log, with the OS user and the reason; what it
    // did names it as the actor.
    let out = glass(&data, &["audit-list", "--limit", "20"]);
    let audit = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(audit.contains("break_glass"), "{audit}");
    assert!(audit.contains("reason: cli test"), "{audit}");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("user_add") && l.contains("break-glass:")),
        "{audit}"
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("admin_add") && l.contains("bank:init")),
        "{audit}"
    );
    let out = bank(&data, &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = bank(&data, &["audit", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_lost_database_file_is_not_recreated_by_admin_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("bank");
    assert!(bank(&data, INIT).status.success());
    std::fs::remove_file(data.join("tresor.db")).unwrap();
    let _ = std::fs::remove_file(data.join("tresor.db-wal"));
    let _ = std::fs::remove_file(data.join("tresor.db-shm"));
    let out = glass(&data, &["user", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("holds no Tresor bank"),
        "{}",
        stderr(&out)
    );
    assert!(!data.join("tresor.db").exists());
}

/// An escape sequence typed as a login reaches the audit log as typed; `audit list` shows it
/// escaped, so it cannot clear or rewrite the admin's terminal.
#[test]
fn audit_list_escapes_what_users_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("bank");
    assert!(bank(&data, INIT).status.success());
    let hostile = "\u{1b}[2J\u{1b}[Hall good\u{7}";
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use std::sync::Arc;
        use tresor_bank::clock::SystemClock;
        use tresor_bank::config::Config;
        use tresor_bank::server::{self, Purpose};
        use tresor_core::channel::client::{self, ClientAuthentication};
        let config = Config {
            data: data.clone(),
            ..Config::default()
        };
        let opened = server::open(&config, Arc::new(SystemClock), Purpose::Admin)
            .await
            .unwrap();
        let ca = opened.files.ca.certificate().clone();
        let channel = server::channel(opened).unwrap();
        let now = std::time::SystemTime::now();
        let (await_hello, hello) = client::start(ClientAuthentication::Anonymous);
        let server_hello = channel.handshake(&hello, now, None).await;
        let (await_accept, finish) = await_hello.receive(&server_hello, &ca, now).unwrap();
        let mut session = await_accept
            .receive(&channel.handshake(&finish, now, None).await)
            .unwrap();
        let login = serde_json::json!({"op": "login", "login": hostile, "password": "whatever"});
        let record = session.seal(login.to_string().as_bytes()).unwrap();
        let reply = channel.record(&record, None).await;
        assert!(session.open(&reply).is_ok());
    });
    let out = glass(&data, &["audit-list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("\\u{1b}[2J\\u{1b}[Hall good\\u{7}"), "{text}");
}

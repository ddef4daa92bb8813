//! The bank's figures: logins per second with their Argon2id cost beside the bare Argon2id
//! rate (the bound), and the memory 1,000 open sessions take.
//!
//! `cargo bench -p tresor-bank --bench bank` (SQLite; PostgreSQL too when
//! `TRESOR_TEST_POSTGRES` names a server). Printed as a table for docs/PERFORMANCE.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tresor_bank::bank::Bank;
use tresor_bank::clock::SystemClock;
use tresor_bank::config::Policy;
use tresor_bank::data;
use tresor_bank::passwords;
use tresor_bank::server::{self, BankChannel, Opened};
use tresor_bank::storage::{SchemaPolicy, Store};
use tresor_core::Password;
use tresor_core::api::{Reply, Request, Response};
use tresor_core::channel::client::{self, ClientAuthentication, ClientSession};
use tresor_core::x509_cert::Certificate;

const LOGINS: usize = 120;
const CONCURRENCY: usize = 8;
const SESSIONS: usize = 1000;

async fn bank_on(url: &str, dir: &std::path::Path) -> (Arc<BankChannel>, Certificate) {
    let files = data::open_or_create(
        dir,
        "Bench Bank",
        &[],
        &[],
        SystemTime::now(),
        &Default::default(),
    )
    .unwrap();
    let ca = files.ca.certificate().clone();
    // SQLite as `tresor-bank serve` opens it: the embedded database in the data folder.
    let by_url = (!url.starts_with("sqlite:")).then_some(url);
    let store = Store::open(dir, by_url, SchemaPolicy::Create)
        .await
        .unwrap();
    let bank = Bank::new(
        store,
        files.ca.clone(),
        &files.secrets,
        Policy::default(),
        Arc::new(SystemClock),
        "Bench Bank",
    )
    .await
    .unwrap();
    (server::channel(Opened { bank, files }).unwrap(), ca)
}

async fn connect(channel: &BankChannel, ca: &Certificate) -> ClientSession {
    let (wait, hello) = client::start(ClientAuthentication::Anonymous);
    let sh = channel.handshake(&hello, SystemTime::now(), None).await;
    let (wait, finish) = wait.receive(&sh, ca, SystemTime::now()).unwrap();
    let accept = channel.handshake(&finish, SystemTime::now(), None).await;
    wait.receive(&accept).unwrap()
}

async fn call(channel: &BankChannel, s: &mut ClientSession, r: &Request, ip: u32) -> Response {
    let record = s.seal(&serde_json::to_vec(r).unwrap()).unwrap();
    let peer = std::net::SocketAddr::from((ip.to_be_bytes(), 1));
    let reply = channel.record(&record, Some(peer)).await;
    match s.open(&reply).unwrap() {
        client::Reply::Data(d) => serde_json::from_slice(&d).unwrap(),
        client::Reply::Closed => panic!("closed"),
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn run(label: &str, url: &str, dir: &std::path::Path) {
    let (channel, ca) = bank_on(url, dir).await;
    // 1,000 open sessions: resident memory before and after, then one request on each to
    // show they are all alive.
    let before = rss_kib();
    let mut sessions = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        sessions.push(connect(&channel, &ca).await);
    }
    let after = rss_kib();
    let open = channel.session_count().await.unwrap();
    for s in sessions.iter_mut() {
        let r = call(&channel, s, &Request::Overview {}, 0x0b00_0001).await;
        assert!(r.is_err(), "not logged in, but answered");
    }
    let total = rss_kib();
    // Logins: each user logs in on an anonymous session with its one-time password; the
    // bank checks an Argon2id hash and writes the counter reset and the audit record.
    let mut users = Vec::new();
    for i in 0..LOGINS {
        let login = format!("bench.{i}");
        let pw = channel
            .handler()
            .add_user("admin:bench", &login, "Bench")
            .await
            .unwrap();
        users.push((login, pw));
    }
    let users = Arc::new(std::sync::Mutex::new(users));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..CONCURRENCY {
        let (channel, ca, users) = (channel.clone(), ca.clone(), users.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some((login, pw)) = users.lock().unwrap().pop() else {
                    return;
                };
                let mut s = connect(&channel, &ca).await;
                let r = call(
                    &channel,
                    &mut s,
                    &Request::Login {
                        login,
                        password: pw,
                        otp: None,
                        emergency_password: None,
                    },
                    0x0a00_0000 + t as u32,
                )
                .await;
                assert!(matches!(r, Ok(Reply::LoggedIn(_))), "{r:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let logins = LOGINS as f64 / start.elapsed().as_secs_f64();

    // The bound: the same number of bare Argon2id verifications, as concurrent.
    let pw = Password::from("bench password");
    let hash = passwords::hash(&pw).await.unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (hash, pw) = (hash.clone(), pw.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..LOGINS / CONCURRENCY {
                assert!(passwords::verify(&hash, &pw).await.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let bound = (LOGINS / CONCURRENCY * CONCURRENCY) as f64 / start.elapsed().as_secs_f64();

    println!(
        "| {label} | {logins:.1} logins/s | {bound:.1} Argon2id verifications/s | {:.0}% of the bound | {open} sessions open | RSS {:.1} MiB after them, +{:.1} MiB for them ({:.1} KiB each) |",
        100.0 * logins / bound,
        total as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / SESSIONS as f64,
    );
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "Argon2id m={} KiB t={} p={}, {CONCURRENCY} clients in flight, {cores} cores",
        passwords::ARGON2_MEMORY_KIB,
        passwords::ARGON2_PASSES,
        passwords::ARGON2_LANES
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("tresor.db").display()
        );
        run("SQLite", &url, dir.path()).await;
        if let Ok(server) = std::env::var("TRESOR_TEST_POSTGRES") {
            sqlx::any::install_default_drivers();
            let admin = sqlx::AnyPool::connect(&format!("{server}/postgres"))
                .await
                .unwrap();
            let name = format!("tresor_bench_{}", std::process::id());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            run("PostgreSQL", &format!("{server}/{name}"), dir.path()).await;
        }
    });
}

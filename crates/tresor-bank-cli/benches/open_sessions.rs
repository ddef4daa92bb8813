//! 100,000 open sessions on one `tresor-bank serve`: the binary in a process of its own, as
//! it runs in production, on its embedded SQLite (and on PostgreSQL when
//! `TRESOR_TEST_POSTGRES` names a server). The clients, in this process, open the sessions
//! over HTTPS from loopback addresses, 1,700 from each (a source may hold 2,000), then send one request
//! on every session, so each is shown alive. Reported: the server's resident memory before,
//! after opening and after the requests, the database's growth, and the rates.
//!
//! `cargo bench -p tresor-bank-cli --bench open_sessions` (`TRESOR_BENCH_SESSIONS` sets the
//! count; the bank's limit per instance is 100,000).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tresor_client::connection::{BankConnection, Session, tls_config};
use tresor_core::api::{Reply, Request, Response};
use tresor_core::channel::client::ClientAuthentication;
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::DecodePem as _;

/// Sessions opened from one source address (the bank allows 2,000).
const PER_SOURCE: usize = 1_700;

struct Server {
    child: Child,
    url: String,
    ca: Certificate,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, database_url: Option<&str>) -> Server {
    // Idle sessions end after the policy's timeout; opening 100,000 takes minutes.
    std::fs::write(
        dir.join("bank.toml"),
        "[policy]\nsession_idle_seconds = 7200\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tresor-bank"));
    cmd.env("TRESOR_CONFIG", dir.join("bank.toml"))
        .env("TRESOR_DATA", dir.join("data"))
        .env("TRESOR_LOG", "error")
        .env_remove("TRESOR_DATABASE_URL")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(url) = database_url {
        cmd.env("TRESOR_DATABASE_URL", url);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut url, mut ca) = (None, None);
    while url.is_none() || ca.is_none() {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the bank did not start"
        );
        if let Some(u) = line.trim().strip_prefix("Tresor bank server: ") {
            url = Some(u.to_owned());
        }
        if let Some(c) = line
            .trim()
            .strip_prefix("Clients trust the bank CA certificate: ")
        {
            ca = Some(PathBuf::from(c));
        }
    }
    // Keep reading, so that the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    let ca = Certificate::from_pem(std::fs::read(ca.unwrap()).unwrap()).unwrap();
    Server {
        child,
        url: url.unwrap(),
        ca,
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A connection to the bank from `from`.
fn client(server: &Server, from: IpAddr) -> BankConnection {
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(&server.ca).unwrap())
        .local_address(from)
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    BankConnection::with_http(&server.url, &server.ca, http).unwrap()
}

/// Bytes the database holds for sessions: the SQLite files, or PostgreSQL's relation sizes.
fn database_bytes(dir: &Path, database_url: Option<&str>) -> u64 {
    match database_url {
        None => ["tresor.db", "tresor.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join("data").join(f)).ok())
            .map(|m| m.len())
            .sum(),
        Some(url) => {
            let out = Command::new("psql")
                .arg(url)
                .args([
                    "-qAtc",
                    "SELECT pg_total_relation_size('channel_sessions') \
                     + pg_total_relation_size('spent_handshakes')",
                ])
                .output()
                .expect("psql");
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        }
    }
}

async fn run(label: &str, sessions: usize, database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), database_url);
    let pid = server.child.id();
    // One session first, so that the figures start from a server that has served.
    let mut warm = client(&server, IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1)))
        .open(ClientAuthentication::Anonymous)
        .await
        .unwrap();
    bank_info(&mut warm).await;
    let rss_before = rss_kib(pid);
    let db_before = database_bytes(dir.path(), database_url);

    // With the first one, `sessions` in all: the bank's limit is 100,000.
    let sessions = sessions - 1;
    let sources = sessions.div_ceil(PER_SOURCE);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..sources {
        let n = PER_SOURCE.min(sessions - s * PER_SOURCE);
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 1, u8::try_from(s + 1).unwrap()));
        let bank = client(&server, from);
        tasks.push(tokio::spawn(async move {
            let mut open = Vec::with_capacity(n);
            for _ in 0..n {
                open.push(bank.open(ClientAuthentication::Anonymous).await.unwrap());
            }
            open
        }));
    }
    let mut all = Vec::with_capacity(sources);
    for t in tasks {
        all.push(t.await.unwrap());
    }
    let opening = started.elapsed();
    let rss_open = rss_kib(pid);
    let db_open = database_bytes(dir.path(), database_url);

    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut group in all {
        tasks.push(tokio::spawn(async move {
            for s in &mut group {
                bank_info(s).await;
            }
            group
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    let requests = started.elapsed();
    let rss_used = rss_kib(pid);
    let open: usize = all.iter().map(Vec::len).sum::<usize>() + 1;
    assert_eq!(open, sessions + 1);

    let grew = rss_used.saturating_sub(rss_before);
    println!(
        "| {label} | {open} | {:.0} handshakes/s ({:.0} s) | {:.0} requests/s | {:.1} MiB | \
         {:.1} MiB (+{:.1}) | {:.1} MiB (+{:.1}, {:.2} KiB per session) | +{:.1} MiB ({:.2} KiB per session) |",
        sessions as f64 / opening.as_secs_f64(),
        opening.as_secs_f64(),
        sessions as f64 / requests.as_secs_f64(),
        mib(rss_before),
        mib(rss_open),
        mib(rss_open.saturating_sub(rss_before)),
        mib(rss_used),
        mib(grew),
        grew as f64 / open as f64,
        (db_open.saturating_sub(db_before)) as f64 / (1024.0 * 1024.0),
        (db_open.saturating_sub(db_before)) as f64 / 1024.0 / open as f64,
    );
}

async fn bank_info(session: &mut Session) {
    let reply = session
        .request(&serde_json::to_vec(&Request::BankInfo {}).unwrap())
        .await
        .unwrap();
    let reply: Response = serde_json::from_slice(&reply).unwrap();
    assert!(matches!(reply, Ok(Reply::BankInfo(_))), "{reply:?}");
}

fn main() {
    let sessions: usize = std::env::var("TRESOR_BENCH_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| Database | Sessions | Opening | Then one request each | Server RSS before | after opening | after the requests | Database growth |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    rt.block_on(async {
        run("SQLite (embedded)", sessions, None).await;
        if std::env::var_os("TRESOR_TEST_POSTGRES").is_some() {
            let url = tresor_tests::fresh_postgres("tresor_bench_sessions");
            run("PostgreSQL 15", sessions, Some(&url)).await;
        }
    });
}

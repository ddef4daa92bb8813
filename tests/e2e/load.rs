//! The load and fault test: two `tresor-bank serve` on one PostgreSQL database behind HAProxy
//! (round robin, TLS passed through with PROXY v2, health checks), and clients that each log
//! in with their key and prepare, sign and send orders for as long as the test runs, through
//! the client library as the app and the CLI use it. Meanwhile one instance is SIGKILLed and
//! restarted on its port, and the PostgreSQL server is restarted. A client whose request
//! fails in a way the bank calls retryable (the network, `busy`, `internal`, a session that
//! ended) logs in again if it must, learns what became of its order, and goes on; any other
//! failure fails the test. Afterwards:
//!
//! - every order a client saw sent is accepted, and every order the bank accepted was seen
//!   sent by its client (none lost, none sent behind its back);
//! - each accepted order is debited once, and every account's balance is its opening balance
//!   minus its accepted orders;
//! - `tresor-bank ledger verify` and `tresor-bank audit verify` pass;
//! - when PostgreSQL restarted, the instances let the sessions they held go with their
//!   seqs, and took on new names as holders (they say so).
//!
//! It restarts the shared PostgreSQL server, so it is `#[ignore]`d and `scripts/load-test`
//! runs it on its own: small in `scripts/test` (12 clients, 30 s), full size with
//! `scripts/load-test --full` (200 clients, 2 minutes). It prints its figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tresor_client::connection::ConnectionError;
use tresor_client::error::ClientError;
use tresor_client::flows::Client;
use tresor_client::key_home::KeyHome;
use tresor_client::keystore::KeyStore;
use tresor_client::session::BankSession;
use tresor_client::settings::Settings;
use tresor_core::api::{ErrorCode, OrderStatus, OrderView};
use tresor_core::channel::{AlertCode, ChannelError};
use tresor_core::payment::{Iban, PaymentOrder};
use tresor_core::{Login, Password};

use crate::balancer::{BALANCER, Setup, haproxy};
use crate::support::{Bank, KEY_PASSWORD, PASSWORD, fresh_postgres, iban};

/// Each account's opening balance (100,000,000.00 UAH in kopiykas): more than any run spends.
const OPENING: u64 = 10_000_000_000;

fn env_or(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Why a request failed, if the bank or the network says trying again is right.
fn retryable(e: &ClientError) -> Option<&'static str> {
    match e {
        ClientError::Connection(ConnectionError::Network(_)) => Some("network"),
        ClientError::Connection(ConnectionError::HttpStatus(_)) => Some("http status"),
        ClientError::Connection(ConnectionError::Channel(ChannelError::PeerAlert(
            AlertCode::ServerBusy,
        ))) => Some("busy"),
        ClientError::SessionEnded | ClientError::SessionExpired(_) => Some("session ended"),
        ClientError::Refused(api) => match api.code {
            ErrorCode::Busy => Some("busy"),
            ErrorCode::Internal => Some("internal"),
            _ => None,
        },
        _ => None,
    }
}

/// One client's account of its run.
#[derive(Default)]
struct Tally {
    /// Orders it saw accepted: id and amount.
    sent: Vec<(u64, u64)>,
    errors: BTreeMap<&'static str, u64>,
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    requests: u64,
}

struct Worker {
    client: Client,
    home: KeyHome,
    session: Option<BankSession>,
    tally: Tally,
}

impl Worker {
    /// Runs `step` on a logged-in session until it succeeds, logging in again after a
    /// failure (a session is not used after a failed request); a retry first learns what
    /// the failed attempt did.
    async fn step(&mut self, step: Step<'_>) -> OrderView {
        let mut retry = false;
        loop {
            if self.session.is_none() {
                let started = Instant::now();
                let login = self
                    .client
                    .login_with_key(
                        &self.home,
                        &Password::from(PASSWORD),
                        &Password::from(KEY_PASSWORD),
                        &|_| {},
                    )
                    .await;
                self.tally.requests += 1;
                match login {
                    Ok(s) => {
                        self.tally
                            .latencies
                            .entry("login")
                            .or_default()
                            .push(started.elapsed());
                        self.session = Some(s);
                    }
                    Err(e) => {
                        let kind = retryable(&e).unwrap_or_else(|| panic!("login: {e}"));
                        *self.tally.errors.entry(kind).or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
            let started = Instant::now();
            let session = self.session.as_mut().unwrap();
            let result = step.attempt(session, retry).await;
            self.tally.requests += 1;
            match result {
                Ok(v) => {
                    self.tally
                        .latencies
                        .entry(step.name())
                        .or_default()
                        .push(started.elapsed());
                    return v;
                }
                Err(e) => {
                    let name = step.name();
                    let kind = retryable(&e).unwrap_or_else(|| panic!("{name}: {e}"));
                    *self.tally.errors.entry(kind).or_default() += 1;
                    self.session = None;
                    retry = true;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// One order from preparation to the bank's answer, however often something fails.
    async fn order(&mut self, order: &PaymentOrder) -> OrderView {
        let id = self.step(Step::Prepare(order)).await.id;
        self.step(Step::Sign(id)).await;
        self.step(Step::Send(id)).await
    }
}

/// A step of an order's life.
#[derive(Clone, Copy)]
enum Step<'a> {
    Prepare(&'a PaymentOrder),
    Sign(u64),
    Send(u64),
}

impl Step<'_> {
    fn name(self) -> &'static str {
        match self {
            Step::Prepare(_) => "prepare",
            Step::Sign(_) => "sign",
            Step::Send(_) => "send",
        }
    }

    /// One attempt. A retry of signing or sending first reads the order: the failed attempt
    /// may have done it (its reply lost). A retried preparation may leave a draft behind,
    /// which costs nothing.
    async fn attempt(self, s: &mut BankSession, retry: bool) -> Result<OrderView, ClientError> {
        match self {
            Step::Prepare(order) => s.prepare_order(order).await,
            Step::Sign(id) => {
                if retry {
                    let now = s.get_order(id).await?;
                    if now.status != OrderStatus::Draft {
                        return Ok(now);
                    }
                }
                let shown = s.signing_summary(id).await?;
                s.sign_order(&shown).await
            }
            Step::Send(id) => {
                if retry {
                    let now = s.get_order(id).await?;
                    if now.status != OrderStatus::Signed {
                        return Ok(now);
                    }
                }
                s.send_order(id).await
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(url)
        .args(["-qAtF", " ", "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "restarts the PostgreSQL server: scripts/load-test runs it on its own"]
fn orders_survive_a_killed_instance_and_a_restarted_database() {
    let clients = env_or("TRESOR_LOAD_CLIENTS", 12) as usize;
    let seconds = env_or("TRESOR_LOAD_SECONDS", 30);
    let restart_postgres = std::env::var("TRESOR_LOAD_RESTART_POSTGRES").expect(
        "TRESOR_LOAD_RESTART_POSTGRES: the command that restarts the PostgreSQL server \
         (scripts/load-test sets it)",
    );
    let database = fresh_postgres("tresor_test_e2e");
    let env = vec![(
        "TRESOR_DATABASE_URL".to_string(),
        PathBuf::from(database.clone()),
    )];
    let extra = format!("[proxy]\ntrusted = [\"{BALANCER}\"]\nheader = \"proxy-v2\"\n");
    // Many clients share 127.0.0.1; failed requests during the faults are not attacks.
    let bank = Bank::start_with("ip_max_points = 1000000\n", &extra, env);
    let second_port = crate::balancer::free_port();
    let second = bank.another_instance_on("bank-2.log", &format!("127.0.0.1:{second_port}"));

    // Each client: a user with all rights on an account of its own, enrolled with a key.
    let drives = tempfile::tempdir().unwrap();
    let setup_started = Instant::now();
    let mut users = Vec::new();
    for i in 0..clients {
        let account = iban(&format!("{}", 1000 + i));
        let login = format!("load.{i}");
        bank.admin(&[
            "account",
            "add",
            &account,
            "--holder",
            &format!("Load {i} LLC"),
            "--balance",
            &format!("{}.{:02}", OPENING / 100, OPENING % 100),
        ]);
        let drive = drives.path().join(&login);
        std::fs::create_dir_all(&drive).unwrap();
        bank.enrolled(&login, &drive);
        bank.admin(&["rights", "grant", &login, &account, "all"]);
        users.push((login, drive, account));
    }
    let setup = setup_started.elapsed();

    let lb_dir = tempfile::tempdir().unwrap();
    let lb = haproxy(
        lb_dir.path(),
        Setup::PassThrough,
        &[&bank.url, &second.url],
        &bank.ca,
        Path::new(""),
        true,
    );
    let settings = Settings {
        server: format!("https://localhost:{}", lb.port),
        bank_ca: bank.ca.clone(),
        pkcs11_module: None,
    };

    // The faults, on their own thread: at a third of the run the second instance is killed
    // and started again on its port; at two thirds PostgreSQL restarts.
    let run = Duration::from_secs(seconds);
    let faults = Arc::new(Mutex::new(Vec::<(f64, String)>::new()));
    let started = Instant::now();
    let fault_thread = {
        let faults = faults.clone();
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| {
                std::thread::sleep(run / 3);
                drop(second);
                faults.lock().unwrap().push((
                    started.elapsed().as_secs_f64(),
                    "instance 2 SIGKILLed".into(),
                ));
                std::thread::sleep(Duration::from_secs(1));
                let restarted =
                    bank.another_instance_on("bank-2b.log", &format!("127.0.0.1:{second_port}"));
                faults.lock().unwrap().push((
                    started.elapsed().as_secs_f64(),
                    "instance 2 restarted".into(),
                ));
                std::thread::sleep((run * 2 / 3).saturating_sub(started.elapsed()));
                let out = Command::new("sh")
                    .args(["-c", &restart_postgres])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{restart_postgres}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                faults.lock().unwrap().push((
                    started.elapsed().as_secs_f64(),
                    "PostgreSQL restarted".into(),
                ));
                restarted
            });
            let tallies = workload(&settings, &users, started + run);
            (handle.join().unwrap(), tallies)
        })
    };
    let (restarted, tallies) = fault_thread;
    let elapsed = started.elapsed();

    // What the clients saw against what the bank holds.
    let seen: BTreeMap<u64, u64> = tallies
        .iter()
        .flat_map(|t| t.sent.iter().copied())
        .collect();
    let orders = psql(
        &database,
        "SELECT id, payer_iban, amount, status FROM orders ORDER BY id",
    );
    let mut accepted = BTreeMap::new();
    let mut spent: BTreeMap<String, u64> = BTreeMap::new();
    for line in orders.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (id, payer, amount, status) = (
            f[0].parse::<u64>().unwrap(),
            f[1],
            f[2].parse::<u64>().unwrap(),
            f[3],
        );
        assert_ne!(status, "rejected", "order {id} rejected");
        if status == "accepted" {
            accepted.insert(id, amount);
            *spent.entry(payer.to_owned()).or_default() += amount;
        }
    }
    assert_eq!(
        seen, accepted,
        "the orders clients saw sent and the orders the bank accepted differ"
    );
    let twice = psql(
        &database,
        "SELECT order_id FROM movements WHERE kind = 'order' GROUP BY order_id \
         HAVING COUNT(*) <> 1",
    );
    assert!(twice.trim().is_empty(), "debited other than once: {twice}");
    let undebited = psql(
        &database,
        "SELECT id FROM orders o WHERE status = 'accepted' AND NOT EXISTS \
         (SELECT 1 FROM movements m WHERE m.order_id = o.id AND m.kind = 'order')",
    );
    assert!(
        undebited.trim().is_empty(),
        "accepted, not debited: {undebited}"
    );
    for (_, _, account) in &users {
        let balance: u64 = psql(
            &database,
            &format!("SELECT balance FROM accounts WHERE iban = '{account}'"),
        )
        .trim()
        .parse()
        .unwrap();
        let want = OPENING - spent.get(account).copied().unwrap_or(0);
        assert_eq!(balance, want, "{account}");
    }
    bank.admin(&["ledger", "verify"]);
    bank.admin(&["audit", "verify"]);
    let logs: String = ["bank.log", "bank-2.log", "bank-2b.log"]
        .iter()
        .filter_map(|l| std::fs::read_to_string(bank.data().parent().unwrap().join(l)).ok())
        .collect();
    assert!(
        logs.contains("lost the connection that names this instance"),
        "no instance let its sessions go when the restarted database dropped its connections"
    );
    drop(restarted);
    drop(lb);

    // The figures.
    let cycles = seen.len();
    let requests: u64 = tallies.iter().map(|t| t.requests).sum();
    let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
    let mut latencies: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for t in &tallies {
        for (k, n) in &t.errors {
            *errors.entry(k).or_default() += n;
        }
        for (k, v) in &t.latencies {
            latencies.entry(k).or_default().extend(v);
        }
    }
    println!(
        "\n{clients} clients, {:.0} s (set-up {:.0} s): {cycles} orders accepted ({:.1}/s), \
         {requests} requests ({:.1}/s)",
        elapsed.as_secs_f64(),
        setup.as_secs_f64(),
        cycles as f64 / elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64()
    );
    for (at, what) in faults.lock().unwrap().iter() {
        println!("fault at {at:.1} s: {what}");
    }
    println!("| step | count | p50 ms | p95 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (step, mut v) in latencies {
        v.sort();
        println!(
            "| {step} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.95),
            percentile(&v, 0.99),
            percentile(&v, 1.0)
        );
    }
    println!("errors retried, by kind: {errors:?}");
    assert!(cycles >= clients, "fewer orders than clients: {cycles}");
}

/// Runs every client until `until`; each finishes the order it started.
fn workload(
    settings: &Settings,
    users: &[(String, PathBuf, String)],
    until: Instant,
) -> Vec<Tally> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for (i, (login, drive, account)) in users.iter().enumerate() {
            let login = Login::new(login).unwrap();
            let home: KeyHome = KeyStore::new(drive, &login).into();
            let client = Client::new(settings).unwrap();
            let account = account.clone();
            tasks.push(tokio::spawn(async move {
                let mut worker = Worker {
                    client,
                    home,
                    session: None,
                    tally: Tally::default(),
                };
                let mut n = 0u64;
                while Instant::now() < until {
                    n += 1;
                    let order = PaymentOrder {
                        payer_iban: account.clone(),
                        payee_name: "Supplier LLC".into(),
                        payee_tax_code: "12345678".into(),
                        payee_iban: Iban::ua_from_parts("300001", "26000000009999")
                            .unwrap()
                            .to_string(),
                        amount: 100 + (n * 7919 + i as u64 * 104_729) % 99_900,
                        currency: "UAH".into(),
                        purpose: format!("Invoice {i}-{n}"),
                    };
                    let view = worker.order(&order).await;
                    assert_eq!(view.status, OrderStatus::Accepted, "{view:?}");
                    worker.tally.sent.push((view.id, view.order.amount));
                }
                worker.tally
            }));
        }
        let mut tallies = Vec::new();
        for t in tasks {
            tallies.push(t.await.unwrap());
        }
        tallies
    })
}

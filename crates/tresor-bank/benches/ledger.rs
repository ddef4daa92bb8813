//! The ledger's figures, on a bank as `tresor-bank serve` runs it (the data folder's SQLite
//! file with WAL and `synchronous=FULL`; PostgreSQL too when `TRESOR_TEST_POSTGRES` names a
//! server), through the real channel in process on a session signed by the user's key:
//!
//! * a statement page (100 movements) of an account with 100,000 movements, at the start,
//!   the middle and the end of its history, and a one-day period in the middle — server time
//!   per request — beside its peer, the same page read by a bare SQL query;
//! * the 100 requests of 1,000 movements that an export of those 100,000 makes;
//! * importing 10,000 orders (10 requests of 1,000) beside preparing 1,000 orders one request
//!   each;
//! * batch-signing 1,000 orders end to end (the queue, 1,000 ECDSA signatures, one request)
//!   beside signing 200 one request each.
//!
//! `cargo bench -p tresor-bank --bench ledger`. Printed as tables for docs/PERFORMANCE.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sqlx::Row as _;
use tresor_bank::bank::Bank;
use tresor_bank::clock::SystemClock;
use tresor_bank::config::Policy;
use tresor_bank::data;
use tresor_bank::ledger::IncomingPayment;
use tresor_bank::server::{self, BankChannel, Opened};
use tresor_bank::storage::{SchemaPolicy, Store};
use tresor_core::api::ledger::{ImportedOrder, StatementPage};
use tresor_core::api::{OrderSignature, Reply, Request, Response, Rights};
use tresor_core::channel::client::{self, ClientAuthentication, ClientSession};
use tresor_core::date::Day;
use tresor_core::payment::{self, Iban, PaymentOrder};
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::{Decode as _, Encode as _};
use tresor_core::{Login, Password, PrivateKey, pki};

const MOVEMENTS: usize = 100_000;
const SEED_BATCH: usize = 1_000;
const PAGE: u32 = 100;
const SAMPLES: usize = 50;
const IMPORT: usize = 10_000;
const ONE_BY_ONE: usize = 1_000;
const SIGN: usize = 1_000;
const SIGN_ONE_BY_ONE: usize = 200;

async fn connect(
    channel: &BankChannel,
    ca: &Certificate,
    auth: ClientAuthentication,
) -> ClientSession {
    let (wait, hello) = client::start(auth);
    let sh = channel.handshake(&hello, SystemTime::now(), None).await;
    let (wait, finish) = wait.receive(&sh, ca, SystemTime::now()).unwrap();
    let accept = channel.handshake(&finish, SystemTime::now(), None).await;
    wait.receive(&accept).unwrap()
}

async fn call(channel: &BankChannel, s: &mut ClientSession, r: &Request) -> (Response, Duration) {
    let record = s.seal(&serde_json::to_vec(r).unwrap()).unwrap();
    let peer = std::net::SocketAddr::from(([10, 0, 0, 1], 1));
    let start = Instant::now();
    let reply = channel.record(&record, Some(peer)).await;
    let took = start.elapsed();
    match s.open(&reply).unwrap() {
        client::Reply::Data(d) => (serde_json::from_slice(&d).unwrap(), took),
        client::Reply::Closed => panic!("closed"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// A user with every right on `iban`, through the first login, on a key session; and the
/// user's key.
async fn key_session(
    channel: &BankChannel,
    ca: &Certificate,
    iban: &str,
) -> (ClientSession, PrivateKey) {
    let bank = channel.handler();
    let initial = bank
        .add_user("admin:bench", "bench.user", "Bench")
        .await
        .unwrap();
    let all = Rights {
        view: true,
        prepare: true,
        sign: true,
        send: true,
    };
    bank.change_rights("admin:bench", "bench.user", iban, all, true)
        .await
        .unwrap();
    let mut s = connect(channel, ca, ClientAuthentication::Anonymous).await;
    let login = Request::Login {
        login: "bench.user".into(),
        password: initial.clone(),
        otp: None,
        emergency_password: None,
    };
    assert!(matches!(
        call(channel, &mut s, &login).await.0,
        Ok(Reply::LoggedIn(_))
    ));
    let password = Password::from("Ptah correct horse battery");
    let change = Request::ChangePassword {
        current: initial,
        new: password.clone(),
    };
    assert!(call(channel, &mut s, &change).await.0.is_ok());
    let key = PrivateKey::generate();
    let csr = pki::build_csr(&key, &Login::new("bench.user").unwrap()).unwrap();
    let request = Request::RequestCertificate {
        csr: csr.to_der().unwrap(),
    };
    let cert = match call(channel, &mut s, &request).await.0 {
        Ok(Reply::Certificate { certificate, .. }) => Certificate::from_der(&certificate).unwrap(),
        other => panic!("{other:?}"),
    };
    let auth = ClientAuthentication::Key {
        login: Login::new("bench.user").unwrap(),
        certificate: cert.to_der().unwrap(),
        signer: Box::new(key.clone()),
    };
    let mut s = connect(channel, ca, auth).await;
    let login = Request::Login {
        login: "bench.user".into(),
        password,
        otp: None,
        emergency_password: None,
    };
    assert!(matches!(
        call(channel, &mut s, &login).await.0,
        Ok(Reply::LoggedIn(_))
    ));
    (s, key)
}

fn page_of(r: Response) -> StatementPage {
    match r {
        Ok(Reply::Statement(p)) => p,
        other => panic!("{other:?}"),
    }
}

async fn run(label: &str, url: &str, dir: &std::path::Path) {
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
    let pool = store.pool().clone();
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
    let channel = server::channel(Opened { bank, files }).unwrap();
    let iban = Iban::ua_from_parts("300001", "26000000000001")
        .unwrap()
        .to_string();
    channel
        .handler()
        .add_account("admin:bench", &iban, "ТОВ Бенч", "UAH", 0)
        .await
        .unwrap();

    // 100,000 movements, booked as incoming payments 1,000 to a transaction.
    let start = Instant::now();
    for b in 0..MOVEMENTS / SEED_BATCH {
        let payments: Vec<IncomingPayment> = (0..SEED_BATCH)
            .map(|i| IncomingPayment {
                account: iban.clone(),
                amount: 100 + (i as u64 % 900),
                currency: None,
                payer_name: "ТОВ Покупець".into(),
                payer_iban: "UA903052992990004149123456789".into(),
                payer_tax_code: "32855961".into(),
                purpose: format!("Оплата за рахунком {b}-{i}, у т.ч. ПДВ 20%"),
                number: format!("{b}-{i}"),
            })
            .collect();
        channel
            .handler()
            .incoming_payments("clearing:bench", &payments)
            .await
            .unwrap();
    }
    let booked = MOVEMENTS as f64 / start.elapsed().as_secs_f64();

    let (mut s, key) = key_session(&channel, &ca, &iban).await;
    let today = Day::today();
    let whole = (today.month_start(), today.next());
    let statement =
        |cursor: Option<String>, limit: u32, (from, to): (Day, Day)| Request::Statement {
            account: iban.clone(),
            from,
            to,
            cursor,
            limit: Some(limit),
        };
    // Cursors spread across the history: every 2,000th movement's.
    let rows =
        sqlx::query("SELECT booked_at, id FROM movements WHERE iban = $1 ORDER BY booked_at, id")
            .bind(&iban)
            .fetch_all(&pool)
            .await
            .unwrap();
    let cursors: Vec<String> = rows
        .iter()
        .step_by(MOVEMENTS / SAMPLES)
        .map(|r| format!("{}.{}", r.get::<i64, _>(0), r.get::<i64, _>(1)))
        .collect();
    let mut pages = Vec::new();
    for c in &cursors {
        let (r, took) = call(&channel, &mut s, &statement(Some(c.clone()), PAGE, whole)).await;
        assert_eq!(page_of(r).movements.len(), PAGE as usize);
        pages.push(took);
    }
    let (first, first_took) = call(&channel, &mut s, &statement(None, PAGE, whole)).await;
    let first = page_of(first);
    assert_eq!(first.closing, first.opening + first.credits - first.debits);
    pages.push(first_took);
    pages.sort();
    // The peer: the same page as a bare indexed query, no channel, no rights, no totals.
    let mut bare = Vec::new();
    for c in &cursors {
        let (at, id) = c.split_once('.').unwrap();
        let start = Instant::now();
        let rows = sqlx::query(
            "SELECT * FROM movements WHERE iban = $1 AND (booked_at, id) > ($2, $3) \
             ORDER BY booked_at, id LIMIT 100",
        )
        .bind(&iban)
        .bind(at.parse::<i64>().unwrap())
        .bind(id.parse::<i64>().unwrap())
        .fetch_all(&pool)
        .await
        .unwrap();
        bare.push(start.elapsed());
        assert_eq!(rows.len(), 100);
    }
    bare.sort();

    // An export's requests: the whole history in pages of 1,000.
    let start = Instant::now();
    let mut cursor = None;
    let mut fetched = 0;
    loop {
        let (r, _) = call(&channel, &mut s, &statement(cursor, 1000, whole)).await;
        let p = page_of(r);
        fetched += p.movements.len();
        match p.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let export_fetch = start.elapsed();
    assert_eq!(fetched, MOVEMENTS);

    // Import: 10,000 orders in 10 requests of 1,000, beside 1,000 prepared one by one.
    let order = |n: usize| PaymentOrder {
        payer_iban: iban.clone(),
        payee_name: "ТОВ Постачальник".into(),
        payee_tax_code: "14360570".into(),
        payee_iban: "UA903052992990004149123456789".into(),
        amount: 100 + n as u64,
        currency: "UAH".into(),
        purpose: format!("Оплата за рахунком {n}"),
    };
    let start = Instant::now();
    for batch in 0..IMPORT / 1000 {
        let orders = (0..1000)
            .map(|i| ImportedOrder {
                order: order(batch * 1000 + i),
                number: format!("{}", batch * 1000 + i),
                date: today,
            })
            .collect();
        let (r, _) = call(&channel, &mut s, &Request::ImportOrders { orders }).await;
        assert!(matches!(r, Ok(Reply::Imported { .. })), "{r:?}");
    }
    let import = start.elapsed();
    let start = Instant::now();
    for n in 0..ONE_BY_ONE {
        let (r, _) = call(&channel, &mut s, &Request::PrepareOrder { order: order(n) }).await;
        assert!(matches!(r, Ok(Reply::Order(_))), "{r:?}");
    }
    let one_by_one = start.elapsed();
    // Batch signing: 1,000 orders from the queue, each signed with the key (an unlocked key,
    // as after the one unlock a batch takes) and sent in one request; beside 200 signed one
    // request each.
    let start = Instant::now();
    let mut queue = Vec::new();
    while queue.len() < SIGN + SIGN_ONE_BY_ONE {
        let after = queue.last().map(|o: &tresor_core::api::OrderView| o.id);
        match call(&channel, &mut s, &Request::SignatureQueue { after })
            .await
            .0
        {
            Ok(Reply::Orders { orders }) => queue.extend(orders),
            other => panic!("{other:?}"),
        }
    }
    let signatures = queue[..SIGN]
        .iter()
        .map(|o| OrderSignature {
            id: o.id,
            version: o.version,
            signature: payment::sign(&key, o.id, o.version, &o.order),
        })
        .collect();
    let (r, _) = call(&channel, &mut s, &Request::SignOrders { signatures }).await;
    match r {
        Ok(Reply::Signed { results }) => assert!(results.iter().all(|r| r.error.is_none())),
        other => panic!("{other:?}"),
    }
    let batch = start.elapsed();
    let start = Instant::now();
    for o in &queue[SIGN..SIGN + SIGN_ONE_BY_ONE] {
        let request = Request::SignOrder {
            id: o.id,
            version: o.version,
            signature: payment::sign(&key, o.id, o.version, &o.order),
        };
        assert!(call(&channel, &mut s, &request).await.0.is_ok());
    }
    let one_sign = start.elapsed();

    let check = channel.handler().verify_ledger().await.unwrap();
    assert_eq!(check.problem, None);

    println!(
        "| {label} | {booked:.0} movements booked/s | page of 100: median {:.2} ms, p95 {:.2} ms, max {:.2} ms | bare query: median {:.2} ms | export's 100 pages of 1,000: {:.2} s | import of 10,000: {:.2} s | 1,000 prepared one by one: {:.2} s ({:.2} ms each) | batch-signing 1,000: {:.2} s | 200 signed one by one: {:.2} s ({:.2} ms each) |",
        percentile(&pages, 0.5),
        percentile(&pages, 0.95),
        percentile(&pages, 1.0),
        percentile(&bare, 0.5),
        export_fetch.as_secs_f64(),
        import.as_secs_f64(),
        one_by_one.as_secs_f64(),
        one_by_one.as_secs_f64() * 1000.0 / ONE_BY_ONE as f64,
        batch.as_secs_f64(),
        one_sign.as_secs_f64(),
        one_sign.as_secs_f64() * 1000.0 / SIGN_ONE_BY_ONE as f64,
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = tresor_bank::storage::sqlite_url(dir.path(), true);
        run("SQLite (file, WAL, synchronous=FULL)", &url, dir.path()).await;
        if let Ok(server) = std::env::var("TRESOR_TEST_POSTGRES") {
            sqlx::any::install_default_drivers();
            let admin = sqlx::AnyPool::connect(&format!("{server}/postgres"))
                .await
                .unwrap();
            let name = format!("tresor_bench_ledger_{}", std::process::id());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            run(
                "PostgreSQL 15 (loopback)",
                &format!("{server}/{name}"),
                dir.path(),
            )
            .await;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await
            .unwrap();
        }
    });
}

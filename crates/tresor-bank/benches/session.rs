//! A request on a session in the configuration users run (`tresor-bank serve`'s channel and
//! HTTPS server, sessions as it keeps them) beside its two peers, in one run:
//!
//! * **bare echo**: a plain HTTPS POST whose body the server returns, no session at all;
//! * **cookie session, looked up**: a plain HTTPS POST carrying a session cookie, which the
//!   server looks up in the same database (a session's row, by primary key, on the bank's own
//!   pool) and answers "log in first";
//! * **cookie session with an idle timeout**: the same, but the lookup also records the
//!   request's time, as a bank's server-side sessions must to end a session idle for five
//!   minutes on any instance: one `UPDATE … RETURNING`, committed without waiting for the
//!   disk, the tightest form of what Spring Session's JDBC store does in two statements;
//! * **Tresor session**: a record on an anonymous channel session asking for the overview,
//!   which the bank answers "log in first": the seq accepted once (held in the memory of
//!   the instance serving the session), the idle timeout, the reply sealed.
//!
//! On the embedded SQLite (a file, one instance) and, when `TRESOR_TEST_POSTGRES` names a
//! server, on PostgreSQL with two instances on one database, requests of every kind going to
//! the other instance than the one before (round-robin); Tresor's records go to the instance
//! holding their session (one session opened on each, alternately), as a balancer routing
//! records by session sends them. One client on one keep-alive connection per instance
//! (TCP_NODELAY), blocks of the four kinds alternating, each round starting with another, so
//! that drift and what came before hit all alike; medians and 99th percentiles of the round
//! trip. Then, apart and not a peer, a session whose every record goes to the other instance,
//! handed over each time.
//!
//! Run: `cargo bench -p tresor-bank --bench session`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use sqlx::any::AnyPoolOptions;
use tresor_bank::bank::Bank;
use tresor_bank::channel::{self, HANDSHAKE_PATH, SESSION_PATH};
use tresor_bank::clock::SystemClock;
use tresor_bank::config::Policy;
use tresor_bank::data;
use tresor_bank::server::{self, Opened};
use tresor_bank::storage::{SchemaPolicy, Store};
use tresor_bank::tls;
use tresor_client::connection;
use tresor_core::api::{Request, Response};
use tresor_core::channel::client::{self, ClientAuthentication, ClientSession};
use tresor_core::x509_cert::Certificate;

const N: usize = 100;
const ROUNDS: usize = 100;

/// One instance of the bank: its HTTPS address.
struct Instance {
    url: String,
}

/// Starts an instance on `db` with the data folder `dir`, serving on a runtime of its own
/// (two worker threads, as `tresor-bank serve`), with the two peers' routes beside the
/// channel's.
fn start(dir: &std::path::Path, db: &str) -> (Instance, Certificate) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (dir, db) = (dir.to_owned(), db.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let files = data::open_or_create(
                &dir,
                "Bench Bank",
                &["localhost".to_owned()],
                &[IpAddr::from([127, 0, 0, 1])],
                SystemTime::now(),
                &Default::default(),
            )
            .unwrap();
            let ca = files.ca.certificate().clone();
            let tls_config = tls::server_config(&files.server_key, &files.server_cert).unwrap();
            // SQLite as `tresor-bank serve` opens it: the embedded database in the data
            // folder, whose sessions' seqs the one serving process holds in memory.
            let by_url = (!db.starts_with("sqlite:")).then_some(db.as_str());
            let store = Store::open(&dir, by_url, SchemaPolicy::Create)
                .await
                .unwrap();
            let bank = Bank::new(
                store.clone(),
                files.ca.clone(),
                &files.secrets,
                Policy::default(),
                Arc::new(SystemClock),
                "Bench Bank",
            )
            .await
            .unwrap();
            let channel = server::channel(Opened { bank, files }).unwrap();
            channel::spawn_sweeper(&channel, Duration::from_secs(30));
            // The peers behind the same request timeout as the channel's routes: a server
            // any bank runs has one.
            let peers = axum::Router::new()
                .route("/peer/echo", post(|body: Bytes| async move { body }))
                .route("/peer/cookie", post(cookie).with_state(store))
                .route(
                    "/peer/cookie-idle",
                    post(cookie_idle).with_state(peer_pool(&db).await),
                )
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    channel::REQUEST_TIMEOUT,
                ));
            let app = channel::router(channel).merge(peers);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!(
                "https://localhost:{}",
                listener.local_addr().unwrap().port()
            );
            tx.send((Instance { url }, ca)).unwrap();
            tls::serve(
                listener,
                tls_config,
                app,
                std::sync::Arc::new(tresor_bank::proxy::Proxies::none()),
                std::future::pending(),
                Duration::ZERO,
            )
            .await
            .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// The session id the request's cookie names.
fn sid(headers: &HeaderMap) -> String {
    headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sid="))
        .unwrap_or_default()
        .to_owned()
}

/// The cookie peer: the session named by the cookie, looked up by primary key.
async fn cookie(State(store): State<Store>, headers: HeaderMap, _body: Bytes) -> Vec<u8> {
    let sid = sid(&headers);
    let login = store
        .read()
        .await
        .unwrap()
        .session_login(&sid)
        .await
        .unwrap();
    match login {
        Some(l) if l.login.is_some() => b"{\"ok\":\"overview\"}".to_vec(),
        Some(_) => b"{\"error\":\"log in first\"}".to_vec(),
        None => b"{\"error\":\"no such session\"}".to_vec(),
    }
}

/// The idle-timeout peer's pool: its commits do not wait for the disk, like the bank's
/// session writer, and it does not ping before each use, like the bank's pools.
async fn peer_pool(db: &str) -> sqlx::AnyPool {
    let sqlite = db.starts_with("sqlite:");
    AnyPoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                let set = if sqlite {
                    "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000;"
                } else {
                    "SET synchronous_commit = off"
                };
                sqlx::raw_sql(set).execute(&mut *conn).await?;
                Ok(())
            })
        })
        .connect(db)
        .await
        .unwrap()
}

/// The idle-timeout peer: the session named by the cookie, if it was active within its idle
/// timeout, with this request's time recorded, in one statement.
async fn cookie_idle(
    State(pool): State<sqlx::AnyPool>,
    headers: HeaderMap,
    _body: Bytes,
) -> Vec<u8> {
    let sid = sid(&headers);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let user: Option<Option<i64>> = sqlx::query_scalar(
        "UPDATE channel_sessions SET last_activity = $1 \
         WHERE id = $2 AND last_activity + idle_timeout >= $1 RETURNING user_id",
    )
    .bind(now)
    .bind(sid)
    .fetch_optional(&pool)
    .await
    .unwrap();
    match user {
        Some(Some(_)) => b"{\"ok\":\"overview\"}".to_vec(),
        Some(None) => b"{\"error\":\"log in first\"}".to_vec(),
        None => b"{\"error\":\"no such session\"}".to_vec(),
    }
}

async fn post_bytes(http: &reqwest::Client, url: &str, body: Vec<u8>, sid: &str) -> Vec<u8> {
    http.post(url)
        .header("cookie", format!("sid={sid}"))
        .body(body)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

async fn handshake(http: &reqwest::Client, url: &str, ca: &Certificate) -> ClientSession {
    let (wait, hello) = client::start(ClientAuthentication::Anonymous);
    let url = format!("{url}{HANDSHAKE_PATH}");
    let sh = post_bytes(http, &url, hello, "").await;
    let (wait, finish) = wait.receive(&sh, ca, SystemTime::now()).unwrap();
    let accept = post_bytes(http, &url, finish, "").await;
    wait.receive(&accept).unwrap()
}

#[derive(Clone, Copy)]
enum Kind {
    Echo,
    Cookie,
    CookieIdle,
    Tresor,
    /// A Tresor session whose every record goes to another instance than the one before.
    Roaming,
}

struct Figures {
    median: f64,
    p99: f64,
    mean: f64,
}

fn figures(mut d: Vec<Duration>) -> Figures {
    d.sort();
    let us = |x: Duration| x.as_secs_f64() * 1e6;
    Figures {
        median: us(d[d.len() / 2]),
        p99: us(d[d.len() * 99 / 100]),
        mean: d.iter().map(|x| us(*x)).sum::<f64>() / d.len() as f64,
    }
}

async fn run(label: &str, instances: &[Instance], ca: &Certificate) {
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(connection::tls_config(ca).unwrap())
        .tcp_nodelay(true)
        .build()
        .unwrap();
    // One session opened on each instance, which holds it; a record goes to its session's
    // instance, as a balancer routing by session sends it. Requests of every kind alternate
    // between the instances all the same.
    let mut sessions = Vec::new();
    for instance in instances {
        sessions.push(handshake(&http, &instance.url, ca).await);
    }
    // A session whose records alternate between the instances: each is handed over.
    let mut roaming = handshake(&http, &instances[0].url, ca).await;
    // The peers' cookie names a session row of its own: the idle peer writes its activity.
    let sid = data_encoding::HEXLOWER.encode(&handshake(&http, &instances[0].url, ca).await.id().0);
    let request = serde_json::to_vec(&Request::Overview {}).unwrap();
    let mut turn = 0usize;
    let mut one = async |kind: Kind| -> Duration {
        let url = &instances[turn % instances.len()].url;
        turn += 1;
        let started = Instant::now();
        match kind {
            Kind::Echo => {
                let reply =
                    post_bytes(&http, &format!("{url}/peer/echo"), request.clone(), &sid).await;
                assert_eq!(reply, request);
            }
            Kind::Cookie | Kind::CookieIdle => {
                let path = if matches!(kind, Kind::Cookie) {
                    "cookie"
                } else {
                    "cookie-idle"
                };
                let reply =
                    post_bytes(&http, &format!("{url}/peer/{path}"), request.clone(), &sid).await;
                assert_eq!(reply, b"{\"error\":\"log in first\"}");
            }
            Kind::Tresor | Kind::Roaming => {
                let session = match kind {
                    Kind::Tresor => &mut sessions[(turn - 1) % instances.len()],
                    _ => &mut roaming,
                };
                let record = session.seal(&request).unwrap();
                let reply = post_bytes(&http, &format!("{url}{SESSION_PATH}"), record, "").await;
                let client::Reply::Data(data) = session.open(&reply).unwrap() else {
                    panic!("closed")
                };
                let response: Response = serde_json::from_slice(&data).unwrap();
                assert!(response.is_err(), "anonymous, but answered");
            }
        }
        started.elapsed()
    };
    let kinds = [Kind::Echo, Kind::Cookie, Kind::CookieIdle, Kind::Tresor];
    for _ in 0..300 {
        for k in kinds {
            one(k).await;
        }
    }
    // Each round starts with another kind, so that none always follows the same one.
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    for round in 0..ROUNDS {
        for i in (0..kinds.len()).map(|i| (i + round) % kinds.len()) {
            for _ in 0..N {
                times[i].push(one(kinds[i]).await);
            }
        }
    }
    // Handovers apart, after the rounds: their database work would weigh on whichever block
    // came next.
    let mut handed_over = Vec::new();
    if instances.len() > 1 {
        for _ in 0..N * ROUNDS / 10 {
            handed_over.push(one(Kind::Roaming).await);
        }
    }
    let roaming = (!handed_over.is_empty()).then(|| figures(handed_over));
    let figures: Vec<Figures> = times.into_iter().map(figures).collect();
    let [echo, cookie, idle, tresor]: [Figures; 4] = figures.try_into().ok().unwrap();
    println!("\n### {label}");
    println!("| | median | p99 | mean |");
    println!("| --- | ---: | ---: | ---: |");
    let mut rows = vec![
        ("bare HTTPS echo", &echo),
        ("HTTPS + cookie session, looked up", &cookie),
        ("HTTPS + cookie session with an idle timeout", &idle),
        (
            "Tresor session (records to the session's instance)",
            &tresor,
        ),
    ];
    if let Some(r) = &roaming {
        rows.push(("Tresor session handed over on every record (apart)", r));
    }
    for (name, f) in rows {
        println!(
            "| {name} | {:.0} µs | {:.0} µs | {:.0} µs |",
            f.median, f.p99, f.mean
        );
    }
    println!(
        "\nTresor, median (mean): {:.2}× ({:.2}×) the looked-up cookie session, {:.2}× ({:.2}×) \
         the cookie session with an idle timeout, {:.2}× ({:.2}×) the bare echo",
        tresor.median / cookie.median,
        tresor.mean / cookie.mean,
        tresor.median / idle.median,
        tresor.mean / idle.mean,
        tresor.median / echo.median,
        tresor.mean / echo.mean,
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{N} × {ROUNDS} requests of each kind, rounds alternating, after a warm-up; {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("tresor.db").display()
    );
    let (one, ca) = start(dir.path(), &sqlite);
    rt.block_on(run(
        "SQLite (the embedded default), one instance",
        &[one],
        &ca,
    ));
    if let Ok(server) = std::env::var("TRESOR_TEST_POSTGRES") {
        let name = format!("tresor_bench_session_{}", std::process::id());
        rt.block_on(async {
            sqlx::any::install_default_drivers();
            let admin = sqlx::AnyPool::connect(&format!("{server}/postgres"))
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{server}/{name}");
        let (a, ca) = start(dir.path(), &url);
        let (b, _) = start(dir.path(), &url);
        rt.block_on(run(
            "PostgreSQL 15, two instances, round-robin",
            &[a, b],
            &ca,
        ));
    }
}

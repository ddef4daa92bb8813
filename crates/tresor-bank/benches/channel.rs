//! The secure channel's speed, side by side with its peers in one run:
//!
//! 1. ring's ECDSA P-256 sign and verify and ephemeral ECDH rates, and from them the bound
//!    on server handshakes per core: one ECDH, one signature, and one verification (the
//!    client's signature) for a returning client, whose certificate's CA signature the
//!    channel has cached; two verifications for a certificate seen for the first time, and
//!    for rustls, which verifies the chain on every handshake;
//! 2. full mutually authenticated Tresor handshakes over loopback HTTPS, and rustls doing
//!    TLS 1.3 with client certificates (ECDHE P-256, ECDSA P-256 certificates from the same
//!    bank CA, no resumption), each counted per second of the server thread's own CPU time;
//! 3. a 1 KiB request on an established session beside the same request over plain HTTPS
//!    on the same server, one keep-alive connection, round-trip latency.
//!
//! The server runs on one thread (a current-thread tokio runtime), the clients on the other
//! core. Run: `cargo bench -p tresor-bank --bench channel`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use ring::rand::SystemRandom;
use ring::{agreement, signature};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tresor_bank::channel::{
    self, Channel, ChannelConfig, Handler, MemorySessions, SessionInfo, StoreError,
};
use tresor_bank::tls;
use tresor_client::connection::{self, BankConnection};
use tresor_core::channel::RingSigner;
use tresor_core::channel::client::ClientAuthentication;
use tresor_core::testkit::{TestBank, TestClient};
use tresor_core::x509_cert::der::Encode as _;
use tresor_core::x509_cert::serial_number::SerialNumber;
use zeroize::Zeroizing;

const WINDOW: Duration = Duration::from_secs(3);
const CONCURRENCY: usize = 16;

fn main() {
    let bank = TestBank::new("Bench Bank");
    let alice = bank.client("alice");

    println!("## ring on one core");
    let sign = rate(ring_sign);
    let verify = rate(ring_verify);
    let ecdh = rate(ring_ecdh);
    println!("| operation | per second |");
    println!("| --- | ---: |");
    println!("| ECDSA P-256 sign | {sign:.0} |");
    println!("| ECDSA P-256 verify | {verify:.0} |");
    println!("| ECDH P-256 (ephemeral key + agreement) | {ecdh:.0} |");
    // A returning client's certificate is in the channel's cache of verified certificates:
    // its handshake verifies only the client's signature. rustls verifies both every time.
    let bound = 1.0 / (1.0 / ecdh + 1.0 / sign + 1.0 / verify);
    let uncached = 1.0 / (1.0 / ecdh + 1.0 / sign + 2.0 / verify);
    println!(
        "\nBound on server handshakes per core: a returning client (1 ECDH + 1 sign + 1 verify) \
         {bound:.0}/s; a certificate seen for the first time, and rustls (2 verify) {uncached:.0}/s"
    );

    let tresor = tresor_handshakes(&bank, &alice);
    let rustls = rustls_mtls_handshakes(&bank, &alice);
    println!("\n## Full mutually authenticated handshakes, server side, per core");
    println!("| | handshakes/s per server core | of its crypto bound | wall rate (2 cores) |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, r, bound) in [
        ("Tresor over HTTPS", tresor, bound),
        ("rustls TLS 1.3 + client certificate", rustls, uncached),
    ] {
        println!(
            "| {name} | {:.0} | {:.0}% | {:.0}/s |",
            r.per_core,
            100.0 * r.per_core / bound,
            r.wall
        );
    }
    println!(
        "\nTresor / rustls: {:.2}x per server core",
        tresor.per_core / rustls.per_core
    );

    let (session, plain) = session_vs_plain(&bank, &alice);
    println!("\n## A 1 KiB request and its 1 KiB reply, one keep-alive connection");
    println!("| | round trip | server CPU per request |");
    println!("| --- | ---: | ---: |");
    println!(
        "| plain HTTPS | {:.1} µs | {:.1} µs |",
        plain.latency_us, plain.server_us
    );
    println!(
        "| Tresor session inside HTTPS | {:.1} µs | {:.1} µs |",
        session.latency_us, session.server_us
    );
    println!(
        "\nSession overhead: {:+.1}% round trip",
        100.0 * (session.latency_us / plain.latency_us - 1.0)
    );
}

// ---------------------------------------------------------------------------------------------
// ring.

fn rate(mut op: impl FnMut()) -> f64 {
    for _ in 0..200 {
        op();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..100 {
            op();
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn keypair() -> &'static (signature::EcdsaKeyPair, Vec<u8>) {
    static PAIR: std::sync::OnceLock<(signature::EcdsaKeyPair, Vec<u8>)> =
        std::sync::OnceLock::new();
    PAIR.get_or_init(|| {
        let rng = SystemRandom::new();
        let doc = signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &rng,
        )
        .unwrap();
        let pair = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            doc.as_ref(),
            &rng,
        )
        .unwrap();
        let sig = pair
            .sign(&rng, b"transcript hash, 32 bytes long..")
            .unwrap()
            .as_ref()
            .to_vec();
        (pair, sig)
    })
}

fn ring_sign() {
    let rng = SystemRandom::new();
    std::hint::black_box(
        keypair()
            .0
            .sign(&rng, b"transcript hash, 32 bytes long..")
            .unwrap(),
    );
}

fn ring_verify() {
    use signature::KeyPair as _;
    let (pair, sig) = keypair();
    signature::UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_ASN1,
        pair.public_key().as_ref(),
    )
    .verify(b"transcript hash, 32 bytes long..", sig)
    .unwrap();
}

fn ring_ecdh() {
    static PEER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let rng = SystemRandom::new();
    let peer = PEER.get_or_init(|| {
        let k = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap();
        k.compute_public_key().unwrap().as_ref().to_vec()
    });
    let k = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap();
    std::hint::black_box(k.compute_public_key().unwrap());
    agreement::agree_ephemeral(
        k,
        &agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer),
        |s| std::hint::black_box(s.len()),
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// A server on one thread, and its CPU time.

/// CPU time of the calling thread, from the kernel's scheduler statistics (Linux).
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat (Linux)");
    Duration::from_nanos(s.split_whitespace().next().unwrap().parse().unwrap())
}

/// A server on its own thread and current-thread runtime; `probe` reads that thread's CPU
/// time.
struct OneCoreServer {
    addr: SocketAddr,
    probe: mpsc::UnboundedSender<oneshot::Sender<Duration>>,
}

impl OneCoreServer {
    fn start<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (probe, mut probes) = mpsc::unbounded_channel::<oneshot::Sender<Duration>>();
        let thread = std::thread::Builder::new().name("bench-server".into());
        thread
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                    addr_tx.send(listener.local_addr().unwrap()).unwrap();
                    tokio::task::spawn_local(async move {
                        while let Some(reply) = probes.recv().await {
                            let _ = reply.send(thread_cpu());
                        }
                    });
                    serve(listener).await;
                });
            })
            .unwrap();
        Self {
            addr: addr_rx.recv().unwrap(),
            probe,
        }
    }

    async fn cpu(&self) -> Duration {
        let (tx, rx) = oneshot::channel();
        self.probe.send(tx).unwrap();
        rx.await.unwrap()
    }
}

#[derive(Clone, Copy)]
struct Rate {
    per_core: f64,
    wall: f64,
}

/// Runs `CONCURRENCY` copies of `one` in a loop on the client runtime; counts completions in
/// a window after a warm-up, and divides by the server thread's CPU time in that window.
fn measure<F, Fut>(server: &OneCoreServer, one: F) -> Rate
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let one = Arc::new(one);
        let mut tasks = Vec::new();
        for _ in 0..CONCURRENCY {
            let (done, stop, one) = (done.clone(), stop.clone(), one.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    one().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (n0, c0, t0) = (
            done.load(Ordering::Relaxed),
            server.cpu().await,
            Instant::now(),
        );
        tokio::time::sleep(WINDOW).await;
        let (n1, c1, t1) = (
            done.load(Ordering::Relaxed),
            server.cpu().await,
            Instant::now(),
        );
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let n = (n1 - n0) as f64;
        Rate {
            per_core: n / (c1 - c0).as_secs_f64(),
            wall: n / (t1 - t0).as_secs_f64(),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Tresor.

struct Echo;

impl Handler for Echo {
    async fn handle(&self, _: &SessionInfo, request: Zeroizing<Vec<u8>>) -> Vec<u8> {
        request.to_vec()
    }

    async fn certificate_refusal(
        &self,
        _: &SerialNumber,
    ) -> Result<Option<tresor_core::pki::CertError>, StoreError> {
        Ok(None)
    }
}

fn start_bank_server(bank: &TestBank) -> OneCoreServer {
    let identity = bank.server_identity();
    let ca = bank.ca_cert().clone();
    let tls_config = tls::server_config(&bank.server_key, &bank.server_cert).unwrap();
    OneCoreServer::start(move |listener| async move {
        let channel = Channel::new(
            identity,
            ca,
            Echo,
            MemorySessions::default(),
            // All the load comes from one address here; a bank's per-source budgets would
            // (rightly) turn it away. The checks still run on every handshake.
            ChannelConfig {
                max_pending_per_source: usize::MAX,
                max_sessions_per_source: usize::MAX,
                ..ChannelConfig::default()
            },
        );
        channel::spawn_sweeper(&channel, Duration::from_secs(1));
        let app =
            channel::router(channel).route("/plain/echo", post(|body: Bytes| async move { body }));
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
    })
}

/// The client signs on ring too, with its key loaded once, so that the client core keeps up
/// with the server.
fn ring_auth(client: &TestClient) -> impl Fn() -> ClientAuthentication + Send + Sync + 'static {
    let login = client.login.clone();
    let certificate = client.cert.to_der().unwrap();
    let signer = Arc::new(RingSigner::new(&client.key).unwrap());
    move || ClientAuthentication::Key {
        login: login.clone(),
        certificate: certificate.clone(),
        signer: Box::new(signer.clone()),
    }
}

fn tresor_handshakes(bank: &TestBank, alice: &TestClient) -> Rate {
    let server = start_bank_server(bank);
    let conn = BankConnection::new(
        &format!("https://localhost:{}", server.addr.port()),
        bank.ca_cert(),
    )
    .unwrap();
    let auth = ring_auth(alice);
    measure(&server, move || {
        let conn = conn.clone();
        let auth = auth();
        async move {
            let session = conn.open(auth).await.unwrap();
            drop(session);
        }
    })
}

// ---------------------------------------------------------------------------------------------
// rustls with client certificates.

fn p256_only() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![rustls::crypto::ring::kx_group::SECP256R1];
    Arc::new(provider)
}

fn rustls_mtls_handshakes(bank: &TestBank, alice: &TestClient) -> Rate {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(bank.ca_cert().to_der().unwrap()))
        .unwrap();
    let roots = Arc::new(roots);
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), p256_only())
            .build()
            .unwrap();
    let mut server_config = rustls::ServerConfig::builder_with_provider(p256_only())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(bank.server_cert.to_der().unwrap())],
            tls::private_key_der(&bank.server_key),
        )
        .unwrap();
    server_config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    server_config.send_tls13_tickets = 0;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let server = OneCoreServer::start(move |listener| async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::task::spawn_local(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    // The handshake is complete, client certificate checked: say so.
                    let _ = tls.write_all(b"k").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });

    let mut client_config = rustls::ClientConfig::builder_with_provider(p256_only())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from(alice.cert.to_der().unwrap())],
            tls::private_key_der(&alice.key),
        )
        .unwrap();
    client_config.resumption = rustls::client::Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let addr = server.addr;
    measure(&server, move || {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let mut tls = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.unwrap();
        }
    })
}

// ---------------------------------------------------------------------------------------------
// A request on a session beside plain HTTPS.

struct Latency {
    latency_us: f64,
    server_us: f64,
}

fn session_vs_plain(bank: &TestBank, alice: &TestClient) -> (Latency, Latency) {
    const N: usize = 2000;
    const ROUNDS: usize = 5;
    let server = start_bank_server(bank);
    let url = format!("https://localhost:{}", server.addr.port());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = BankConnection::new(&url, bank.ca_cert()).unwrap();
        let mut session = conn.open(ring_auth(alice)()).await.unwrap();
        let http = plain_client(bank);
        let payload = vec![0x5au8; 1024];
        let plain_url = format!("{url}/plain/echo");
        let (mut s_time, mut s_cpu, mut p_time, mut p_cpu) = (
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
        );
        // Warm both paths, then alternate rounds so that drift hits both alike.
        for _ in 0..200 {
            session.request(&payload).await.unwrap();
            http.post(&plain_url)
                .body(payload.clone())
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
        for _ in 0..ROUNDS {
            let (c0, t0) = (server.cpu().await, Instant::now());
            for _ in 0..N {
                let reply = session.request(&payload).await.unwrap();
                assert_eq!(reply.len(), payload.len());
            }
            let (c1, t1) = (server.cpu().await, Instant::now());
            s_time += t1 - t0;
            s_cpu += c1 - c0;
            let (c0, t0) = (server.cpu().await, Instant::now());
            for _ in 0..N {
                let reply = http
                    .post(&plain_url)
                    .body(payload.clone())
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert_eq!(reply.len(), payload.len());
            }
            let (c1, t1) = (server.cpu().await, Instant::now());
            p_time += t1 - t0;
            p_cpu += c1 - c0;
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / (N * ROUNDS) as f64;
        (
            Latency {
                latency_us: per(s_time),
                server_us: per(s_cpu),
            },
            Latency {
                latency_us: per(p_time),
                server_us: per(p_cpu),
            },
        )
    })
}

fn plain_client(bank: &TestBank) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(connection::tls_config(bank.ca_cert()).unwrap())
        .build()
        .unwrap()
}

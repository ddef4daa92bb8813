//! The channel over real HTTPS: a rustls server on loopback, the client library's reqwest
//! connection, and raw POSTs playing the attacker between them.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::SystemTime;

use tresor_bank::channel::{
    self, Channel, ChannelConfig, Handler, MemorySessions, SessionInfo, StoreError,
};
use tresor_bank::tls;
use tresor_client::connection::{self, BankConnection, ConnectionError};
use tresor_core::channel::client::{self, ClientAuthentication, Reply};
use tresor_core::channel::wire::Alert;
use tresor_core::channel::{AlertCode, ChannelError, Mode};
use tresor_core::testkit::TestBank;
use tresor_core::x509_cert::serial_number::SerialNumber;
use zeroize::Zeroizing;

/// Answers "<who>@<peer ip>: <request>"; the certificates in its list are revoked.
struct Echo(Vec<SerialNumber>);

impl Handler for Echo {
    async fn certificate_refusal(
        &self,
        serial: &SerialNumber,
    ) -> Result<Option<tresor_core::pki::CertError>, StoreError> {
        Ok(self
            .0
            .contains(serial)
            .then_some(tresor_core::pki::CertError::Revoked))
    }

    async fn handle(&self, session: &SessionInfo, request: Zeroizing<Vec<u8>>) -> Vec<u8> {
        let who = match (&session.mode, &session.client) {
            (Mode::Authenticated, Some(c)) => c.login.to_string(),
            _ => "anonymous".to_string(),
        };
        let ip = session.peer.map(|p| p.ip().to_string()).unwrap_or_default();
        format!("{who}@{ip}: {}", String::from_utf8_lossy(&request)).into_bytes()
    }
}

struct Server {
    url: String,
    channel: Arc<Channel<Echo>>,
}

async fn start(bank: &TestBank, revoked: Vec<SerialNumber>) -> Server {
    start_with(bank, revoked, ChannelConfig::default()).await
}

async fn start_with(bank: &TestBank, revoked: Vec<SerialNumber>, config: ChannelConfig) -> Server {
    let channel = Channel::new(
        bank.server_identity(),
        bank.ca_cert().clone(),
        Echo(revoked),
        MemorySessions::default(),
        config,
    );
    let app = channel::router(channel.clone());
    Server {
        url: serve_tls(&bank.server_key, &bank.server_cert, app).await,
        channel,
    }
}

/// A plain reqwest client on the client library's TLS settings, to post whatever bytes a
/// test likes.
fn raw_client(bank: &TestBank) -> reqwest::Client {
    https(connection::tls_config(bank.ca_cert()).unwrap())
}

fn https(tls: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = http.post(url).body(body).send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

fn alert(body: &[u8]) -> AlertCode {
    Alert::decode(body).unwrap().code
}

#[tokio::test]
async fn sessions_over_https_reach_the_handler_and_close() {
    let bank = TestBank::new("Bank");
    let server = start(&bank, vec![]).await;
    let conn = BankConnection::new(&server.url, bank.ca_cert()).unwrap();

    let alice = bank.client("alice");
    let mut session = conn.open(alice.auth()).await.unwrap();
    assert_eq!(session.channel().mode(), Mode::Authenticated);
    let reply = session.request(b"balance").await.unwrap();
    assert_eq!(reply.as_slice(), b"alice@127.0.0.1: balance");
    let big = vec![b'x'; 200_000];
    let reply = session.request(&big).await.unwrap();
    assert_eq!(reply.len(), "alice@127.0.0.1: ".len() + big.len());
    assert_eq!(server.channel.session_count().await.unwrap(), 1);
    session.close().await.unwrap();
    assert_eq!(server.channel.session_count().await.unwrap(), 0);

    let mut anonymous = conn.open(ClientAuthentication::Anonymous).await.unwrap();
    let reply = anonymous.request(b"login").await.unwrap();
    assert_eq!(reply.as_slice(), b"anonymous@127.0.0.1: login");
}

#[tokio::test]
async fn a_replayed_handshake_message_is_refused_over_https() {
    let bank = TestBank::new("Bank");
    let server = start(&bank, vec![]).await;
    let http = raw_client(&bank);
    let url = format!("{}{}", server.url, channel::HANDSHAKE_PATH);

    let (await_hello, hello) = client::start(bank.client("alice").auth());
    let (_, server_hello) = post(&http, &url, hello.clone()).await;
    let (await_accept, finish) = await_hello
        .receive(&server_hello, bank.ca_cert(), SystemTime::now())
        .unwrap();
    // A replayed ClientHello costs a fresh pending handshake that nobody can finish.
    let (_, replay_hello) = post(&http, &url, hello).await;
    assert_ne!(replay_hello[39..55], server_hello[39..55]);
    assert_eq!(server.channel.pending_count(), 2);

    let (status, accept) = post(&http, &url, finish.clone()).await;
    assert_eq!(status, 200);
    let mut session = await_accept.receive(&accept).unwrap();
    // The same ClientFinish again: that handshake is used up.
    let (status, again) = post(&http, &url, finish).await;
    assert_eq!((status, alert(&again)), (200, AlertCode::UnknownSession));
    assert_eq!(server.channel.session_count().await.unwrap(), 1);

    // The session is unharmed.
    let record = session.seal(b"still here").unwrap();
    let (_, reply) = post(
        &http,
        &format!("{}{}", server.url, channel::SESSION_PATH),
        record,
    )
    .await;
    assert!(matches!(session.open(&reply).unwrap(), Reply::Data(_)));
}

#[tokio::test]
async fn a_replayed_record_is_refused_over_https_and_the_session_goes_on() {
    let bank = TestBank::new("Bank");
    let server = start(&bank, vec![]).await;
    let http = raw_client(&bank);
    let url = format!("{}{}", server.url, channel::SESSION_PATH);
    let conn = BankConnection::new(&server.url, bank.ca_cert()).unwrap();
    let mut session = conn.open(bank.client("alice").auth()).await.unwrap();
    session.request(b"first").await.unwrap();

    // An attacker who captured a record (say, at a TLS-terminating proxy) replays it.
    let mut twin = {
        let (await_hello, hello) = client::start(ClientAuthentication::Anonymous);
        let hs = format!("{}{}", server.url, channel::HANDSHAKE_PATH);
        let (_, sh) = post(&http, &hs, hello).await;
        let (await_accept, finish) = await_hello
            .receive(&sh, bank.ca_cert(), SystemTime::now())
            .unwrap();
        let (_, accept) = post(&http, &hs, finish).await;
        await_accept.receive(&accept).unwrap()
    };
    let captured = twin.seal(b"pay 1000 UAH").unwrap();
    let (_, reply) = post(&http, &url, captured.clone()).await;
    twin.open(&reply).unwrap();
    let (status, replayed) = post(&http, &url, captured).await;
    assert_eq!((status, alert(&replayed)), (200, AlertCode::BadRecord));
    // Both sessions go on.
    let record = twin.seal(b"next").unwrap();
    let (_, reply) = post(&http, &url, record).await;
    assert!(matches!(twin.open(&reply).unwrap(), Reply::Data(_)));
    session.request(b"second").await.unwrap();
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_over_https() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    let server = start(
        &bank,
        vec![alice.cert.tbs_certificate().serial_number().clone()],
    )
    .await;
    let conn = BankConnection::new(&server.url, bank.ca_cert()).unwrap();
    let err = conn.open(alice.auth()).await.err().unwrap();
    assert!(
        matches!(
            err,
            ConnectionError::Channel(ChannelError::PeerAlert(AlertCode::CertificateRevoked))
        ),
        "{err:?}"
    );
    assert_eq!(server.channel.session_count().await.unwrap(), 0);
    // Another user of the same bank is unaffected.
    conn.open(bank.client("bob").auth()).await.unwrap();
}

#[tokio::test]
async fn garbage_wrong_endpoints_and_oversized_bodies_are_refused() {
    let bank = TestBank::new("Bank");
    let server = start(&bank, vec![]).await;
    let http = raw_client(&bank);
    let hs = format!("{}{}", server.url, channel::HANDSHAKE_PATH);
    let sess = format!("{}{}", server.url, channel::SESSION_PATH);

    let (status, body) = post(&http, &hs, b"GET / HTTP/1.1".to_vec()).await;
    assert_eq!((status, alert(&body)), (200, AlertCode::DecodeError));
    // A ClientHello at the session endpoint, and a record at the handshake endpoint.
    let (_, hello) = client::start(ClientAuthentication::Anonymous);
    let (_, body) = post(&http, &sess, hello).await;
    assert_eq!(alert(&body), AlertCode::UnexpectedMessage);
    let (_, body) = post(&http, &hs, ChannelError::BadSignature.alert_message()).await;
    assert_eq!(alert(&body), AlertCode::UnexpectedMessage);
    // Over the limits: 413 before the body is read.
    let (status, _) = post(&http, &hs, vec![0; 16 * 1024 + 1]).await;
    assert_eq!(status, 413);
    let (status, _) = post(&http, &sess, vec![0; 1024 * 1024 + 1]).await;
    assert_eq!(status, 413);
    // Nothing was kept.
    assert_eq!(server.channel.pending_count(), 0);
    assert_eq!(server.channel.session_count().await.unwrap(), 0);
}

#[tokio::test]
async fn tls_is_1_3_only_and_trusts_only_the_bank_ca() {
    let bank = TestBank::new("Bank");
    let server = start(&bank, vec![]).await;

    // A TLS 1.2-only client cannot connect.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            tresor_core::x509_cert::der::Encode::to_der(bank.ca_cert())
                .unwrap()
                .into(),
        )
        .unwrap();
    let old = https(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let err = old
        .post(format!("{}{}", server.url, channel::HANDSHAKE_PATH))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    // A client that trusts another bank's CA refuses this server at TLS.
    let other = TestBank::new("Other Bank");
    let conn = BankConnection::new(&server.url, other.ca_cert()).unwrap();
    let err = conn
        .open(ClientAuthentication::Anonymous)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ConnectionError::Network(_)), "{err:?}");

    // And plain http:// is not accepted by the client library at all.
    let err = BankConnection::new("http://localhost:1", bank.ca_cert())
        .err()
        .unwrap();
    assert!(matches!(err, ConnectionError::BadUrl(_)));
}

#[tokio::test]
async fn a_full_server_answers_busy_before_doing_the_work() {
    let bank = TestBank::new("Bank");
    let config = ChannelConfig {
        max_pending: 1,
        max_sessions: 1,
        ..ChannelConfig::default()
    };
    let server = start_with(&bank, vec![], config).await;
    let http = raw_client(&bank);
    let url = format!("{}{}", server.url, channel::HANDSHAKE_PATH);
    let conn = BankConnection::new(&server.url, bank.ca_cert()).unwrap();
    let _first = conn.open(ClientAuthentication::Anonymous).await.unwrap();

    // The one pending slot is taken by this handshake; a second ClientHello is turned away.
    let (await_hello, hello) = client::start(ClientAuthentication::Anonymous);
    let (_, server_hello) = post(&http, &url, hello).await;
    let (_, busy) = post(
        &http,
        &url,
        client::start(ClientAuthentication::Anonymous).1,
    )
    .await;
    assert_eq!(alert(&busy), AlertCode::ServerBusy);
    // Its ClientFinish finds the one session slot taken, and the handshake stays pending.
    let (_, finish) = await_hello
        .receive(&server_hello, bank.ca_cert(), SystemTime::now())
        .unwrap();
    let (_, busy) = post(&http, &url, finish).await;
    assert_eq!(alert(&busy), AlertCode::ServerBusy);
    assert_eq!(server.channel.pending_count(), 1);
    assert_eq!(server.channel.session_count().await.unwrap(), 1);
}

/// Serves `app` over TLS with `key` and `cert` on loopback; its https://localhost URL.
async fn serve_tls(
    key: &tresor_core::PrivateKey,
    cert: &tresor_core::x509_cert::Certificate,
    app: axum::Router,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = tls::server_config(key, cert).unwrap();
    tokio::spawn(tls::serve(
        listener,
        tls,
        app,
        std::sync::Arc::new(tresor_bank::proxy::Proxies::none()),
        std::future::pending(),
        std::time::Duration::ZERO,
    ));
    format!("https://localhost:{port}")
}

#[tokio::test]
async fn a_tls_proxy_certificate_of_the_bank_ca_cannot_terminate_the_channel() {
    use tresor_core::channel::RingSigner;
    use tresor_core::channel::server::ServerIdentity;
    use tresor_core::x509_cert::der::Encode as _;
    let bank = TestBank::new("Bank");
    // The bank CA issued a TLS certificate to the proxy in front of the bank, as banks do.
    let proxy_key = tresor_core::PrivateKey::generate();
    let proxy_cert = bank
        .ca
        .issue_proxy_certificate(
            &proxy_key.public_key(),
            &["localhost".to_string()],
            &[],
            SystemTime::now(),
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
    // The proxy terminates TLS, and tries to answer the inner channel with the same
    // certificate and key.
    let channel = Channel::new(
        ServerIdentity::new(
            proxy_cert.to_der().unwrap(),
            Box::new(RingSigner::new(&proxy_key).unwrap()),
        ),
        bank.ca_cert().clone(),
        Echo(vec![]),
        MemorySessions::default(),
        ChannelConfig::default(),
    );
    let url = serve_tls(&proxy_key, &proxy_cert, channel::router(channel)).await;
    let conn = BankConnection::new(&url, bank.ca_cert()).unwrap();
    // TLS to the proxy is fine; the channel refuses its certificate.
    match conn.open(ClientAuthentication::Anonymous).await {
        Err(ConnectionError::Channel(ChannelError::BadCertificate(
            tresor_core::pki::CertError::WrongPurpose,
        ))) => {}
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("the proxy terminated the secure channel"),
    }
    // The bank's own certificate carries the channel's EKU and is accepted.
    let server = start(&bank, vec![]).await;
    let conn = BankConnection::new(&server.url, bank.ca_cert()).unwrap();
    assert!(conn.open(ClientAuthentication::Anonymous).await.is_ok());
}

#[tokio::test]
async fn the_client_reads_no_reply_larger_than_a_record() {
    let bank = TestBank::new("Bank");
    let huge = || async { vec![0u8; tresor_core::channel::wire::MAX_RECORD + 1] };
    let app = axum::Router::new().route(channel::HANDSHAKE_PATH, axum::routing::post(huge));
    let url = serve_tls(&bank.server_key, &bank.server_cert, app).await;
    let conn = BankConnection::new(&url, bank.ca_cert()).unwrap();
    match conn.open(ClientAuthentication::Anonymous).await {
        Err(ConnectionError::ReplyTooLarge(n)) => {
            assert_eq!(n, tresor_core::channel::wire::MAX_RECORD)
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("accepted an oversized reply"),
    }
}

//! Two real `tresor-bank serve` instances on one PostgreSQL database behind a real HAProxy
//! balancing round robin, with no affinity, in both set-ups a bank runs: TLS passed through
//! (the client's address in a PROXY protocol v2 header) and TLS terminated at the balancer
//! (the client's address in `X-Forwarded-For`, the balancer's certificate from `tresor-bank
//! proxy-certificate`). Every handshake completes although its two requests reach different
//! instances, and penalties fall on the real client's address: a client blocked for hostile
//! input does not block another behind the same balancer, and a client that is not the
//! balancer cannot claim another's address.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use tresor_client::connection::{BankConnection, ConnectionError, HANDSHAKE_PATH, tls_config};
use tresor_core::api::{Reply, Request};
use tresor_core::channel::client::ClientAuthentication;
use tresor_core::channel::wire::Alert;
use tresor_core::channel::{AlertCode, ChannelError};
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::DecodePem as _;

use crate::support::{Bank, Instance, fresh_postgres};

/// The address the balancer connects to the banks from, the one they trust; clients come
/// from others.
pub(crate) const BALANCER: &str = "127.0.0.9";

/// Penalties block a source at its fourth point here, so that a test reaches it quickly.
const POLICY: &str = "ip_max_points = 3\n";

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Setup {
    PassThrough,
    Terminated,
}

/// A HAProxy process; stopped when dropped.
pub(crate) struct Haproxy {
    child: Child,
    pub(crate) port: u16,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// HAProxy in front of `backends`, round robin, connecting to them from [`BALANCER`] (the one
/// address the banks trust); with `checks`, it checks them every half second and sends a
/// connection that fails to another (a bank's operations team would).
pub(crate) fn haproxy(
    dir: &Path,
    setup: Setup,
    backends: &[&str],
    ca: &Path,
    crt: &Path,
    checks: bool,
) -> Haproxy {
    let port = free_port();
    let check = if checks {
        match setup {
            Setup::PassThrough => " check check-send-proxy inter 500ms",
            Setup::Terminated => " check inter 500ms",
        }
    } else {
        ""
    };
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let at = format!("127.0.0.1:{}", port_of(url));
            match setup {
                Setup::PassThrough => {
                    format!("  server bank{i} {at} send-proxy-v2 source {BALANCER}{check}\n")
                }
                Setup::Terminated => format!(
                    "  server bank{i} {at} ssl verify required ca-file {} verifyhost localhost \
                     sni str(localhost) source {BALANCER}{check}\n",
                    ca.display()
                ),
            }
        })
        .collect();
    // Passed through, connections go round robin. Terminated, requests do, but a record goes
    // to the instance its session's id hashes to (the `Tresor-Session` header), which holds
    // the session.
    let (mode, bind, extra, by_session) = match setup {
        Setup::PassThrough => ("tcp", String::new(), String::new(), String::new()),
        Setup::Terminated => (
            "http",
            format!(" ssl crt {}", crt.display()),
            "  option forwardfor\n  use_backend by_session if { req.hdr(tresor-session) -m found }\n"
                .to_owned(),
            format!(
                "backend by_session\n  balance hdr(tresor-session)\n  hash-type consistent\n\
                 {servers}"
            ),
        ),
    };
    let config = format!(
        "global\n  maxconn 2000\n\
         defaults\n  mode {mode}\n  retries 3\n  option redispatch\n  timeout connect 2s\n  \
         timeout client 60s\n  timeout server 60s\n\
         frontend tresor\n  bind 127.0.0.1:{port}{bind}\n{extra}  default_backend banks\n\
         backend banks\n  balance roundrobin\n{servers}{by_session}"
    );
    let path = dir.join(format!("haproxy-{port}.cfg"));
    std::fs::write(&path, config).unwrap();
    let check = Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .expect("haproxy (Debian's package, which scripts/test installs)");
    assert!(
        check.status.success(),
        "haproxy -c: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let child = Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Haproxy { child, port }
}

/// A client of the bank at `port` on localhost, connecting from `from`, trusting `ca`; each
/// request on a new connection, so that a round-robin balancer spreads even the two
/// requests of one handshake. `forged` is an `X-Forwarded-For` it sends of its own accord.
struct Client {
    http: reqwest::Client,
    bank: BankConnection,
    base: String,
}

/// What came of a handshake.
#[derive(Debug, PartialEq)]
enum Outcome {
    Session,
    Alert(AlertCode),
}

impl Client {
    fn new(ca: &Path, port: u16, from: &str, forged: Option<&'static str>) -> Client {
        let ca = Certificate::from_pem(std::fs::read(ca).unwrap()).unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(f) = forged {
            headers.insert("x-forwarded-for", HeaderValue::from_static(f));
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(&ca).unwrap())
            .local_address(from.parse::<IpAddr>().unwrap())
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
            .pool_max_idle_per_host(0)
            .default_headers(headers)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let base = format!("https://localhost:{port}");
        Client {
            bank: BankConnection::with_http(&base, &ca, http.clone()).unwrap(),
            http,
            base,
        }
    }

    /// An anonymous handshake (the client library's, which carries the ticket), then one
    /// request on its session.
    async fn handshake(&self) -> Outcome {
        let mut session = match self.bank.open(ClientAuthentication::Anonymous).await {
            Ok(s) => s,
            Err(ConnectionError::Channel(ChannelError::PeerAlert(code))) => {
                return Outcome::Alert(code);
            }
            Err(e) => panic!("{e}"),
        };
        let reply = session
            .request(&serde_json::to_vec(&Request::BankInfo {}).unwrap())
            .await
            .unwrap();
        let reply: tresor_core::api::Response = serde_json::from_slice(&reply).unwrap();
        assert!(matches!(reply, Ok(Reply::BankInfo(_))), "{reply:?}");
        Outcome::Session
    }

    /// A handshake message that is not one: hostile input, a penalty point for the sender.
    async fn hostile(&self) -> AlertCode {
        let response = self
            .http
            .post(format!("{}{HANDSHAKE_PATH}", self.base))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(b"not a handshake".to_vec())
            .send()
            .await
            .unwrap();
        Alert::decode(&response.bytes().await.unwrap())
            .unwrap()
            .code
    }
}

/// `tresor_handshake_tickets_redeemed_total` on an instance's operations listener.
fn tickets_redeemed(operations: &str) -> f64 {
    metric(operations, "tresor_handshake_tickets_redeemed_total ")
}

/// How many records an instance answered (`tresor_request_seconds_count` of `record`).
fn records_answered(operations: &str) -> f64 {
    metric(
        operations,
        "tresor_request_seconds_count{endpoint=\"record\"} ",
    )
}

/// The value of the metric line starting with `prefix` on an operations listener, 0 if none.
fn metric(operations: &str, prefix: &str) -> f64 {
    let addr = operations.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    use std::io::{Read as _, Write as _};
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn run(setup: Setup) {
    let header = match setup {
        Setup::PassThrough => "proxy-v2",
        Setup::Terminated => "forwarded-for",
    };
    let extra = format!(
        "[operations]\nlisten = \"127.0.0.1:0\"\n\
         [proxy]\ntrusted = [\"{BALANCER}\"]\nheader = \"{header}\"\n"
    );
    let env = vec![(
        "TRESOR_DATABASE_URL".to_string(),
        PathBuf::from(fresh_postgres("tresor_test_e2e")),
    )];
    let bank = Bank::start_with(POLICY, &extra, env);
    let second: Instance = bank.another_instance("bank-2.log");
    let dir = tempfile::tempdir().unwrap();
    let crt = dir.path().join("balancer.pem");
    if setup == Setup::Terminated {
        let out = bank.local(&[
            "proxy-certificate",
            "--dns",
            "localhost",
            "--out",
            crt.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&crt).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // OpenSSL reads it as a certificate for TLS servers only: no channel EKU.
        let text = Command::new("openssl")
            .args(["x509", "-noout", "-ext", "extendedKeyUsage", "-in"])
            .arg(&crt)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("TLS Web Server Authentication"), "{text}");
        assert!(!text.contains("1.3.6.1.4.1"), "{text}");
        let out = bank.local(&["break-glass", "--reason", "check", "audit-list"]);
        let audit = String::from_utf8(out.stdout).unwrap();
        let issued = audit
            .lines()
            .find(|l| l.contains("proxy_certificate"))
            .unwrap_or_else(|| panic!("{audit}"));
        assert!(
            issued.contains("operator:") && issued.contains("for localhost"),
            "{issued}"
        );
    }
    let lb = haproxy(
        dir.path(),
        setup,
        &[&bank.url, &second.url],
        &bank.ca,
        &crt,
        false,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Round robin, each request on a new connection: hello and finish alternate between
        // the instances, and every handshake completes.
        let alice = Client::new(&bank.ca, lb.port, "127.0.0.2", None);
        for _ in 0..10 {
            assert_eq!(alice.handshake().await, Outcome::Session);
        }
        let operations = [
            bank.operations.as_deref().unwrap(),
            second.operations.as_deref().unwrap(),
        ];
        let redeemed: f64 = operations.iter().map(|o| tickets_redeemed(o)).sum();
        assert!(
            redeemed >= 5.0,
            "handshakes finished from their ticket: {redeemed}"
        );

        // Records: each instance holds the sessions it serves. Terminated, the balancer sends
        // every record of a session to one instance (by its Tresor-Session header); passed
        // through, each request on a new connection goes to the other instance, which asks
        // for the session and takes it over: every record is answered either way.
        let before = operations.map(records_answered);
        let mut session = alice
            .bank
            .open(ClientAuthentication::Anonymous)
            .await
            .unwrap();
        for _ in 0..10 {
            let reply = session
                .request(&serde_json::to_vec(&Request::BankInfo {}).unwrap())
                .await
                .unwrap();
            let reply: tresor_core::api::Response = serde_json::from_slice(&reply).unwrap();
            assert!(matches!(reply, Ok(Reply::BankInfo(_))), "{reply:?}");
        }
        let served: Vec<f64> = operations
            .iter()
            .zip(before)
            .map(|(o, b)| records_answered(o) - b)
            .collect();
        assert_eq!(served.iter().sum::<f64>(), 10.0, "{served:?}");
        match setup {
            Setup::Terminated => assert!(served.contains(&10.0), "one instance: {served:?}"),
            Setup::PassThrough => assert_eq!(served, [5.0, 5.0], "alternately"),
        }

        // Mallory, another address behind the same balancer, sends hostile input until both
        // instances block her; Alice goes on.
        let mallory = Client::new(&bank.ca, lb.port, "127.0.0.3", None);
        for _ in 0..8 {
            let code = mallory.hostile().await;
            assert!(
                matches!(code, AlertCode::DecodeError | AlertCode::ServerBusy),
                "{code:?}"
            );
        }
        for _ in 0..4 {
            assert_eq!(
                mallory.handshake().await,
                Outcome::Alert(AlertCode::ServerBusy)
            );
        }
        assert_eq!(alice.handshake().await, Outcome::Session);

        // Trudy connects to an instance directly and claims to be Alice: she is herself.
        let direct = port_of(&bank.url);
        let trudy = Client::new(&bank.ca, direct, "127.0.0.4", Some("127.0.0.2"));
        for _ in 0..5 {
            trudy.hostile().await;
        }
        assert_eq!(
            trudy.handshake().await,
            Outcome::Alert(AlertCode::ServerBusy)
        );
        assert_eq!(alice.handshake().await, Outcome::Session);
    });

    // From the trusted address, a connection is the balancer's: without a PROXY header it
    // is closed (pass-through); a request without X-Forwarded-For is refused (terminated).
    let direct = port_of(&bank.url);
    let as_balancer = Client::new(&bank.ca, direct, BALANCER, None);
    let refused = runtime.block_on(async {
        let request = as_balancer
            .http
            .post(format!("{}{HANDSHAKE_PATH}", as_balancer.base))
            .body(b"not a handshake".to_vec())
            .send()
            .await;
        match request {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    });
    match setup {
        Setup::PassThrough => assert_eq!(refused, 0, "no TLS without a PROXY header"),
        Setup::Terminated => assert_eq!(refused, 400),
    }
    drop(lb);
}

#[test]
fn behind_haproxy_with_tls_passed_through_and_proxy_protocol_v2() {
    run(Setup::PassThrough);
}

#[test]
fn behind_haproxy_terminating_tls_with_x_forwarded_for() {
    run(Setup::Terminated);
}

//! The operations listener of a real `tresor-bank serve`: `/healthz`, `/readyz` and
//! `/metrics`, the last read by an independent OpenMetrics parser (the Prometheus project's
//! Python client); and SIGTERM: the server stops accepting, says "draining" on `/readyz`,
//! answers the request it was in the middle of, and exits cleanly.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Bank, Tresor};

const OPERATIONS: &str = "[operations]\nlisten = \"127.0.0.1:0\"\ndrain_seconds = 20\n";

/// `GET path` on the operations listener: status code and body.
fn get(operations: &str, path: &str) -> (u16, String) {
    let addr = operations.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

/// Every sample of an OpenMetrics text, as the Prometheus project's parser reads it:
/// `[name, {label: value}, value]`.
fn parse_metrics(text: &str) -> Vec<Value> {
    let mut python = Command::new("python3")
        .args([
            "-c",
            "import json, sys\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
             print(json.dumps([[s.name, s.labels, s.value]\n\
                 for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with prometheus-client (scripts/test installs it)");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s[0] == name
                && labels
                    .iter()
                    .all(|(k, v)| s[1].get(*k).and_then(Value::as_str) == Some(*v))
        })
        .and_then(|s| s[2].as_f64())
}

#[test]
fn health_readiness_and_metrics_an_independent_parser_reads() {
    let bank = Bank::start_with("", OPERATIONS, Vec::new());
    let ops = bank.operations.clone().expect("the operations listener");
    assert_eq!(get(&ops, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(&ops, "/readyz"), (200, "ready\n".into()));
    assert_eq!(get(&ops, "/nothing").0, 404);

    // A login of nobody, with a one-time code: a handshake, then a refused login.
    let home = tempfile::tempdir().unwrap();
    let (code, _) = Tresor::new(&bank, "nobody.here", home.path())
        .run(&["login", "--otp"])
        .secret("TRESOR_PASSWORD", "not a password")
        .secret("TRESOR_OTP", "000000")
        .outcome();
    assert_eq!(code, Some(3), "a refused login");

    let (status, text) = get(&ops, "/metrics");
    assert_eq!(status, 200);
    let samples = parse_metrics(&text);
    let at_least_one = |name: &str, labels: &[(&str, &str)]| {
        let v = sample(&samples, name, labels);
        assert!(
            v.is_some_and(|v| v >= 1.0),
            "{name} {labels:?}: {v:?} in\n{text}"
        );
    };
    at_least_one(
        "tresor_handshakes_total",
        &[("step", "hello"), ("outcome", "ok")],
    );
    at_least_one(
        "tresor_handshakes_total",
        &[("step", "finish"), ("outcome", "ok")],
    );
    at_least_one(
        "tresor_logins_total",
        &[("outcome", "failed: unknown login")],
    );
    at_least_one("tresor_request_seconds_count", &[("endpoint", "handshake")]);
    at_least_one("tresor_request_seconds_count", &[("endpoint", "record")]);
    for gauge in [
        "tresor_open_sessions",
        "tresor_pending_handshakes",
        "tresor_argon2_queue_depth",
    ] {
        assert!(sample(&samples, gauge, &[]).is_some(), "{gauge} in\n{text}");
    }
    assert!(sample(&samples, "tresor_db_pool_connections", &[("state", "idle")]).is_some());
    // Nothing names a user.
    assert!(!text.contains("nobody.here"), "{text}");
}

#[test]
fn sigterm_drains_the_request_in_flight_then_exits() {
    let mut bank = Bank::start_with("", OPERATIONS, Vec::new());
    let ops = bank.operations.clone().expect("the operations listener");
    let port = bank.url.rsplit(':').next().unwrap().to_string();
    // A client in the middle of a request: headers and half its body sent, the rest when
    // told to (stdin), then the status line of the answer printed.
    let mut client = Command::new("python3")
        .args([
            "-c",
            "import socket, ssl, sys\n\
             ctx = ssl.create_default_context(cafile=sys.argv[1])\n\
             s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[2]))), server_hostname='localhost')\n\
             s.sendall(b'POST /tresor/v1/handshake HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Type: application/octet-stream\\r\\nContent-Length: 10\\r\\n\\r\\n01234')\n\
             print('sent', flush=True)\n\
             sys.stdin.readline()\n\
             s.sendall(b'56789')\n\
             print(s.recv(4096).split(b'\\r\\n')[0].decode(), flush=True)",
        ])
        .arg(&bank.ca)
        .arg(&port)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    said.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "sent");

    let status = Command::new("kill")
        .args(["-TERM", &bank.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Draining: not ready, still running, waiting for the request it is in the middle of.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&ops, "/readyz").0 != 503 {
        assert!(Instant::now() < deadline, "/readyz never said draining");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(&ops, "/readyz"), (503, "draining\n".into()));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        bank.exited().is_none(),
        "the server waits for the request in flight"
    );
    // No new client gets in meanwhile.
    assert!(
        TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err(),
        "the listener is closed"
    );

    writeln!(client.stdin.take().unwrap()).unwrap();
    line.clear();
    said.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("HTTP/1.1 200"),
        "the request was answered: {line:?}"
    );
    assert!(client.wait().unwrap().success());

    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = bank.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit after its last request"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "a clean exit: {exit}");
}

//! Interop of Tresor's TOTP with pyotp, an independent implementation: the codes we compute
//! and accept are pyotp's, and pyotp reads our enrolment URI as an authenticator app would.
//!
//! Needs `python3` with `pyotp` (`pip install pyotp`); without them the tests fail rather
//! than skip, so CI cannot pass by not checking.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

use std::io::Write as _;
use std::process::{Command, Stdio};

use tresor_core::totp::{self, TotpSecret};

/// Reads the secret's base32, an `otpauth://` URI and times from stdin (never argv, where
/// other users could read them), and prints, for each time, pyotp's code from the secret and
/// from the URI. The first line out is what pyotp parsed from the URI.
const SCRIPT: &str = r#"
import sys
try:
    import pyotp
except ImportError:
    sys.stderr.write("MISSING_PYOTP\n")
    sys.exit(3)
lines = sys.stdin.read().split("\n")
secret, uri, times = lines[0], lines[1], [int(t) for t in lines[2:] if t]
from_uri = pyotp.parse_uri(uri)
print(from_uri.issuer, from_uri.name, from_uri.digits, from_uri.interval, from_uri.digest().name, sep="|")
direct = pyotp.TOTP(secret)
for t in times:
    print(direct.at(t), from_uri.at(t))
"#;

struct PyOtp {
    parsed_uri: String,
    /// (time, code from the secret, code from the URI).
    codes: Vec<(u64, String, String)>,
}

fn pyotp(secret: &TotpSecret, uri: &str, times: &[u64]) -> PyOtp {
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}): install Python 3 and `pip install pyotp`")
        });
    let mut input = format!("{}\n{uri}\n", secret.to_base32().as_str());
    for t in times {
        input.push_str(&format!("{t}\n"));
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("MISSING_PYOTP"),
        "the Python package pyotp is not installed: run `pip install pyotp`"
    );
    assert!(out.status.success(), "pyotp failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    let parsed_uri = lines.next().expect("pyotp's reading of the URI").to_owned();
    let codes: Vec<_> = times
        .iter()
        .zip(lines)
        .map(|(&t, line)| {
            let (a, b) = line.split_once(' ').expect("two codes per line");
            (t, a.to_owned(), b.to_owned())
        })
        .collect();
    assert_eq!(codes.len(), times.len(), "pyotp printed: {stdout}");
    PyOtp { parsed_uri, codes }
}

fn times() -> Vec<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    vec![
        0,
        29,
        30,
        59,
        1_111_111_109,
        1_111_111_111,
        1_234_567_890,
        2_000_000_000,
        20_000_000_000,
        now,
    ]
}

fn check(secret: &TotpSecret) {
    let uri = totp::otpauth_uri(secret, "Tresor Bank", "ivan.petrenko");
    let py = pyotp(secret, &uri, &times());
    assert_eq!(py.parsed_uri, "Tresor Bank|ivan.petrenko|6|30|sha1");
    for (t, from_secret, from_uri) in py.codes {
        let ours = totp::format_code(totp::code_at(secret, totp::time_step(t)));
        assert_eq!(ours, from_secret, "code at t={t}");
        assert_eq!(ours, from_uri, "code from our URI at t={t}");
        // pyotp's code is accepted, at its own step or (on a one-in-a-million collision)
        // at a neighbouring step with the same code; and only once.
        let step = totp::verify(secret, &from_secret, t, None)
            .unwrap_or_else(|e| panic!("pyotp's code at t={t} refused: {e}"));
        assert_eq!(totp::format_code(totp::code_at(secret, step)), from_secret);
        let again = totp::verify(secret, &from_secret, t, Some(step));
        assert!(
            again == Err(totp::TotpError::Reused) || again.as_ref().is_ok_and(|&s| s > step),
            "code at t={t} accepted twice: {again:?}"
        );
    }
}

#[test]
fn pyotp_agrees_with_the_rfc_secret() {
    check(&TotpSecret::from_bytes(b"12345678901234567890").unwrap());
}

#[test]
fn pyotp_agrees_with_generated_secrets() {
    for _ in 0..5 {
        check(&TotpSecret::generate());
    }
}

#[test]
fn pyotp_agrees_with_long_secrets() {
    // 32 bytes: longer than SHA-1's output, as some servers generate.
    check(&TotpSecret::from_bytes(&[0xA5; 32]).unwrap());
}

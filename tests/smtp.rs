//! A real SMTP server on loopback for the mail tests: aiosmtpd (from PyPI; scripts/test
//! installs it; `smtp_server.py`), requiring STARTTLS with a certificate from a CA made by OpenSSL and a login
//! (`bank`, password [`PASSWORD`]). Each mail it takes is written to a folder and read back
//! by Python's `email` package, an independent MIME parser.

// Test support: a failure here is a failed test, said where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The SMTP login's password.
pub const PASSWORD: &str = "smtp s3cret";

/// The server and reader, shared with the desktop app's end-to-end tests; its text is built
/// in and run with `python3 -c`, so that a test binary built in another checkout of the
/// repository (a shared target folder) never runs that checkout's copy, or a missing one.
const SCRIPT: &str = include_str!("smtp_server.py");

/// The SMTP server; stopped when dropped.
pub struct Smtp {
    child: Child,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    /// Starts the server on `port`, writing mails to `out`, with the certificates
    /// [`certificates`] made in `tls`.
    pub fn start(out: &Path, port: u16, tls: &Path) -> Smtp {
        use std::io::BufRead as _;
        let mut child = Command::new("python3")
            .args(["-c", SCRIPT, "serve"])
            .arg(out)
            .arg(port.to_string())
            .arg(tls.join("smtp.pem"))
            .arg(tls.join("smtp.key"))
            .env("SMTP_PASSWORD", PASSWORD)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/test installs it)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        Smtp { child }
    }
}

/// A CA and the SMTP server's certificate from it, for `localhost`, by OpenSSL.
pub fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        crate::openssl_ok(dir, args, None);
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Test Mail CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "smtp.key",
                "-out",
                "smtp.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("smtp.ext"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "smtp.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "smtp.pem",
        "-days",
        "2",
        "-extfile",
        "smtp.ext",
    ]);
}

/// The mails received so far, oldest first, as Python's `email` package reads them:
/// recipient, subject, and the plain-text part decoded.
pub fn received(out: &Path) -> Vec<(String, String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let out = Command::new("python3")
                .args(["-c", SCRIPT, "read"])
                .arg(f)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
            assert!(v[3].contains("<html>"), "no HTML part: {}", v[3]);
            (v[0].clone(), v[1].clone(), v[2].clone())
        })
        .collect()
}

/// Waits until `out` holds `n` mails; all of them.
pub fn wait_for(out: &Path, n: usize, within: Duration) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + within;
    loop {
        let mails = received(out);
        if mails.len() >= n {
            return mails;
        }
        assert!(
            Instant::now() < deadline,
            "{} mails after {within:?}, wanted {n}",
            mails.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

//! A real SMTP server on loopback for the mail tests: aiosmtpd (from PyPI; scripts/test
//! installs it), requiring STARTTLS with a certificate from a CA made by OpenSSL and a login
//! (`bank`, password [`PASSWORD`]). Each mail it takes is written to a folder and read back
//! by Python's `email` package, an independent MIME parser.

// Test support: a failure here is a failed test, said where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The SMTP login's password.
pub const PASSWORD: &str = "smtp s3cret";

/// An SMTP server that takes mail only after STARTTLS and AUTH (login `bank`, the password
/// in `SMTP_PASSWORD`), and writes each message to `OUT/<n>.eml`.
const SMTP_SERVER: &str = r#"
import os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

out, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

class Save:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(out, "%d.eml" % time.time_ns())
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(name + ".tmp", name)
        return "250 OK"

def authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"bank" and auth_data.password == os.environb[b"SMTP_PASSWORD"]
    return AuthResult(success=ok)

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
server = Controller(Save(), hostname="127.0.0.1", port=port, server_hostname="localhost",
                    tls_context=context, require_starttls=True, auth_require_tls=True, auth_required=True,
                    authenticator=authenticate)
server.start()
print("ready", flush=True)
sys.stdin.read()
"#;

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
            .args(["-c", SMTP_SERVER])
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
                .args([
                    "-c",
                    "import email, email.policy, json, sys\n\
                     m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n\
                     text = m.get_body(preferencelist=('plain',)).get_content()\n\
                     html = m.get_body(preferencelist=('html',)).get_content()\n\
                     print(json.dumps([str(m['To']), str(m['Subject']), text, html]))",
                ])
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

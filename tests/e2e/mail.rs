//! The bank's e-mail against a real SMTP server on loopback (aiosmtpd, from PyPI), which
//! requires STARTTLS with a certificate from a CA of the test's (made by OpenSSL) and a
//! login whose password the bank reads from `TRESOR_SMTP_PASSWORD`. Each mail it receives is
//! written to a folder, and read back by Python's `email` package, an independent MIME
//! parser. `user add --email` delivers the initial password, which the admin never sees and
//! which opens the first login; a mail server that is down delays the mail, not the action.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::balancer::free_port;
use crate::support::{Bank, KEY_PASSWORD, PASSWORD, Tresor};

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
struct Smtp {
    child: Child,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    fn start(out: &Path, port: u16, tls: &Path) -> Smtp {
        use std::io::BufRead as _;
        let mut child = Command::new("python3")
            .args(["-c", SMTP_SERVER])
            .arg(out)
            .arg(port.to_string())
            .arg(tls.join("smtp.pem"))
            .arg(tls.join("smtp.key"))
            .env("SMTP_PASSWORD", "smtp s3cret")
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
fn smtp_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        tresor_tests::openssl_ok(dir, args, None);
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
fn received(out: &Path) -> Vec<(String, String, String)> {
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

fn wait_for_mails(out: &Path, n: usize, within: Duration) -> Vec<(String, String, String)> {
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

/// The initial password in an activation mail's text.
fn initial_password(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("Initial password: "))
        .unwrap_or_else(|| panic!("no initial password in {text}"))
        .trim()
        .to_owned()
}

#[test]
fn user_add_with_email_delivers_the_initial_password_and_an_outage_only_delays_it() {
    let tls = tempfile::tempdir().unwrap();
    smtp_certificates(tls.path());
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "[bank]\nname = \"Test Bank\"\nphone = \"+380 44 000 00 00\"\n\
         [mail]\nsmtp = \"localhost\"\nport = {port}\nfrom = \"Test Bank <noreply@bank.example>\"\n\
         username = \"bank\"\nca_file = \"{}\"\n",
        tls.path().join("ca.pem").display()
    );
    let bank = Bank::start_with(
        "",
        &extra,
        vec![(
            "TRESOR_SMTP_PASSWORD".to_string(),
            PathBuf::from("smtp s3cret"),
        )],
    );
    let smtp = Smtp::start(out.path(), port, tls.path());

    // The admin sees that the password was sent, not the password.
    let said = bank.admin(&[
        "user",
        "add",
        "olena.k",
        "--name",
        "Olena K",
        "--email",
        "olena.k@example.com",
    ]);
    assert!(said.contains("sent to o•••@example.com"), "{said}");
    let mails = wait_for_mails(out.path(), 1, Duration::from_secs(30));
    let (to, subject, text) = &mails[0];
    assert_eq!(to, "olena.k@example.com");
    assert!(subject.starts_with("Test Bank:"), "{subject}");
    assert!(text.contains("Початковий пароль") && text.contains("+380 44 000 00 00"));
    let password = initial_password(text);
    assert!(!said.contains(&password));
    // It opens the first login.
    let drive = tempfile::tempdir().unwrap();
    Tresor::new(&bank, "olena.k", drive.path())
        .run(&["first-login"])
        .secret("TRESOR_PASSWORD", &password)
        .secret("TRESOR_NEW_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    // Nowhere in the database in the clear: sealed while queued, dropped once sent.
    for file in ["tresor.db", "tresor.db-wal"] {
        if let Ok(bytes) = std::fs::read(bank.data().join(file)) {
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "{file} holds the initial password"
            );
        }
    }

    // The mail server is down: the user is created all the same, the mail waits.
    drop(smtp);
    let said = bank.admin(&[
        "user",
        "add",
        "petro.s",
        "--name",
        "Petro S",
        "--email",
        "petro@example.com",
    ]);
    assert!(said.contains("sent to p•••@example.com"), "{said}");
    let listed = bank.admin(&["user", "show", "petro.s"]);
    assert!(listed.contains("Petro S"), "{listed}");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(received(out.path()).len(), 1);
    // Back up: the mail goes out on a later attempt.
    let _smtp = Smtp::start(out.path(), port, tls.path());
    let mails = wait_for_mails(out.path(), 2, Duration::from_secs(60));
    assert_eq!(mails[1].0, "petro@example.com");
    initial_password(&mails[1].2);
    let audit = String::from_utf8(
        bank.local(&["break-glass", "--reason", "check", "audit-list"])
            .stdout,
    )
    .unwrap();
    assert!(
        audit.contains("initial password sent by e-mail to p•••@example.com"),
        "{audit}"
    );
}

#[test]
fn without_mail_configured_user_add_with_email_is_refused_and_changes_nothing() {
    let bank = Bank::start("");
    let out = bank.local(&[
        "break-glass",
        "--reason",
        "test",
        "user",
        "add",
        "ivan.p",
        "--name",
        "Ivan P",
        "--email",
        "ivan@example.com",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sends no e-mail"), "{err}");
    let listed = bank.admin(&["user", "list"]);
    assert!(!listed.contains("ivan.p"), "{listed}");
}

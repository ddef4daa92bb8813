//! The SMS second step against a local gateway (`tests/sms_gateway.py`, an HTTP server that
//! takes what the bank posts, as a real gateway would, only with the right API key): with
//! `login_second_step = "sms"`, a key login through the real CLI needs the code the gateway
//! received; a wrong code counts as a wrong password; a used code is refused.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::balancer::free_port;
use crate::support::{Bank, KEY_PASSWORD, PASSWORD, Tresor};

const API_KEY: &str = "gateway key 7f3a";
const PHONE: &str = "+380441234567";

/// The gateway; stopped when dropped.
struct Gateway {
    child: Child,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn start(out: &Path, port: u16) -> Gateway {
        use std::io::BufRead as _;
        // Built in, as `tresor_tests::smtp`'s server is: never another checkout's copy.
        let mut child = Command::new("python3")
            .args(["-c", include_str!("../sms_gateway.py")])
            .arg(out)
            .arg(port.to_string())
            .env("SMS_API_KEY", API_KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Gateway { child }
    }
}

/// What the gateway took so far, oldest first: each request's content type and its body
/// read as JSON (the bank fills a JSON template; a JSON reader must make its values of it).
fn taken(out: &Path) -> Vec<(String, serde_json::Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let saved: serde_json::Value =
                serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
            let body: serde_json::Value =
                serde_json::from_str(saved["body"].as_str().unwrap()).unwrap();
            (saved["content_type"].as_str().unwrap().to_owned(), body)
        })
        .collect()
}

/// The code in the `n`-th message the gateway takes, waiting for it.
fn code_of_message(out: &Path, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = taken(out);
        if got.len() > n {
            let (content_type, body) = &got[n];
            assert_eq!(content_type, "application/json");
            assert_eq!(body["to"], PHONE);
            let text = body["text"].as_str().unwrap();
            return text
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .unwrap_or_else(|| panic!("no code in {text}"))
                .to_owned();
        }
        assert!(Instant::now() < deadline, "no SMS {n} at the gateway");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `tresor login` with the key; once the gateway has message `n`, `code` (or the message's
/// own code) typed in. Exit code and output.
fn login_with_code(
    me: &Tresor,
    out: &Path,
    n: usize,
    code: Option<&str>,
) -> (Option<i32>, String, String) {
    let mut child = me
        .run(&["login"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .spawn_piped();
    let texted = code_of_message(out, n);
    let typed = code.unwrap_or(&texted);
    writeln!(child.stdin.take().unwrap(), "{typed}").unwrap();
    let done = child.wait_with_output().unwrap();
    (
        done.status.code(),
        String::from_utf8_lossy(&done.stdout).into_owned(),
        String::from_utf8_lossy(&done.stderr).into_owned(),
    )
}

#[test]
fn with_the_sms_step_a_key_login_needs_the_code_the_gateway_received() {
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let _gateway = Gateway::start(out.path(), port);
    let extra = format!(
        "[sms]\nurl = \"http://127.0.0.1:{port}/send\"\n\
         template = '{{\"to\": \"{{to}}\", \"text\": \"{{text}}\"}}'\n\
         auth_header = \"X-Api-Key\"\n"
    );
    let bank = Bank::start_with(
        "login_second_step = \"sms\"\nip_max_points = 50",
        &extra,
        vec![("TRESOR_SMS_AUTH".to_string(), PathBuf::from(API_KEY))],
    );
    let drive = tempfile::tempdir().unwrap();
    let me = bank.enrolled("olena.k", drive.path());
    // No number yet: a key login is refused, and says to ask the bank.
    me.login(PASSWORD, KEY_PASSWORD)
        .fails_with(7, "no mobile number");
    bank.admin(&["user", "phone", "olena.k", PHONE]);

    // The code the gateway got opens the session.
    let (status, stdout, stderr) = login_with_code(&me, out.path(), 0, None);
    assert_eq!(status, Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["login"], "olena.k", "{report}");
    let first = code_of_message(out.path(), 0);

    // A wrong code: refused, and counted as a wrong password.
    let wrong = if first == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, _, stderr) = login_with_code(&me, out.path(), 1, Some(wrong));
    assert_eq!(status, Some(7), "{stderr}");
    assert!(stderr.contains("code is wrong"), "{stderr}");
    let shown = bank.admin(&["user", "show", "olena.k"]);
    assert!(shown.contains("failed logins: 1"), "{shown}");

    // A code used once does not open another login.
    let (status, _, stderr) = login_with_code(&me, out.path(), 2, Some(&first));
    if code_of_message(out.path(), 2) != first {
        assert_eq!(status, Some(7), "{stderr}");
    }
    // Every message went out with the gateway's key, and none to anyone else.
    assert_eq!(taken(out.path()).len(), 3);
    let audit = String::from_utf8(
        bank.local(&["break-glass", "--reason", "check", "audit-list"])
            .stdout,
    )
    .unwrap();
    assert!(audit.contains("password right; SMS code sent"), "{audit}");
    assert!(audit.contains("factor: key and SMS code"), "{audit}");
}

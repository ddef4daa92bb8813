//! Accountable admins end to end: a real `tresor-bank` made with `init`, administered by
//! `tresor-admin` over the channel with the admins' own keys, a client on `tresor`.

use std::process::Command;

use crate::support::{Bank, KEY_PASSWORD, PASSWORD, Tresor, TresorAdmin};

/// The last line a command printed: a secret shown once.
fn json_secret(v: &serde_json::Value) -> String {
    v["secret"]["secret"]
        .as_str()
        .or_else(|| v["secret"].as_str())
        .unwrap_or_else(|| panic!("no secret in {v}"))
        .to_string()
}

fn request_id(v: &serde_json::Value) -> String {
    assert_eq!(v["reply"], "requested", "{v}");
    v["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

/// `openssl x509 -text` of an admin's certificate shows the admin EKU, and not clientAuth;
/// `openssl verify` accepts it against the bank CA.
fn check_admin_certificate(bank: &Bank, cert: &std::path::Path) {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1.3.6.1.4.1.61593.1.2"), "{text}");
    assert!(!text.contains("TLS Web Client Authentication"), "{text}");
    let out = Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(&bank.ca)
        .arg(cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not good for client authentication: a client's purpose check refuses it.
    let out = Command::new("openssl")
        .args(["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile"])
        .arg(&bank.ca)
        .arg(cert)
        .output()
        .expect("openssl");
    assert!(
        !out.status.success(),
        "an admin certificate passed as sslclient"
    );
}

#[test]
fn admins_bootstrap_approve_each_other_and_a_user_recovers() {
    let (bank, initial) = Bank::init_and_start("ip_max_points = 1000\n", "sec.one", "Security One");
    let drives: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();

    // The first security officer enrolls a key like a client, and gets an admin certificate.
    let one = TresorAdmin::new(&bank, "sec.one", drives[0].path());
    let enrolled = one.first_login(&initial);
    assert_eq!(enrolled["enrolled"], true, "{enrolled}");
    check_admin_certificate(
        &bank,
        &drives[0].path().join("Tresor/sec.one/cert-0001.pem"),
    );
    let me = one.run(&["whoami"]).json_ok();
    assert_eq!(me["roles"], serde_json::json!(["security_officer"]), "{me}");

    // A second officer: with one officer there are no four eyes to ask, so the bootstrap is
    // break-glass, and audited as such.
    let out = bank.local(&[
        "break-glass",
        "--reason",
        "second security officer",
        "admin",
        "add",
        "sec.two",
        "--name",
        "Security Two",
        "--roles",
        "security_officer",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let two = TresorAdmin::new(&bank, "sec.two", drives[1].path());
    two.first_login(stdout.lines().last().unwrap().trim());

    // Now break-glass needs a window.
    let out = bank.local(&["break-glass", "--reason", "alone", "user", "list"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("window"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An account manager, by four eyes: one asks, the requester cannot approve, the other
    // does and alone sees the initial password.
    let asked = one
        .run(&[
            "admin",
            "add",
            "acc.manager",
            "--name",
            "Account Manager",
            "--roles",
            "account_manager",
        ])
        .json_ok();
    let id = request_id(&asked);
    one.run(&["request", "approve", &id])
        .fails_with(8, "another admin");
    let approved = two.run(&["request", "approve", &id]).json_ok();
    let manager = TresorAdmin::new(&bank, "acc.manager", drives[2].path());
    manager.first_login(&json_secret(&approved));

    // The manager opens an account and a client; the client enrolls with `tresor`.
    let iban = crate::support::iban("7");
    manager
        .run(&[
            "account",
            "add",
            &iban,
            "--holder",
            "Client LLC",
            "--balance",
            "500.00",
        ])
        .json_ok();
    let added = manager
        .run(&["user", "add", "client.one", "--name", "Client One"])
        .json_ok();
    manager
        .run(&["rights", "grant", "client.one", &iban, "view,prepare"])
        .json_ok();
    // Granting sign waits for a second manager.
    let sign = manager
        .run(&["rights", "grant", "client.one", &iban, "sign"])
        .json_ok();
    request_id(&sign);
    let client = Tresor::new(&bank, "client.one", drives[3].path());
    client
        .run(&["first-login"])
        .secret("TRESOR_PASSWORD", &json_secret(&added))
        .secret("TRESOR_NEW_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    client.login(PASSWORD, KEY_PASSWORD).json_ok();

    // A client's key opens no admin session; an admin's role stops what it does not cover.
    TresorAdmin::new(&bank, "client.one", drives[3].path())
        .run(&["whoami"])
        .fails_with(7, "admin's key");
    manager
        .run(&["user", "emergency-password", "client.one"])
        .fails_with(8, "roles");
    one.run(&["audit", "list"]).fails_with(8, "roles");

    // The client reports the key lost: an emergency password by four eyes.
    let asked = one
        .run(&["user", "emergency-password", "client.one"])
        .json_ok();
    let id = request_id(&asked);
    let listed = two.run(&["request", "list"]).json_ok();
    assert!(
        listed["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |r| r["id"].as_u64().map(|n| n.to_string()) == Some(id.clone())
                    && r["status"] == "pending"
            ),
        "{listed}"
    );
    let approved = two.run(&["request", "approve", &id]).json_ok();
    let emergency = json_secret(&approved);
    // The user recovers with it on a new drive, and logs in with the new key.
    let recovered_on = Tresor::new(&bank, "client.one", drives[4].path());
    recovered_on
        .run(&["key", "recover"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_EMERGENCY_PASSWORD", &emergency)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    recovered_on.login(PASSWORD, KEY_PASSWORD).json_ok();

    // A break-glass window, asked and approved, opens the local commands once. The audit log
    // names every admin action's admin, certificate and address.
    let asked = one
        .run(&["break-glass", "request", "--reason", "audit export"])
        .json_ok();
    two.run(&["request", "approve", &request_id(&asked)])
        .json_ok();
    let out = bank.local(&[
        "break-glass",
        "--reason",
        "audit export",
        "audit-list",
        "--limit",
        "1000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit = String::from_utf8(out.stdout).unwrap();
    let issued = audit
        .lines()
        .find(|l| l.contains("emergency_password") && l.contains("issued"))
        .unwrap_or_else(|| panic!("{audit}"));
    assert!(issued.contains("admin:sec.two@"), "{issued}");
    assert!(issued.contains("127.0.0.1"), "{issued}");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("approval_request") && l.contains("admin:sec.one@")),
        "{audit}"
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("break_glass") && l.contains("approved by sec.two")),
        "{audit}"
    );
    assert!(!audit.contains(&emergency));
    // Used up.
    let out = bank.local(&["break-glass", "--reason", "again", "user", "list"]);
    assert!(!out.status.success());
}

/// `pdftotext` (poppler) reads a PDF's text, as an independent reader.
fn pdf_text(pdf: &std::path::Path) -> String {
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The fingerprint as printed on a letter: sixteen groups of four hex digits.
fn fingerprint_on(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| {
            let groups: Vec<_> = l.split(' ').collect();
            groups.len() == 16
                && groups
                    .iter()
                    .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .unwrap_or_else(|| panic!("no fingerprint in the letter:\n{text}"))
        .to_string()
}

#[test]
fn key_letters_and_a_blocked_key_through_the_clis() {
    let (bank, initial) = Bank::init_and_start(
        "ip_max_points = 1000\nactivation = \"letter\"\n",
        "sec.one",
        "Security One",
    );
    let drives: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let one = TresorAdmin::new(&bank, "sec.one", drives[0].path());
    one.first_login(&initial);
    // With one officer, break-glass sets up the rest alone.
    let iban = crate::support::iban("5");
    let second = bank.admin_last_line(&[
        "admin",
        "add",
        "sec.two",
        "--name",
        "Security Two",
        "--roles",
        "security_officer",
    ]);
    bank.admin(&[
        "account",
        "add",
        &iban,
        "--holder",
        "Koval LLC",
        "--balance",
        "10.00",
    ]);
    let initial_client = bank.add_user("olena.k", "Олена Коваль");
    bank.admin(&["rights", "grant", "olena.k", &iban, "view"]);
    let two = TresorAdmin::new(&bank, "sec.two", drives[1].path());
    two.first_login(&second);

    // The first login's certificate waits for its letter.
    let client = Tresor::new(&bank, "olena.k", drives[2].path());
    client
        .run(&["first-login"])
        .secret("TRESOR_PASSWORD", &initial_client)
        .secret("TRESOR_NEW_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    client
        .login(PASSWORD, KEY_PASSWORD)
        .fails_with(4, "not activated");

    // The letter: a PDF whose text an independent reader finds the fingerprint in.
    let pdf = drives[2].path().join("letter.pdf");
    let made = client
        .run(&[
            "key",
            "letter",
            "--output",
            pdf.to_str().unwrap(),
            "--name",
            "Олена Коваль",
            "--company",
            "ТОВ «Коваль»",
        ])
        .json_ok();
    let text = pdf_text(&pdf);
    let printed = fingerprint_on(&text);
    assert_eq!(printed, made["fingerprint"].as_str().unwrap());
    assert!(text.contains("Олена Коваль"), "{text}");
    assert!(text.contains("ТОВ «Коваль»"), "{text}");
    assert!(text.contains(made["serial"].as_str().unwrap()), "{text}");

    // A wrong fingerprint is refused; the one on the letter activates the key.
    let wrong = printed.replacen(&printed[..4], "0000", 1);
    let wrong = if wrong == printed {
        printed.replacen(&printed[..4], "1111", 1)
    } else {
        wrong
    };
    one.run(&["cert", "activate", "olena.k", "--fingerprint", &wrong])
        .fails_with(7, "matches no certificate");
    one.run(&["cert", "activate", "olena.k", "--fingerprint", &printed])
        .json_ok();
    client.login(PASSWORD, KEY_PASSWORD).json_ok();

    // The user fears the key stolen and blocks it with the password alone.
    let blocked = client
        .run(&["key", "block"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .json_ok();
    assert_eq!(blocked["blocked"], true);
    client
        .login(PASSWORD, KEY_PASSWORD)
        .fails_with(4, "revoked");

    // Recovery by four eyes; the recovered key waits for its own letter.
    let asked = one
        .run(&["user", "emergency-password", "olena.k"])
        .json_ok();
    let approved = two
        .run(&["request", "approve", &request_id(&asked)])
        .json_ok();
    let recovered = Tresor::new(&bank, "olena.k", drives[3].path());
    recovered
        .run(&["key", "recover"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_EMERGENCY_PASSWORD", &json_secret(&approved))
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    recovered
        .login(PASSWORD, KEY_PASSWORD)
        .fails_with(4, "not activated");
    let pdf = drives[3].path().join("letter.pdf");
    recovered
        .run(&["key", "letter", "--output", pdf.to_str().unwrap()])
        .json_ok();
    two.run(&[
        "cert",
        "activate",
        "olena.k",
        "--fingerprint",
        &fingerprint_on(&pdf_text(&pdf)),
    ])
    .json_ok();
    recovered.login(PASSWORD, KEY_PASSWORD).json_ok();
}

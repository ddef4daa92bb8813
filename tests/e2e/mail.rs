//! The bank's e-mail against a real SMTP server on loopback (aiosmtpd, from PyPI), which
//! requires STARTTLS with a certificate from a CA of the test's (made by OpenSSL) and a
//! login whose password the bank reads from `TRESOR_SMTP_PASSWORD`. Each mail it receives is
//! written to a folder, and read back by Python's `email` package, an independent MIME
//! parser. `user add --email` delivers the initial password, which the admin never sees and
//! which opens the first login; a mail server that is down delays the mail, not the action.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tresor_tests::smtp;

use crate::balancer::free_port;
use crate::support::{Bank, KEY_PASSWORD, PASSWORD, Tresor, iban};

/// A bank that mails through the test SMTP server on `port`, trusting the CA in `tls`. Its
/// address penalty is high: every client of the test is 127.0.0.1, and the test's wrong
/// codes and passwords are to lock an account, not block the address.
fn bank_with_mail(tls: &Path, port: u16) -> Bank {
    let extra = format!(
        "[bank]\nname = \"Test Bank\"\nphone = \"+380 44 000 00 00\"\n\
         [mail]\nsmtp = \"localhost\"\nport = {port}\nfrom = \"Test Bank <noreply@bank.example>\"\n\
         username = \"bank\"\nca_file = \"{}\"\n",
        tls.join("ca.pem").display()
    );
    Bank::start_with(
        "ip_max_points = 50",
        &extra,
        vec![(
            "TRESOR_SMTP_PASSWORD".to_string(),
            PathBuf::from(smtp::PASSWORD),
        )],
    )
}

/// The rest of the line after `prefix` in a mail's text.
fn line_after(text: &str, prefix: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
        .trim()
        .to_owned()
}

/// The initial password in an activation mail's text.
fn initial_password(text: &str) -> String {
    line_after(text, "Initial password: ")
}

#[test]
fn user_add_with_email_delivers_the_initial_password_and_an_outage_only_delays_it() {
    let tls = tempfile::tempdir().unwrap();
    smtp::certificates(tls.path());
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let bank = bank_with_mail(tls.path(), port);
    let smtp = smtp::Smtp::start(out.path(), port, tls.path());

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
    let mails = smtp::wait_for(out.path(), 1, Duration::from_secs(30));
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
    assert_eq!(smtp::received(out.path()).len(), 1);
    // Back up: the mail goes out on a later attempt.
    let _smtp = smtp::Smtp::start(out.path(), port, tls.path());
    let mails = smtp::wait_for(out.path(), 2, Duration::from_secs(60));
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

#[test]
fn a_key_holder_resets_the_password_with_the_code_from_the_mail_and_notices_arrive_once() {
    let tls = tempfile::tempdir().unwrap();
    smtp::certificates(tls.path());
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let bank = bank_with_mail(tls.path(), port);
    let _smtp = smtp::Smtp::start(out.path(), port, tls.path());
    let account = iban("77");
    bank.admin(&[
        "account",
        "add",
        &account,
        "--holder",
        "Koval LLC",
        "--balance",
        "10.00",
    ]);
    bank.admin(&[
        "user",
        "add",
        "olena.k",
        "--name",
        "Olena K",
        "--email",
        "olena.k@example.com",
    ]);
    bank.admin(&[
        "rights",
        "grant",
        "olena.k",
        &account,
        "view,prepare,sign,send",
    ]);
    let mails = smtp::wait_for(out.path(), 1, Duration::from_secs(30));
    let initial = initial_password(&mails[0].2);
    let drive = tempfile::tempdir().unwrap();
    let me = Tresor::new(&bank, "olena.k", drive.path());
    me.run(&["first-login"])
        .secret("TRESOR_PASSWORD", &initial)
        .secret("TRESOR_NEW_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();

    // Forgot the password: with the key, a code by mail.
    let sent = me
        .run(&["password", "forgot"])
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    assert_eq!(sent["code_sent_to"], "o•••@example.com");
    let mails = smtp::wait_for(out.path(), 2, Duration::from_secs(30));
    let (to, subject, text) = &mails[1];
    assert_eq!(to, "olena.k@example.com");
    assert!(subject.contains("code for a new password"), "{subject}");
    let code = line_after(text, "Code: ");
    // A wrong code is refused (and counted); the right one sets the password.
    let new_password = "Harbour violet engine 88";
    me.run(&["password", "reset"])
        .secret("TRESOR_RESET_CODE", "00000001")
        .secret("TRESOR_NEW_PASSWORD", new_password)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .fails_with(7, "code is wrong");
    me.run(&["password", "reset"])
        .secret("TRESOR_RESET_CODE", &code)
        .secret("TRESOR_NEW_PASSWORD", new_password)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    me.login(PASSWORD, KEY_PASSWORD).fails_with(3, "");
    me.login(new_password, KEY_PASSWORD).json_ok();
    // Used once.
    me.run(&["password", "reset"])
        .secret("TRESOR_RESET_CODE", &code)
        .secret("TRESOR_NEW_PASSWORD", "Another harbour engine 99")
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .fails_with(7, "code is wrong");

    // English from now on; an order rejected for want of funds, and money in.
    let with = |r: crate::support::Run| {
        r.secret("TRESOR_PASSWORD", new_password)
            .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
    };
    let profile = with(me.run(&["profile", "set", "--language", "en"])).json_ok();
    assert_eq!(profile["email"], "olena.k@example.com");
    assert_eq!(profile["language"], "en");
    let order = with(me.order_create(&account, &iban("78"), "500.00")).json_ok();
    let id = order["id"].as_u64().unwrap().to_string();
    let digest = order["summary"]["digest"].as_str().unwrap().to_string();
    with(me.run(&["order", "sign", &id, "--digest", &digest])).json_ok();
    let rejected = with(me.run(&["order", "send", &id])).json_ok();
    assert_eq!(rejected["status"], "rejected");
    let incoming = bank.local(&[
        "payments",
        "incoming",
        "--account",
        &account,
        "--amount",
        "250.00",
        "--payer-name",
        "Buyer LLC",
        "--payer-iban",
        "UA903052992990004149123456789",
        "--payer-tax-code",
        "32855961",
        "--purpose",
        "Invoice 7",
        "--number",
        "55",
    ]);
    assert!(
        incoming.status.success(),
        "{}",
        String::from_utf8_lossy(&incoming.stderr)
    );
    // Five wrong passwords with the key lock the account.
    for _ in 0..5 {
        me.login("Wrong password again 1", KEY_PASSWORD).outcome();
    }
    let mails = smtp::wait_for(out.path(), 6, Duration::from_secs(30));
    let subjects: Vec<&str> = mails[2..].iter().map(|m| m.1.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "Test Bank: пароль змінено / password changed",
            &format!("Test Bank: payment order {id} rejected"),
            "Test Bank: money in",
            "Test Bank: login locked",
        ]
    );
    assert!(
        mails[4].2.contains("250.00 UAH came into account"),
        "{}",
        mails[4].2
    );
    assert!(
        mails[5].2.contains("+380 44 000 00 00"),
        "the helpdesk: {}",
        mails[5].2
    );
    // Nothing more arrives: each notice once.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(smtp::received(out.path()).len(), 6);
}

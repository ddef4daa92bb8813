//! End to end: a real `tresor-bank` process on its embedded SQLite, driven by the real
//! `tresor` CLI (and, for the idle timeout, by the client library), as a user and an admin
//! would. The binaries are the workspace's own, from the same target folder as this test.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

mod admin;
mod balancer;
mod crash;
mod helpdesk;
mod load;
mod mail;
mod operations;
mod sms;
mod statements;
mod support;
mod token;

use std::time::{Duration, Instant, SystemTime};

use support::{Bank, KEY_PASSWORD, PASSWORD, Tresor, iban};
use tresor_core::totp;

/// Certificates of 30 days with renewal open all along, so that renewal can be shown at once
/// (and the 30-day reminder with it).
const POLICY: &str = "certificate_days = 30\nrenewal_window_days = 30\nip_max_points = 1000\n";

#[test]
fn the_whole_life_of_a_user() {
    let bank = Bank::start(POLICY);
    let payer = iban("2");
    let payee = iban("9");
    bank.admin(&[
        "account",
        "add",
        &payer,
        "--holder",
        "Olena Trade LLC",
        "--balance",
        "10000.00",
    ]);
    let initial = bank.add_user("olena.k", "Olena K");
    bank.admin(&["rights", "grant", "olena.k", &payer, "all"]);
    let drive = tempfile::tempdir().unwrap();
    let me = Tresor::new(&bank, "olena.k", drive.path());

    // Before onboarding there is no key on the drive, and the client says so.
    me.login(PASSWORD, KEY_PASSWORD)
        .fails_with(4, "no key file for olena.k on the drive");

    // 1. Onboarding, then the first login: new password, key on the drive, certificate.
    let out = me
        .run(&["first-login"])
        .secret("TRESOR_PASSWORD", &initial)
        .secret("TRESOR_NEW_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    assert_eq!(out["done"], "enrolled");
    assert_eq!(out["generation"], 1);
    let cert1 = drive.path().join("Tresor/olena.k/cert-0001.pem");
    // Interop: the certificate verifies with OpenSSL against the bank CA, for client auth.
    bank.openssl_verify(&cert1);
    // The initial password is spent.
    me.run(&["login"])
        .secret("TRESOR_PASSWORD", &initial)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .fails_with(3, "login failed");

    // 2. Login with the key: who, rights, and the 30-day renewal reminder.
    let out = me.login(PASSWORD, KEY_PASSWORD).json_ok();
    assert_eq!(out["login"], "olena.k");
    assert_eq!(out["stage"], "key");
    assert_eq!(out["reminder"]["threshold"], 30);
    let account = &out["overview"]["accounts"][0];
    assert_eq!(account["iban"], payer.as_str());
    assert_eq!(account["rights"]["sign"], true);

    // 3. An order prepared, shown, signed, sent and accepted.
    let order = me
        .order_create(&payer, &payee, "1234.50")
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    assert_eq!(order["status"], "draft");
    let id = order["id"].as_u64().unwrap().to_string();
    let digest = order["summary"]["digest"].as_str().unwrap().to_string();
    assert_eq!(order["summary"]["amount"], "1234.50");
    me.run(&["order", "sign", &id, "--digest", "0000-0000"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .fails_with(1, "not signed");
    let signed = me
        .run(&["order", "sign", &id, "--digest", &digest])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    assert_eq!(signed["status"], "signed");
    let sent = me
        .run(&["order", "send", &id])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    assert_eq!(sent["status"], "accepted");
    let list = me
        .run(&["order", "list"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    assert_eq!(list[0]["status"], "accepted");
    let accounts = me
        .run(&["accounts"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    assert_eq!(accounts[0]["balance"], 1_000_000 - 123_450);

    // 4. Renewal: a new key on the same drive; the old one stays as a backup.
    let status = me.run(&["key", "status"]).json_ok();
    assert_eq!(status["generation"], 1);
    assert_eq!(status["reminder"]["threshold"], 30);
    let renewed = me
        .run(&["key", "renew"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    assert_eq!(renewed["done"], "renewed");
    assert_eq!(renewed["generation"], 2);
    let status = me.run(&["key", "status"]).json_ok();
    assert_eq!(
        (
            status["generation"].as_u64(),
            status["backup_generation"].as_u64()
        ),
        (Some(2), Some(1))
    );
    bank.openssl_verify(&drive.path().join("Tresor/olena.k/cert-0002.pem"));
    me.login(PASSWORD, KEY_PASSWORD).json_ok();
    // The drive as it is now, to try the renewed key after recovery.
    let before_recovery = tempfile::tempdir().unwrap();
    support::copy_dir(
        &drive.path().join("Tresor"),
        &before_recovery.path().join("Tresor"),
    );

    // 5. A wrong key password: the client says so, and offers recovery.
    let out = me
        .login(PASSWORD, "not the key password")
        .fails_with(4, "wrong key password");
    assert!(out.contains("tresor key recover"), "{out}");
    // Recovery with the bank's emergency password and a new key password.
    let emergency = bank.admin_last_line(&["user", "emergency-password", "olena.k"]);
    let recovered = me
        .run(&["key", "recover"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_EMERGENCY_PASSWORD", &emergency)
        .secret("TRESOR_KEY_PASSWORD", "a brand new key password")
        .json_ok();
    assert_eq!(recovered["done"], "recovered");
    assert_eq!(recovered["generation"], 3);
    bank.openssl_verify(&drive.path().join("Tresor/olena.k/cert-0003.pem"));

    // 6. The old certificate is refused: the bank revoked it.
    let old = Tresor::new(&bank, "olena.k", before_recovery.path());
    old.login(PASSWORD, KEY_PASSWORD).fails_with(4, "revoked");
    // The emergency password was single-use.
    me.run(&["key", "recover"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_EMERGENCY_PASSWORD", &emergency)
        .secret("TRESOR_KEY_PASSWORD", "yet another key password")
        .fails_with(3, "login failed");

    // 7. Login with the new key.
    let out = me.login(PASSWORD, "a brand new key password").json_ok();
    assert_eq!(out["stage"], "key");
    assert!(bank.admin(&["audit", "verify"]).contains("intact"));
}

#[test]
fn lockout_then_a_temporary_password_then_the_forced_change() {
    let bank = Bank::start(POLICY);
    let drive = tempfile::tempdir().unwrap();
    let me = bank.enrolled("petro.s", drive.path());
    // An unreachable bank is a network error, told apart from a refusal.
    me.login(PASSWORD, KEY_PASSWORD)
        .secret("TRESOR_SERVER", "https://127.0.0.1:9")
        .fails_with(6, "cannot reach the bank");
    for _ in 0..5 {
        me.login("a wrong password", KEY_PASSWORD)
            .fails_with(3, "login failed");
    }
    // Locked: the right password no longer works, and the key's holder is told why.
    me.login(PASSWORD, KEY_PASSWORD).fails_with(5, "locked");
    // Without the key, nobody learns it: an OTP login gets the generic refusal.
    me.run(&["login", "--otp"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_OTP", "123456")
        .fails_with(3, "login failed");

    let temporary = bank.admin_last_line(&["user", "temp-password", "petro.s"]);
    // The temporary password logs in only to be changed; the change is forced.
    let out = me
        .login(&temporary, KEY_PASSWORD)
        .secret("TRESOR_NEW_PASSWORD", "a new password after lockout")
        .json_ok();
    assert_eq!(out["stage"], "key");
    me.login(&temporary, KEY_PASSWORD)
        .secret("TRESOR_NEW_PASSWORD", "yet another new password")
        .fails_with(3, "login failed");
    me.login("a new password after lockout", KEY_PASSWORD)
        .json_ok();
    // A new password that breaks the policy is refused here, before the bank is asked.
    me.run(&["password", "change"])
        .secret("TRESOR_PASSWORD", "a new password after lockout")
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .secret("TRESOR_NEW_PASSWORD", "short")
        .fails_with(1, "at least");
    me.run(&["password", "change"])
        .secret("TRESOR_PASSWORD", "a new password after lockout")
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .secret("TRESOR_NEW_PASSWORD", "the settings page password")
        .json_ok();
    me.login("the settings page password", KEY_PASSWORD)
        .json_ok();
}

#[test]
fn rights_otp_sessions_the_sign_right_and_two_signatures() {
    let bank = Bank::start(POLICY);
    let single = iban("3");
    let double = iban("4");
    let payee = iban("9");
    bank.admin(&[
        "account",
        "add",
        &single,
        "--holder",
        "Firm",
        "--balance",
        "500.00",
    ]);
    bank.admin(&[
        "account",
        "add",
        &double,
        "--holder",
        "Firm",
        "--balance",
        "500.00",
    ]);
    bank.admin(&["account", "signatures", &double, "2"]);
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let d3 = tempfile::tempdir().unwrap();
    let director = bank.enrolled("director", d1.path());
    let accountant = bank.enrolled("accountant", d2.path());
    let deputy = bank.enrolled("deputy", d3.path());
    for acc in [&single, &double] {
        bank.admin(&["rights", "grant", "director", acc, "all"]);
        bank.admin(&["rights", "grant", "accountant", acc, "view,prepare,send"]);
    }
    bank.admin(&["rights", "grant", "deputy", &double, "all"]);

    // OTP enrolled with the key; then an OTP login can view and prepare, never sign.
    let enrollment = director
        .run(&["otp", "enroll"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    assert!(enrollment["qr_svg"].as_str().unwrap().contains("<svg"));
    let uri = enrollment["uri"].as_str().unwrap();
    let secret = uri
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("secret="))
        .unwrap();
    let secret = totp::TotpSecret::from_base32(secret).unwrap();
    // Each code works once and the bank accepts the previous, current and next step: four
    // logins take the steps from one before now to one after, then one more step of waiting.
    // Start early in a step, so that a slow machine still confirms with the previous one.
    while unix_now() % totp::STEP_SECONDS >= 15 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let step = totp::time_step(unix_now());
    let code = |s: u64| totp::format_code(totp::code_at(&secret, s));
    director
        .run(&["otp", "confirm"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .secret("TRESOR_OTP", &code(step - 1))
        .json_ok();
    let out = director
        .run(&["login", "--otp"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_OTP", &code(step - 1))
        .fails_with(3, "login failed");
    assert!(!out.contains("otp"), "the refusal stays generic: {out}");
    let out = director
        .run(&["login", "--otp"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_OTP", &code(step))
        .json_ok();
    assert_eq!(out["stage"], "otp");
    assert_eq!(out["overview"]["accounts"][0]["rights"]["prepare"], true);
    assert_eq!(out["overview"]["accounts"][0]["rights"]["sign"], false);
    let draft = director
        .order_create(&single, &payee, "10.00")
        .arg("--otp")
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_OTP", &code(step + 1))
        .json_ok();
    assert_eq!(draft["status"], "draft");
    let id = draft["id"].as_u64().unwrap().to_string();
    while totp::time_step(unix_now()) <= step {
        std::thread::sleep(Duration::from_millis(200));
    }
    director
        .run(&["order", "sign", &id, "--otp"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_OTP", &code(step + 2))
        .fails_with(7, "an OTP login can view and prepare only");

    // Without the sign right: the bank refuses the signature.
    let out = accountant.login(PASSWORD, KEY_PASSWORD).json_ok();
    assert_eq!(out["overview"]["accounts"][0]["rights"]["sign"], false);
    accountant
        .run(&["order", "sign", &id])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .fails_with(7, "refused");
    let order = accountant
        .run(&["order", "show", &id])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    assert_eq!(order["status"], "draft");

    // Two signatures: the first leaves it partly signed and unsendable; the same signer
    // cannot count twice; a second signer makes it signed; then it is sent.
    let order = accountant
        .order_create(&double, &payee, "20.00")
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
        .json_ok();
    let id = order["id"].as_u64().unwrap().to_string();
    let sign = |who: &Tresor| {
        who.run(&["order", "sign", &id])
            .secret("TRESOR_PASSWORD", PASSWORD)
            .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
    };
    let send = || {
        accountant
            .run(&["order", "send", &id])
            .secret("TRESOR_PASSWORD", PASSWORD)
            .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
    };
    assert_eq!(sign(&director).json_ok()["status"], "partly_signed");
    send().fails_with(7, "refused");
    sign(&director).fails_with(7, "refused");
    let signed = sign(&deputy).json_ok();
    assert_eq!(signed["status"], "signed");
    assert_eq!(signed["signatures"].as_array().unwrap().len(), 2);
    assert_eq!(send().json_ok()["status"], "accepted");
}

/// Renewal killed with SIGKILL at points spread over its whole run, many times: after every
/// kill, the drive holds a key that logs in.
#[test]
fn renewal_killed_at_any_point_leaves_a_key_that_logs_in() {
    let bank = Bank::start(POLICY);
    let drive = tempfile::tempdir().unwrap();
    let me = bank.enrolled("kira.m", drive.path());
    let renew = || {
        me.run(&["key", "renew"])
            .secret("TRESOR_PASSWORD", PASSWORD)
            .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
    };
    // How long a renewal takes here, to spread the kills over it.
    let started = Instant::now();
    renew().json_ok();
    let full = started.elapsed();

    const RUNS: u32 = 16;
    // A fixed-seed generator: the points vary within each slice, and a failure reproduces.
    let mut seed: u64 = 0x7265_6e65_7761_6c21;
    let mut completed = 0;
    for run in 0..RUNS {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let jitter = (seed >> 33) as f64 / (1u64 << 31) as f64;
        let at = full.mul_f64((f64::from(run) + jitter) / f64::from(RUNS) * 1.2);
        let killed = renew().kill_after(at);
        if !killed {
            completed += 1;
        }
        let out = me.login(PASSWORD, KEY_PASSWORD).json_ok();
        assert_eq!(out["stage"], "key", "run {run}, killed after {at:?}");
        let status = me.run(&["key", "status"]).json_ok();
        assert!(status["generation"].as_u64().unwrap() >= 1);
    }
    // The kills landed inside the renewal, not all after it.
    assert!(
        completed < RUNS / 2,
        "{completed} of {RUNS} runs finished before the kill"
    );
}

/// The session ends after the bank's idle timeout: the client refuses to use it, and the
/// logout names the drive to pull out when it is removable.
#[test]
fn an_idle_session_ends() {
    // Long enough that a loaded machine does not idle out between two requests.
    let bank = Bank::start(&format!("{POLICY}session_idle_seconds = 4\n"));
    let drive = tempfile::tempdir().unwrap();
    let _me = bank.enrolled("ivan.p", drive.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let settings = tresor_client::Settings {
            server: bank.url.clone(),
            bank_ca: bank.ca.clone(),
            pkcs11_module: None,
        };
        let client = tresor_client::Client::new(&settings).unwrap();
        let login = tresor_core::login::Login::new("ivan.p").unwrap();
        let store = tresor_client::KeyStore::new(drive.path(), &login);
        let mut session = client
            .login_with_key(
                &store.clone().into(),
                &PASSWORD.into(),
                &KEY_PASSWORD.into(),
                &|_| {},
            )
            .await
            .unwrap();
        assert_eq!(session.idle_timeout(), Duration::from_secs(4));
        session.overview().await.unwrap();
        assert!(!session.is_idle(Instant::now()));
        tokio::time::sleep(Duration::from_millis(4_200)).await;
        assert!(session.is_idle(Instant::now()));
        let err = session.overview().await.unwrap_err();
        assert!(
            matches!(err, tresor_client::ClientError::SessionExpired(4)),
            "{err}"
        );
        // The drive here stands for a removable one.
        let media = tresor_client::media::FixedMedia(vec![tresor_client::Drive {
            label: "STICK".into(),
            mount_path: drive.path().to_path_buf(),
            file_system: "vfat".into(),
            free_bytes: 1,
            total_bytes: 2,
            removable: true,
            read_only: false,
        }]);
        let report = session.logout(&media).await;
        assert_eq!(report.remove_drive.as_deref(), Some(drive.path()));
    });
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

//! A user whose key lives on a PKCS#11 token (SoftHSM2), through the real CLI against a real
//! bank, checked with OpenSC's `pkcs11-tool` and OpenSSL as independent implementations.

use std::process::Command;

use crate::support::{Bank, PASSWORD, SOFTHSM_MODULE, SoftHsm, Tresor, iban};

const PIN: &str = "246810";

/// `pkcs11-tool --list-objects` as (kind, label, access) triples: what an independent reader
/// of the token sees.
fn objects(hsm: &SoftHsm) -> Vec<(String, String, String)> {
    let (ok, out, err) = hsm.pkcs11_tool(Some(PIN), &["--list-objects"]);
    assert!(ok, "pkcs11-tool --list-objects: {err}");
    let mut found = Vec::new();
    let mut current: Option<(String, String, String)> = None;
    for line in out.lines() {
        if !line.starts_with(' ') {
            found.extend(current.take());
            let kind = line.split(';').next().unwrap_or("").trim().to_string();
            current = Some((kind, String::new(), String::new()));
        } else if let Some(c) = current.as_mut() {
            let line = line.trim();
            if let Some(l) = line.strip_prefix("label:") {
                c.1 = l.trim().to_string();
            } else if let Some(a) = line.strip_prefix("Access:") {
                c.2 = a.trim().to_string();
            }
        }
    }
    found.extend(current);
    found
}

fn tresor_objects(hsm: &SoftHsm, kind: &str) -> Vec<String> {
    let mut labels: Vec<String> = objects(hsm)
        .into_iter()
        .filter(|(k, l, _)| k == kind && l.starts_with("Tresor "))
        .map(|(_, l, _)| l)
        .collect();
    labels.sort();
    labels
}

/// Reads generation `label`'s certificate back with `pkcs11-tool` and checks it with
/// `openssl verify` against the bank CA.
fn certificate_verifies(bank: &Bank, hsm: &SoftHsm, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let der = dir.path().join("cert.der");
    let (ok, _, err) = hsm.pkcs11_tool(
        None,
        &[
            "--read-object",
            "--type",
            "cert",
            "--label",
            label,
            "--output-file",
            der.to_str().unwrap(),
        ],
    );
    assert!(ok, "pkcs11-tool --read-object: {err}");
    let pem = dir.path().join("cert.pem");
    let out = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&der)
        .arg("-out")
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bank.openssl_verify(&pem);
}

#[test]
fn the_whole_life_of_a_user_on_a_token() {
    let bank = Bank::start(super::POLICY);
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
    let hsm = SoftHsm::new("Olena token", PIN);
    let me = Tresor::on_token(&bank, "olena.k", &hsm);

    // The token is listed beside the drives.
    let media = me.run(&["media", "list"]).json_ok();
    let tokens = media["tokens"].as_array().unwrap();
    assert!(
        tokens
            .iter()
            .any(|t| t["label"] == "Olena token" && t["model"] == "SoftHSM v2"),
        "{media}"
    );
    // Before the first login the token holds no key for the login.
    me.run(&["login"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_TOKEN_PIN", PIN)
        .fails_with(4, "holds no Tresor key for olena.k");

    // 1. First login: the key pair is generated on the token, its certificate stored there.
    let out = me
        .run(&["first-login"])
        .secret("TRESOR_PASSWORD", &initial)
        .secret("TRESOR_NEW_PASSWORD", PASSWORD)
        .secret("TRESOR_TOKEN_PIN", PIN)
        .json_ok();
    assert_eq!(out["done"], "enrolled");
    assert_eq!(out["generation"], 1);
    let uri = out["key_path"].as_str().unwrap();
    assert!(
        uri.starts_with("pkcs11:token=Olena%20token;")
            && uri.contains("object=Tresor%20olena.k%201"),
        "{uri}"
    );
    // OpenSC sees a private key that is sensitive and was never extractable, and the
    // certificate beside it, which OpenSSL verifies against the bank CA.
    let all = objects(&hsm);
    let private = all
        .iter()
        .find(|(k, l, _)| k == "Private Key Object" && l == "Tresor olena.k 1")
        .unwrap_or_else(|| panic!("no private key object: {all:?}"));
    for flag in ["sensitive", "never extractable", "local"] {
        assert!(
            private.2.contains(flag),
            "access {:?} lacks {flag}",
            private.2
        );
    }
    assert_eq!(
        tresor_objects(&hsm, "Certificate Object"),
        ["Tresor olena.k 1"]
    );
    certificate_verifies(&bank, &hsm, "Tresor olena.k 1");
    // 2. Login with the token, and an order signed on it and sent.
    let run = |args: &[&str]| {
        me.run(args)
            .secret("TRESOR_PASSWORD", PASSWORD)
            .secret("TRESOR_TOKEN_PIN", PIN)
    };
    let out = run(&["login"]).json_ok();
    assert_eq!(out["stage"], "key");
    let order = me
        .order_create(&payer, &payee, "250.00")
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_TOKEN_PIN", PIN)
        .json_ok();
    let id = order["id"].as_u64().unwrap().to_string();
    let digest = order["summary"]["digest"].as_str().unwrap().to_string();
    assert_eq!(
        run(&["order", "sign", &id, "--digest", &digest]).json_ok()["status"],
        "signed"
    );
    assert_eq!(run(&["order", "send", &id]).json_ok()["status"], "accepted");

    // 3. Renewal: a second pair on the same token; the first stays as the backup.
    let renewed = run(&["key", "renew"]).json_ok();
    assert_eq!(renewed["generation"], 2);
    assert_eq!(
        tresor_objects(&hsm, "Private Key Object"),
        ["Tresor olena.k 1", "Tresor olena.k 2"]
    );
    certificate_verifies(&bank, &hsm, "Tresor olena.k 2");
    assert_eq!(run(&["login"]).json_ok()["stage"], "key");

    // 4. A wrong PIN: its own error, offering recovery, and nothing on the token changes.
    let before = objects(&hsm);
    let err = me
        .run(&["login"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_TOKEN_PIN", "135790")
        .fails_with(4, "wrong PIN");
    assert!(err.contains("tresor key recover"), "{err}");
    assert_eq!(objects(&hsm), before);

    // 5. Another login's key is not this login's: a user with no key on this token.
    bank.add_user("petro", "Petro");
    Tresor::on_token(&bank, "petro", &hsm)
        .run(&["login"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_TOKEN_PIN", PIN)
        .fails_with(4, "holds no Tresor key for petro");

    // 6. Recovery with the bank's emergency password: a new pair on the token; the bank
    //    revokes the old certificates.
    let emergency = bank.admin_last_line(&["user", "emergency-password", "olena.k"]);
    let recovered = me
        .run(&["key", "recover"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_EMERGENCY_PASSWORD", &emergency)
        .secret("TRESOR_TOKEN_PIN", PIN)
        .json_ok();
    assert_eq!(recovered["done"], "recovered");
    assert_eq!(recovered["generation"], 3);
    certificate_verifies(&bank, &hsm, "Tresor olena.k 3");
    assert_eq!(run(&["login"]).json_ok()["stage"], "key");
    assert!(bank.admin(&["audit", "verify"]).contains("intact"));
}

#[test]
fn a_module_path_that_is_not_a_module_is_refused_clearly() {
    let bank = Bank::start(super::POLICY);
    let hsm = SoftHsm::new("Any token", PIN);
    let me = Tresor::on_token(&bank, "olena.k", &hsm);
    me.run(&["media", "list", "--pkcs11-module", "/etc/hostname"])
        .fails_with(1, "/etc/hostname is not a PKCS#11 module");
    me.run(&["login", "--pkcs11-module", "/etc/hostname"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_TOKEN_PIN", PIN)
        .fails_with(1, "is not a PKCS#11 module");
    me.run(&["login", "--token", "No such token"])
        .secret("TRESOR_PASSWORD", PASSWORD)
        .secret("TRESOR_TOKEN_PIN", PIN)
        .fails_with(4, "no token labelled or numbered \"No such token\"");
}

#[test]
fn a_bank_ca_in_an_hsm_issues_certificates_openssl_accepts_and_its_folder_holds_no_ca_key() {
    let hsm = SoftHsm::new("Bank HSM", PIN);
    let pin_dir = tempfile::tempdir().unwrap();
    let pin_file = pin_dir.path().join("ca.pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // The PIN from a file only the bank's user reads; the module and token in `[ca]`.
    let bank = Bank::start_with(
        super::POLICY,
        &format!(
            "[ca]\ntoken = \"Bank HSM\"\npkcs11_module = \"{SOFTHSM_MODULE}\"\npin_file = \"{}\"\n",
            pin_file.display()
        ),
        vec![("SOFTHSM2_CONF".into(), hsm.conf())],
    );

    // The data folder holds the CA certificate and a reference to the key, not the key.
    let data = bank.data();
    assert!(!data.join("bank-ca-key.pem").exists());
    let reference = std::fs::read_to_string(data.join("bank-ca-key.pkcs11")).unwrap();
    assert!(
        reference.contains("Bank HSM") && !reference.contains("PRIVATE"),
        "{reference}"
    );
    let ca_spki = Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(&bank.ca)
        .output()
        .unwrap()
        .stdout;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text.contains("PRIVATE KEY") {
            let public = Command::new("openssl")
                .args(["pkey", "-pubout", "-in"])
                .arg(&path)
                .output()
                .unwrap()
                .stdout;
            assert_ne!(public, ca_spki, "{} holds the CA key", path.display());
        }
    }
    // OpenSC sees the CA key on the token: sensitive, never extractable; and its certificate.
    let all = objects(&hsm);
    let ca_key = all
        .iter()
        .find(|(k, l, _)| k == "Private Key Object" && l.starts_with("Tresor bank CA "))
        .unwrap_or_else(|| panic!("no CA key on the token: {all:?}"));
    assert!(ca_key.2.contains("never extractable") && ca_key.2.contains("sensitive"));

    // A first login's certificate, signed in the HSM, passes `openssl verify`.
    let drive = tempfile::tempdir().unwrap();
    bank.enrolled("olena.k", drive.path());
    bank.openssl_verify(&drive.path().join("Tresor/olena.k/cert-0001.pem"));
    let me = Tresor::new(&bank, "olena.k", drive.path());
    assert_eq!(
        me.login(PASSWORD, crate::support::KEY_PASSWORD).json_ok()["stage"],
        "key"
    );
    // Admin commands open the same folder and the same HSM.
    assert!(bank.admin(&["audit", "verify"]).contains("intact"));
}

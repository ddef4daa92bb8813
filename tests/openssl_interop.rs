//! Interop with OpenSSL 3, both ways: OpenSSL opens our key files, we open OpenSSL's; OpenSSL
//! accepts our CSRs and (strictly) our certificates for client authentication only.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::fs;
use std::path::Path;
use std::time::SystemTime;

use tresor_core::keyfile::{self, KdfLimits, KeyFileError, PrivateKey};
use tresor_core::login::Login;
use tresor_core::pki::{
    self, BankCa, CertError, DEFAULT_CA_VALIDITY, DEFAULT_CLIENT_VALIDITY, NoRevocationList,
};
use tresor_core::secret::Password;
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::{Decode as _, Encode as _};
use tresor_tests::{openssl, openssl_ok, pass_env};

const PW: &str = "interop password";

fn ivan() -> Login {
    Login::new("ivan").unwrap()
}

/// The DER public key OpenSSL reads from a key file.
fn openssl_public_der(dir: &Path, file: &str) -> Vec<u8> {
    openssl_ok(
        dir,
        &[
            "pkey",
            "-in",
            file,
            "-passin",
            &pass_env(),
            "-pubout",
            "-outform",
            "DER",
        ],
        Some(PW),
    )
    .stdout
}

fn our_public_der(key: &PrivateKey) -> Vec<u8> {
    use tresor_core::x509_cert::spki::EncodePublicKey as _;
    key.public_key()
        .to_public_key_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[test]
fn openssl_opens_our_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate();
    let pem = key.to_encrypted_pem(&Password::from(PW)).unwrap();
    fs::write(dir.path().join("key.pem"), pem.as_bytes()).unwrap();

    assert_eq!(
        openssl_public_der(dir.path(), "key.pem"),
        our_public_der(&key)
    );
    // OpenSSL sees the scheme we claim: PBES2, scrypt, AES-256-CBC.
    let der = openssl_ok(dir.path(), &["base64", "-d", "-in", "key.pem"], None).stdout;
    fs::write(dir.path().join("key.der"), der).unwrap();
    let asn1 = openssl_ok(
        dir.path(),
        &["asn1parse", "-inform", "DER", "-in", "key.der"],
        None,
    )
    .stdout;
    let asn1 = String::from_utf8_lossy(&asn1);
    for needle in [":PBES2", ":scrypt", ":aes-256-cbc"] {
        assert!(asn1.contains(needle), "{needle} in {asn1}");
    }
    // And refuses a wrong password.
    let wrong = openssl(
        dir.path(),
        &[
            "pkey",
            "-in",
            "key.pem",
            "-passin",
            "pass:wrong password",
            "-noout",
        ],
        None,
    );
    assert!(!wrong.status.success());
}

#[test]
fn we_open_openssl_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_ec_key(d, "plain.pem");
    let pe = pass_env();
    let kinds: [(&str, Vec<&str>, &str); 5] = [
        (
            "genpkey.pem",
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-aes-256-cbc",
                "-pass",
                &pe,
            ],
            "PBKDF2-HMAC-SHA256",
        ),
        (
            "pbkdf2.pem",
            vec![
                "pkcs8",
                "-topk8",
                "-in",
                "plain.pem",
                "-v2",
                "aes-256-cbc",
                "-v2prf",
                "hmacWithSHA256",
                "-iter",
                "600000",
                "-passout",
                &pe,
            ],
            "PBKDF2-HMAC-SHA256 iterations=600000",
        ),
        (
            "pbkdf2-sha512-aes128.pem",
            vec![
                "pkcs8",
                "-topk8",
                "-in",
                "plain.pem",
                "-v2",
                "aes-128-cbc",
                "-v2prf",
                "hmacWithSHA512",
                "-passout",
                &pe,
            ],
            "PBKDF2-HMAC-SHA512",
        ),
        (
            "scrypt.pem",
            vec![
                "pkcs8",
                "-topk8",
                "-in",
                "plain.pem",
                "-scrypt",
                "-passout",
                &pe,
            ],
            "scrypt N=16384 r=8 p=1",
        ),
        (
            "scrypt-p5.pem",
            vec![
                "pkcs8",
                "-topk8",
                "-in",
                "plain.pem",
                "-scrypt",
                "-scrypt_N",
                "16384",
                "-scrypt_r",
                "8",
                "-scrypt_p",
                "5",
                "-passout",
                &pe,
            ],
            "scrypt N=16384 r=8 p=5",
        ),
    ];
    for (file, args, kdf) in kinds {
        let mut args = args.clone();
        args.extend(["-out", file]);
        openssl_ok(d, &args, Some(PW));
        let pem = fs::read(d.join(file)).unwrap();
        let info = keyfile::inspect(&pem).unwrap();
        assert!(info.kdf.starts_with(kdf), "{file}: {}", info.kdf);
        let key = PrivateKey::from_encrypted_pem(&pem, &Password::from(PW), &KdfLimits::DEFAULT)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(our_public_der(&key), openssl_public_der(d, file), "{file}");
        assert!(matches!(
            PrivateKey::from_encrypted_pem(&pem, &Password::from("not it"), &KdfLimits::DEFAULT),
            Err(KeyFileError::WrongPasswordOrCorrupted)
        ));
    }
}

#[test]
fn unsupported_openssl_schemes_get_their_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pe = pass_env();
    openssl_ec_key(d, "plain.pem");
    // Legacy PBES1, and PBKDF2 with SHA-1 (too weak to accept).
    for (file, args) in [
        (
            "pbes1.pem",
            vec![
                "pkcs8",
                "-topk8",
                "-in",
                "plain.pem",
                "-v1",
                "PBE-SHA1-3DES",
                "-passout",
                &pe,
            ],
        ),
        (
            "sha1.pem",
            vec![
                "pkcs8",
                "-topk8",
                "-in",
                "plain.pem",
                "-v2",
                "aes-256-cbc",
                "-v2prf",
                "hmacWithSHA1",
                "-passout",
                &pe,
            ],
        ),
        (
            "des3.pem",
            vec![
                "pkcs8",
                "-topk8",
                "-in",
                "plain.pem",
                "-v2",
                "des3",
                "-passout",
                &pe,
            ],
        ),
    ] {
        let mut args = args.clone();
        args.extend(["-out", file]);
        openssl_ok(d, &args, Some(PW));
        let pem = fs::read(d.join(file)).unwrap();
        let err = PrivateKey::from_encrypted_pem(&pem, &Password::from(PW), &KdfLimits::DEFAULT)
            .unwrap_err();
        assert!(
            matches!(err, KeyFileError::UnsupportedScheme(_)),
            "{file}: {err}"
        );
    }
    // An RSA key, properly encrypted, is not a Tresor key.
    openssl_ok(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-aes-256-cbc",
            "-pass",
            &pe,
            "-out",
            "rsa.pem",
        ],
        Some(PW),
    );
    let pem = fs::read(d.join("rsa.pem")).unwrap();
    assert!(matches!(
        PrivateKey::from_encrypted_pem(&pem, &Password::from(PW), &KdfLimits::DEFAULT),
        Err(KeyFileError::UnsupportedKeyType(_))
    ));
    // A plain key is refused as unencrypted.
    let pem = fs::read(d.join("plain.pem")).unwrap();
    assert!(matches!(
        PrivateKey::from_encrypted_pem(&pem, &Password::from(PW), &KdfLimits::DEFAULT),
        Err(KeyFileError::NotEncrypted(_))
    ));
}

#[test]
fn openssl_verifies_our_csr() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate();
    let csr = pki::build_csr(&key, &ivan()).unwrap();
    fs::write(dir.path().join("req.pem"), pki::csr_to_pem(&csr).unwrap()).unwrap();
    let out = openssl_ok(
        dir.path(),
        &["req", "-in", "req.pem", "-verify", "-noout", "-subject"],
        None,
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("verify OK"), "{all}");
    assert!(
        all.contains("CN = ivan") || all.contains("CN=ivan"),
        "{all}"
    );
}

#[test]
fn we_verify_openssl_csr_and_catch_a_forged_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_ec_key(d, "k.pem");
    openssl_ok(
        d,
        &[
            "req", "-new", "-key", "k.pem", "-subj", "/CN=ivan", "-outform", "DER", "-out",
            "req.der",
        ],
        None,
    );
    let der = fs::read(d.join("req.der")).unwrap();
    let verified = pki::verify_csr(&der).unwrap();
    assert_eq!(verified.login(), &ivan());
    // Flip one bit of the signature value (the last bytes of the DER).
    let mut forged = der.clone();
    let last = forged.len() - 3;
    forged[last] ^= 0x01;
    assert!(matches!(
        pki::verify_csr(&forged),
        Err(pki::PkiError::BadRequestSignature)
    ));
}

/// A bank CA named like the one a test bank would have.
fn test_ca() -> BankCa {
    BankCa::generate(
        "Tresor Test Bank CA",
        "Tresor Test Bank, PJSC",
        "UA",
        SystemTime::now(),
        DEFAULT_CA_VALIDITY,
    )
    .unwrap()
}

/// An unencrypted P-256 key made by OpenSSL.
fn openssl_ec_key(dir: &Path, file: &str) {
    openssl_ok(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            file,
        ],
        None,
    );
}

fn issue_for(ca: &BankCa, login: &Login) -> Certificate {
    let key = PrivateKey::generate();
    let csr = pki::build_csr(&key, login).unwrap();
    let verified = pki::verify_csr(&csr.to_der().unwrap()).unwrap();
    ca.issue_client_certificate(&verified, login, SystemTime::now(), DEFAULT_CLIENT_VALIDITY)
        .unwrap()
}

#[test]
fn openssl_accepts_our_client_certificate_strictly_for_client_auth_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = test_ca();
    fs::write(
        d.join("ca.pem"),
        pki::certificate_to_pem(ca.certificate()).unwrap(),
    )
    .unwrap();
    let cert = issue_for(&ca, &ivan());
    fs::write(
        d.join("client.pem"),
        pki::certificate_to_pem(&cert).unwrap(),
    )
    .unwrap();

    let ok = openssl_ok(
        d,
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslclient",
            "-CAfile",
            "ca.pem",
            "client.pem",
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("client.pem: OK"));
    let server = openssl(
        d,
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-CAfile",
            "ca.pem",
            "client.pem",
        ],
        None,
    );
    assert!(
        !server.status.success(),
        "a client certificate must not pass as a server's"
    );

    // What OpenSSL reads out of it is what the profile says.
    let text = openssl_ok(d, &["x509", "-in", "client.pem", "-noout", "-text"], None).stdout;
    let text = String::from_utf8_lossy(&text);
    for needle in [
        "CA:FALSE",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "TLS Web Client Authentication",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "Subject: CN = ivan",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    let dates = String::from_utf8_lossy(
        &openssl_ok(
            d,
            &["x509", "-in", "client.pem", "-noout", "-enddate"],
            None,
        )
        .stdout,
    )
    .to_string();
    let year_from_now = SystemTime::now() + DEFAULT_CLIENT_VALIDITY;
    assert_eq!(
        pki::not_after(&cert)
            .duration_since(year_from_now)
            .unwrap_or_default()
            .as_secs(),
        0
    );
    assert!(dates.starts_with("notAfter="), "{dates}");

    // The server certificate passes for TLS servers and not for clients.
    let server_key = PrivateKey::generate();
    let server_cert = ca
        .issue_server_certificate(
            &server_key.public_key(),
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
            SystemTime::now(),
            DEFAULT_CLIENT_VALIDITY,
        )
        .unwrap();
    fs::write(
        d.join("server.pem"),
        pki::certificate_to_pem(&server_cert).unwrap(),
    )
    .unwrap();
    openssl_ok(
        d,
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "localhost",
            "-CAfile",
            "ca.pem",
            "server.pem",
        ],
        None,
    );
    openssl_ok(
        d,
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-verify_ip",
            "127.0.0.1",
            "-CAfile",
            "ca.pem",
            "server.pem",
        ],
        None,
    );
    assert!(
        !openssl(
            d,
            &[
                "verify",
                "-purpose",
                "sslclient",
                "-CAfile",
                "ca.pem",
                "server.pem"
            ],
            None
        )
        .status
        .success()
    );
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    // A CA made by OpenSSL, with the same name as ours: only the signature tells them apart.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ours = test_ca();
    openssl_ec_key(d, "ca.key");
    openssl_ok(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/C=UA/O=Tresor Test Bank, PJSC/CN=Tresor Test Bank CA",
            "-days",
            "30",
            "-out",
            "ca.pem",
        ],
        None,
    );
    openssl_ec_key(d, "c.key");
    openssl_ok(
        d,
        &[
            "req", "-new", "-key", "c.key", "-subj", "/CN=ivan", "-out", "c.csr",
        ],
        None,
    );
    fs::write(d.join("ext.cnf"), "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl_ok(
        d,
        &[
            "x509", "-req", "-in", "c.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "30",
            "-extfile", "ext.cnf", "-outform", "DER", "-out", "c.der",
        ],
        None,
    );
    let cert = Certificate::from_der(&fs::read(d.join("c.der")).unwrap()).unwrap();
    assert_eq!(
        pki::validate_client_certificate(
            &cert,
            ours.certificate(),
            &ivan(),
            SystemTime::now(),
            &NoRevocationList
        )
        .unwrap_err(),
        CertError::NotIssuedByBank
    );
    // The same certificate is fine against the CA that issued it.
    let theirs = pki::certificate_from_pem(&fs::read(d.join("ca.pem")).unwrap()).unwrap();
    pki::validate_client_certificate(
        &cert,
        &theirs,
        &ivan(),
        SystemTime::now(),
        &NoRevocationList,
    )
    .unwrap();
}

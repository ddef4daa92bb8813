//! Bad input gets its specific error and never a panic: broken PEM, wrong labels, random DER,
//! a KDF bomb, a forged CSR, certificates from another CA, expired, or for another login;
//! and random bytes thrown at every parser.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use tresor_core::keyfile::{self, KdfLimits, KeyFileError, PrivateKey};
use tresor_core::login::Login;
use tresor_core::pki::{
    self, BankCa, CertError, DEFAULT_CA_VALIDITY, DEFAULT_CLIENT_VALIDITY, NoRevocationList,
    PkiError,
};
use tresor_core::secret::Password;
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::{Decode as _, Encode as _};

const PW: &str = "bad input password";

fn open(pem: &[u8]) -> Result<PrivateKey, KeyFileError> {
    PrivateKey::from_encrypted_pem(pem, &Password::from(PW), &KdfLimits::DEFAULT)
}

/// A valid key file with a cheap KDF, so that many variants can be tried quickly.
fn cheap_key_file() -> String {
    PrivateKey::generate()
        .to_encrypted_pem_with(&Password::from(PW), 10, 8, 1)
        .unwrap()
        .to_string()
}

#[test]
fn broken_key_files() {
    let good = cheap_key_file();
    assert!(open(good.as_bytes()).is_ok());

    // Truncated: the PEM's end line is gone, or the base64 ends early.
    let truncated = &good[..good.len() / 2];
    assert!(matches!(
        open(truncated.as_bytes()),
        Err(KeyFileError::NotAKeyFile(_))
    ));
    let lines: Vec<&str> = good.lines().collect();
    let short = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[lines.len() - 1]);
    assert!(matches!(
        open(short.as_bytes()),
        Err(KeyFileError::NotAKeyFile(_))
    ));

    // Garbled base64.
    let garbled = good.replacen(&lines[2][..8], "!!!!????", 1);
    assert!(matches!(
        open(garbled.as_bytes()),
        Err(KeyFileError::NotAKeyFile(_))
    ));

    // Wrong label.
    let relabelled = good.replace("ENCRYPTED PRIVATE KEY", "CERTIFICATE");
    let err = open(relabelled.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, KeyFileError::NotAKeyFile(m) if m.contains("CERTIFICATE")),
        "{err}"
    );

    // Random DER under the right label.
    let random = encode(&[0x30, 0x03, 0x02, 0x01, 0x05]);
    assert!(matches!(
        open(random.as_bytes()),
        Err(KeyFileError::NotAKeyFile(_))
    ));

    // Not PEM at all, and empty.
    assert!(matches!(
        open(b"\x00\x01binary"),
        Err(KeyFileError::NotAKeyFile(_))
    ));
    assert!(matches!(open(b""), Err(KeyFileError::NotAKeyFile(_))));

    // A flipped bit in the ciphertext: CBC has no integrity, so this must be caught by the
    // padding, the DER, or the embedded public key.
    let mut der = decode(&good);
    let n = der.len();
    der[n - 20] ^= 0x40;
    let flipped = encode(&der);
    assert!(matches!(
        open(flipped.as_bytes()),
        Err(KeyFileError::WrongPasswordOrCorrupted)
    ));
}

/// An encrypted key file whose scrypt parameters are `n`, `r`, `p`.
fn scrypt_file(n: u64, r: u16, p: u16) -> String {
    use pkcs5::pbes2::{EncryptionScheme, Kdf, Parameters, ScryptParams};
    let params = Parameters {
        kdf: Kdf::Scrypt(ScryptParams {
            salt: [7u8; 16].as_slice().try_into().unwrap(),
            cost_parameter: n,
            block_size: r,
            parallelization: p,
            key_length: None,
        }),
        encryption: EncryptionScheme::Aes256Cbc { iv: [1; 16] },
    };
    let ciphertext = [0u8; 144];
    let epki = pkcs8::EncryptedPrivateKeyInfoRef {
        encryption_algorithm: params.into(),
        encrypted_data: pkcs8::der::asn1::OctetStringRef::new(&ciphertext).unwrap(),
    };
    encode(&pkcs8::der::Encode::to_der(&epki).unwrap())
}

#[test]
fn kdf_bombs_are_refused_before_deriving() {
    // Each would need terabytes, gigabytes or hours if derived; each returns at once.
    for (n, r, p, what) in [
        (1u64 << 40, 8, 1, "memory"),
        (1 << 20, 8, 1, "memory"),    // 1 GiB
        (1 << 14, 8, 16_000, "work"), // 16 MiB, but hours of work
        (1 << 14, 4096, 1, "memory"), // r inflates memory too
    ] {
        let pem = scrypt_file(n, r, p);
        let err = open(pem.as_bytes()).unwrap_err();
        assert!(
            matches!(err, KeyFileError::KdfTooExpensive(_)),
            "N={n} r={r} p={p} ({what}): {err}"
        );
    }
    // Parameters scrypt itself rejects are a broken file, not an expensive one.
    for (n, r, p) in [(1000u64, 8u16, 1u16), (0, 8, 1), (1024, 0, 1), (1024, 8, 0)] {
        let err = open(scrypt_file(n, r, p).as_bytes()).unwrap_err();
        assert!(
            matches!(err, KeyFileError::NotAKeyFile(_)),
            "N={n} r={r} p={p}: {err}"
        );
    }
    // Within the caps, the KDF runs and the (garbage) ciphertext is reported as such.
    let err = open(scrypt_file(1 << 10, 8, 1).as_bytes()).unwrap_err();
    assert!(
        matches!(err, KeyFileError::WrongPasswordOrCorrupted),
        "{err}"
    );
}

/// `der` as PEM under `label`.
fn pem(label: &str, der: &[u8]) -> String {
    tresor_core::x509_cert::der::pem::encode_string(
        label,
        tresor_core::x509_cert::der::pem::LineEnding::LF,
        der,
    )
    .unwrap()
}

/// `der` as an encrypted-key PEM file.
fn encode(der: &[u8]) -> String {
    pem("ENCRYPTED PRIVATE KEY", der)
}

/// The DER inside a PEM file.
fn decode(pem: &str) -> Vec<u8> {
    tresor_core::x509_cert::der::pem::decode_vec(pem.as_bytes())
        .unwrap()
        .1
}

#[test]
fn certificates_that_must_not_pass() {
    let now = SystemTime::now();
    let ca = BankCa::generate("Bank CA", "Bank", "UA", now, DEFAULT_CA_VALIDITY).unwrap();
    let other_ca = BankCa::generate("Other CA", "Other", "UA", now, DEFAULT_CA_VALIDITY).unwrap();
    let ivan = Login::new("ivan").unwrap();
    let key = PrivateKey::generate();
    let csr = pki::verify_csr(&pki::build_csr(&key, &ivan).unwrap().to_der().unwrap()).unwrap();

    let from_other = other_ca
        .issue_client_certificate(&csr, &ivan, now, DEFAULT_CLIENT_VALIDITY)
        .unwrap();
    let check = |cert: &Certificate, who: &Login, at: SystemTime| {
        pki::validate_client_certificate(cert, ca.certificate(), who, at, &NoRevocationList)
    };
    assert_eq!(
        check(&from_other, &ivan, now).unwrap_err(),
        CertError::NotIssuedByBank
    );

    // Issued a year and a day ago for a year: expired now.
    let old = now - DEFAULT_CLIENT_VALIDITY - Duration::from_secs(86_400);
    let expired = ca
        .issue_client_certificate(&csr, &ivan, old, DEFAULT_CLIENT_VALIDITY)
        .unwrap();
    assert_eq!(check(&expired, &ivan, now).unwrap_err(), CertError::Expired);

    let good = ca
        .issue_client_certificate(&csr, &ivan, now, DEFAULT_CLIENT_VALIDITY)
        .unwrap();
    let olena = Login::new("olena").unwrap();
    assert!(matches!(
        check(&good, &olena, now).unwrap_err(),
        CertError::WrongLogin { .. }
    ));
    assert!(check(&good, &ivan, now).is_ok());

    // A tampered certificate: one bit of the subject's key changed.
    let mut der = good.to_der().unwrap();
    let spki = good
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    let at = der
        .windows(spki.len())
        .position(|w| w == spki.as_slice())
        .unwrap();
    der[at + spki.len() - 5] ^= 0x01;
    let tampered = Certificate::from_der(&der).unwrap();
    assert_eq!(
        check(&tampered, &ivan, now).unwrap_err(),
        CertError::NotIssuedByBank
    );
}

#[test]
fn forged_csr() {
    let ivan = Login::new("ivan").unwrap();
    let key = PrivateKey::generate();
    let mut csr = pki::build_csr(&key, &ivan).unwrap();
    // Keep the signature, change the subject: the signature no longer covers it.
    let forged_subject = pki::build_csr(&key, &Login::new("admin").unwrap()).unwrap();
    csr.info.subject = forged_subject.info.subject;
    assert!(matches!(
        pki::verify_csr(&csr.to_der().unwrap()),
        Err(PkiError::BadRequestSignature)
    ));
    assert!(matches!(
        pki::verify_csr(b"garbage"),
        Err(PkiError::Malformed { .. })
    ));
    assert!(matches!(
        pki::verify_csr_pem(b"-----BEGIN X-----\nAA==\n-----END X-----\n"),
        Err(PkiError::Malformed { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = open(&bytes);
        let _ = keyfile::inspect(&bytes);
        let _ = pki::verify_csr(&bytes);
        let _ = pki::verify_csr_pem(&bytes);
        let _ = pki::certificate_from_pem(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Login::new(text);
        }
        if let Ok(cert) = Certificate::from_der(&bytes) {
            let _ = pki::validate_client_certificate(
                &cert, &cert, &Login::new("ivan").unwrap(), SystemTime::now(), &NoRevocationList);
        }
    }

    #[test]
    fn random_bytes_in_pem_armour_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        for label in ["ENCRYPTED PRIVATE KEY", "CERTIFICATE", "CERTIFICATE REQUEST"] {
            let armoured = pem(label, &bytes);
            prop_assert!(open(armoured.as_bytes()).is_err());
            prop_assert!(pki::verify_csr_pem(armoured.as_bytes()).is_err());
            let _ = pki::certificate_from_pem(armoured.as_bytes());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn any_single_byte_change_to_a_key_file_is_an_error(
        pos in any::<prop::sample::Index>(), xor in 1u8..=255,
    ) {
        let key = PrivateKey::generate();
        let file = key.to_encrypted_pem_with(&Password::from(PW), 4, 8, 1).unwrap();
        let mut der = decode(&file);
        let i = pos.index(der.len());
        der[i] ^= xor;
        // Structure, KDF parameters, salt and IV changes break the DER or the derived key;
        // a ciphertext change garbles a block of the scalar or the embedded public key,
        // which no longer match.
        prop_assert!(open(encode(&der).as_bytes()).is_err(), "byte {} ^ {:#04x} went unnoticed", i, xor);
    }
}

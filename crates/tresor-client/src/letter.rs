//! The key letter: a one-page PDF the user prints, signs, seals and brings to the bank, so
//! that a security officer can activate the new certificate by typing the key's fingerprint
//! from paper (as EBICS does with its INI letter). It says who, which key (the SHA-256 of its
//! public key, in groups of four hex digits), which certificate, and leaves room for the
//! signature and the company seal.
//!
//! The text is set in DejaVu Sans, embedded by [`crate::pdf`] (its licence is in `assets/`),
//! so that names in Cyrillic print as written.

use std::time::SystemTime;

use tresor_core::pki;
use tresor_core::x509_cert::Certificate;

use crate::error::ClientError;
use crate::pdf::Document;

/// What a key letter says besides the certificate.
#[derive(Debug, Clone, Default)]
pub struct LetterDetails {
    /// The user's full name, if known (else a line to write it on).
    pub name: Option<String>,
    /// The company, if known (else a line to write it on).
    pub company: Option<String>,
}

/// The fields a key letter prints, in order: label and value.
pub fn letter_fields(
    cert: &Certificate,
    details: &LetterDetails,
    date: SystemTime,
) -> Result<Vec<(&'static str, String)>, ClientError> {
    let tbs = cert.tbs_certificate();
    let broken = |e: &dyn std::fmt::Display| ClientError::BrokenKey(e.to_string());
    let bank = tbs
        .issuer()
        .organization()
        .map_err(|e| broken(&e))?
        .or(tbs.issuer().common_name().map_err(|e| broken(&e))?)
        .map(|s| s.value().to_string())
        .unwrap_or_default();
    let login = pki::login_from_name(tbs.subject()).map_err(|e| broken(&e))?;
    let fingerprint = pki::key_fingerprint(cert).map_err(|e| broken(&e))?;
    let blank = || "______________________________".to_string();
    let day = |t: SystemTime| crate::format_time(t).chars().take(10).collect::<String>();
    let validity = tbs.validity();
    Ok(vec![
        ("Bank / Банк", bank),
        ("Login / Логін", login.to_string()),
        ("Name / ПІБ", details.name.clone().unwrap_or_else(blank)),
        (
            "Company / Підприємство",
            details.company.clone().unwrap_or_else(blank),
        ),
        ("Key / Ключ", "ECDSA P-256".into()),
        (
            "Key fingerprint (SHA-256) / Відбиток ключа",
            pki::fingerprint_text(&fingerprint),
        ),
        (
            "Certificate serial / Серійний номер сертифіката",
            pki::serial_hex(tbs.serial_number()),
        ),
        (
            "Valid / Дійсний",
            format!(
                "{} — {}",
                day(validity.not_before.to_system_time()),
                day(validity.not_after.to_system_time())
            ),
        ),
        ("Date / Дата", day(date)),
    ])
}

/// The key letter of `cert`, as PDF bytes.
pub fn key_letter_pdf(
    cert: &Certificate,
    details: &LetterDetails,
    date: SystemTime,
) -> Result<Vec<u8>, ClientError> {
    let fields = letter_fields(cert, details, date)?;
    let failed = |e: &dyn std::fmt::Display| ClientError::Protocol(format!("key letter: {e}"));
    let mut l = Document::start("Tresor key letter", Vec::new()).map_err(|e| failed(&e))?;
    l.new_page().map_err(|e| failed(&e))?;
    l.text("Key letter", 20.0, 20.0, 272.0);
    l.text(
        "Лист-підтвердження ключа електронного підпису",
        13.0,
        20.0,
        264.0,
    );
    l.text(
        "Sign this letter, seal it, and bring it to the bank: it activates your new key.",
        9.5,
        20.0,
        255.0,
    );
    let mut y = 240.0;
    for (label, value) in &fields {
        l.text(label, 8.5, 20.0, y);
        let size = if label.starts_with("Key fingerprint") {
            10.5
        } else {
            12.0
        };
        l.text(value, size, 20.0, y - 6.0);
        y -= 16.0;
    }
    y -= 8.0;
    for label in [
        "Signature of the key holder / Підпис власника ключа",
        "Company seal / Печатка підприємства",
        "Received by the bank (security officer, date) / Прийняв банк",
    ] {
        // A line to sign on.
        l.rule(20.0, 120.0, y);
        l.text(label, 8.5, 20.0, y - 5.0);
        y -= 24.0;
    }
    l.finish().map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_core::testkit::TestBank;

    #[test]
    fn a_letter_is_a_pdf_and_names_the_key() {
        let bank = TestBank::new("Test Bank");
        let cert = bank.client("olena.k").cert;
        let fields = letter_fields(&cert, &LetterDetails::default(), SystemTime::now()).unwrap();
        let fp = pki::fingerprint_text(&pki::key_fingerprint(&cert).unwrap());
        assert!(fields.iter().any(|(_, v)| *v == fp));
        assert!(fields.iter().any(|(_, v)| v == "olena.k"));
        let pdf = key_letter_pdf(&cert, &LetterDetails::default(), SystemTime::now()).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
    }
}

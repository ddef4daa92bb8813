//! Payment orders for Ukrainian business banking: IBANs, tax codes, amounts, and the
//! canonical encoding that a client's signature covers.
//!
//! # Canonical encoding (protocol, version 1)
//!
//! A signature never covers JSON, whose field order and escapes vary between encoders. It
//! covers these bytes, built by [`canonical_encoding`]:
//!
//! ```text
//! "tresor-payment-order-v1" 0x00      domain separation: a signature over an order can
//!                                     never be mistaken for one over anything else
//! order_id        u64 big-endian      the bank's id: a signature is bound to one order
//! version         u32 big-endian      the order's edit version: editing voids the signature
//! payer_iban      u32 BE length, UTF-8
//! payee_name      u32 BE length, UTF-8
//! payee_tax_code  u32 BE length, UTF-8
//! payee_iban      u32 BE length, UTF-8
//! amount          u64 big-endian      minor units (kopiykas)
//! currency        u32 BE length, UTF-8
//! purpose         u32 BE length, UTF-8
//! ```
//!
//! Every variable-length field carries its length, so no two different orders encode to the
//! same bytes. The signature is ECDSA P-256 with SHA-256 over the encoding, DER-encoded.
//! Text is signed exactly as given: [`PaymentOrder::validate`] refuses anything not in
//! canonical form rather than normalizing behind the signer's back.

use core::fmt;

use sha2::{Digest as _, Sha256};
use x509_cert::Certificate;

use crate::PrivateKey;

/// Domain-separation label at the start of the canonical encoding.
pub const ENCODING_LABEL: &[u8] = b"tresor-payment-order-v1\0";

/// Longest payee name, in characters: the limit of Ukraine's interbank payment system (SEP).
pub const MAX_PAYEE_NAME_CHARS: usize = 160;

/// Longest payment purpose, in characters: the SEP limit for the purpose field.
pub const MAX_PURPOSE_CHARS: usize = 420;

/// Why an IBAN, tax code, amount, currency, signature or order was refused. The messages
/// are meant for the person filling in the order.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentError {
    /// Not letters-digits-alphanumerics, e.g. `UA` then two check digits.
    #[error(
        "the {what} {iban:?} is not an IBAN: it must be a country code, two check digits, then letters and digits"
    )]
    IbanFormat {
        /// Which IBAN: "IBAN", "payer IBAN" or "payee IBAN".
        what: &'static str,
        /// The IBAN as given, spaces removed.
        iban: String,
    },
    /// Too short or too long (a Ukrainian IBAN has exactly 29 characters).
    #[error("the {what} {iban} has {len} characters; {expected}")]
    IbanLength {
        /// Which IBAN.
        what: &'static str,
        /// The IBAN, spaces removed.
        iban: String,
        /// Its length.
        len: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// The ISO 13616 check digits do not match: most likely a mistyped character.
    #[error("the {what} {iban} fails its checksum; check it for a mistyped character")]
    IbanChecksum {
        /// Which IBAN.
        what: &'static str,
        /// The IBAN, normalized.
        iban: String,
    },
    /// A bank code (MFO) that is not six digits.
    #[error("the bank code (MFO) {0:?} must be exactly 6 digits")]
    BadBankCode(String),
    /// An account number that is empty, too long or not alphanumeric.
    #[error("the account number {0:?} must be 1 to 19 letters or digits")]
    BadAccountNumber(String),
    /// Payer and payee are the same account.
    #[error("the payer and payee accounts are the same")]
    SameAccount,
    /// Not 8 digits (EDRPOU) or 10 digits (RNOKPP).
    #[error(
        "the tax code {0:?} must be 8 digits (EDRPOU, for a company) or 10 digits (RNOKPP, for a person)"
    )]
    TaxCodeFormat(String),
    /// The tax code's check digit does not match.
    #[error("the tax code {0} fails its checksum; check it for a mistyped digit")]
    TaxCodeChecksum(String),
    /// Not three letters.
    #[error("the currency {0:?} must be a three-letter ISO 4217 code such as UAH")]
    BadCurrency(String),
    /// A field is not written in canonical form, so the signature would not be over what
    /// the bank stores.
    #[error("the {field} must be written as {canonical} (no spaces, upper case)")]
    NotCanonical {
        /// The field.
        field: &'static str,
        /// The same value in canonical form.
        canonical: String,
    },
    /// No amount was given.
    #[error("the amount is empty")]
    AmountEmpty,
    /// A sign in front of the amount.
    #[error("the amount must be written without a sign")]
    AmountSigned,
    /// Not digits with an optional decimal separator.
    #[error("the amount {0:?} is not a number such as 1234.56")]
    AmountFormat(String),
    /// More than two decimal places.
    #[error("the amount {0:?} has more than two decimal places")]
    AmountTooPrecise(String),
    /// Does not fit in a `u64` of minor units.
    #[error("the amount {0:?} is too large")]
    AmountTooLarge(String),
    /// An order for nothing.
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    /// A required text field is empty.
    #[error("the {0} is empty")]
    EmptyField(&'static str),
    /// A text field with leading or trailing whitespace, invisible to the signer.
    #[error("the {0} starts or ends with spaces")]
    Untrimmed(&'static str),
    /// A text field holding control or bidirectional-override characters, which could make
    /// it display differently from what is signed.
    #[error("the {0} contains control characters")]
    ControlCharacter(&'static str),
    /// A text field longer than the SEP allows.
    #[error("the {field} is longer than {max} characters")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its limit, in characters.
        max: usize,
    },
    /// The signature does not verify with the certificate's key for this order.
    #[error("the payment order's signature is not valid")]
    BadSignature,
}

// ---------------------------------------------------------------------------------------------
// IBAN.

/// A syntactically valid IBAN with correct check digits, in canonical form (no spaces,
/// upper case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Iban(String);

impl Iban {
    /// Parses an IBAN as typed: spaces removed, letters upper-cased, then format, length
    /// (15 to 34; exactly 29 for `UA`) and the ISO 13616 mod-97 check.
    pub fn parse(s: &str) -> Result<Iban, PaymentError> {
        let iban: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let b = iban.as_bytes();
        let well_formed = b.len() >= 5
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2..4].iter().all(u8::is_ascii_digit)
            && b[4..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !well_formed {
            return Err(PaymentError::IbanFormat { what: "IBAN", iban });
        }
        let len = b.len();
        if iban.starts_with("UA") {
            if len != 29 {
                return Err(PaymentError::IbanLength {
                    what: "IBAN",
                    iban,
                    len,
                    expected: "a Ukrainian IBAN has 29",
                });
            }
        } else if !(15..=34).contains(&len) {
            return Err(PaymentError::IbanLength {
                what: "IBAN",
                iban,
                len,
                expected: "an IBAN has 15 to 34",
            });
        }
        if mod97(b[4..].iter().chain(&b[..4]).copied()) != 1 {
            return Err(PaymentError::IbanChecksum { what: "IBAN", iban });
        }
        Ok(Iban(iban))
    }

    /// Builds a Ukrainian IBAN from a bank code (MFO, 6 digits) and an account number (1 to
    /// 19 letters or digits, left-padded with zeros), computing the check digits.
    pub fn ua_from_parts(bank_code: &str, account: &str) -> Result<Iban, PaymentError> {
        if bank_code.len() != 6 || !bank_code.bytes().all(|c| c.is_ascii_digit()) {
            return Err(PaymentError::BadBankCode(bank_code.to_owned()));
        }
        if account.is_empty()
            || account.len() > 19
            || !account.bytes().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(PaymentError::BadAccountNumber(account.to_owned()));
        }
        let bban = format!("{bank_code}{:0>19}", account.to_ascii_uppercase());
        let remainder = mod97(bban.bytes().chain(*b"UA00"));
        Iban::parse(&format!("UA{:02}{bban}", 98 - remainder))
    }

    /// The IBAN in canonical form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Tells which IBAN of an order failed.
    fn relabel(e: PaymentError, label: &'static str) -> PaymentError {
        match e {
            PaymentError::IbanFormat { iban, .. } => PaymentError::IbanFormat { what: label, iban },
            PaymentError::IbanLength {
                iban,
                len,
                expected,
                ..
            } => PaymentError::IbanLength {
                what: label,
                iban,
                len,
                expected,
            },
            PaymentError::IbanChecksum { iban, .. } => {
                PaymentError::IbanChecksum { what: label, iban }
            }
            other => other,
        }
    }
}

impl fmt::Display for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ISO 7064 mod 97-10 of upper-case alphanumerics, letters counted as 10 to 35, one digit
/// at a time so that no big integer is needed.
fn mod97(chars: impl Iterator<Item = u8>) -> u32 {
    chars.fold(0u32, |r, c| match c {
        b'0'..=b'9' => (r * 10 + u32::from(c - b'0')) % 97,
        _ => (r * 100 + u32::from(c.wrapping_sub(b'A')) + 10) % 97,
    })
}

// ---------------------------------------------------------------------------------------------
// Tax codes.

/// A payee's tax code with a valid check digit: an 8-digit EDRPOU (a legal entity) or a
/// 10-digit RNOKPP (an individual).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaxCode(String);

impl TaxCode {
    /// Parses a tax code (surrounding whitespace ignored) and checks its check digit.
    pub fn parse(s: &str) -> Result<TaxCode, PaymentError> {
        let code = s.trim();
        let digits: Vec<u32> = code.chars().filter_map(|c| c.to_digit(10)).collect();
        if !code.is_ascii() || digits.len() != code.len() {
            return Err(PaymentError::TaxCodeFormat(code.to_owned()));
        }
        let valid = match digits.len() {
            8 => edrpou_check_ok(&digits),
            10 => rnokpp_check_ok(&digits),
            _ => return Err(PaymentError::TaxCodeFormat(code.to_owned())),
        };
        if !valid {
            return Err(PaymentError::TaxCodeChecksum(code.to_owned()));
        }
        Ok(TaxCode(code.to_owned()))
    }

    /// The code's digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is an EDRPOU (a company) rather than an RNOKPP (a person).
    pub fn is_legal_entity(&self) -> bool {
        self.0.len() == 8
    }
}

impl fmt::Display for TaxCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The State Statistics Service's EDRPOU check: weights 1..7 (or 7,1..6 for codes between
/// 30000000 and 60000000) over the first seven digits, mod 11; a remainder of 10 means a
/// second pass with every weight increased by 2, where a remainder of 10 counts as 0.
fn edrpou_check_ok(d: &[u32]) -> bool {
    let value = d.iter().fold(0u32, |v, &x| v * 10 + x);
    let weights: [u32; 7] = if !(30_000_000..=60_000_000).contains(&value) {
        [1, 2, 3, 4, 5, 6, 7]
    } else {
        [7, 1, 2, 3, 4, 5, 6]
    };
    let weighted = |bonus: u32| -> u32 {
        d.iter()
            .zip(weights)
            .map(|(&x, w)| x * (w + bonus))
            .sum::<u32>()
            % 11
    };
    let mut check = weighted(0);
    if check == 10 {
        check = weighted(2);
        if check == 10 {
            check = 0;
        }
    }
    d.get(7) == Some(&check)
}

/// The State Tax Service's RNOKPP check: weights -1,5,7,9,4,6,10,5,7 over the first nine
/// digits, sum mod 11 mod 10.
fn rnokpp_check_ok(d: &[u32]) -> bool {
    const WEIGHTS: [i32; 9] = [-1, 5, 7, 9, 4, 6, 10, 5, 7];
    let sum: i32 = d
        .iter()
        .zip(WEIGHTS)
        .map(|(&x, w)| x.cast_signed() * w)
        .sum();
    let check = sum.rem_euclid(11) % 10;
    d.get(9).map(|&x| x.cast_signed()) == Some(check)
}

// ---------------------------------------------------------------------------------------------
// Currency and amounts.

/// An ISO 4217 alphabetic currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Currency(String);

impl Currency {
    /// Parses a currency code; surrounding whitespace is ignored and letters are
    /// upper-cased.
    pub fn parse(s: &str) -> Result<Currency, PaymentError> {
        let code = s.trim().to_ascii_uppercase();
        if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_uppercase()) {
            return Err(PaymentError::BadCurrency(s.to_owned()));
        }
        Ok(Currency(code))
    }

    /// The three letters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses an amount into minor units: `1234.56`, `1234.5`, `1234`, or with `,` as the
/// decimal separator as Ukrainian users write it. Surrounding whitespace is ignored; no sign,
/// at most two decimals. Zero is accepted here; [`PaymentOrder::validate`] refuses it.
pub fn parse_amount(s: &str) -> Result<u64, PaymentError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(PaymentError::AmountEmpty);
    }
    if s.starts_with(['-', '+', '−']) {
        return Err(PaymentError::AmountSigned);
    }
    let (whole, frac) = match s.split_once(['.', ',']) {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
    if !all_digits(whole) || frac.is_some_and(|f| !all_digits(f)) {
        return Err(PaymentError::AmountFormat(s.to_owned()));
    }
    let frac = frac.unwrap_or("");
    if frac.len() > 2 {
        return Err(PaymentError::AmountTooPrecise(s.to_owned()));
    }
    let too_large = || PaymentError::AmountTooLarge(s.to_owned());
    let digits_value = |p: &str| {
        p.bytes().try_fold(0u64, |v, c| {
            v.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        })
    };
    let units = digits_value(whole).ok_or_else(too_large)?;
    let cents = digits_value(frac).unwrap_or(0) * if frac.len() == 1 { 10 } else { 1 };
    units
        .checked_mul(100)
        .and_then(|v| v.checked_add(cents))
        .ok_or_else(too_large)
}

/// Formats minor units with two decimals and a `.`: `123456` is `"1234.56"`.
pub fn format_amount(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

// ---------------------------------------------------------------------------------------------
// The order.

/// A payment order as the client submits it and the bank stores it. Plain strings, so it
/// travels as JSON; [`PaymentOrder::validate`] is what makes it trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PaymentOrder {
    /// The account debited, an IBAN in canonical form.
    pub payer_iban: String,
    /// The payee's name as registered.
    pub payee_name: String,
    /// The payee's EDRPOU or RNOKPP.
    pub payee_tax_code: String,
    /// The account credited, an IBAN in canonical form.
    pub payee_iban: String,
    /// The amount in minor units (kopiykas).
    pub amount: u64,
    /// ISO 4217 code, e.g. `UAH`.
    pub currency: String,
    /// The purpose of payment, as the payee's bank will show it.
    pub purpose: String,
}

impl PaymentOrder {
    /// Checks every field. Identifiers must already be in canonical form (see
    /// [`PaymentOrder::normalized`]), because the signature covers the exact strings.
    pub fn validate(&self) -> Result<(), PaymentError> {
        let payer = canonical_iban(&self.payer_iban, "payer IBAN")?;
        let payee = canonical_iban(&self.payee_iban, "payee IBAN")?;
        if payer == payee {
            return Err(PaymentError::SameAccount);
        }
        check_text(&self.payee_name, "payee name", MAX_PAYEE_NAME_CHARS)?;
        let tax = TaxCode::parse(&self.payee_tax_code)?;
        if tax.as_str() != self.payee_tax_code {
            return Err(PaymentError::NotCanonical {
                field: "payee tax code",
                canonical: tax.0,
            });
        }
        if self.amount == 0 {
            return Err(PaymentError::ZeroAmount);
        }
        let currency = Currency::parse(&self.currency)?;
        if currency.as_str() != self.currency {
            return Err(PaymentError::NotCanonical {
                field: "currency",
                canonical: currency.0,
            });
        }
        check_text(&self.purpose, "purpose", MAX_PURPOSE_CHARS)?;
        Ok(())
    }

    /// A copy in canonical form, as every client prepares an order before sending it: the
    /// IBANs, tax code and currency as the user may have typed them (with spaces, in lower
    /// case), and the payee's name and the purpose without the spaces around them. Nothing
    /// inside the text changes: it is signed exactly as the user then sees it.
    pub fn normalized(&self) -> Result<PaymentOrder, PaymentError> {
        Ok(PaymentOrder {
            payee_name: self.payee_name.trim().to_owned(),
            purpose: self.purpose.trim().to_owned(),
            payer_iban: Iban::parse(&self.payer_iban)
                .map_err(|e| Iban::relabel(e, "payer IBAN"))?
                .0,
            payee_iban: Iban::parse(&self.payee_iban)
                .map_err(|e| Iban::relabel(e, "payee IBAN"))?
                .0,
            payee_tax_code: TaxCode::parse(&self.payee_tax_code)?.0,
            currency: Currency::parse(&self.currency)?.0,
            ..self.clone()
        })
    }
}

fn canonical_iban(s: &str, label: &'static str) -> Result<Iban, PaymentError> {
    let iban = Iban::parse(s).map_err(|e| Iban::relabel(e, label))?;
    if iban.as_str() != s {
        return Err(PaymentError::NotCanonical {
            field: label,
            canonical: iban.0,
        });
    }
    Ok(iban)
}

/// Text the signer reads: present, trimmed, within the SEP limit, and free of characters
/// that display as nothing or reorder what is displayed.
fn check_text(s: &str, field: &'static str, max: usize) -> Result<(), PaymentError> {
    if s.is_empty() {
        return Err(PaymentError::EmptyField(field));
    }
    if s.trim() != s {
        return Err(PaymentError::Untrimmed(field));
    }
    let invisible = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    if s.chars().any(invisible) {
        return Err(PaymentError::ControlCharacter(field));
    }
    if s.chars().count() > max {
        return Err(PaymentError::FieldTooLong { field, max });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Signing.

/// The bytes a signature covers (see the module documentation for the layout).
///
/// Only meaningful for an order that passed [`PaymentOrder::validate`], whose fields are
/// far below the 4 GiB a `u32` length can describe.
pub fn canonical_encoding(order_id: u64, version: u32, order: &PaymentOrder) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, s: &str) {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = Vec::with_capacity(
        ENCODING_LABEL.len()
            + 12
            + 8
            + 6 * 4
            + order.payer_iban.len()
            + order.payee_name.len()
            + order.payee_tax_code.len()
            + order.payee_iban.len()
            + order.currency.len()
            + order.purpose.len(),
    );
    out.extend_from_slice(ENCODING_LABEL);
    out.extend_from_slice(&order_id.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    field(&mut out, &order.payer_iban);
    field(&mut out, &order.payee_name);
    field(&mut out, &order.payee_tax_code);
    field(&mut out, &order.payee_iban);
    out.extend_from_slice(&order.amount.to_be_bytes());
    field(&mut out, &order.currency);
    field(&mut out, &order.purpose);
    out
}

/// SHA-256 of the canonical encoding.
pub fn digest(order_id: u64, version: u32, order: &PaymentOrder) -> [u8; 32] {
    Sha256::digest(canonical_encoding(order_id, version, order)).into()
}

/// The first 8 bytes of [`digest`] as `XXXX-XXXX-XXXX-XXXX`: shown beside the order before
/// signing, so the user can compare it with what the bank shows for the stored order.
pub fn short_digest(order_id: u64, version: u32, order: &PaymentOrder) -> String {
    let d = digest(order_id, version, order);
    let mut out = String::with_capacity(19);
    for (i, pair) in d[..8].chunks(2).enumerate() {
        if i > 0 {
            out.push('-');
        }
        for b in pair {
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// One digest for a batch of orders about to be signed together, `XXXX-XXXX-XXXX-XXXX`: the
/// first 8 bytes of SHA-256 over a label and, in id order, each order's id, version and
/// [`digest`]. A script that reviewed a batch passes it back, and the batch is signed only if
/// every order is still the one reviewed.
pub fn batch_digest(orders: &[(u64, u32, &PaymentOrder)]) -> String {
    let mut sorted: Vec<&(u64, u32, &PaymentOrder)> = orders.iter().collect();
    sorted.sort_by_key(|(id, _, _)| *id);
    let mut h = Sha256::new();
    h.update(b"tresor batch of orders v1");
    for (id, version, order) in sorted {
        h.update(id.to_be_bytes());
        h.update(version.to_be_bytes());
        h.update(digest(*id, *version, order));
    }
    let d: [u8; 32] = h.finalize().into();
    d[..8]
        .chunks(2)
        .map(|pair| format!("{:02X}{:02X}", pair[0], pair[1]))
        .collect::<Vec<_>>()
        .join("-")
}

/// Signs an order with the user's key: ECDSA P-256 SHA-256 over [`canonical_encoding`],
/// DER-encoded (deterministic nonces, RFC 6979).
pub fn sign(key: &PrivateKey, order_id: u64, version: u32, order: &PaymentOrder) -> Vec<u8> {
    // A key in memory always signs; only a key outside the process can fail.
    #[allow(clippy::expect_used)]
    sign_with(key, order_id, version, order).expect("an in-memory key signs")
}

/// [`sign`] with a key wherever it lives (a token signs inside itself).
pub fn sign_with(
    key: &dyn crate::signer::KeySigner,
    order_id: u64,
    version: u32,
    order: &PaymentOrder,
) -> Result<Vec<u8>, crate::signer::SignError> {
    key.sign(&canonical_encoding(order_id, version, order))
}

/// Checks an order's signature against the key in `certificate`.
///
/// Only the signature is checked: the caller must already have validated the certificate
/// (issuer, validity, revocation, login) and the order.
pub fn verify(
    certificate: &Certificate,
    order_id: u64,
    version: u32,
    order: &PaymentOrder,
    signature: &[u8],
) -> Result<(), PaymentError> {
    let key = certificate
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .ok_or(PaymentError::BadSignature)?;
    if crate::verify_p256_sha256(
        key,
        &canonical_encoding(order_id, version, order),
        signature,
    ) {
        Ok(())
    } else {
        Err(PaymentError::BadSignature)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {

    #[test]
    fn a_batch_digest_binds_every_order_in_any_order_given() {
        let a = order();
        let mut b = order();
        b.amount += 1;
        let d = batch_digest(&[(1, 1, &a), (2, 1, &b)]);
        assert_eq!(d.len(), 19);
        assert_eq!(
            batch_digest(&[(2, 1, &b), (1, 1, &a)]),
            d,
            "order given does not matter"
        );
        for other in [
            batch_digest(&[(1, 1, &a)]),
            batch_digest(&[(1, 2, &a), (2, 1, &b)]),
            batch_digest(&[(1, 1, &b), (2, 1, &a)]),
            batch_digest(&[(1, 1, &a), (2, 1, &a)]),
        ] {
            assert_ne!(other, d);
        }
    }

    use super::*;
    use crate::Login;
    use crate::pki::{self, BankCa, DEFAULT_CA_VALIDITY, DEFAULT_CLIENT_VALIDITY};
    use der::Encode as _;
    use std::time::SystemTime;

    const UA: &str = "UA213223130000026007233566001";

    fn order() -> PaymentOrder {
        PaymentOrder {
            payer_iban: UA.into(),
            payee_name: "ТОВ \"Ромашка\"".into(),
            payee_tax_code: "14360570".into(),
            payee_iban: Iban::ua_from_parts("305299", "26001234567890").unwrap().0,
            amount: 123_456,
            currency: "UAH".into(),
            purpose: "Оплата за рахунком № 17 від 01.03.2025, у т.ч. ПДВ 20% — 205.76 грн".into(),
        }
    }

    #[test]
    fn valid_ibans() {
        for s in [UA, "GB82WEST12345698765432", "DE89370400440532013000"] {
            assert_eq!(Iban::parse(s).unwrap().as_str(), s);
        }
        // As typed: grouped and in lower case.
        let typed = "ua21 3223 1300 0002 6007 2335 6600 1";
        assert_eq!(Iban::parse(typed).unwrap().to_string(), UA);
        // Norway's 15 characters, the shortest.
        assert!(Iban::parse("NO9386011117947").is_ok());
    }

    #[test]
    fn invalid_ibans() {
        // Each digit flipped in turn fails the checksum.
        for i in 2..UA.len() {
            let mut b = UA.as_bytes().to_vec();
            b[i] = if b[i] == b'9' { b'0' } else { b[i] + 1 };
            let s = String::from_utf8(b).unwrap();
            assert!(
                matches!(Iban::parse(&s), Err(PaymentError::IbanChecksum { .. })),
                "{s}"
            );
        }
        assert!(matches!(
            Iban::parse("GB82WEST12345698765433"),
            Err(PaymentError::IbanChecksum { .. })
        ));
        // Two transposed digits.
        assert!(Iban::parse("DE89370400440532010300").is_err());
        for bad in [
            "",
            "UA",
            "1A21322313",
            "UAX1322313000002600723356600",
            "UA21-3223",
        ] {
            assert!(
                matches!(Iban::parse(bad), Err(PaymentError::IbanFormat { .. })),
                "{bad}"
            );
        }
        // A Ukrainian IBAN must have 29 characters; others 15 to 34.
        assert!(matches!(
            Iban::parse("UA2132231300000260072335660"),
            Err(PaymentError::IbanLength { len: 27, .. })
        ));
        assert!(matches!(
            Iban::parse("NO938601111794"),
            Err(PaymentError::IbanLength { len: 14, .. })
        ));
        assert!(matches!(
            Iban::parse(&format!("GB82{}", "1".repeat(31))),
            Err(PaymentError::IbanLength { len: 35, .. })
        ));
    }

    #[test]
    fn ua_iban_from_bank_code_and_account() {
        assert_eq!(
            Iban::ua_from_parts("322313", "26007233566001")
                .unwrap()
                .as_str(),
            UA
        );
        assert_eq!(
            Iban::ua_from_parts("322313", "0000026007233566001")
                .unwrap()
                .as_str(),
            UA
        );
        for n in 0..50u64 {
            let iban = Iban::ua_from_parts("300528", &format!("2600{n:010}")).unwrap();
            assert_eq!(Iban::parse(iban.as_str()).unwrap(), iban);
        }
        assert!(matches!(
            Iban::ua_from_parts("32231", "1"),
            Err(PaymentError::BadBankCode(_))
        ));
        assert!(matches!(
            Iban::ua_from_parts("322313", ""),
            Err(PaymentError::BadAccountNumber(_))
        ));
        assert!(matches!(
            Iban::ua_from_parts("322313", &"1".repeat(20)),
            Err(PaymentError::BadAccountNumber(_))
        ));
    }

    #[test]
    fn edrpou() {
        // Real companies: the NBU, PrivatBank, Oschadbank, Nova Poshta (30..60 million range).
        for ok in ["00032106", "14360570", "00032129", "31316718", "21560766"] {
            let code = TaxCode::parse(ok).unwrap();
            assert!(code.is_legal_entity(), "{ok}");
        }
        for bad in ["00032107", "14360571", "31316717", "00032120"] {
            assert_eq!(
                TaxCode::parse(bad),
                Err(PaymentError::TaxCodeChecksum(bad.into()))
            );
        }
    }

    #[test]
    fn edrpou_second_pass() {
        // Codes whose first pass leaves 10, checked against the rule written out by hand.
        let mut seen = 0;
        for prefix in 1_000_000u32..1_000_400 {
            let d: Vec<u32> = format!("{prefix:07}")
                .chars()
                .filter_map(|c| c.to_digit(10))
                .collect();
            let first: u32 = d.iter().zip(1..).map(|(x, w)| x * w).sum::<u32>() % 11;
            if first != 10 {
                continue;
            }
            seen += 1;
            let second: u32 = d.iter().zip(3..).map(|(x, w)| x * w).sum::<u32>() % 11;
            let check = if second == 10 { 0 } else { second };
            let code = format!("{prefix:07}{check}");
            assert!(TaxCode::parse(&code).is_ok(), "{code}");
            let wrong = format!("{prefix:07}{}", (check + 1) % 10);
            assert!(TaxCode::parse(&wrong).is_err(), "{wrong}");
        }
        assert!(seen > 10);
    }

    #[test]
    fn rnokpp() {
        // Worked by hand: -3+5+56+36+28+6+0+30+63 = 221 = 20*11 + 1.
        let code = TaxCode::parse("3184710691").unwrap();
        assert!(!code.is_legal_entity());
        assert!(TaxCode::parse("3184710692").is_err());
        // Constructed with the rule: for each prefix, exactly one check digit works.
        for prefix in [123456789u64, 287654321, 300000001, 999999999] {
            let valid: Vec<_> = (0..10)
                .filter(|c| TaxCode::parse(&format!("{prefix}{c}")).is_ok())
                .collect();
            assert_eq!(valid.len(), 1, "{prefix}");
        }
        // 1234567899: -1+10+21+36+20+36+70+40+63 = 295 = 26*11 + 9.
        assert!(TaxCode::parse("1234567899").is_ok());
    }

    #[test]
    fn tax_code_format() {
        for bad in [
            "",
            "1436057",
            "143605701",
            "12345678901",
            "1436057O",
            "+1436057",
            "１４３６０５７０",
        ] {
            assert!(
                matches!(TaxCode::parse(bad), Err(PaymentError::TaxCodeFormat(_))),
                "{bad}"
            );
        }
        assert_eq!(TaxCode::parse(" 14360570 ").unwrap().as_str(), "14360570");
    }

    #[test]
    fn currency() {
        assert_eq!(Currency::parse("UAH").unwrap().as_str(), "UAH");
        assert_eq!(Currency::parse(" eur ").unwrap().to_string(), "EUR");
        for bad in ["", "UA", "UAHH", "U1H", "ГРН"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts() {
        for (s, want) in [
            ("1234.56", 123_456),
            ("1234,56", 123_456),
            ("1234.5", 123_450),
            ("1234,5", 123_450),
            ("1234", 123_400),
            ("0.01", 1),
            ("0", 0),
            (" 7.00 ", 700),
            ("184467440737095516.15", u64::MAX),
        ] {
            assert_eq!(parse_amount(s), Ok(want), "{s}");
        }
        assert_eq!(parse_amount(""), Err(PaymentError::AmountEmpty));
        assert_eq!(parse_amount("  "), Err(PaymentError::AmountEmpty));
        assert_eq!(parse_amount("-5"), Err(PaymentError::AmountSigned));
        assert_eq!(parse_amount("+5"), Err(PaymentError::AmountSigned));
        assert_eq!(
            parse_amount("1.234"),
            Err(PaymentError::AmountTooPrecise("1.234".into()))
        );
        for over in [
            "184467440737095516.16",
            "99999999999999999999",
            "184467440737095517",
        ] {
            assert!(
                matches!(parse_amount(over), Err(PaymentError::AmountTooLarge(_))),
                "{over}"
            );
        }
        for bad in [".5", "5.", "1.2.3", "1,2.3", "1 000", "1e3", "12a", "١٢"] {
            assert!(
                matches!(parse_amount(bad), Err(PaymentError::AmountFormat(_))),
                "{bad}"
            );
        }
        assert_eq!(format_amount(123_456), "1234.56");
        assert_eq!(format_amount(5), "0.05");
        assert_eq!(format_amount(0), "0.00");
        assert_eq!(format_amount(u64::MAX), "184467440737095516.15");
    }

    proptest::proptest! {
        #[test]
        fn amount_round_trip(x: u64) {
            proptest::prop_assert_eq!(parse_amount(&format_amount(x)), Ok(x));
        }
    }

    #[test]
    fn a_good_order_validates() {
        order().validate().unwrap();
        assert_eq!(order().normalized().unwrap(), order());
    }

    fn refused(change: impl FnOnce(&mut PaymentOrder)) -> PaymentError {
        let mut o = order();
        change(&mut o);
        o.validate().unwrap_err()
    }

    #[test]
    fn validate_refusals() {
        assert_eq!(
            refused(|o| o.payer_iban = "ua21 3223 1300 0002 6007 2335 6600 1".into()),
            PaymentError::NotCanonical {
                field: "payer IBAN",
                canonical: UA.into()
            }
        );
        let bad_payee = refused(|o| o.payee_iban = "UA213223130000026007233566002".into());
        assert_eq!(
            bad_payee.to_string(),
            "the payee IBAN UA213223130000026007233566002 fails its checksum; \
             check it for a mistyped character"
        );
        assert_eq!(
            refused(|o| o.payee_iban = o.payer_iban.clone()),
            PaymentError::SameAccount
        );
        assert_eq!(
            refused(|o| o.payee_tax_code = "14360571".into()),
            PaymentError::TaxCodeChecksum("14360571".into())
        );
        assert!(matches!(
            refused(|o| o.payee_tax_code = " 14360570".into()),
            PaymentError::NotCanonical {
                field: "payee tax code",
                ..
            }
        ));
        assert_eq!(refused(|o| o.amount = 0), PaymentError::ZeroAmount);
        assert!(matches!(
            refused(|o| o.currency = "uah".into()),
            PaymentError::NotCanonical {
                field: "currency",
                ..
            }
        ));
        assert!(matches!(
            refused(|o| o.currency = "UA".into()),
            PaymentError::BadCurrency(_)
        ));
        assert_eq!(
            refused(|o| o.payee_name.clear()),
            PaymentError::EmptyField("payee name")
        );
        assert_eq!(
            refused(|o| o.purpose = " Оплата".into()),
            PaymentError::Untrimmed("purpose")
        );
        assert_eq!(
            refused(|o| o.payee_name = "ТОВ\n\"Ромашка\"".into()),
            PaymentError::ControlCharacter("payee name")
        );
        assert_eq!(
            refused(|o| o.purpose = "Оплата \u{202E}анруп".into()),
            PaymentError::ControlCharacter("purpose")
        );
        assert_eq!(
            refused(|o| o.payee_name = "Я".repeat(161)),
            PaymentError::FieldTooLong {
                field: "payee name",
                max: 160
            }
        );
        assert_eq!(
            refused(|o| o.purpose = "ї".repeat(421)),
            PaymentError::FieldTooLong {
                field: "purpose",
                max: 420
            }
        );
        // The limits are characters, not bytes.
        let mut o = order();
        o.payee_name = "Я".repeat(160);
        o.purpose = "ї".repeat(420);
        o.validate().unwrap();
    }

    #[test]
    fn normalized_fixes_identifiers_and_outer_spaces_only() {
        let mut o = order();
        o.payer_iban = "ua21 3223 1300 0002 6007 2335 6600 1".into();
        o.payee_tax_code = " 14360570 ".into();
        o.currency = "uah".into();
        o.payee_name = format!("  {} \n", order().payee_name);
        o.purpose = format!("\t{} ", order().purpose);
        assert_eq!(o.normalized().unwrap(), order());
        // Inside the text nothing changes: validation still judges it.
        o.purpose = "two  spaces\u{200B}".into();
        assert_eq!(o.normalized().unwrap().purpose, o.purpose);
        o.payee_iban = "UA00".into();
        assert!(matches!(
            o.normalized(),
            Err(PaymentError::IbanFormat {
                what: "payee IBAN",
                ..
            })
        ));
    }

    #[test]
    fn canonical_encoding_layout() {
        let o = PaymentOrder {
            payer_iban: "A".into(),
            payee_name: "BC".into(),
            payee_tax_code: "".into(),
            payee_iban: "D".into(),
            amount: 0x0102,
            currency: "UAH".into(),
            purpose: "E".into(),
        };
        let mut want = b"tresor-payment-order-v1\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
        want.extend_from_slice(&[0, 0, 0, 3]);
        want.extend_from_slice(b"\0\0\0\x01A\0\0\0\x02BC\0\0\0\0\0\0\0\x01D");
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]);
        want.extend_from_slice(b"\0\0\0\x03UAH\0\0\0\x01E");
        assert_eq!(canonical_encoding(7, 3, &o), want);

        // Moving a character between adjacent fields changes the encoding.
        let mut shifted = o.clone();
        shifted.payer_iban = "AB".into();
        shifted.payee_name = "C".into();
        assert_ne!(canonical_encoding(7, 3, &shifted), want);
    }

    #[test]
    fn short_digest_format() {
        let d = digest(1, 1, &order());
        let s = short_digest(1, 1, &order());
        assert_eq!(s.len(), 19);
        let hex: String = d[..8].iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(s.replace('-', ""), hex);
        assert_eq!(s.matches('-').count(), 3);
        assert_ne!(short_digest(1, 2, &order()), s);
    }

    fn client(ca: &BankCa, who: &str) -> (PrivateKey, Certificate) {
        let key = PrivateKey::generate();
        let login = Login::new(who).unwrap();
        let csr = pki::build_csr(&key, &login).unwrap();
        let verified = pki::verify_csr(&csr.to_der().unwrap()).unwrap();
        let cert = ca
            .issue_client_certificate(
                &verified,
                &login,
                SystemTime::now(),
                DEFAULT_CLIENT_VALIDITY,
            )
            .unwrap();
        (key, cert)
    }

    #[test]
    fn sign_and_verify() {
        let ca = BankCa::generate(
            "Test CA",
            "Test Bank",
            "UA",
            SystemTime::now(),
            DEFAULT_CA_VALIDITY,
        )
        .unwrap();
        let (key, cert) = client(&ca, "ivan");
        let o = order();
        let sig = sign(&key, 42, 1, &o);
        verify(&cert, 42, 1, &o, &sig).unwrap();

        type Tamper = fn(&mut PaymentOrder);
        let tampered: [(&str, Tamper); 6] = [
            ("amount", |o| o.amount += 1),
            ("payee IBAN", |o| o.payee_iban = UA.replace("UA21", "UA22")),
            ("payee name", |o| o.payee_name.push('!')),
            ("payer IBAN", |o| {
                o.payer_iban = "DE89370400440532013000".into()
            }),
            ("purpose", |o| o.purpose.push('.')),
            ("tax code", |o| o.payee_tax_code = "00032106".into()),
        ];
        for (what, change) in tampered {
            let mut t = o.clone();
            change(&mut t);
            assert_eq!(
                verify(&cert, 42, 1, &t, &sig),
                Err(PaymentError::BadSignature),
                "{what}"
            );
        }
        assert_eq!(
            verify(&cert, 43, 1, &o, &sig),
            Err(PaymentError::BadSignature)
        );
        assert_eq!(
            verify(&cert, 42, 2, &o, &sig),
            Err(PaymentError::BadSignature)
        );
        assert_eq!(
            verify(&cert, 42, 1, &o, &[]),
            Err(PaymentError::BadSignature)
        );
        let mut flipped = sig.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            verify(&cert, 42, 1, &o, &flipped),
            Err(PaymentError::BadSignature)
        );

        // Another user's key, checked against this user's certificate.
        let (other_key, other_cert) = client(&ca, "petro");
        let other_sig = sign(&other_key, 42, 1, &o);
        assert_eq!(
            verify(&cert, 42, 1, &o, &other_sig),
            Err(PaymentError::BadSignature)
        );
        verify(&other_cert, 42, 1, &o, &other_sig).unwrap();
    }
}

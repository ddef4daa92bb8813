//! One-time codes for the second login factor: RFC 6238 TOTP over RFC 4226 HOTP.
//!
//! Tresor uses what every authenticator app understands (Google Authenticator, Aegis,
//! FreeOTP, 1Password): HMAC-SHA-1, six digits, a 30-second step, a 160-bit secret shown as
//! unpadded base32 in an `otpauth://` URI. SHA-256 and SHA-512 exist only for [`hotp`] and
//! the RFC's test vectors: apps silently ignore the `algorithm` parameter often enough that a
//! secret enrolled with them would produce wrong codes.
//!
//! [`verify`] accepts the code of the current step and of one step either side (clock skew
//! of up to 30 seconds, and the time it takes to type), and accepts each step at most once,
//! so a code seen over a shoulder or in a log cannot be replayed.

use core::fmt;

use data_encoding::BASE32_NOPAD;
use ring::hmac;
use zeroize::Zeroizing;

/// Length of a time step, in seconds (RFC 6238's default, and what apps assume).
pub const STEP_SECONDS: u64 = 30;

/// Digits in a Tresor code (what apps show by default).
pub const DIGITS: u32 = 6;

/// Length of a generated secret: 160 bits, RFC 4226's recommendation and SHA-1's block output.
pub const SECRET_LEN: usize = 20;

/// Shortest secret accepted: RFC 4226 requires at least 128 bits.
const MIN_SECRET_LEN: usize = 16;

/// Longest secret accepted: one HMAC-SHA-512 block's worth; longer keys are hashed anyway.
const MAX_SECRET_LEN: usize = 64;

/// The HMAC behind [`hotp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA-1: the only one authenticator apps reliably support.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    fn ring(self) -> hmac::Algorithm {
        match self {
            Self::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

/// Why a one-time code or a secret was refused.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TotpError {
    /// Not exactly six ASCII digits.
    #[error("the one-time code must be exactly {DIGITS} digits")]
    Malformed,
    /// Well-formed, but not the code for now (or 30 seconds either side).
    #[error("the one-time code is wrong or has expired; check the authenticator app's clock")]
    Wrong,
    /// The code was right, but it (or a later one) has already been used.
    #[error("this one-time code has already been used; wait for the next one")]
    Reused,
    /// The secret is not base32, or not 16 to 64 bytes long.
    #[error("the authenticator secret is not valid base32 of 16 to 64 bytes")]
    BadSecret,
}

/// RFC 4226 HOTP: HMAC of the big-endian counter, dynamic truncation to 31 bits, then the
/// last `digits` decimal digits. With `digits` of 10 or more the 31-bit value is returned
/// whole, since it has at most 10 digits.
pub fn hotp(key: &[u8], counter: u64, digits: u32, algorithm: Algorithm) -> u32 {
    let key = hmac::Key::new(algorithm.ring(), key);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // Every ring HMAC output is at least 20 bytes, so the offset (at most 15) plus 4 fits.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let word = [
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ];
    let truncated = u32::from_be_bytes(word) & 0x7fff_ffff;
    match 10u32.checked_pow(digits) {
        Some(modulus) => truncated % modulus,
        None => truncated,
    }
}

/// A TOTP shared secret. The bytes are wiped on drop and never printed by `Debug`: whoever
/// holds them can produce the user's second factor.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    /// A new random secret of [`SECRET_LEN`] bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        crate::fill_random(&mut bytes);
        Self(bytes)
    }

    /// Takes a copy of raw secret bytes (16 to 64 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
            return Err(TotpError::BadSecret);
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// The raw secret, for storage (encrypted) on the server.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as apps take it when typed in: RFC 4648 base32, upper case, no padding.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE32_NOPAD.encode(&self.0))
    }

    /// Parses base32 as people copy it: any case, with spaces, with or without `=` padding.
    pub fn from_base32(s: &str) -> Result<Self, TotpError> {
        let mut clean = Zeroizing::new(String::with_capacity(s.len()));
        for c in s.chars().filter(|c| !c.is_whitespace()) {
            clean.push(c.to_ascii_uppercase());
        }
        let unpadded = clean.trim_end_matches('=');
        let bytes = Zeroizing::new(
            BASE32_NOPAD
                .decode(unpadded.as_bytes())
                .map_err(|_| TotpError::BadSecret)?,
        );
        Self::from_bytes(&bytes)
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// The RFC 6238 time step that `unix_seconds` falls in.
pub fn time_step(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// The six-digit HMAC-SHA-1 code for `step`, as apps compute it.
pub fn code_at(secret: &TotpSecret, step: u64) -> u32 {
    hotp(secret.as_bytes(), step, DIGITS, Algorithm::Sha1)
}

/// A code as apps show it, with leading zeros kept (`"012345"`).
pub fn format_code(code: u32) -> String {
    format!("{code:06}")
}

/// Checks `code` at `unix_seconds`, accepting steps t-1, t and t+1, and returns the step it
/// matched, which the caller stores as the new `last_used_step`.
///
/// A step at or before `last_used_step` is refused with [`TotpError::Reused`]: each code
/// works once, and once a code is used, older ones still inside the window do not work
/// either. All three candidates are computed and compared without data-dependent branches,
/// so the time taken does not tell which digits were right.
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    unix_seconds: u64,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    let given: [u8; DIGITS as usize] = code
        .as_bytes()
        .try_into()
        .map_err(|_| TotpError::Malformed)?;
    if !given.iter().all(u8::is_ascii_digit) {
        return Err(TotpError::Malformed);
    }
    let now = time_step(unix_seconds);
    let candidates = [now.checked_sub(1), Some(now), now.checked_add(1)];
    let mut fresh = None;
    let mut stale = false;
    for step in candidates.into_iter().flatten() {
        let expected = format_code(code_at(secret, step));
        if !digits_equal(expected.as_bytes(), &given) {
            continue;
        }
        if last_used_step.is_some_and(|last| step <= last) {
            stale = true;
        } else if fresh.is_none() {
            // The earliest fresh step: it burns as few of the user's next codes as possible.
            fresh = Some(step);
        }
    }
    match (fresh, stale) {
        (Some(step), _) => Ok(step),
        (None, true) => Err(TotpError::Reused),
        (None, false) => Err(TotpError::Wrong),
    }
}

/// Equality of two short strings without an early exit. (ring's `constant_time` module is
/// deprecated, and a dependency is not worth six bytes.)
fn digits_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}

/// The enrolment URI apps read from a QR code (the Google Authenticator "Key Uri Format"):
/// `otpauth://totp/{issuer}:{account}?secret=…&issuer={issuer}&algorithm=SHA1&digits=6&period=30`,
/// with issuer and account percent-encoded.
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        account = percent_encode(account),
        secret = secret.to_base32().as_str(),
    )
}

/// RFC 3986 percent-encoding: everything but the unreserved characters, byte by byte of the
/// UTF-8, so a `:` `&` `?` or space in a name cannot change the URI's structure.
fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // RFC 6238 Appendix B seeds: the ASCII digits repeated to the hash's output length.
    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 6238 Appendix B: (time, algorithm, 8-digit TOTP).
    const RFC6238: &[(u64, Algorithm, u32)] = &[
        (59, Algorithm::Sha1, 94287082),
        (59, Algorithm::Sha256, 46119246),
        (59, Algorithm::Sha512, 90693936),
        (1111111109, Algorithm::Sha1, 7081804),
        (1111111109, Algorithm::Sha256, 68084774),
        (1111111109, Algorithm::Sha512, 25091201),
        (1111111111, Algorithm::Sha1, 14050471),
        (1111111111, Algorithm::Sha256, 67062674),
        (1111111111, Algorithm::Sha512, 99943326),
        (1234567890, Algorithm::Sha1, 89005924),
        (1234567890, Algorithm::Sha256, 91819424),
        (1234567890, Algorithm::Sha512, 93441116),
        (2000000000, Algorithm::Sha1, 69279037),
        (2000000000, Algorithm::Sha256, 90698825),
        (2000000000, Algorithm::Sha512, 38618901),
        (20000000000, Algorithm::Sha1, 65353130),
        (20000000000, Algorithm::Sha256, 77737706),
        (20000000000, Algorithm::Sha512, 47863826),
    ];

    /// RFC 4226 Appendix D: HOTP of [`SEED20`] for counters 0 to 9.
    const RFC4226: [u32; 10] = [
        755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
    ];

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(SEED20).unwrap()
    }

    #[test]
    fn rfc6238_appendix_b() {
        for &(t, alg, want) in RFC6238 {
            let seed = match alg {
                Algorithm::Sha1 => SEED20,
                Algorithm::Sha256 => SEED32,
                Algorithm::Sha512 => SEED64,
            };
            assert_eq!(hotp(seed, time_step(t), 8, alg), want, "t={t} {alg:?}");
        }
    }

    #[test]
    fn rfc4226_appendix_d() {
        for (counter, want) in (0u64..).zip(RFC4226) {
            assert_eq!(hotp(SEED20, counter, 6, Algorithm::Sha1), want);
        }
    }

    #[test]
    fn six_digit_code_is_the_rfc_code_truncated() {
        // 94287082 at t=59 (8 digits) is 287082 in six.
        assert_eq!(code_at(&rfc_secret(), time_step(59)), 287082);
        assert_eq!(format_code(7081804 % 1_000_000), "081804");
        assert_eq!(format_code(42), "000042");
    }

    #[test]
    fn window_is_one_step_either_side() {
        let s = rfc_secret();
        let t = 1_111_111_111;
        let step = time_step(t);
        for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = format_code(code_at(&s, step.checked_add_signed(offset).unwrap()));
            let got = verify(&s, &code, t, None);
            if ok {
                assert_eq!(got, Ok(step.checked_add_signed(offset).unwrap()));
            } else {
                assert_eq!(got, Err(TotpError::Wrong), "offset {offset}");
            }
        }
    }

    #[test]
    fn each_code_is_accepted_once() {
        let s = rfc_secret();
        let t = 1_234_567_890;
        let code = format_code(code_at(&s, time_step(t)));
        let used = verify(&s, &code, t, None).unwrap();
        assert_eq!(verify(&s, &code, t, Some(used)), Err(TotpError::Reused));
        // Still refused 30 seconds later, while it is inside the window as t-1.
        assert_eq!(
            verify(&s, &code, t + STEP_SECONDS, Some(used)),
            Err(TotpError::Reused)
        );
        // An older code still in the window is refused once a newer one was used.
        let previous = format_code(code_at(&s, time_step(t) - 1));
        assert_eq!(verify(&s, &previous, t, Some(used)), Err(TotpError::Reused));
        // The next step's code works.
        let next = format_code(code_at(&s, time_step(t) + 1));
        assert_eq!(verify(&s, &next, t, Some(used)), Ok(used + 1));
    }

    #[test]
    fn step_zero_has_no_previous_step() {
        let s = rfc_secret();
        let code = format_code(code_at(&s, 0));
        assert_eq!(verify(&s, &code, 0, None), Ok(0));
    }

    #[test]
    fn malformed_codes() {
        let s = rfc_secret();
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            " 123456",
            "123 456",
            "１２３４５６",
            "-12345",
        ] {
            assert_eq!(
                verify(&s, bad, 59, None),
                Err(TotpError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn base32_round_trip_and_lenient_parsing() {
        let s = TotpSecret::generate();
        assert_eq!(s.as_bytes().len(), SECRET_LEN);
        let b32 = s.to_base32();
        assert_eq!(b32.len(), 32);
        assert!(!b32.contains('='));
        assert_eq!(b32.to_uppercase(), *b32);
        assert_eq!(
            TotpSecret::from_base32(&b32).unwrap().as_bytes(),
            s.as_bytes()
        );

        // The RFC seed, as people type it: lower case, grouped, padded.
        let rfc = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(rfc_secret().to_base32().as_str(), rfc);
        let typed = "gezd gnbv gy3t qojq gezd gnbv gy3t qojq";
        assert_eq!(TotpSecret::from_base32(typed).unwrap().as_bytes(), SEED20);
        // 16 bytes need padding in base32; it is optional.
        let sixteen = BASE32_NOPAD.encode(&[7u8; 16]);
        let padded = format!("{sixteen}======");
        assert_eq!(
            TotpSecret::from_base32(&padded).unwrap().as_bytes(),
            [7u8; 16]
        );
    }

    #[test]
    fn bad_secrets() {
        assert_eq!(
            TotpSecret::from_bytes(&[0; 15]).unwrap_err(),
            TotpError::BadSecret
        );
        assert_eq!(
            TotpSecret::from_bytes(&[0; 65]).unwrap_err(),
            TotpError::BadSecret
        );
        assert!(TotpSecret::from_bytes(&[0; 64]).is_ok());
        for bad in [
            "",
            "GEZDGNBVGY3TQOJQ",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1",
            "not base32!",
        ] {
            assert_eq!(
                TotpSecret::from_base32(bad).unwrap_err(),
                TotpError::BadSecret,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = rfc_secret();
        assert_eq!(format!("{s:?}"), "TotpSecret(<redacted>)");
    }

    #[test]
    fn uri_format() {
        assert_eq!(
            otpauth_uri(&rfc_secret(), "Tresor Bank", "ivan.petrenko"),
            "otpauth://totp/Tresor%20Bank:ivan.petrenko?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Tresor%20Bank&algorithm=SHA1&digits=6&period=30"
        );
        // Reserved characters and non-ASCII cannot break the URI's structure.
        assert_eq!(percent_encode("a:b&c?d/e=f"), "a%3Ab%26c%3Fd%2Fe%3Df");
        assert_eq!(
            percent_encode("Трезор"),
            "%D0%A2%D1%80%D0%B5%D0%B7%D0%BE%D1%80"
        );
        assert_eq!(percent_encode("A-z_0.9~"), "A-z_0.9~");
    }
}

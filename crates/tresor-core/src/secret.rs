//! Passwords in memory, and the policies for new ones.

use core::fmt;
use zeroize::Zeroizing;

/// A password or passphrase. The bytes are wiped when it is dropped, and `Debug` never
/// shows them, so a password cannot reach a log by accident.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

/// Shortest key password accepted for a new key, in characters (NIST SP 800-63B's minimum
/// for a memorized secret).
pub const MIN_NEW_KEY_PASSWORD_CHARS: usize = 8;

/// Longest password accepted, in bytes: enough for any passphrase, small enough that a
/// hostile input cannot make the KDF hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password may not protect a new key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordPolicyError {
    /// Fewer than [`MIN_NEW_KEY_PASSWORD_CHARS`] characters.
    #[error("the key password must have at least {MIN_NEW_KEY_PASSWORD_CHARS} characters")]
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("the key password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
}

/// Shortest login password accepted, in characters. Longer than a key password's minimum
/// because a login password is checked online by the server, where it may be sprayed, and it
/// is the first of two factors rather than a key's only protection.
pub const MIN_LOGIN_PASSWORD_CHARS: usize = 12;

/// Common passwords and stems, lower case, one per line (`#` starts a comment).
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// Shortest login that a password may not contain: a one- or two-letter login would forbid
/// ordinary letters.
const MIN_LOGIN_CHARS_TO_CHECK: usize = 3;

/// Why a password may not become a login password. Following NIST SP 800-63B: a minimum
/// length and a blocklist, no composition rules (they push users to `Password1!`).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginPasswordError {
    /// Fewer than [`MIN_LOGIN_PASSWORD_CHARS`] characters.
    #[error(
        "the password must have at least {MIN_LOGIN_PASSWORD_CHARS} characters; a few unrelated words make a good one"
    )]
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// On the list of commonly used passwords, perhaps with digits or symbols appended.
    #[error(
        "this password is too common and among the first an attacker would try; choose another"
    )]
    Common,
    /// Contains the user's login.
    #[error("the password must not contain the login")]
    ContainsLogin,
    /// One character repeated, a short pattern repeated, or a run like `abcdef` or `987654`.
    #[error("the password is a repeated character, a repeated pattern or a simple sequence")]
    Repetitive,
}

impl Password {
    /// Takes ownership of `s`; its buffer is wiped when the password is dropped.
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The password's UTF-8 bytes, as the KDF takes them.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The password as text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks the rules for a password that will protect a new key.
    pub fn check_new_key_password(&self) -> Result<(), PasswordPolicyError> {
        if self.0.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordPolicyError::TooLong);
        }
        if self.0.chars().count() < MIN_NEW_KEY_PASSWORD_CHARS {
            return Err(PasswordPolicyError::TooShort);
        }
        Ok(())
    }

    /// Checks the rules for a new login password of `login`'s user: at least
    /// [`MIN_LOGIN_PASSWORD_CHARS`] characters, at most [`MAX_PASSWORD_BYTES`] bytes, not
    /// repetitive, not a common password (ignoring case and trailing digits and symbols),
    /// and not containing the login.
    pub fn check_new_login_password(&self, login: &crate::Login) -> Result<(), LoginPasswordError> {
        if self.0.len() > MAX_PASSWORD_BYTES {
            return Err(LoginPasswordError::TooLong);
        }
        if self.0.chars().count() < MIN_LOGIN_PASSWORD_CHARS {
            return Err(LoginPasswordError::TooShort);
        }
        let lower = Zeroizing::new(self.0.to_lowercase());
        if is_repetitive(&lower) {
            return Err(LoginPasswordError::Repetitive);
        }
        let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
        if is_common(&lower) || is_common(stem) {
            return Err(LoginPasswordError::Common);
        }
        let login = login.as_str();
        if login.chars().count() >= MIN_LOGIN_CHARS_TO_CHECK && lower.contains(login) {
            return Err(LoginPasswordError::ContainsLogin);
        }
        Ok(())
    }
}

fn is_common(candidate: &str) -> bool {
    !candidate.is_empty()
        && COMMON_PASSWORDS
            .lines()
            .any(|line| !line.starts_with('#') && line == candidate)
}

/// A whole password that is one short unit (up to 4 characters) repeated, or a run in which
/// each character follows the previous one up or down (`abcdef`, `987654`, with `9` `0`
/// wrapping as on a keyboard's number row).
fn is_repetitive(lower: &str) -> bool {
    let chars: Vec<char> = lower.chars().collect();
    let repeats_unit = (1..=4)
        .any(|unit| chars.len() > unit && chars.chunks(unit).all(|c| c == &chars[..c.len()]));
    let runs = |step: fn(char) -> Option<char>| chars.windows(2).all(|w| step(w[0]) == Some(w[1]));
    repeats_unit || runs(next_in_sequence) || runs(previous_in_sequence)
}

fn next_in_sequence(c: char) -> Option<char> {
    match c {
        '9' => Some('0'),
        'z' => Some('a'),
        _ => char::from_u32(u32::from(c) + 1),
    }
}

fn previous_in_sequence(c: char) -> Option<char> {
    match c {
        '0' => Some('9'),
        'a' => Some('z'),
        _ => u32::from(c).checked_sub(1).and_then(char::from_u32),
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self::new(s.to_owned())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Login;

    #[test]
    fn debug_never_shows_the_password() {
        let p = Password::from("correct horse battery staple");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
    }

    #[test]
    fn new_key_password_policy() {
        assert_eq!(
            Password::from("short").check_new_key_password(),
            Err(PasswordPolicyError::TooShort)
        );
        // Counted in characters, not bytes: eight Cyrillic letters are enough.
        assert!(Password::from("пароль12").check_new_key_password().is_ok());
        assert_eq!(
            Password::from("x".repeat(1025).as_str()).check_new_key_password(),
            Err(PasswordPolicyError::TooLong)
        );
    }

    fn login_check(password: &str, login: &str) -> Result<(), LoginPasswordError> {
        Password::from(password).check_new_login_password(&Login::new(login).unwrap())
    }

    #[test]
    fn login_password_length() {
        assert_eq!(
            login_check("violet tram", "ivan"),
            Err(LoginPasswordError::TooShort)
        );
        // Characters, not bytes: eleven Cyrillic letters are too short, twelve are enough.
        assert_eq!(login_check("зелений трам", "ivan"), Ok(()));
        assert_eq!(
            login_check("зелений тра", "ivan"),
            Err(LoginPasswordError::TooShort)
        );
        let long = "violet tram ".repeat(90);
        assert_eq!(login_check(&long, "ivan"), Err(LoginPasswordError::TooLong));
    }

    #[test]
    fn login_password_common() {
        for common in [
            "password1234",
            "Password1234",
            "qwertyuiop12",
            "iloveyou1234",
            "QWERTY123456",
            "1q2w3e4r5t6y",
            "administrator",
            "welcome12345",
            "parol1234567",
            "Tresorbank2024!",
            "tresor123456",
            "passw0rd2024!!",
            "йцукенгшщзхї",
            "correct horse battery staple",
        ] {
            assert_eq!(
                login_check(common, "ivan"),
                Err(LoginPasswordError::Common),
                "{common}"
            );
        }
    }

    #[test]
    fn login_password_with_login() {
        assert_eq!(
            login_check("my name is Ivan.Petrenko", "ivan.petrenko"),
            Err(LoginPasswordError::ContainsLogin)
        );
        // A two-letter login does not forbid its letters.
        assert_eq!(login_check("violet tram to podil", "po"), Ok(()));
    }

    #[test]
    fn login_password_repetitive() {
        for repetitive in [
            "aaaaaaaaaaaa",
            "ЯЯЯЯЯЯЯЯЯЯЯЯ",
            "abcdefghijkl",
            "lkjihgfedcba",
            "123456789012",
            "210987654321",
            "xyzabcdefghi",
            "abcabcabcabc",
            "12341234123412",
            "passpasspass",
        ] {
            assert_eq!(
                login_check(repetitive, "ivan"),
                Err(LoginPasswordError::Repetitive),
                "{repetitive}"
            );
        }
    }

    #[test]
    fn acceptable_passphrases() {
        for ok in [
            "violet tram runs to Podil",
            "зелений трамвай їде на Поділ",
            "kavun-na-balkoni-7",
        ] {
            assert_eq!(login_check(ok, "ivan"), Ok(()), "{ok}");
        }
    }

    #[test]
    fn common_password_list_is_clean() {
        let entries: Vec<&str> = COMMON_PASSWORDS
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(entries.len() >= 300, "{}", entries.len());
        for e in entries {
            assert_eq!(e, e.to_lowercase(), "entries are lower case");
            assert_eq!(e, e.trim(), "entries are trimmed");
        }
    }
}

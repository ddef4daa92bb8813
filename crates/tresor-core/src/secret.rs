//! Passwords in memory.

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
mod tests {
    use super::*;

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
}

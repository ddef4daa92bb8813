//! Logins: the name a bank admin gives a user.
//!
//! A login names the user's folder on the drive and is the subject of the user's
//! certificate, so it is restricted to characters that are safe in a path on every file
//! system (FAT on USB sticks included) and in an X.509 distinguished name.

use core::fmt;
use core::str::FromStr;

/// Longest login accepted, in bytes.
pub const MAX_LOGIN_LEN: usize = 64;

/// A validated login: 1 to 64 characters of `a-z`, `0-9`, `.`, `_`, `-`, starting with a
/// letter or digit. Upper-case ASCII is folded to lower case, because USB drives are mostly
/// case-insensitive: `Ivan` and `ivan` must not get two folders that collide.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Login(String);

/// Why a string is not a login.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The login is empty.
    #[error("the login is empty")]
    Empty,
    /// The login is longer than [`MAX_LOGIN_LEN`].
    #[error("the login is longer than {MAX_LOGIN_LEN} characters")]
    TooLong,
    /// The login does not start with a letter or a digit.
    #[error("the login must start with a letter or a digit")]
    BadStart,
    /// The login holds a character outside `a-z 0-9 . _ -`.
    #[error("the login may only hold letters a-z, digits, '.', '_' and '-' (found {0:?})")]
    BadChar(char),
}

impl Login {
    /// Parses and normalises a login.
    pub fn new(raw: &str) -> Result<Self, LoginError> {
        if raw.is_empty() {
            return Err(LoginError::Empty);
        }
        if raw.len() > MAX_LOGIN_LEN {
            return Err(LoginError::TooLong);
        }
        let lower = raw.to_ascii_lowercase();
        if let Some(bad) = lower.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        }) {
            return Err(LoginError::BadChar(bad));
        }
        if !lower.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(LoginError::BadStart);
        }
        Ok(Self(lower))
    }

    /// The login as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Login {
    type Err = LoginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Login({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_folds_case() {
        assert_eq!(
            Login::new("Ivan.Petrenko").unwrap().as_str(),
            "ivan.petrenko"
        );
        assert_eq!(Login::new("a").unwrap().as_str(), "a");
        assert_eq!(Login::new("acct-01_x").unwrap().as_str(), "acct-01_x");
    }

    #[test]
    fn rejects_what_is_unsafe_in_a_path_or_a_name() {
        let cases = [
            ("", LoginError::Empty),
            ("..", LoginError::BadStart),
            (".hidden", LoginError::BadStart),
            ("-x", LoginError::BadStart),
            ("a/b", LoginError::BadChar('/')),
            ("a\\b", LoginError::BadChar('\\')),
            ("CN=x,O=y", LoginError::BadChar('=')),
            ("ivan petrenko", LoginError::BadChar(' ')),
            ("іван", LoginError::BadChar('і')),
        ];
        for (input, expected) in cases {
            assert_eq!(Login::new(input), Err(expected), "{input:?}");
        }
        assert_eq!(Login::new(&"a".repeat(65)), Err(LoginError::TooLong));
        assert!(Login::new(&"a".repeat(64)).is_ok());
    }
}

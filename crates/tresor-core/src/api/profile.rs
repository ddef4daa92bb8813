//! The user's own profile: the e-mail address the bank writes to (verified by a code sent
//! to it), the language of its mails, and which notifications the user turned off.

use serde::{Deserialize, Serialize};

/// The language of the bank's mails to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Language {
    /// Ukrainian.
    Uk,
    /// English.
    En,
}

impl Language {
    /// As stored and as the CLI takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uk => "uk",
            Self::En => "en",
        }
    }

    /// From [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "uk" => Some(Self::Uk),
            "en" => Some(Self::En),
            _ => None,
        }
    }
}

/// What the bank tells a user by e-mail, unasked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum NoticeKind {
    /// A login from an address not seen before for this user (security).
    NewAddress,
    /// The account was locked after wrong passwords (security).
    Lockout,
    /// The password was reset, or the e-mail address changed (security).
    Credentials,
    /// A certificate expires in 30, 14, 7, 3 or 1 days.
    CertificateExpiry,
    /// An order from an account the user sees was rejected.
    OrderRejected,
    /// Money came into an account the user sees.
    IncomingPayment,
}

impl NoticeKind {
    /// Every kind, in the order the profile lists them.
    pub const ALL: [Self; 6] = [
        Self::NewAddress,
        Self::Lockout,
        Self::Credentials,
        Self::CertificateExpiry,
        Self::OrderRejected,
        Self::IncomingPayment,
    ];

    /// Security notices, which a user cannot turn off: they tell of someone else at work.
    pub fn is_security(self) -> bool {
        matches!(self, Self::NewAddress | Self::Lockout | Self::Credentials)
    }

    /// As stored and as the CLI takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewAddress => "new_address",
            Self::Lockout => "lockout",
            Self::Credentials => "credentials",
            Self::CertificateExpiry => "certificate_expiry",
            Self::OrderRejected => "order_rejected",
            Self::IncomingPayment => "incoming_payment",
        }
    }

    /// From [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The user's profile, as the bank holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Profile {
    /// The verified e-mail address, if any.
    pub email: Option<String>,
    /// A new address waiting for its code, masked as it was mailed (`o•••@example.com`).
    pub pending_email: Option<String>,
    /// The language of the bank's mails; none: both languages.
    pub language: Option<Language>,
    /// The notifications the user turned off.
    pub quiet: Vec<NoticeKind>,
    /// Whether the bank sends e-mail at all: where it does not, there is no address to ask
    /// for.
    #[serde(default)]
    pub bank_sends_mail: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_languages_read_back_what_they_write() {
        for k in NoticeKind::ALL {
            assert_eq!(NoticeKind::parse(k.as_str()), Some(k));
        }
        for l in [Language::Uk, Language::En] {
            assert_eq!(Language::parse(l.as_str()), Some(l));
        }
        assert_eq!(NoticeKind::parse("everything"), None);
        assert_eq!(Language::parse("de"), None);
        let security: Vec<_> = NoticeKind::ALL
            .into_iter()
            .filter(|k| k.is_security())
            .collect();
        assert_eq!(
            security,
            [
                NoticeKind::NewAddress,
                NoticeKind::Lockout,
                NoticeKind::Credentials
            ]
        );
    }
}

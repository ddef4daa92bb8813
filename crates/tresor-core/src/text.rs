//! Showing text that came from users (a login, a name, an audit detail) on a terminal.

use std::borrow::Cow;

/// Text as a terminal may show it: control characters (C0 but the line feed, DEL, C1) and
/// the Unicode controls that reorder text (bidi overrides and isolates) are written as
/// `\u{..}` escapes, so that stored text cannot move the cursor, recolour or rewrite the
/// screen, or disguise itself.
pub fn printable(text: &str) -> Cow<'_, str> {
    let hostile = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hostile) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hostile(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `address` looks like an e-mail address a mail server would take: one `@`, a
/// non-empty local part, a domain with a dot and no empty label, no spaces or controls, at
/// most 254 characters (RFC 5321's path limit). Deliverability is for a confirmation code to
/// show, not for a parser to guess.
pub fn plausible_email(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    address.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_email_addresses() {
        let cases = [
            ("helpdesk@bank.ua", true),
            ("olena.k+tresor@mail.example.com", true),
            ("підтримка@банк.укр", true),
            ("", false),
            ("bank.ua", false),
            ("@bank.ua", false),
            ("helpdesk@", false),
            ("helpdesk@localhost", false),
            ("help desk@bank.ua", false),
            ("a@b@bank.ua", false),
            ("helpdesk@bank..ua", false),
            ("helpdesk@-bank.ua", false),
            ("helpdesk@bank.ua\n", false),
            ("x@bank.ua>, y@evil.example", false),
        ];
        for (address, want) in cases {
            assert_eq!(plausible_email(address), want, "{address:?}");
        }
        assert!(!plausible_email(&format!("{}@bank.ua", "a".repeat(65))));
    }

    #[test]
    fn printable_escapes_what_could_drive_a_terminal() {
        let cases = [
            ("alice.k", "alice.k"),
            ("Олена Демченко", "Олена Демченко"),
            ("two\nlines", "two\nlines"),
            ("\u{1b}[2J\u{1b}[Hadmin", "\\u{1b}[2J\\u{1b}[Hadmin"),
            ("bell\u{7}", "bell\\u{7}"),
            ("cr\rover", "cr\\u{d}over"),
            ("del\u{7f}", "del\\u{7f}"),
            ("csi\u{9b}31m", "csi\\u{9b}31m"),
            ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
            ("iso\u{2067}x", "iso\\u{2067}x"),
        ];
        for (input, want) in cases {
            assert_eq!(printable(input), want, "{input:?}");
        }
    }
}

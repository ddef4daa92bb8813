//! The bank's e-mail. A mail is rendered here from the facts it tells (pure functions, in
//! both of the bank's languages, as plain text and HTML), sealed, and queued in the outbox in
//! the transaction of the action it tells of: the action and its mail commit together, and
//! a mail server that is down delays the mail, never the action. `crate::mailer` sends what
//! is due. A mail may carry a one-time password: in the database it is sealed under the
//! bank's key (AES-256-GCM, its id in the AAD) and it is dropped once the SMTP server took it.

use serde::{Deserialize, Serialize};
use tresor_core::Password;
use tresor_core::api::BankInfo;
use zeroize::Zeroize as _;

use crate::binding::Vault;

/// One mail: recipient, subject, and the same text twice (plain and HTML).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

/// Only the recipient and subject: a body may hold a one-time password.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Drop for Mail {
    fn drop(&mut self) {
        self.text.zeroize();
        self.html.zeroize();
    }
}

/// The activation mail: a new user's login and one-time initial password, until when it
/// may be used (`expires`, as the bank prints times), and whom to call. In Ukrainian, then
/// English: the bank does not know the user's language yet.
pub fn activation(
    info: &BankInfo,
    to: &str,
    login: &str,
    password: &Password,
    expires: &str,
) -> Mail {
    let contact = contact_line(info);
    let uk = [
        format!(
            "Для вас створено вхід до Tresor, клієнт-банку {}.",
            info.name
        ),
        String::new(),
        format!("Логін: {login}"),
        format!("Початковий пароль: {}", password.expose()),
        format!("Діє до: {expires}"),
        String::new(),
        "Під час першого входу Tresor попросить змінити цей пароль і створить ваш ключ на \
         USB-накопичувачі. Нікому не повідомляйте пароль: працівники банку його не питають."
            .to_owned(),
        format!("Питання: {}", contact.0),
    ];
    let en = [
        format!("You now have a Tresor login at {}.", info.name),
        String::new(),
        format!("Login: {login}"),
        format!("Initial password: {}", password.expose()),
        format!("Valid until: {expires}"),
        String::new(),
        "At the first login Tresor asks you to change this password and makes your key on \
         your USB drive. Tell this password to nobody: the bank's staff never ask for it."
            .to_owned(),
        format!("Questions: {}", contact.1),
    ];
    Mail {
        to: to.to_owned(),
        subject: format!("{}: ваш вхід до Tresor / your Tresor login", info.name),
        text: format!("{}\n\n---\n\n{}\n", uk.join("\n"), en.join("\n")),
        html: format!(
            "<!DOCTYPE html><html><body><div lang=\"uk\">{}</div><hr><div lang=\"en\">{}</div></body></html>",
            html_lines(&uk),
            html_lines(&en)
        ),
    }
}

/// How to reach the helpdesk, in Ukrainian and English; where the bank configured none,
/// the bank itself.
fn contact_line(info: &BankInfo) -> (String, String) {
    let parts: Vec<&str> = [&info.phone, &info.email, &info.hours]
        .into_iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return (
            format!("зверніться до {}", info.name),
            format!("contact {}", info.name),
        );
    }
    (parts.join(", "), parts.join(", "))
}

fn html_lines(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| {
            if l.is_empty() {
                "<br>".to_owned()
            } else {
                format!("<p>{}</p>", escape_html(l))
            }
        })
        .collect()
}

/// Text as HTML shows it: the five characters that could start markup, escaped.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An address as the audit log and an admin see it: the first character of the local part
/// and the domain (`o•••@example.com`).
pub fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_owned(),
    }
}

/// A new mail's id: 16 random bytes, hex; `None` if the OS has no randomness.
pub fn new_id() -> Option<String> {
    use ring::rand::SecureRandom as _;
    let mut id = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut id).ok()?;
    Some(data_encoding::HEXLOWER.encode(&id))
}

fn aad(id: &str) -> Vec<u8> {
    [b"tresor mail v1 ".as_slice(), id.as_bytes()].concat()
}

/// `mail` sealed for the outbox under `id`.
pub fn seal(vault: &Vault, id: &str, mail: &Mail) -> Option<Vec<u8>> {
    let mut plain = serde_json::to_vec(mail).ok()?;
    let sealed = vault.seal(&aad(id), &plain);
    plain.zeroize();
    sealed
}

/// The mail sealed under `id`; `None` if it was not sealed by this bank for that id.
pub fn open(vault: &Vault, id: &str, sealed: &[u8]) -> Option<Mail> {
    let plain = vault.open(&aad(id), sealed)?;
    serde_json::from_slice(&plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank(phone: &str) -> BankInfo {
        BankInfo {
            name: "Bank <Test> & Co".into(),
            phone: phone.into(),
            ..BankInfo::default()
        }
    }

    #[test]
    fn the_activation_mail_carries_login_password_deadline_and_helpdesk_in_both_languages() {
        let password = Password::from("Initial-Pass-123");
        let m = activation(
            &bank("+380 44 000 00 00"),
            "olena@example.com",
            "olena.k",
            &password,
            "2026-12-04T10:00:00Z",
        );
        for body in [&m.text, &m.html] {
            for needle in [
                "olena.k",
                "Initial-Pass-123",
                "2026-12-04T10:00:00Z",
                "+380 44 000 00 00",
                "Початковий пароль",
                "Initial password",
            ] {
                assert!(body.contains(needle), "{needle} in {body}");
            }
        }
        // The bank's name is text in the HTML, never markup.
        assert!(m.html.contains("Bank &lt;Test&gt; &amp; Co"));
        assert!(!m.html.contains("<Test>"));
        assert_eq!(m.to, "olena@example.com");
        // Debug never shows a body.
        assert!(!format!("{m:?}").contains("Initial-Pass-123"));
        // No helpdesk configured: the bank is named instead.
        let m = activation(&bank(""), "a@b.ua", "a", &password, "then");
        assert!(m.text.contains("contact Bank <Test> & Co"));
    }

    #[test]
    fn escaping_and_masking() {
        let cases = [
            ("plain", "plain"),
            ("<b>&\"'", "&lt;b&gt;&amp;&quot;&#39;"),
            ("підтримка", "підтримка"),
        ];
        for (text, want) in cases {
            assert_eq!(escape_html(text), want);
        }
        let cases = [
            ("olena.k@example.com", "o•••@example.com"),
            ("ж@банк.укр", "ж•••@банк.укр"),
            ("nobody", "•••"),
        ];
        for (address, want) in cases {
            assert_eq!(mask(address), want);
        }
    }

    #[test]
    fn a_sealed_mail_opens_only_under_its_id() {
        let vault = Vault::new(&[7; 32]);
        let m = activation(
            &bank(""),
            "a@b.ua",
            "a",
            &Password::from("Secret-Pass-9"),
            "then",
        );
        let id = new_id().unwrap();
        let sealed = seal(&vault, &id, &m).unwrap();
        assert!(!sealed.windows(13).any(|w| w == b"Secret-Pass-9"));
        assert_eq!(open(&vault, &id, &sealed), Some(m.clone()));
        assert_eq!(open(&vault, &new_id().unwrap(), &sealed), None);
        assert_eq!(open(&Vault::new(&[8; 32]), &id, &sealed), None);
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert_eq!(open(&vault, &id, &flipped), None);
    }
}
